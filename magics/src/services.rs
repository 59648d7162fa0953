//! What one engine offers another, as small traits the composition root wires (no engine
//! imports another): the Spark magics find an EMR cluster's master through the AWS magics'
//! settings, and `%emr connect` points the Spark magics at a cluster.

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
