//! rustmaker-autopilot: AutoML as SageMaker Autopilot runs it, on this project's training
//! engine.
//!
//! A job reads a table and a target column, analyses the table ([`analysis`]: column types,
//! missing values, cardinality, the problem type with its reason, imbalance, duplicates,
//! constant and identifier-like columns, leakage suspects), and takes its settings from
//! `%autopilot`'s flags or CreateAutoMLJob's request ([`request`], with SageMaker's objectives
//! and defaults from [`objective`], each computed from predictions by [`scoring`]). [`exploration`] writes the data-exploration notebook
//! from an analysis, as an nbformat 4.5 document for this kernel ([`notebook`]).

pub mod analysis;
pub mod candidates;
pub mod charts;
pub mod definition_notebook;
pub mod ensemble;
pub mod exploration;
pub mod job;
pub mod magic;
pub mod notebook;
pub mod objective;
pub mod record;
pub mod request;
pub mod scoring;
pub mod split;

/// What went wrong, naming the column or field and what to do.
#[derive(Debug, thiserror::Error)]
pub enum AutopilotError {
    #[error("the table has no rows: give a table with a header and at least two rows")]
    EmptyTable,
    #[error("the target column `{column}` is not in the table{}; its columns are: {}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default(), columns.join(", "))]
    MissingTarget {
        column: String,
        suggestion: Option<String>,
        columns: Vec<String>,
    },
    #[error("the table holds only the target `{0}`: Autopilot needs at least one feature column")]
    OnlyTarget(String),
    #[error("the target `{column}` {why}: nothing can be learned from it; choose another target")]
    UnusableTarget { column: String, why: String },
    #[error("class `{class}` of the target `{column}` has a single row: a class needs at least two (one to train on, one to validate), so drop that row or merge the class")]
    SingleRowClass { column: String, class: String },
    #[error("every feature column is free text ({}): Autopilot needs a numeric or categorical column beside them", .0.join(", "))]
    OnlyText(Vec<String>),
    #[error("{metric} does not fit a {problem} problem: use one of {}", allowed.join(", "))]
    Objective {
        metric: String,
        problem: String,
        allowed: Vec<String>,
    },
    /// A field or flag of the request.
    #[error("{field}: {message}")]
    Request { field: String, message: String },
    #[error("reading {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not an Autopilot job record ({message}); move it aside and run the job again"
    )]
    Corrupt {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("there is no Autopilot job `{0}` (`%autopilot list` lists them)")]
    NoJob(String),
    #[error(
        "an Autopilot job `{0}` exists already (SageMaker keeps a job's name): choose another name"
    )]
    JobExists(String),
    #[error(transparent)]
    Ml(#[from] rustmaker_ml::MlError),
}

/// A refusal of the data or the request is the user's to fix; a file that cannot be written
/// is the work failing.
impl From<AutopilotError> for rustmaker_magics::MagicError {
    fn from(e: AutopilotError) -> rustmaker_magics::MagicError {
        use rustmaker_magics::MagicError;
        match e {
            AutopilotError::Io { .. } | AutopilotError::Corrupt { .. } => {
                MagicError::Failed(e.to_string())
            }
            AutopilotError::Ml(ml) => ml.into(),
            other => MagicError::Data(other.to_string()),
        }
    }
}

impl AutopilotError {
    pub(crate) fn request(field: &str, message: impl Into<String>) -> AutopilotError {
        AutopilotError::Request {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}
