use std::path::PathBuf;

/// What went wrong between a Rust cell and the kernel's frames, and what to do about it.
#[derive(Debug)]
pub enum FrameError {
    /// The code does not run in a rustmaker kernel's Rust session.
    NoKernel,
    /// The kernel's socket did not answer.
    Unreachable {
        socket: PathBuf,
        source: std::io::Error,
    },
    /// The kernel refused the request (a missing frame, a bad name, a type it cannot convert).
    Kernel(String),
    /// A frame over the bridge's limit.
    TooLarge {
        name: String,
        bytes: u64,
        limit: u64,
    },
    /// A name the request line cannot carry.
    BadName(String),
    /// Columns of different lengths, or two of one name.
    Shape(String),
    /// A column whose type the bridge does not carry.
    Type { column: String, dtype: String },
    /// An exchange file could not be written or read.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// An exchange file that is not in the bridge's format.
    Format { path: PathBuf, reason: String },
    /// An answer the bridge does not understand (a kernel of another version).
    Protocol(String),
    #[cfg(feature = "polars")]
    Polars(polars::prelude::PolarsError),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::NoKernel => write!(
                f,
                "no rustmaker kernel to ask for frames ({} is not set): frames:: works in Rust cells of the \"Rust (rustmaker)\" kernel",
                crate::SOCKET_ENV
            ),
            FrameError::Unreachable { socket, source } => write!(
                f,
                "the kernel's frame bridge at {} did not answer ({source}); restart the kernel if it keeps failing",
                socket.display()
            ),
            FrameError::Kernel(message) => f.write_str(message),
            FrameError::TooLarge { name, bytes, limit } => write!(
                f,
                "the frame `{name}` is {} MB, over the bridge's limit of {} MB: pass fewer rows (`%%sql -o {name} -n N`, a filter), or raise {} in the kernel's environment",
                megabytes(*bytes),
                megabytes(*limit),
                crate::LIMIT_ENV
            ),
            FrameError::BadName(name) => write!(
                f,
                "`{}` is not a valid frame name: use letters, digits and `_`, not starting with a digit",
                name.escape_debug()
            ),
            FrameError::Shape(reason) => f.write_str(reason),
            FrameError::Type { column, dtype } => write!(
                f,
                "column `{column}` has type {dtype}, which the frame bridge does not carry (it carries floats, integers, booleans and text): cast it first"
            ),
            FrameError::Io { path, source } => {
                write!(f, "cannot use {}: {source}", path.display())
            }
            FrameError::Format { path, reason } => write!(
                f,
                "{} is not a frame in the bridge's format: {reason}",
                path.display()
            ),
            FrameError::Protocol(what) => write!(
                f,
                "the kernel answered what this bridge does not understand ({what}): the kernel and the rustmaker-frames crate differ in version"
            ),
            #[cfg(feature = "polars")]
            FrameError::Polars(e) => write!(f, "polars: {e}"),
        }
    }
}

/// Megabytes with up to three decimals, as a limit such as 0.05 was given.
fn megabytes(bytes: u64) -> String {
    let text = format!("{:.3}", bytes as f64 / 1e6);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

impl std::error::Error for FrameError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FrameError::Unreachable { source, .. } | FrameError::Io { source, .. } => Some(source),
            #[cfg(feature = "polars")]
            FrameError::Polars(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(feature = "polars")]
impl From<polars::prelude::PolarsError> for FrameError {
    fn from(e: polars::prelude::PolarsError) -> Self {
        FrameError::Polars(e)
    }
}
