//! The kernel's input history, answering `history_request` (tail, range, search).

use jupyter_protocol::{HistoryEntry, HistoryRequest};

/// One executed cell: its number, its code and the text of its result.
struct Entry {
    line: usize,
    input: String,
    output: Option<String>,
}

/// One session's executed cells, numbered from 1 like IPython's.
pub struct History {
    session: usize,
    entries: Vec<Entry>,
}

impl History {
    pub fn new(session: usize) -> Self {
        History {
            session,
            entries: Vec::new(),
        }
    }

    pub fn record(&mut self, line: usize, input: &str, output: Option<String>) {
        self.entries.push(Entry {
            line,
            input: input.to_owned(),
            output,
        });
    }

    pub fn query(&self, request: &HistoryRequest) -> Vec<HistoryEntry> {
        let (selected, output): (Vec<&Entry>, bool) = match request {
            HistoryRequest::Tail { n, output, .. } => {
                let skip = self.entries.len().saturating_sub((*n).max(0) as usize);
                (self.entries.iter().skip(skip).collect(), *output)
            }
            HistoryRequest::Range {
                session,
                start,
                stop,
                output,
                ..
            } => {
                // Session numbers are relative when not positive (0 is this session).
                let session = session.unwrap_or(0);
                let wanted = if session <= 0 {
                    self.session as i32 + session
                } else {
                    session
                };
                let hits = if wanted == self.session as i32 {
                    self.entries
                        .iter()
                        .filter(|e| (e.line as i32) >= *start && (e.line as i32) < *stop)
                        .collect()
                } else {
                    Vec::new()
                };
                (hits, *output)
            }
            HistoryRequest::Search {
                pattern,
                unique,
                output,
                n,
                ..
            } => {
                let mut hits: Vec<_> = self
                    .entries
                    .iter()
                    .filter(|e| glob_match(pattern, &e.input))
                    .collect();
                if *unique {
                    let mut seen = std::collections::HashSet::new();
                    // Keep the latest occurrence of each input, in order.
                    let mut latest: Vec<_> = hits
                        .into_iter()
                        .rev()
                        .filter(|e| seen.insert(e.input.clone()))
                        .collect();
                    latest.reverse();
                    hits = latest;
                }
                let skip = hits.len().saturating_sub((*n).max(0) as usize);
                (hits.into_iter().skip(skip).collect(), *output)
            }
        };
        selected
            .into_iter()
            .map(|e| {
                if output {
                    HistoryEntry::InputOutput(
                        self.session,
                        e.line,
                        (e.input.clone(), e.output.clone().unwrap_or_default()),
                    )
                } else {
                    HistoryEntry::Input(self.session, e.line, e.input.clone())
                }
            })
            .collect()
    }
}

/// IPython's search patterns: `*` any run, `?` one character; the whole input must match.
fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("1 + *", "1 + 2"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "abbc"));
        assert!(!glob_match("1 + *", "x = 1 + 2"));
    }

    #[test]
    fn tail_range_search() {
        let mut h = History::new(1);
        h.record(1, "1 + 2", Some("3".into()));
        h.record(2, "let x = 1;", None);
        h.record(3, "1 + 2", Some("3".into()));
        let tail = h.query(&HistoryRequest::Tail {
            output: true,
            raw: true,
            n: 2,
        });
        assert_eq!(tail.len(), 2);
        assert!(
            matches!(&tail[1], HistoryEntry::InputOutput(1, 3, (i, o)) if i == "1 + 2" && o == "3")
        );
        let range = h.query(&HistoryRequest::Range {
            session: Some(0),
            start: 2,
            stop: 3,
            output: false,
            raw: true,
        });
        assert!(matches!(&range[..], [HistoryEntry::Input(1, 2, _)]));
        let search = |unique, n| {
            h.query(&HistoryRequest::Search {
                pattern: "1 +*".into(),
                unique,
                output: false,
                raw: true,
                n,
            })
        };
        assert_eq!(search(false, 10).len(), 2);
        assert_eq!(search(true, 10).len(), 1);
        assert_eq!(search(false, 1).len(), 1);
    }
}
