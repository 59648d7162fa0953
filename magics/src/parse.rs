//! Splitting a cell into magic calls and code.
//!
//! IPython's rules, which notebook users already know: a cell whose first non-blank line starts
//! with `%%` is one cell magic (that line holds its name and options, the rest of the cell is its
//! body); otherwise every line starting with `%` is a line magic and the lines between them are
//! code, run in order. `%name?` (or `%%name?`) asks for the magic's help.

use crate::context::MagicError;

/// Whether a magic was called on one line (`%name`) or for a whole cell (`%%name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MagicForm {
    Line,
    Cell,
}

/// One call of a magic, as written in the cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MagicCall {
    pub form: MagicForm,
    pub name: String,
    /// Everything after the name on the magic's line, trimmed.
    pub args: String,
    /// The rest of the cell for a cell magic; empty for a line magic.
    pub body: String,
    /// `%name?`: show the magic's help instead of running it.
    pub help: bool,
}

impl MagicCall {
    /// The arguments split as a POSIX shell would (quotes group, backslashes escape).
    pub fn argv(&self) -> Result<Vec<String>, MagicError> {
        shlex::split(&self.args).ok_or_else(|| {
            MagicError::usage(
                &self.name,
                format!(
                    "cannot split the arguments `{}`: a quote is not closed",
                    self.args
                ),
            )
        })
    }
}

/// A piece of a cell: code for the language backend, or a magic call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CellPart {
    Code(String),
    Magic(MagicCall),
}

/// True when the cell holds at least one magic (cheap check before [`parse_cell`]).
pub fn has_magic(cell: &str) -> bool {
    cell.lines().any(|line| line.trim_start().starts_with('%'))
}

/// Splits a cell into its parts. Blank code between magics is dropped.
pub fn parse_cell(cell: &str) -> Result<Vec<CellPart>, MagicError> {
    let first = cell.lines().position(|l| !l.trim().is_empty());
    if let Some(first) = first {
        let mut lines = cell.lines().skip(first);
        let head = lines.next().unwrap_or_default().trim_start();
        if let Some(rest) = head.strip_prefix("%%") {
            let (name, args, help) = split_head(rest)?;
            let body: Vec<&str> = lines.collect();
            return Ok(vec![CellPart::Magic(MagicCall {
                form: MagicForm::Cell,
                name,
                args,
                body: body.join("\n"),
                help,
            })]);
        }
    }

    let mut parts = Vec::new();
    let mut code = String::new();
    for line in cell.lines() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("%%") {
            let (name, _, _) = split_head(rest)?;
            return Err(MagicError::usage(
                &format!("%{name}"),
                "a cell magic must be on the first line of its cell; move it there or use the line form `%name`",
            ));
        }
        if let Some(rest) = trimmed.strip_prefix('%') {
            flush_code(&mut code, &mut parts);
            let (name, args, help) = split_head(rest)?;
            parts.push(CellPart::Magic(MagicCall {
                form: MagicForm::Line,
                name,
                args,
                body: String::new(),
                help,
            }));
        } else {
            code.push_str(line);
            code.push('\n');
        }
    }
    flush_code(&mut code, &mut parts);
    Ok(parts)
}

fn flush_code(code: &mut String, parts: &mut Vec<CellPart>) {
    if !code.trim().is_empty() {
        parts.push(CellPart::Code(std::mem::take(code).trim_end().to_owned()));
    }
    code.clear();
}

/// Splits `name args` (the text after `%`/`%%`) and recognises the `name?` help form.
fn split_head(rest: &str) -> Result<(String, String, bool), MagicError> {
    let rest = rest.trim();
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let (mut name, args) = rest.split_at(end);
    let mut help = false;
    let mut args = args.trim().to_owned();
    if let Some(stripped) = name.strip_suffix('?') {
        name = stripped;
        help = true;
    } else if args == "?" {
        help = true;
        args.clear();
    }
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(MagicError::Usage {
            magic: format!("%{name}"),
            message:
                "a magic name must follow `%` (letters, digits and `_`); `%lsmagic` lists them"
                    .into(),
        });
    }
    Ok((name.to_owned(), args, help))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn magic(part: &CellPart) -> &MagicCall {
        match part {
            CellPart::Magic(m) => m,
            CellPart::Code(c) => panic!("expected a magic, got code {c:?}"),
        }
    }

    #[test]
    fn cell_magic_takes_the_whole_cell() {
        let parts = parse_cell("\n%%sql -o df -n 10\nSELECT 1\n%not_a_line_magic").unwrap();
        assert_eq!(parts.len(), 1);
        let m = magic(&parts[0]);
        assert_eq!(m.form, MagicForm::Cell);
        assert_eq!(m.name, "sql");
        assert_eq!(m.args, "-o df -n 10");
        assert_eq!(m.body, "SELECT 1\n%not_a_line_magic");
        assert_eq!(m.argv().unwrap(), ["-o", "df", "-n", "10"]);
    }

    #[test]
    fn line_magics_interleave_with_code_in_order() {
        let parts = parse_cell("let x = 1;\n%lsmagic\n  %help train\nx + 1").unwrap();
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0], CellPart::Code("let x = 1;".into()));
        assert_eq!(magic(&parts[1]).name, "lsmagic");
        assert_eq!(magic(&parts[2]).args, "train");
        assert_eq!(parts[3], CellPart::Code("x + 1".into()));
    }

    #[test]
    fn code_without_magics_is_one_part() {
        let parts = parse_cell("let a = 5 % 3;\nprintln!(\"{a}\");").unwrap();
        assert_eq!(
            parts,
            vec![CellPart::Code("let a = 5 % 3;\nprintln!(\"{a}\");".into())]
        );
        assert!(!has_magic("let a = 5 % 3;"));
    }

    #[test]
    fn question_mark_asks_for_help() {
        assert!(magic(&parse_cell("%lsmagic?").unwrap()[0]).help);
        assert!(magic(&parse_cell("%%sql?").unwrap()[0]).help);
        assert!(magic(&parse_cell("%train ?").unwrap()[0]).help);
        assert!(!magic(&parse_cell("%train x").unwrap()[0]).help);
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        assert!(matches!(parse_cell("%"), Err(MagicError::Usage { .. })));
        assert!(matches!(parse_cell("%9x"), Err(MagicError::Usage { .. })));
        let err = parse_cell("let x = 1;\n%%sql\nSELECT 1").unwrap_err();
        assert!(err.to_string().contains("first line"), "{err}");
        let call = magic(&parse_cell("%x 'open").unwrap()[0]).clone();
        assert!(call.argv().unwrap_err().to_string().contains("quote"));
    }

    #[test]
    fn empty_cell_has_no_parts() {
        assert!(parse_cell("").unwrap().is_empty());
        assert!(parse_cell("  \n\n").unwrap().is_empty());
    }
}
