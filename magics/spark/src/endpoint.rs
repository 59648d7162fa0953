//! Turning an [`EndpointSpec`] into a Livy URL: the embedded local server (found running, or
//! started on first use) or an EMR cluster's master node (found through the EMR API).

use rustmaker_magics::services::ClusterResolver;
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

/// The Livy endpoint for `spec`; an EMR cluster's master is found by `clusters`.
pub fn resolve(spec: &EndpointSpec, clusters: &dyn ClusterResolver) -> Result<Endpoint, String> {
    match spec {
        EndpointSpec::Url(url, auth) => Ok(Endpoint::new(url, auth.clone())),
        EndpointSpec::Emr(cluster, auth) => {
            let host = clusters
                .master_address(cluster)
                .map_err(|e| e.to_string())?;
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
fn local_endpoint() -> Result<Endpoint, String> {
    let state = local_state_file();
    if let Some(endpoint) = read_state(&state).filter(answers) {
        return Ok(endpoint);
    }
    let _ = std::fs::remove_file(&state);
    let exe = std::env::current_exe().map_err(|e| {
        format!("cannot find the rustmaker binary to start the local Livy server: {e}")
    })?;
    let dir = state_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let log_path = dir.join("livy-server.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| format!("cannot write {}: {e}", log_path.display()))?;
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
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        // Outlives this kernel (other kernels share it) and ignores the kernel's SIGINT.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start the local Livy server: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "the local Livy server exited at start ({status}); see {}",
                log_path.display()
            ));
        }
        if let Some(endpoint) = read_state(&state).filter(answers) {
            // Reap it in the background if it ever exits while we run.
            std::thread::spawn(move || child.wait());
            return Ok(endpoint);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    Err(format!(
        "the local Livy server did not answer within 20 s; see {}",
        log_path.display()
    ))
}
