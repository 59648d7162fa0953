//! Magic options parsed with clap, so every engine's magics share one syntax and one style
//! of usage error.

use clap::Parser;

use crate::context::MagicError;

/// Parses a magic's `argv` into `T`; a mistake becomes a usage error naming the magic and
/// pointing at its help.
pub fn parse_args<T: Parser>(magic: &str, argv: Vec<String>) -> Result<T, MagicError> {
    T::try_parse_from(std::iter::once(format!("%{magic}")).chain(argv)).map_err(|e| {
        let text = e.render().to_string();
        let text = text
            .lines()
            .filter(|l| !l.starts_with("For more information"))
            .collect::<Vec<_>>()
            .join("\n");
        MagicError::usage(
            magic,
            format!("{}\n(`%{magic}?` shows the options)", text.trim()),
        )
    })
}
