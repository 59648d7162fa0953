//! Whether a Rust cell is complete, for consoles that decide between "run" and "new line".
//!
//! A lexical scan is enough: brackets must balance and strings and comments must be closed.
//! A closing bracket with no opener (or the wrong one) cannot be fixed by typing more: invalid.

#[derive(Debug, PartialEq, Eq)]
pub enum Completeness {
    Complete,
    /// Needs more input; the indent a console should offer for the next line.
    Incomplete(String),
    Invalid,
}

pub fn rust_completeness(code: &str) -> Completeness {
    let chars: Vec<char> = code.chars().collect();
    let mut stack: Vec<char> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '/' if next == Some('/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == Some('*') => {
                let mut depth = 1;
                i += 2;
                while depth > 0 {
                    match (chars.get(i), chars.get(i + 1)) {
                        (None, _) => return Completeness::Incomplete(indent(stack.len())),
                        (Some('*'), Some('/')) => {
                            depth -= 1;
                            i += 1;
                        }
                        (Some('/'), Some('*')) => {
                            depth += 1;
                            i += 1;
                        }
                        _ => {}
                    }
                    i += 1;
                }
                continue;
            }
            'r' if raw_string_start(&chars, i).is_some() && !ident_before(&chars, i) => {
                let hashes = raw_string_start(&chars, i).unwrap_or(0);
                i += 2 + hashes;
                let closing: String = std::iter::once('"')
                    .chain(std::iter::repeat_n('#', hashes))
                    .collect();
                let rest: String = chars[i..].iter().collect();
                match rest.find(&closing) {
                    Some(end) => i += rest[..end].chars().count() + closing.chars().count(),
                    None => return Completeness::Incomplete(String::new()),
                }
                continue;
            }
            '"' => {
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Completeness::Incomplete(String::new()),
                        Some('\\') => i += 2,
                        Some('"') => break,
                        _ => i += 1,
                    }
                }
            }
            '\'' => {
                // A char literal ('a', '\n', '\u{1F600}') or a lifetime ('a) — only the first closes.
                if next == Some('\\') {
                    if let Some(end) = chars[i + 2..].iter().position(|c| *c == '\'') {
                        i += 2 + end;
                    }
                } else if chars.get(i + 2) == Some(&'\'') {
                    i += 2;
                }
            }
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let open = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(open) {
                    return Completeness::Invalid;
                }
            }
            _ => {}
        }
        i += 1;
    }
    if stack.is_empty() {
        Completeness::Complete
    } else {
        Completeness::Incomplete(indent(stack.len()))
    }
}

fn indent(depth: usize) -> String {
    "    ".repeat(depth)
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// `r"…"` or `r#"…"#`: the number of `#`s.
fn raw_string_start(chars: &[char], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    (chars.get(j) == Some(&'"')).then_some(j - i - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Completeness::*;

    #[test]
    fn complete_cells() {
        for code in [
            "let x = 1;",
            "fn f() { println!(\"{{\"); }",
            "let s = r#\"a \" { b\"#;",
            "let c = '{'; let l: &'static str = \"x\";",
            "// { not code\nlet y = 2;",
            "/* { /* nested */ */ 1",
            "",
        ] {
            assert_eq!(rust_completeness(code), Complete, "{code:?}");
        }
    }

    #[test]
    fn incomplete_cells() {
        assert_eq!(rust_completeness("fn f() {"), Incomplete("    ".into()));
        assert_eq!(
            rust_completeness("let v = vec![(1,"),
            Incomplete("        ".into())
        );
        assert!(matches!(rust_completeness("let s = \"open"), Incomplete(_)));
        assert!(matches!(rust_completeness("/* open"), Incomplete(_)));
        assert!(matches!(
            rust_completeness("let r = r#\"open"),
            Incomplete(_)
        ));
    }

    #[test]
    fn invalid_cells() {
        assert_eq!(rust_completeness("}"), Invalid);
        assert_eq!(rust_completeness("let x = (1];"), Invalid);
    }
}
