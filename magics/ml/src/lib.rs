//! rustmaker-ml: training jobs the way SageMaker runs them, locally.
//!
//! A job prepares its data ([`prep`]), fits a built-in algorithm ([`algorithms`]) or runs a
//! user's training script in a SageMaker-shaped job directory ([`job`]), and leaves a
//! `model.tar.gz` ([`artifact`]). Every job is a trial component in the experiment store
//! ([`store`], SQLite), which the leaderboard and comparisons read. [`magic`] holds the
//! notebook side: `%train`, `%predict` and `%experiments`.

pub mod algorithms;
pub mod artifact;
pub mod datetime;
pub mod debugger;
pub mod definition;
pub mod job;
pub mod magic;
pub mod metrics;
pub mod prep;
pub mod render;
pub mod serving;
pub mod store;
pub mod tfidf;
pub mod tune;

/// What went wrong in training or prediction, in words for the notebook.
#[derive(Debug, thiserror::Error)]
pub enum MlError {
    /// The data or the options given.
    #[error("{0}")]
    Input(String),
    /// Data that does not fit a model's feature schema.
    #[error("{0}")]
    Schema(String),
    /// The algorithm failed on data that passed the checks.
    #[error("{0}")]
    Training(String),
    #[error("the job was stopped")]
    Stopped,
    #[error("{0}")]
    Store(String),
}
