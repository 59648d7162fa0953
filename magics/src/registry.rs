//! The table of magics: registration, lookup with "did you mean", `%lsmagic` and `%help`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::context::{MagicContext, MagicError, MimeBundle};
use crate::parse::{MagicCall, MagicForm};

/// A magic command. Engines implement this; the registry routes calls to it.
pub trait Magic: Send + Sync {
    /// The name without `%`, e.g. `"sql"`.
    fn name(&self) -> &str;
    /// The forms it accepts: `%name` (line), `%%name` (cell), or both.
    fn forms(&self) -> &[MagicForm];
    /// One line for `%lsmagic`.
    fn summary(&self) -> &str;
    /// Full usage for `%name?` and `%help name`: options, defaults, an example.
    fn help(&self) -> String;
    /// Runs one call. Output goes through `ctx`; a failure is returned, never printed.
    fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError>;
    /// The kernel is exiting: release what the magic holds elsewhere (remote sessions).
    fn shutdown(&self) {}
}

/// Every magic the kernel knows, by name. `%lsmagic` and `%help` are answered here because
/// they describe the table itself.
pub struct MagicRegistry {
    magics: BTreeMap<String, Arc<dyn Magic>>,
}

const BUILTINS: [(&str, &str); 2] = [
    (
        "help",
        "Show the help of a magic: `%help NAME` (same as `%NAME?`).",
    ),
    (
        "lsmagic",
        "List every available magic with a one-line summary.",
    ),
];

impl Default for MagicRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl MagicRegistry {
    pub fn new() -> Self {
        MagicRegistry {
            magics: BTreeMap::new(),
        }
    }

    /// Adds a magic. A second magic with a name already taken is refused, so engines cannot
    /// silently shadow each other.
    pub fn register(&mut self, magic: Arc<dyn Magic>) -> Result<(), MagicError> {
        let name = magic.name().to_owned();
        if BUILTINS.iter().any(|(b, _)| *b == name) || self.magics.contains_key(&name) {
            return Err(MagicError::Failed(format!(
                "a magic named `%{name}` is already registered"
            )));
        }
        self.magics.insert(name, magic);
        Ok(())
    }

    /// Removes a magic and hands it back, so the kernel can put one magic in front of two
    /// engines that share a name (`%%configure`).
    pub fn take(&mut self, name: &str) -> Option<Arc<dyn Magic>> {
        self.magics.remove(name)
    }

    /// All magic names, builtins included, sorted, each with the forms it accepts.
    pub fn names(&self) -> Vec<(String, Vec<MagicForm>)> {
        let mut all: Vec<(String, Vec<MagicForm>)> = BUILTINS
            .iter()
            .map(|(n, _)| (n.to_string(), vec![MagicForm::Line]))
            .chain(
                self.magics
                    .values()
                    .map(|m| (m.name().to_owned(), m.forms().to_vec())),
            )
            .collect();
        all.sort();
        all
    }

    /// The help text of a magic, or an error naming the closest match.
    pub fn help(&self, name: &str) -> Result<String, MagicError> {
        if let Some((_, summary)) = BUILTINS.iter().find(|(b, _)| *b == name) {
            return Ok(format!("%{name}\n\n{summary}"));
        }
        self.magics
            .get(name)
            .map(|m| m.help())
            .ok_or_else(|| self.unknown(name))
    }

    /// Runs a call: help requests, builtins, then registered magics.
    /// Tells every magic that the kernel is exiting.
    pub fn shutdown(&self) {
        for magic in self.magics.values() {
            magic.shutdown();
        }
    }

    pub fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
        if call.help {
            let text = self.help(&call.name)?;
            ctx.page(&format!("{}\n", text.trim_end()));
            return Ok(());
        }
        match call.name.as_str() {
            "lsmagic" => {
                expect_line_without_args(call)?;
                ctx.display(self.listing(), None);
                Ok(())
            }
            "help" => {
                let argv = call.argv()?;
                let [name] = argv.as_slice() else {
                    return Err(MagicError::usage(
                        "help",
                        "usage: %help NAME (for example `%help lsmagic`)",
                    ));
                };
                let name = name.trim_start_matches('%');
                let text = self.help(name)?;
                ctx.stdout(&format!("{}\n", text.trim_end()));
                Ok(())
            }
            name => {
                let magic = self.magics.get(name).ok_or_else(|| self.unknown(name))?;
                if !magic.forms().contains(&call.form) {
                    let (wrong, right) = match call.form {
                        MagicForm::Line => (format!("%{name}"), format!("%%{name}")),
                        MagicForm::Cell => (format!("%%{name}"), format!("%{name}")),
                    };
                    return Err(MagicError::Usage {
                        magic: wrong,
                        message: format!("this magic is used as `{right}`; see `%{name}?`"),
                    });
                }
                magic.run(call, ctx)
            }
        }
    }

    /// The closest known name, when one is close enough to be a likely typo.
    pub fn suggest(&self, name: &str) -> Option<String> {
        self.names()
            .into_iter()
            .map(|(known, _)| (strsim::damerau_levenshtein(name, &known), known))
            .filter(|(distance, known)| *distance <= 2.max(known.len() / 3))
            .min()
            .map(|(_, known)| known)
    }

    fn unknown(&self, name: &str) -> MagicError {
        MagicError::Unknown {
            name: name.to_owned(),
            suggestion: self.suggest(name),
        }
    }

    fn summary(&self, name: &str) -> &str {
        BUILTINS
            .iter()
            .find(|(b, _)| *b == name)
            .map(|(_, s)| *s)
            .or_else(|| self.magics.get(name).map(|m| m.summary()))
            .unwrap_or_default()
    }

    /// `%lsmagic`'s display: plain text and an HTML table. (No JSON: JupyterLab ranks
    /// `application/json` above HTML and would show a tree instead of the table.)
    fn listing(&self) -> MimeBundle {
        let names = self.names();
        let of_form = |form: MagicForm| -> Vec<&String> {
            names
                .iter()
                .filter(|(_, f)| f.contains(&form))
                .map(|(n, _)| n)
                .collect()
        };
        let (line, cell) = (of_form(MagicForm::Line), of_form(MagicForm::Cell));
        let mut text = String::from("Available line magics:\n");
        for n in &line {
            text.push_str(&format!("  %{n:<20} {}\n", self.summary(n)));
        }
        text.push_str("\nAvailable cell magics:\n");
        for n in &cell {
            text.push_str(&format!("  %%{n:<19} {}\n", self.summary(n)));
        }
        text.push_str("\nType `%NAME?` or `%help NAME` for a magic's help.");
        let mut html =
            String::from("<table><thead><tr><th>magic</th><th>summary</th></tr></thead><tbody>");
        for (prefix, list) in [("%", &line), ("%%", &cell)] {
            for n in list {
                html.push_str(&format!(
                    "<tr><td><code>{prefix}{}</code></td><td>{}</td></tr>",
                    crate::table::escape(n),
                    code_spans(&crate::table::escape(self.summary(n)))
                ));
            }
        }
        html.push_str("</tbody></table>");
        MimeBundle::text(text).with("text/html", Value::String(html))
    }
}

/// Renders the `code` spans of a summary as `<code>` (the text is already escaped).
fn code_spans(escaped: &str) -> String {
    let mut out = String::with_capacity(escaped.len());
    for (i, piece) in escaped.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str("<code>");
            out.push_str(piece);
            out.push_str("</code>");
        } else {
            out.push_str(piece);
        }
    }
    if escaped.matches('`').count() % 2 == 1 {
        return escaped.to_owned(); // an unpaired backtick: leave the text as it is
    }
    out
}

fn expect_line_without_args(call: &MagicCall) -> Result<(), MagicError> {
    if !call.args.is_empty() || call.form == MagicForm::Cell {
        return Err(MagicError::usage(
            &call.name,
            "takes no arguments and no cell body",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{parse_cell, CellPart};

    #[derive(Default)]
    struct Recorder {
        out: String,
        displays: Vec<MimeBundle>,
        frames: crate::FrameStore,
    }

    impl MagicContext for Recorder {
        fn stdout(&mut self, text: &str) {
            self.out.push_str(text);
        }
        fn stderr(&mut self, text: &str) {
            self.out.push_str(text);
        }
        fn display(&mut self, data: MimeBundle, _: Option<&str>) {
            self.displays.push(data);
        }
        fn update_display(&mut self, data: MimeBundle, _: &str) {
            self.displays.push(data);
        }
        fn clear_output(&mut self, _: bool) {}
        fn is_interrupted(&self) -> bool {
            false
        }
        fn input(&mut self, _: &str, _: bool) -> Result<String, MagicError> {
            Err(MagicError::StdinNotAllowed)
        }
        fn frames(&mut self) -> &mut crate::FrameStore {
            &mut self.frames
        }
    }

    struct Echo;
    impl Magic for Echo {
        fn name(&self) -> &str {
            "echo"
        }
        fn forms(&self) -> &[MagicForm] {
            &[MagicForm::Line, MagicForm::Cell]
        }
        fn summary(&self) -> &str {
            "Print the arguments and the body."
        }
        fn help(&self) -> String {
            "%echo ARGS\n%%echo\nBODY".into()
        }
        fn run(&self, call: &MagicCall, ctx: &mut dyn MagicContext) -> Result<(), MagicError> {
            ctx.stdout(&format!("{:?}|{}", call.argv()?, call.body));
            Ok(())
        }
    }

    fn run(registry: &MagicRegistry, cell: &str) -> (Result<(), MagicError>, Recorder) {
        let mut ctx = Recorder::default();
        let CellPart::Magic(call) = &parse_cell(cell).unwrap()[0] else {
            panic!("no magic in {cell:?}")
        };
        (registry.run(call, &mut ctx), ctx)
    }

    fn registry() -> MagicRegistry {
        let mut r = MagicRegistry::new();
        r.register(Arc::new(Echo)).unwrap();
        r
    }

    #[test]
    fn routes_line_and_cell_calls() {
        let r = registry();
        let (res, ctx) = run(&r, "%echo a 'b c'");
        res.unwrap();
        assert_eq!(ctx.out, r#"["a", "b c"]|"#);
        let (res, ctx) = run(&r, "%%echo x\nbody");
        res.unwrap();
        assert_eq!(ctx.out, r#"["x"]|body"#);
    }

    #[test]
    fn lsmagic_lists_builtins_and_registered_magics() {
        let (res, ctx) = run(&registry(), "%lsmagic");
        res.unwrap();
        let bundle = &ctx.displays[0].0;
        let text = bundle["text/plain"].as_str().unwrap();
        assert!(text.contains("%echo") && text.contains("%%echo") && text.contains("%lsmagic"));
        assert!(text.contains("Available cell magics:\n  %%echo"));
        assert!(
            !bundle.contains_key("application/json"),
            "JupyterLab would show a JSON tree"
        );
        assert!(bundle["text/html"]
            .as_str()
            .unwrap()
            .contains("<code>%%echo</code>"));
    }

    #[test]
    fn help_forms_agree() {
        let r = registry();
        let (_, a) = run(&r, "%echo?");
        let (_, b) = run(&r, "%help echo");
        let (_, c) = run(&r, "%help %echo");
        assert_eq!(a.out, b.out);
        assert_eq!(b.out, c.out);
        assert!(a.out.contains("%%echo"));
    }

    #[test]
    fn unknown_magic_names_the_closest_match() {
        let (res, _) = run(&registry(), "%lsmagics");
        let err = res.unwrap_err();
        assert_eq!(err.ename(), "UsageError");
        assert!(err.to_string().contains("did you mean `%lsmagic`"), "{err}");
        let (res, _) = run(&registry(), "%zzzzzzzz");
        let err = res.unwrap_err().to_string();
        assert!(
            !err.contains("did you mean") && err.contains("%lsmagic"),
            "{err}"
        );
        let (res, _) = run(&registry(), "%help nosuch");
        assert!(matches!(res, Err(MagicError::Unknown { .. })));
    }

    #[test]
    fn wrong_form_and_bad_arguments_are_usage_errors() {
        let mut r = registry();
        let (res, _) = run(&r, "%%lsmagic\n");
        assert!(matches!(res, Err(MagicError::Usage { .. })));
        let (res, _) = run(&r, "%lsmagic extra");
        assert!(matches!(res, Err(MagicError::Usage { .. })));
        let (res, _) = run(&r, "%help");
        assert!(res.unwrap_err().to_string().contains("usage: %help NAME"));
        assert!(
            r.register(Arc::new(Echo)).is_err(),
            "duplicate names are refused"
        );
    }

    #[test]
    fn summaries_render_code_spans() {
        assert_eq!(
            code_spans("use `%x NAME` or `y`"),
            "use <code>%x NAME</code> or <code>y</code>"
        );
        assert_eq!(code_spans("one ` tick"), "one ` tick");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            crate::table::escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
