//! What one engine offers another, as small traits the composition root wires (no engine
//! imports another): the Spark magics find an EMR cluster's master through the AWS magics'
//! settings, `%emr connect` points the Spark magics at a cluster, and the hosting engine
//! serves the training engine's models and has the monitor check their captured traffic.

use std::path::Path;
use std::sync::Arc;

use polars::prelude::DataFrame;

use crate::context::MagicError;

/// Finds an EMR cluster's master node (where Livy listens), with the AWS settings the user
/// chose (`%aws config`, else the standard AWS chain).
pub trait ClusterResolver: Send + Sync {
    /// The master node's DNS name or address.
    fn master_address(&self, cluster_id: &str) -> Result<String, MagicError>;
}

/// What a kernel without the AWS magics has: cluster ids are refused, saying why.
pub struct NoClusterResolver;

impl ClusterResolver for NoClusterResolver {
    fn master_address(&self, cluster_id: &str) -> Result<String, MagicError> {
        Err(MagicError::Service(format!(
            "cannot look up EMR cluster {cluster_id}: this kernel has no AWS magics; give Livy's URL instead"
        )))
    }
}

/// Points the Spark magics' default session at an endpoint (a URL, `j-…` or `local`).
pub trait SparkConnector: Send + Sync {
    /// What changed, for the user.
    fn use_endpoint(&self, endpoint: &str) -> Result<String, MagicError>;
}

/// A trained model loaded once to answer requests: what the hosting engine asks of the
/// training engine.
pub trait ServedModel: Send + Sync {
    /// The columns a request row holds, in the order a CSV row gives them.
    fn features(&self) -> &[String];
    /// The model's answer columns for each row of `rows` (the columns `%predict` adds:
    /// `predicted_label` and `probability`, `score`, or `closest_cluster` and
    /// `distance_to_cluster`). Rows that do not fit the model are a `MagicError::Data`.
    fn predict(&self, rows: &DataFrame) -> Result<DataFrame, MagicError>;
    /// The same answer for rows of numbers given row-major (`features().len()` values a row,
    /// `NaN` where one is missing), with no frame built: a batch of numeric rows is scored at
    /// the speed of its model rather than of its conversion. A model that needs more than
    /// numbers (a categorical feature) returns `None`, and the caller builds the frame.
    fn predict_numbers(&self, _values: &[f64]) -> Option<Result<DataFrame, MagicError>> {
        None
    }
    /// A model that reads and writes request bodies itself (script mode's `inference.py`)
    /// answers here with the body and its content type; a built-in model returns `None` and
    /// is served frame in, frame out through [`ServedModel::predict`].
    fn answer_bytes(
        &self,
        _body: &[u8],
        _content_type: &str,
        _accept: &str,
    ) -> Option<Result<(Vec<u8>, String), MagicError>> {
        None
    }
}

/// Loads a `model.tar.gz` for serving.
pub trait ModelLoader: Send + Sync {
    /// The `model.tar.gz` a `ModelDataUrl` names: by default a file, or a folder holding
    /// `model.tar.gz`; the training engine also knows its jobs' names.
    fn locate(&self, url: &str) -> Result<std::path::PathBuf, MagicError> {
        let path = Path::new(url);
        Ok(if path.is_dir() {
            path.join("model.tar.gz")
        } else {
            path.to_owned()
        })
    }
    fn load(&self, artifact: &Path) -> Result<Arc<dyn ServedModel>, MagicError>;
}

/// One monitoring execution's window: the captured traffic of the hours
/// `first_hour..=last_hour` (hours since 1970-01-01 00:00 UTC) under `capture`, checked against
/// the baseline's two files, with the reports written to `output`.
#[derive(Debug, Clone)]
pub struct MonitorWindow {
    pub capture: std::path::PathBuf,
    pub statistics: std::path::PathBuf,
    pub constraints: std::path::PathBuf,
    pub first_hour: i64,
    pub last_hour: i64,
    pub output: std::path::PathBuf,
}

/// What one execution found, in SageMaker's words (`Completed`, `CompletedWithViolations`,
/// `Failed` with its reason).
#[derive(Debug, Clone)]
pub struct MonitorRun {
    pub status: String,
    pub records: u64,
    pub violations: usize,
    pub failure_reason: Option<String>,
}

/// Checks captured traffic against a baseline: what the hosting engine's monitoring
/// schedules ask of the monitor.
pub trait CaptureMonitor: Send + Sync {
    fn check(&self, window: &MonitorWindow) -> Result<MonitorRun, MagicError>;
}
