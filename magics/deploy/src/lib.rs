//! Model hosting as SageMaker hosts a model behind an endpoint: the payloads
//! `InvokeEndpoint` carries and the answers it returns ([`payload`]), production variants
//! chosen by weight or by name ([`variants`]), and every sampled request and response kept
//! as SageMaker's data-capture records in its folder layout ([`capture`]), which the model
//! monitor reads. An [`endpoint::Endpoint`] puts them together for one endpoint's traffic;
//! [`transform`] runs a model over files as a batch transform job does; [`hosting`] is the
//! control plane (models, endpoint configurations, endpoints) that `rustmaker serve` fronts,
//! and [`schedules`] its monitoring schedules, which have the monitor check captured traffic.
//! [`magic`] holds the notebook's side: `%deploy`, `%endpoint`, `%%invoke`, `%transform` and
//! `%monitor schedule`, clients of that service.
//!
//! The models themselves come from the training engine through
//! `rustmaker_magics::services::ModelLoader`, wired by the composition root: this crate
//! knows frames in and frames out, not algorithms.

pub mod capture;
pub mod endpoint;
pub mod hosting;
pub mod job_definitions;
pub mod magic;
pub mod payload;
pub mod schedules;
pub mod spool;
pub mod transform;
pub mod variants;

use std::path::PathBuf;

/// What went wrong, said so that the caller knows what to change. The runtime maps these to
/// SageMaker's error codes (`ValidationError`, `ModelError`).
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The request's content type or accept type is not one the model serves.
    #[error(
        "unsupported {what} `{given}`: send text/csv, application/json or application/jsonlines"
    )]
    ContentType { what: &'static str, given: String },
    /// A payload that does not parse, or a row that does not fit the model.
    #[error("{0}")]
    Payload(String),
    /// A row of the payload (1-based) that does not fit the model.
    #[error("row {row}: {message}")]
    Row { row: usize, message: String },
    /// A configuration that cannot be served (weights, sampling, names).
    #[error("{0}")]
    Config(String),
    /// A variant that the endpoint does not have.
    #[error("the endpoint has no variant `{given}`; its variants are {known}")]
    UnknownVariant { given: String, known: String },
    #[error("the transform job was stopped")]
    Stopped,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl DeployError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> DeployError {
        DeployError::Io {
            path: path.into(),
            source,
        }
    }
}
