//! rustmaker-lifecycle: lifecycle configurations and notebook-instance states with SageMaker's
//! semantics.
//!
//! [`config`] holds a lifecycle configuration (OnCreate and OnStart scripts, base64 in the API,
//! at most 16,384 characters each); [`hooks`] runs one script with a time limit, killing its
//! process tree when it fails or runs over, and writes its output to a log stream
//! ([`logs`], one per instance and hook, as SageMaker names them); [`state`] is the instance
//! state machine; [`backend`] says where instances run, and [`boot`] is the boot step of an
//! instance started from the notebook-instance image.

pub mod api;
pub mod backend;
pub mod boot;
pub mod cli;
pub mod config;
pub mod hooks;
pub mod instance;
pub mod logs;
pub mod manager;
pub mod state;
pub mod store;

/// What went wrong, in words for the operator.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// A request's field is wrong (SageMaker's ValidationException).
    #[error("{0}")]
    Validation(String),
    /// An operation not allowed in the instance's current state.
    #[error("{0}")]
    State(String),
    /// A file, folder or process of the service could not be made or read.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The state database failed (the store names the table it was reading).
    #[error("instance state: {0}")]
    Store(#[from] rusqlite::Error),
    /// A record in the state database is not what this version writes.
    #[error("instance state: {0}")]
    Record(#[from] serde_json::Error),
    /// The notebook server started but did not serve; the message names its log.
    #[error("{0}")]
    Server(String),
    /// An instance's own boot step failed (a lifecycle hook, inside the instance); the message
    /// names the hook and its log stream.
    #[error("{0}")]
    Boot(String),
}

impl LifecycleError {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LifecycleError {
        let what = what.into();
        move |source| LifecycleError::Io { what, source }
    }
}

/// Signature Version 4 and the service's client live with SageMaker's shared vocabulary, where
/// the magics that call the service find them too.
pub use rustmaker_sagemaker::{client, sigv4};
