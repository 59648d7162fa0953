//! The notebook side: `%train` / `%%train`, `%predict` and `%experiments`.
//!
//! - [`train`] holds `%train`, `%%train` and the job commands (list, describe, logs, stop);
//!   `live_job` is the live view of a running job;
//! - [`predict`] holds `%predict`;
//! - [`debugger`] holds `%debugger` (tensors, plot, rules of a job's Debugger output);
//! - [`experiments`] holds `%experiments` (list, show, leaderboard, compare, delete);
//! - `inputs` reads a data argument (frame, CSV, Parquet, s3://) into a DataFrame.

pub mod debugger;
pub mod experiments;
mod inputs;
pub use inputs::load as load_source;
mod live_job;
pub mod predict;
pub mod train;

use std::path::Path;

use rustmaker_magics::MagicError;

use crate::store::{self, Component, Status, Store};

pub(crate) use rustmaker_magics::failed;

pub use debugger::DebuggerMagic;
pub use experiments::ExperimentsMagic;
pub use predict::PredictMagic;
pub(crate) use train::job_kind;
pub use train::TrainMagic;

/// The notebook's name, which is the default experiment (Jupyter tells kernels it).
pub(crate) fn default_experiment() -> String {
    if let Ok(e) = std::env::var("RUSTMAKER_EXPERIMENT") {
        if !e.is_empty() {
            return e;
        }
    }
    std::env::var("JPY_SESSION_NAME")
        .ok()
        .and_then(|p| {
            Path::new(&p)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".into())
}

pub(crate) fn open_store() -> Result<Store, MagicError> {
    Store::open(&store::default_path()).map_err(MagicError::from)
}

/// What a stop request did: `it` names what the running kernel stops.
pub(crate) fn stop_message(name: &str, status: Status, it: &str) -> String {
    if status == Status::Stopping {
        format!("{name}: Stopping (the kernel running it stops {it} within a second)\n")
    } else {
        format!("{name}: already {}\n", status.as_str())
    }
}

fn param(c: &Component, name: &str) -> Option<String> {
    c.parameters
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

fn elapsed(c: &Component) -> Option<f64> {
    Some(c.end_time? - c.start_time?)
}

/// Where a training job's model artifact is (a local path or an `s3://` URI), if the job
/// completed; `%predict --model JOB` and endpoints serving `ModelDataUrl: JOB` both ask.
pub fn job_artifact(name: &str) -> Result<String, MagicError> {
    job_artifact_in(&open_store()?, name)
}

/// [`job_artifact`] in a store already open (a tuning job's many trials).
pub fn job_artifact_in(store: &Store, name: &str) -> Result<String, MagicError> {
    let c = component(store, name)?;
    if c.status != Status::Completed {
        return Err(failed(format!(
            "training job {} is {}, so it has no model",
            c.name,
            c.status.as_str()
        )));
    }
    c.outputs
        .iter()
        .find(|(k, _)| k == "SageMaker.ModelArtifact")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| failed(format!("training job {} has no model artifact", c.name)))
}

fn component(store: &Store, name: &str) -> Result<Component, MagicError> {
    store.component(name)?.ok_or_else(|| {
        failed(format!(
            "there is no training job `{name}` (`%train list` lists them)"
        ))
    })
}
