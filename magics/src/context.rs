//! What a magic may do to the notebook while it runs, and how it fails.

use serde_json::{Map, Value};

use crate::frames::FrameStore;

/// A Jupyter MIME bundle: MIME type → data, as sent in `display_data` and `execute_result`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MimeBundle(pub Map<String, Value>);

impl MimeBundle {
    /// A bundle with only `text/plain`, which every front end can show.
    pub fn text(text: impl Into<String>) -> Self {
        MimeBundle::default().with("text/plain", Value::String(text.into()))
    }

    /// Adds (or replaces) one representation.
    pub fn with(mut self, mime: &str, data: Value) -> Self {
        self.0.insert(mime.to_owned(), data);
        self
    }
}

/// The notebook as a magic sees it. The kernel implements this; magics never touch sockets.
pub trait MagicContext {
    /// Appends text to the cell's stdout stream.
    fn stdout(&mut self, text: &str);
    /// Appends text to the cell's stderr stream.
    fn stderr(&mut self, text: &str);
    /// Publishes a rich display; with a `display_id` it can later be replaced by
    /// [`MagicContext::update_display`] (live progress).
    fn display(&mut self, data: MimeBundle, display_id: Option<&str>);
    /// Replaces a display published earlier with the same `display_id`.
    fn update_display(&mut self, data: MimeBundle, display_id: &str);
    /// Clears the cell's output; with `wait` the front end clears when the next output arrives.
    fn clear_output(&mut self, wait: bool);
    /// Shows longer text (help) in the front end's pager; front ends without one print it.
    fn page(&mut self, text: &str) {
        self.stdout(text);
    }
    /// True once the user asked to interrupt the cell; long-running magics poll this and stop.
    fn is_interrupted(&self) -> bool;
    /// Asks the user for a line of input through the front end (Jupyter's stdin channel).
    fn input(&mut self, prompt: &str, password: bool) -> Result<String, MagicError>;
    /// The kernel's named DataFrames.
    fn frames(&mut self) -> &mut FrameStore;
    /// The `Display` text of a Rust expression evaluated in the kernel's Rust session
    /// (`%%send_to_spark -i VAR -t str`).
    fn rust_value(&mut self, expr: &str) -> Result<String, MagicError> {
        Err(MagicError::Failed(format!(
            "cannot read the Rust value `{expr}` here: this front end has no Rust session"
        )))
    }
}

/// Why a magic failed. The message is shown to the user as is, so it says what to do.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MagicError {
    /// The magic was called wrongly: bad options, missing arguments, a body where none is allowed.
    #[error("{magic}: {message}")]
    Usage { magic: String, message: String },
    /// No magic of that name is registered.
    #[error("{}", unknown_message(.name, .suggestion.as_deref()))]
    Unknown {
        name: String,
        suggestion: Option<String>,
    },
    /// The data given is wrong: a malformed CSV, a missing frame or column, a value of the
    /// wrong type. The user fixes the data, not the call.
    #[error("{0}")]
    Data(String),
    /// A service the magic called (S3, Glue, EMR, Livy, an endpoint) refused the request or
    /// could not be reached; the message names the service and the setting to check.
    #[error("{0}")]
    Service(String),
    /// Work that ran here failed (a training job, a file that could not be written); the
    /// message names the cause.
    #[error("{0}")]
    Failed(String),
    /// Code the magic ran elsewhere (a Spark statement, a Glue job) raised an error; shown
    /// with the remote error's own name, message and traceback.
    #[error("{ename}: {evalue}")]
    Remote {
        ename: String,
        evalue: String,
        traceback: Vec<String>,
    },
    /// The user interrupted the magic; the message says what was stopped and what was kept
    /// (made by [`crate::long_work::interrupted`]).
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// Input was requested but the front end does not accept input for this cell.
    #[error("this front end does not support input requests (allow_stdin is false)")]
    StdinNotAllowed,
}

impl MagicError {
    /// The `ename` a Jupyter front end shows for this error, in IPython's vocabulary.
    pub fn ename(&self) -> &'static str {
        match self {
            MagicError::Usage { .. } | MagicError::Unknown { .. } => "UsageError",
            MagicError::Data(_) => "DataError",
            MagicError::Service(_) => "ServiceError",
            MagicError::Failed(_) => "ExecutionError",
            MagicError::Remote { .. } => "RemoteError",
            MagicError::Interrupted(_) => "KeyboardInterrupt",
            MagicError::StdinNotAllowed => "StdinNotImplementedError",
        }
    }

    pub fn usage(magic: &str, message: impl Into<String>) -> Self {
        MagicError::Usage {
            magic: format!("%{magic}"),
            message: message.into(),
        }
    }
}

/// A [`MagicError::Failed`] with `e`'s message: the work failed, and the message says why
/// and what to do.
pub fn failed(e: impl std::fmt::Display) -> MagicError {
    MagicError::Failed(e.to_string())
}

/// A [`MagicError::Data`]: the data given is wrong, and the message says how.
pub fn data_error(e: impl std::fmt::Display) -> MagicError {
    MagicError::Data(e.to_string())
}

/// A [`MagicError::Service`]: a service failed or could not be reached.
pub fn service_error(e: impl std::fmt::Display) -> MagicError {
    MagicError::Service(e.to_string())
}

fn unknown_message(name: &str, suggestion: Option<&str>) -> String {
    match suggestion {
        Some(s) => {
            format!("unknown magic `%{name}`; did you mean `%{s}`? (`%lsmagic` lists all magics)")
        }
        None => format!("unknown magic `%{name}`; `%lsmagic` lists all magics"),
    }
}
