//! A cell's final value shown after one compile instead of two.
//!
//! evcxr shows a cell that ends in an expression by compiling `(expr).evcxr_display();`
//! first, and, when that fails to compile (the value has no `evcxr_display` method: every
//! number, string, vector or struct), compiling the cell again with the value's `Debug`
//! form. A trivial `1 + 1` therefore costs two builds, the first a failing one, and that
//! failed build was about half of a warm cell's time. evcxr_jupyter does the same.
//!
//! The kernel gives the session one item (kept by evcxr like any item a cell defines): a
//! trait with an `evcxr_display(&mut self)` method for every `Debug` type, which writes what
//! evcxr's fallback writes. Its `&mut self` receiver is why it never takes a value's own
//! display away: Rust's method lookup tries `self`, then `&self`, then `&mut self`, so an
//! inherent `evcxr_display(&self)` (plotters' figures) or one from a trait in scope (the
//! frames bridge's DataFrame table, evcxr_image) is found first. A mutable borrow of an
//! immutable place (`x`, `v[0]`) would not compile, so the cell's last expression is handed
//! to evcxr borrowed, `&(expr)`: a reference is a temporary, which may always be borrowed
//! mutably, and shows the same. A type that is not `Debug` fails the first build and evcxr
//! falls back as before.
//!
//! The trait costs no build of its own: it goes into the first cell with Rust code (after its
//! commands), and again into the next one whenever it is missing (after `:clear`, or a first
//! cell that did not compile) or the settings changed. [`Rewrite`] maps the rewritten cell's
//! positions back to the user's, so that errors point at what the user wrote.
//!
//! evcxr's `:fmt` changes what the fallback writes; the trait follows it while the format is
//! a `Debug` one (`{:?}`, `{:#?}`, …) and steps aside (a trait with no impl) otherwise, and
//! while `:types` is on (evcxr's fallback then shortens the type's name its own way).

use ra_ap_syntax::{ast, AstNode, Edition, SourceFile};

/// The module that holds the trait; `defined_item_names` lists it while it is defined.
pub const MODULE: &str = "__rustmaker_final_value";

/// What evcxr's fallback writes, as the last `:fmt` and `:types` commands set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalValue {
    format: String,
    types: bool,
}

impl Default for FinalValue {
    fn default() -> Self {
        FinalValue {
            format: "{:?}".into(),
            types: false,
        }
    }
}

impl FinalValue {
    /// The items that make the session's final values follow these settings (one line).
    pub fn prelude(&self) -> String {
        let body = if self.active() {
            // `{:?}` of the format string is a Rust string literal of it.
            let value = format!("format!({:?}, self)", self.format);
            format!(
                "impl<T: ::std::fmt::Debug + ?Sized> RustmakerFinalValue for T {{ \
                 fn evcxr_display(&mut self) {{ \
                 use ::std::io::Write; \
                 let text = {value}; \
                 let stdout = ::std::io::stdout(); \
                 let mut out = stdout.lock(); \
                 if let Err(error) = out.write_all(b\"EVCXR_BEGIN_CONTENT text/plain\\n\") \
                 .and_then(|_| out.write_all(text.as_bytes())) \
                 .and_then(|_| out.write_all(b\"\\nEVCXR_END_CONTENT\\n\")) {{ \
                 eprintln!(\"Failed to send content to parent: {{:?}}\", error); \
                 ::std::process::exit(1); }} }} }}"
            )
        } else {
            String::new()
        };
        // One line, so that the user's lines after it move down by exactly one.
        format!(
            "mod {MODULE} {{ pub trait RustmakerFinalValue {{ fn evcxr_display(&mut self); }} {body} }} \
             use {MODULE}::RustmakerFinalValue;\n"
        )
    }

    /// Follows the `:fmt` and `:types` commands among a cell's leading command lines (as
    /// evcxr reads them); true when the settings changed.
    pub fn observe(&mut self, cell: &str) -> bool {
        let before = self.clone();
        // evcxr reads commands only before the cell's Rust code.
        let leading = &cell[..code_start(cell).unwrap_or(cell.len())];
        for line in leading.lines() {
            let Some(command) = line.trim_start_matches(' ').strip_prefix(':') else {
                continue; // a shell line, a comment or a blank line
            };
            let (name, args) = match command.split_once(' ') {
                Some((name, args)) => (name, Some(args.trim_start_matches(' '))),
                None => (command, None),
            };
            match name {
                "fmt" => self.format = args.unwrap_or("{:?}").to_owned(),
                "types" => self.types = !self.types,
                _ => {}
            }
        }
        *self != before
    }

    /// Whether the trait shows values (else evcxr does).
    pub fn active(&self) -> bool {
        self.debug_format() && !self.types
    }

    /// A format with one `Debug` placeholder, which every `Debug` value satisfies.
    fn debug_format(&self) -> bool {
        let open = self.format.matches('{').count();
        let close = self.format.matches('}').count();
        open == 1
            && close == 1
            && self
                .format
                .split_once('{')
                .and_then(|(_, rest)| rest.split_once('}'))
                .is_some_and(|(spec, _)| spec.starts_with(':') && spec.ends_with('?'))
    }
}

/// A cell as evcxr gets it: the trait's items inserted as a line of their own before the
/// cell's Rust code (where the session lacks them), and its last expression, if it ends in one,
/// borrowed: `&(expr)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    pub code: String,
    /// The line the items went in as; the user's lines from there on are one further down.
    items_line: Option<usize>,
    /// The line and column (1-based, in characters, of the rewrite) of the inserted `&(` and
    /// `)`.
    open: Option<((usize, usize), (usize, usize))>,
}

const OPEN: &str = "&(";

impl Rewrite {
    /// The rewrite of `cell`, or None where there is nothing to change (or no Rust code).
    pub fn of(cell: &str, items: Option<&str>, borrow: bool) -> Option<Rewrite> {
        let code_start = code_start(cell)?;
        let tail = if borrow {
            tail_expression(cell, code_start)
        } else {
            None
        };
        if items.is_none() && tail.is_none() {
            return None;
        }
        let mut code = String::with_capacity(cell.len() + 64);
        code.push_str(&cell[..code_start]);
        let items_line = items.map(|items| {
            code.push_str(items.trim_end_matches('\n'));
            code.push('\n');
            cell[..code_start].matches('\n').count() + 1
        });
        let open = tail.map(|(start, end)| {
            code.push_str(&cell[code_start..start]);
            let open = position(&code);
            code.push_str(OPEN);
            code.push_str(&cell[start..end]);
            let close = position(&code);
            code.push(')');
            (open, close)
        });
        let rest = tail.map_or(code_start, |(_, end)| end);
        code.push_str(&cell[rest..]);
        Some(Rewrite {
            code,
            items_line,
            open,
        })
    }

    /// Whether the trait's items are in it.
    pub fn has_items(&self) -> bool {
        self.items_line.is_some()
    }

    /// A (line, column) of the rewritten cell as a position in the cell the user wrote; a
    /// position on the inserted `&(` or `)` is the expression's start or end, one on the
    /// items line the start of the user's line there.
    pub fn original(&self, line: usize, column: usize) -> (usize, usize) {
        let mut column = column;
        if let Some(((open_line, open_column), (close_line, close_column))) = self.open {
            if line == close_line && column > close_column {
                column -= 1;
            }
            if line == open_line && column >= open_column {
                column = column.saturating_sub(OPEN.len()).max(open_column);
            }
        }
        match self.items_line {
            Some(items) if line == items => (line, 1),
            Some(items) if line > items => (line - 1, column),
            _ => (line, column),
        }
    }
}

/// The byte range of the cell's last expression, found as evcxr splits a cell into statements:
/// the code after the commands, parsed as a function body.
fn tail_expression(cell: &str, code_start: usize) -> Option<(usize, usize)> {
    let code = &cell[code_start..];
    let prelude = "fn f(){";
    let parsed = SourceFile::parse(&format!("{prelude}{code}\n}}"), Edition::Edition2024);
    let tail = parsed
        .tree()
        .syntax()
        .children()
        .next()
        .and_then(ast::Fn::cast)?
        .body()?
        .stmt_list()?
        .tail_expr()?;
    let range = tail.syntax().text_range();
    let start = code_start + usize::from(range.start()).checked_sub(prelude.len())?;
    let end = code_start + usize::from(range.end()).checked_sub(prelude.len())?;
    (start < end && end <= cell.len()).then_some((start, end))
}

/// The 1-based line and column at the end of `text`.
fn position(text: &str) -> (usize, usize) {
    let line = text.matches('\n').count() + 1;
    let column = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Where a cell's Rust code starts: after the leading commands, shell lines, comments and
/// blank lines, as evcxr reads them.
fn code_start(cell: &str) -> Option<usize> {
    let mut offset = 0;
    for line in cell.split_inclusive('\n') {
        let text = line.trim_end_matches(['\n', '\r']);
        let command = text.trim_start_matches(' ').starts_with(':');
        if !(text.starts_with('!') || text.starts_with("//") || text.trim().is_empty() || command) {
            return Some(offset);
        }
        offset += line.len();
    }
    None
}

/// Whether a compilation error names the trait's own items (so the trait, not the cell, is
/// at fault).
pub fn blamed(error: &rustmaker_jupyter::server::ExecutionError) -> bool {
    std::iter::once(&error.evalue)
        .chain(&error.traceback)
        .any(|text| text.contains(MODULE) || text.contains("RustmakerFinalValue"))
}

/// Completions that only the trait brings (its method on every value, its names).
pub fn hidden(completion: &str) -> bool {
    completion.starts_with("evcxr_display")
        || completion.starts_with("RustmakerFinalValue")
        || completion.starts_with(MODULE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_prelude_shows_debug_values_as_evcxr_does() {
        let prelude = FinalValue::default().prelude();
        assert!(prelude.contains("impl<T: ::std::fmt::Debug + ?Sized> RustmakerFinalValue for T"));
        assert!(prelude.contains("fn evcxr_display(&mut self)"));
        assert!(prelude.contains("let text = format!(\"{:?}\", self);"));
        assert!(prelude.ends_with("use __rustmaker_final_value::RustmakerFinalValue;\n"));
    }

    #[test]
    fn fmt_and_types_are_followed_from_the_leading_commands() {
        let mut v = FinalValue::default();
        assert!(
            !v.observe("let x = 1;\n:fmt {}"),
            "commands after code are not read"
        );
        assert!(v.observe("// pretty\n:fmt {:#?}\nx"));
        assert!(v.prelude().contains(r#"format!("{:#?}", self)"#));
        assert!(v.observe(":fmt"), "a bare :fmt is evcxr's default again");
        assert_eq!(v, FinalValue::default());
        assert!(v.observe("  :types"));
        assert!(
            !v.prelude().contains("impl<"),
            "with types shown evcxr writes the value"
        );
        assert!(v.observe(":types\n:types\n:types"));
        assert!(!v.types);
        assert!(!v.observe(":dep rand = \"0.8\"\n:vars"));
    }

    #[test]
    fn a_format_that_is_not_debug_steps_aside() {
        for (format, debug) in [
            ("{:?}", true),
            ("{:#?}", true),
            ("{:>12?}", true),
            ("{}", false),
            ("{:x}", false),
            ("{:?} and {:?}", false),
            ("", false),
        ] {
            let mut v = FinalValue::default();
            v.observe(&format!(":fmt {format}"));
            assert_eq!(v.prelude().contains("impl<"), debug, "{format:?}");
            assert!(
                v.prelude().contains("pub trait RustmakerFinalValue"),
                "{format:?}"
            );
        }
    }

    #[test]
    fn a_format_with_quotes_stays_one_string_literal() {
        let mut v = FinalValue::default();
        v.observe(":fmt \"{:?}\\");
        assert!(
            v.prelude().contains(r#"format!("\"{:?}\\", self)"#),
            "{}",
            v.prelude()
        );
    }

    #[test]
    fn a_final_expression_is_borrowed_and_anything_else_left_alone() {
        let b = |cell: &str| Rewrite::of(cell, None, true).map(|b| b.code);
        assert_eq!(b("1 + 1").as_deref(), Some("&(1 + 1)"));
        assert_eq!(
            b(":dep x = \"1\"\n// shown\nlet v = 2;\n  v.max(\n  3)\n").as_deref(),
            Some(":dep x = \"1\"\n// shown\nlet v = 2;\n  &(v.max(\n  3))\n")
        );
        assert_eq!(
            b("let a = [1u8; 2]; a").as_deref(),
            Some("let a = [1u8; 2]; &(a)")
        );
        assert_eq!(
            b("if true { 1 } else { 2 }").as_deref(),
            Some("&(if true { 1 } else { 2 })")
        );
        for cell in [
            "let v = 1;",
            "v;",
            "fn f() {}",
            ":vars",
            "// v",
            "",
            "struct S;",
        ] {
            assert_eq!(b(cell), None, "{cell:?}");
        }
        assert_eq!(Rewrite::of("1", None, false), None);
    }

    #[test]
    fn the_items_go_in_after_the_commands_as_a_line_of_their_own() {
        let items = FinalValue::default().prelude();
        assert_eq!(items.matches('\n').count(), 1, "one line");
        let r = Rewrite::of(":dep a = \"1\"\nlet v = 1;", Some(&items), true).unwrap();
        assert_eq!(r.code, format!(":dep a = \"1\"\n{items}let v = 1;"));
        assert!(r.has_items());
        assert_eq!(
            Rewrite::of(":vars", Some(&items), true),
            None,
            "commands alone: no code"
        );
        let r = Rewrite::of("x", Some(&items), true).unwrap();
        assert_eq!(r.code, format!("{items}&(x)"));
        assert_eq!(r.original(2, 3), (1, 1), "x");
        assert_eq!(r.original(2, 4), (1, 2), "after x");
        assert_eq!(r.original(1, 30), (1, 1), "the items' line");
    }

    #[test]
    fn positions_in_the_rewrite_map_back_to_the_users_cell() {
        let b = Rewrite::of("let a = 1;\n  a + nope", None, true).unwrap();
        assert_eq!(b.code, "let a = 1;\n  &(a + nope)");
        assert_eq!(b.original(1, 5), (1, 5), "lines before are untouched");
        assert_eq!(b.original(2, 1), (2, 1), "and the indentation before it");
        // `nope` is at column 9 of the rewrite, 7 of the user's line; its end likewise.
        assert_eq!(b.original(2, 9), (2, 7));
        assert_eq!(b.original(2, 13), (2, 11));
        // A span starting on the inserted `&(` starts where the expression does.
        assert_eq!(b.original(2, 3), (2, 3));
        assert_eq!(b.original(2, 4), (2, 3));
        assert_eq!(b.original(2, 5), (2, 3));
        // The whole `&(a + nope)` is the user's `a + nope`.
        assert_eq!(b.original(2, 14), (2, 11));
        let m = Rewrite::of("v.iter()\n  .max()", None, true).unwrap();
        assert_eq!(m.code, "&(v.iter()\n  .max())");
        assert_eq!(m.original(2, 3), (2, 3), "lines inside keep their columns");
        assert_eq!(m.original(2, 9), (2, 9), "the end of `.max()`");
        assert_eq!(m.original(2, 10), (2, 9), "after the `)`");
    }

    #[test]
    fn only_the_traits_own_completions_are_hidden() {
        assert!(hidden("evcxr_display()"));
        assert!(hidden("RustmakerFinalValue"));
        assert!(hidden("__rustmaker_final_value"));
        assert!(!hidden("evcxr"));
        assert!(!hidden("x"));
    }
}
