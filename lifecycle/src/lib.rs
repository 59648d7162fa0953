//! rustmaker-lifecycle: lifecycle configurations and notebook-instance states with SageMaker's
//! semantics.
//!
//! [`config`] holds a lifecycle configuration (OnCreate and OnStart scripts, base64 in the API,
//! at most 16,384 characters each); [`hooks`] runs one script with a time limit, killing its
//! process tree when it fails or runs over, and writes its output to a log stream
//! ([`logs`], one per instance and hook, as SageMaker names them); [`state`] is the instance
//! state machine.

pub mod api;
pub mod backend;
pub mod cli;
pub mod client;
pub mod config;
pub mod hooks;
pub mod instance;
pub mod logs;
pub mod manager;
pub mod sigv4;
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
    #[error("{0}")]
    Io(String),
}
