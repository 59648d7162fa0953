//! What one engine offers another, as small traits the composition root wires (no engine
//! imports another): the Spark magics find an EMR cluster's master through the AWS magics'
//! settings, `%emr connect` points the Spark magics at a cluster, and the hosting engine
//! serves the training engine's models.

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
}

/// Loads a `model.tar.gz` for serving.
pub trait ModelLoader: Send + Sync {
    fn load(&self, artifact: &Path) -> Result<Arc<dyn ServedModel>, MagicError>;
}
