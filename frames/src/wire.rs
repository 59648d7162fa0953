//! The request and answer lines on the kernel's socket, one exchange per connection. A frame
//! itself never travels on the socket: it is a file in the session folder, named here.

use std::path::PathBuf;

use crate::FrameError;

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Write the frame to a file and name it.
    Get { name: String },
    /// Read the frame from `path` into the store as `name`.
    Put { name: String, path: PathBuf },
    /// Name every frame with its shape.
    List,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    File(PathBuf),
    Stored,
    Frames(Vec<(String, usize, usize)>),
}

/// Names travel last on their line, so only line breaks and tabs cannot be carried; the
/// kernel checks the rest of what makes a frame name.
pub fn check_name(name: &str) -> Result<(), FrameError> {
    carried(name).map(|_| ())
}

fn carried(name: &str) -> Result<&str, FrameError> {
    if name.is_empty() || name.contains(['\n', '\r', '\t']) {
        return Err(FrameError::BadName(name.to_owned()));
    }
    Ok(name)
}

impl Request {
    /// The request line, ending in a line break.
    pub fn line(&self) -> String {
        match self {
            Request::Get { name } => format!("GET {name}\n"),
            Request::Put { name, path } => format!("PUT {}\t{name}\n", path.display()),
            Request::List => "LIST\n".into(),
        }
    }

    pub fn parse(line: &str) -> Result<Request, FrameError> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let bad = || FrameError::Protocol(format!("a request `{}`", line.escape_debug()));
        match line.split_once(' ') {
            Some(("GET", name)) => Ok(Request::Get {
                name: carried(name)?.to_owned(),
            }),
            Some(("PUT", rest)) => {
                let (path, name) = rest.split_once('\t').ok_or_else(bad)?;
                Ok(Request::Put {
                    name: carried(name)?.to_owned(),
                    path: PathBuf::from(path),
                })
            }
            None if line == "LIST" => Ok(Request::List),
            _ => Err(bad()),
        }
    }

    /// Checks that the request can be sent.
    pub fn check(&self) -> Result<(), FrameError> {
        match self {
            Request::Get { name } | Request::Put { name, .. } => carried(name).map(|_| ()),
            Request::List => Ok(()),
        }
    }
}

impl Reply {
    pub fn line(&self) -> String {
        match self {
            Reply::File(path) => format!("FILE {}\n", path.display()),
            Reply::Stored => "STORED\n".into(),
            Reply::Frames(frames) => {
                let listed: Vec<String> = frames
                    .iter()
                    .map(|(name, rows, cols)| format!("{rows} {cols} {name}"))
                    .collect();
                format!("FRAMES {}\n", listed.join("\t"))
            }
        }
    }

    /// The line of a refusal: the message on one line.
    pub fn error_line(message: &str) -> String {
        format!("ERR {}\n", message.replace(['\n', '\r'], " "))
    }

    /// The answer, or the kernel's refusal as [`FrameError::Kernel`].
    pub fn parse(line: &str) -> Result<Reply, FrameError> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let bad = || FrameError::Protocol(format!("an answer `{}`", line.escape_debug()));
        if line == "STORED" {
            return Ok(Reply::Stored);
        }
        match line.split_once(' ') {
            Some(("ERR", message)) => Err(FrameError::Kernel(message.to_owned())),
            Some(("FILE", path)) => Ok(Reply::File(PathBuf::from(path))),
            Some(("FRAMES", "")) => Ok(Reply::Frames(Vec::new())),
            Some(("FRAMES", listed)) => listed
                .split('\t')
                .map(|entry| {
                    let mut parts = entry.splitn(3, ' ');
                    let rows = parts.next().and_then(|r| r.parse().ok());
                    let cols = parts.next().and_then(|c| c.parse().ok());
                    match (rows, cols, parts.next()) {
                        (Some(rows), Some(cols), Some(name)) => Ok((name.to_owned(), rows, cols)),
                        _ => Err(bad()),
                    }
                })
                .collect::<Result<_, _>>()
                .map(Reply::Frames),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_round_trip() {
        for r in [
            Request::Get {
                name: "counts".into(),
            },
            Request::Put {
                name: "scored".into(),
                path: "/tmp/a b/in-1-0.cols".into(),
            },
            Request::List,
        ] {
            assert_eq!(Request::parse(&r.line()).unwrap(), r);
        }
        for r in [
            Reply::File("/tmp/x.cols".into()),
            Reply::Stored,
            Reply::Frames(vec![]),
            Reply::Frames(vec![("a".into(), 3, 2), ("b".into(), 0, 1)]),
        ] {
            assert_eq!(Reply::parse(&r.line()).unwrap(), r);
        }
    }

    #[test]
    fn refusals_and_garbage_say_what_they_are() {
        let e = Reply::parse(&Reply::error_line("no frame named `x`\n(frames: a)")).unwrap_err();
        assert_eq!(e.to_string(), "no frame named `x` (frames: a)");
        assert!(matches!(
            Reply::parse("HELLO"),
            Err(FrameError::Protocol(_))
        ));
        assert!(matches!(
            Request::parse("DROP x"),
            Err(FrameError::Protocol(_))
        ));
        assert!(matches!(
            Request::parse("GET a\tb"),
            Err(FrameError::BadName(_))
        ));
        assert!(matches!(
            Request::parse("PUT /no-name"),
            Err(FrameError::Protocol(_))
        ));
        assert!(Request::Get {
            name: "a\nb".into()
        }
        .check()
        .is_err());
    }
}
