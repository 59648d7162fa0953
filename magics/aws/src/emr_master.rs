//! EMR discovery for the Spark magics: a cluster id (`j-…`) to the address of its master
//! node, where Livy runs. Region, credentials and endpoint are the AWS magics' (`%aws config`,
//! else `AWS_REGION`, `AWS_ENDPOINT_URL`, profiles).

use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;
use aws_sdk_emr::types::InstanceGroupType;
use rustmaker_magics::long_work;
use rustmaker_magics::services::ClusterResolver;
use rustmaker_magics::MagicError;

use crate::client::Aws;

/// The Spark magics' cluster resolver: the AWS magics' settings (`%aws config` over the
/// standard chain), so `%emr connect` and `%spark add -u j-…` look where the user pointed.
pub struct ClusterLookup(pub(crate) Arc<Mutex<Aws>>);

impl ClusterResolver for ClusterLookup {
    fn master_address(&self, cluster_id: &str) -> Result<String, MagicError> {
        let config = {
            let mut aws = self.0.lock().unwrap_or_else(|p| p.into_inner());
            aws.sdk()?
        };
        long_work::runtime()
            .block_on(lookup(&config, cluster_id))
            .map_err(MagicError::Failed)
    }
}

async fn lookup(config: &SdkConfig, cluster_id: &str) -> Result<String, String> {
    if config.region().is_none() {
        return Err(format!(
            "cannot look up EMR cluster {cluster_id}: no AWS region is set (set AWS_REGION or a profile's region)"
        ));
    }
    let emr = aws_sdk_emr::Client::new(config);
    let described = emr
        .describe_cluster()
        .cluster_id(cluster_id)
        .send()
        .await
        .map_err(|e| {
            format!(
                "EMR DescribeCluster for {cluster_id} failed: {}",
                aws_sdk_emr::error::DisplayErrorContext(&e)
            )
        })?;
    let cluster = described
        .cluster()
        .ok_or_else(|| format!("EMR knows no cluster {cluster_id}"))?;
    let state = cluster
        .status()
        .and_then(|s| s.state())
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default();
    if matches!(
        state.as_str(),
        "TERMINATING" | "TERMINATED" | "TERMINATED_WITH_ERRORS"
    ) {
        return Err(format!(
            "EMR cluster {cluster_id} is {state}: start a new cluster and use its id"
        ));
    }
    if let Some(dns) = cluster.master_public_dns_name().filter(|d| !d.is_empty()) {
        return Ok(dns.to_owned());
    }
    let instances = emr
        .list_instances()
        .cluster_id(cluster_id)
        .instance_group_types(InstanceGroupType::Master)
        .send()
        .await
        .map_err(|e| {
            format!(
                "EMR ListInstances for {cluster_id} failed: {}",
                aws_sdk_emr::error::DisplayErrorContext(&e)
            )
        })?;
    instances
        .instances()
        .iter()
        .find_map(|i| {
            i.private_dns_name()
                .or(i.private_ip_address())
                .or(i.public_dns_name())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        })
        .ok_or_else(|| {
            format!("EMR cluster {cluster_id} ({state}) has no master node address yet; wait until it is WAITING or RUNNING")
        })
}
