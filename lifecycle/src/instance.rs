//! A notebook instance as the service keeps it: SageMaker's DescribeNotebookInstance fields,
//! and what the host needs to run it (its port, Jupyter token, process, and its own
//! credentials for calling the API about itself).

use serde::{Deserialize, Serialize};

use crate::state::InstanceStatus;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub name: String,
    pub arn: String,
    pub status: InstanceStatus,
    pub failure_reason: Option<String>,
    pub instance_type: String,
    pub role_arn: String,
    pub lifecycle_config: Option<String>,
    pub volume_size_gb: u64,
    pub default_code_repository: Option<String>,
    pub additional_code_repositories: Vec<String>,
    pub root_access: String,
    pub direct_internet_access: String,
    pub platform_identifier: String,
    pub creation_time: f64,
    pub last_modified_time: f64,
    /// The Jupyter server of the running instance.
    pub port: Option<u16>,
    pub pid: Option<u32>,
    pub jupyter_token: String,
    /// The instance's own access key (its "role"): it may describe and stop itself.
    pub access_key: String,
    pub secret_key: String,
    /// What the volume quota could not enforce, if anything.
    pub volume_note: Option<String>,
    /// The tags given at creation.
    pub tags: Vec<(String, String)>,
}

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "000000000000";

pub fn arn(name: &str) -> String {
    format!(
        "arn:aws:sagemaker:{REGION}:{ACCOUNT}:notebook-instance/{}",
        name.to_ascii_lowercase()
    )
}

pub fn config_arn(name: &str) -> String {
    format!(
        "arn:aws:sagemaker:{REGION}:{ACCOUNT}:notebook-instance-lifecycle-config/{}",
        name.to_ascii_lowercase()
    )
}
