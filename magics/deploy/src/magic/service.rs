//! Which service the deployment magics talk to: the one `RUSTMAKER_ENDPOINT_URL` (or
//! `AWS_ENDPOINT_URL_SAGEMAKER`) names, with the AWS keys of the environment; else the local
//! `rustmaker serve` of this user's data folder, started now if none answers (as the Spark
//! magics start the local Livy server). The local service outlives the kernel: endpoints keep
//! serving boto3 clients after the notebook closes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustmaker_magics::MagicError;
use rustmaker_sagemaker::client::{Client, ClientError};

/// How long a started service has to answer.
const START_LIMIT: Duration = Duration::from_secs(30);

fn state_dir() -> PathBuf {
    rustmaker_process::data_dir().join("instances")
}

fn region() -> String {
    std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|_| "us-east-1".into())
}

/// A client of the service the magics use, started if it is the local one and not running.
pub fn connect() -> Result<Client, MagicError> {
    let configured = std::env::var("RUSTMAKER_ENDPOINT_URL")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL_SAGEMAKER"))
        .ok()
        .filter(|u| !u.is_empty());
    if let Some(url) = configured {
        let (id, secret) = match (
            std::env::var("AWS_ACCESS_KEY_ID"),
            std::env::var("AWS_SECRET_ACCESS_KEY"),
        ) {
            (Ok(id), Ok(secret)) => (id, secret),
            _ => local_key(&state_dir()).map_err(|_| {
                MagicError::Service(format!(
                    "the service at {url} needs keys: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                ))
            })?,
        };
        return Ok(Client::new(&url, &id, &secret, &region()));
    }
    local()
}

fn local_key(state: &Path) -> Result<(String, String), MagicError> {
    let path = state.join("api-keys.json");
    let keys: BTreeMap<String, String> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| {
            MagicError::Service(format!(
                "the local service's keys file {} is missing or not JSON",
                path.display()
            ))
        })?;
    keys.into_iter()
        .next()
        .ok_or_else(|| MagicError::Service(format!("{} holds no keys", path.display())))
}

/// The running local service named in `service.json`, if it answers.
fn running(state: &Path) -> Option<Client> {
    let text = std::fs::read_to_string(state.join("service.json")).ok()?;
    let info: serde_json::Value = serde_json::from_str(&text).ok()?;
    let url = info.get("url")?.as_str()?;
    let (id, secret) = local_key(state).ok()?;
    let quick = Client::with_timeout(url, &id, &secret, &region(), Duration::from_secs(3));
    match quick.call("ListEndpoints", &serde_json::json!({})) {
        // A refusal is an answer too (a key rotated by hand still means it runs).
        Ok(_) | Err(ClientError::Refused { .. }) => Some(Client::new(url, &id, &secret, &region())),
        Err(_) => None,
    }
}

fn local() -> Result<Client, MagicError> {
    let state = state_dir();
    if let Some(client) = running(&state) {
        return Ok(client);
    }
    let _ = std::fs::remove_file(state.join("service.json"));
    std::fs::create_dir_all(&state).map_err(|e| {
        MagicError::Service(format!(
            "cannot make the service's folder {}: {e}",
            state.display()
        ))
    })?;
    let exe = std::env::current_exe().map_err(|e| {
        MagicError::Service(format!(
            "cannot find the rustmaker binary to start the local service: {e}"
        ))
    })?;
    let log_path = state.join("service.log");
    let log = std::fs::File::create(&log_path)
        .and_then(|f| Ok((f.try_clone()?, f)))
        .map_err(|e| MagicError::Service(format!("cannot write {}: {e}", log_path.display())))?;
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(exe)
        .args(["serve", "--host", "127.0.0.1", "--port", "0", "--state-dir"])
        .arg(&state)
        .stdin(Stdio::null())
        .stdout(log.0)
        .stderr(log.1)
        // Other kernels and boto3 clients share it; the kernel's interrupts are not its own.
        .process_group(0)
        .spawn()
        .map_err(|e| MagicError::Service(format!("cannot start the local service: {e}")))?;
    let deadline = Instant::now() + START_LIMIT;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(MagicError::Service(format!(
                "the local service exited at start ({status}); its log is {}",
                log_path.display()
            )));
        }
        if let Some(client) = running(&state) {
            std::thread::spawn(move || child.wait());
            return Ok(client);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    Err(MagicError::Service(format!(
        "the local service did not answer within {} s; its log is {}",
        START_LIMIT.as_secs(),
        log_path.display()
    )))
}

/// A refusal or an unreachable service, as the notebook shows it.
pub fn service_error(e: ClientError) -> MagicError {
    match e {
        ClientError::Refused { code, message, .. } => {
            MagicError::Service(format!("{code}: {message}"))
        }
        other => MagicError::Service(other.to_string()),
    }
}
