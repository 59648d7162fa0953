//! Turning an [`EndpointSpec`] into a Livy URL: the embedded local server (found running, or
//! started on first use) or an EMR cluster's master node (found through the EMR API).

use rustmaker_magics::services::ClusterResolver;
use rustmaker_magics::MagicError;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::EndpointSpec;
use crate::livy::{Auth, Endpoint, LivyClient, RetryPolicy};

/// Livy's port on EMR's master node.
pub const EMR_LIVY_PORT: u16 = 8998;

/// What a running local server writes so that kernels can find it (mode 0600: it holds the
/// server's password).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocalServerInfo {
    pub url: String,
    pub user: String,
    pub password: String,
    pub pid: u32,
}

/// `$RUSTMAKER_HOME`, else `~/.rustmaker`: the local server's state and log.
pub fn state_dir() -> PathBuf {
    std::env::var_os("RUSTMAKER_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".rustmaker")))
        .unwrap_or_else(|| std::env::temp_dir().join("rustmaker"))
}

pub fn local_state_file() -> PathBuf {
    state_dir().join("livy-server.json")
}

/// Writes the state file readable by its owner only.
pub fn write_local_state(path: &Path, info: &LocalServerInfo) -> std::io::Result<()> {
    rustmaker_process::write_atomic(path, serde_json::to_string(info)?.as_bytes(), Some(0o600))
}

/// Why no Livy endpoint could be had; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The EMR lookup failed (its message names the cluster and the AWS call).
    #[error("{0}")]
    Cluster(#[source] MagicError),
    /// A file or process of the local server could not be made.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The local server started but did not come up.
    #[error("{reason}; see {}", .log.display())]
    LocalServer { reason: String, log: PathBuf },
}

/// The EMR lookup's own error reaches the notebook as it is; the local server failing is the
/// work failing.
impl From<EndpointError> for MagicError {
    fn from(e: EndpointError) -> MagicError {
        match e {
            EndpointError::Cluster(inner) => inner,
            EndpointError::Io { .. } | EndpointError::LocalServer { .. } => {
                rustmaker_magics::failed(e)
            }
        }
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> EndpointError {
    let what = what.into();
    move |source| EndpointError::Io { what, source }
}

/// The Livy endpoint for `spec`; an EMR cluster's master is found by `clusters`.
pub fn resolve(
    spec: &EndpointSpec,
    clusters: &dyn ClusterResolver,
) -> Result<Endpoint, EndpointError> {
    match spec {
        EndpointSpec::Url(url, auth) => Ok(Endpoint::new(url, auth.clone())),
        EndpointSpec::Emr(cluster, auth) => {
            let host = clusters
                .master_address(cluster)
                .map_err(EndpointError::Cluster)?;
            Ok(Endpoint::new(
                &format!("http://{host}:{EMR_LIVY_PORT}"),
                auth.clone(),
            ))
        }
        EndpointSpec::Local => local_endpoint(),
    }
}

fn answers(endpoint: &Endpoint) -> bool {
    let quick = RetryPolicy {
        retries: 0,
        delay: Duration::ZERO,
        request_timeout: Duration::from_secs(3),
    };
    LivyClient::new(endpoint.clone(), quick)
        .and_then(|c| c.list_sessions())
        .is_ok()
}

fn read_state(path: &Path) -> Option<Endpoint> {
    let info: LocalServerInfo = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    Some(Endpoint::new(
        &info.url,
        Auth::Basic {
            user: info.user,
            password: info.password,
        },
    ))
}

/// The local server this user runs, started now if none answers.
fn local_endpoint() -> Result<Endpoint, EndpointError> {
    let state = local_state_file();
    if let Some(endpoint) = read_state(&state).filter(answers) {
        return Ok(endpoint);
    }
    let _ = std::fs::remove_file(&state);
    let exe = std::env::current_exe().map_err(io(
        "cannot find the rustmaker binary to start the local Livy server",
    ))?;
    let dir = state_dir();
    std::fs::create_dir_all(&dir).map_err(io(format!("cannot create {}", dir.display())))?;
    let log_path = dir.join("livy-server.log");
    let log = std::fs::File::create(&log_path)
        .map_err(io(format!("cannot write {}", log_path.display())))?;
    let password = uuid::Uuid::new_v4().simple().to_string();
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(exe)
        .args(["livy", "serve", "--host", "127.0.0.1", "--port", "0"])
        .args(["--exit-when-idle", "3600", "--state-file"])
        .arg(&state)
        .env(
            "RUSTMAKER_LIVY_CREDENTIALS",
            format!("rustmaker:{password}"),
        )
        .stdin(Stdio::null())
        .stdout(
            log.try_clone()
                .map_err(io(format!("cannot write {}", log_path.display())))?,
        )
        .stderr(log)
        // Outlives this kernel (other kernels share it) and ignores the kernel's SIGINT.
        .process_group(0)
        .spawn()
        .map_err(io("cannot start the local Livy server"))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(EndpointError::LocalServer {
                reason: format!("the local Livy server exited at start ({status})"),
                log: log_path,
            });
        }
        if let Some(endpoint) = read_state(&state).filter(answers) {
            // Reap it in the background if it ever exits while we run.
            std::thread::spawn(move || child.wait());
            return Ok(endpoint);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    Err(EndpointError::LocalServer {
        reason: "the local Livy server did not answer within 20 s".into(),
        log: log_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustmaker_magics::services::NoClusterResolver;

    #[test]
    fn a_failed_cluster_lookup_keeps_its_cause() {
        let spec = EndpointSpec::Emr("j-NOPE".into(), Auth::None);
        let err = resolve(&spec, &NoClusterResolver).unwrap_err();
        assert!(
            matches!(err, EndpointError::Cluster(MagicError::Service(_))),
            "{err:?}"
        );
        assert!(err.to_string().contains("j-NOPE"), "{err}");
        assert!(std::error::Error::source(&err).is_some());
        let url = EndpointSpec::Url("http://127.0.0.1:8998".into(), Auth::None);
        assert_eq!(
            resolve(&url, &NoClusterResolver).unwrap().url,
            "http://127.0.0.1:8998"
        );
    }
}
