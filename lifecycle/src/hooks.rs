//! Runs one lifecycle hook: the script in its own process group, as the instance's admin, in
//! the instance's environment, with a time limit. Its output goes line by line to the hook's
//! log stream. A script that exits non-zero or runs past the limit is killed with its whole
//! process tree; one that exits zero may leave background work running (`nohup … &`), as
//! AWS's samples do to stay inside the limit.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::backend::kill_group;
use crate::config::Hook;
use crate::logs::LogStream;
use crate::LifecycleError;

/// SageMaker's limit on one hook.
pub const DEFAULT_LIMIT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq)]
pub enum HookOutcome {
    Succeeded,
    Failed { status: String },
    TimedOut { limit: Duration },
}

impl HookOutcome {
    /// The instance's FailureReason for a hook that did not succeed.
    pub fn failure_reason(&self, hook: Hook, log: &LogStream) -> Option<String> {
        let what = match self {
            HookOutcome::Succeeded => return None,
            HookOutcome::Failed { status } => format!("failed ({status})"),
            HookOutcome::TimedOut { limit } => format!(
                "ran longer than its limit of {} s and was stopped",
                limit.as_secs()
            ),
        };
        Some(format!(
            "Notebook Instance Lifecycle Config {} script {what}; see the log stream {} ({})",
            hook.as_str(),
            log.name,
            log.path().display()
        ))
    }
}

pub struct HookRun<'a> {
    pub hook: Hook,
    pub script: &'a str,
    /// Where the script file is written (the instance's own folder).
    pub workdir: &'a Path,
    /// The environment the instance's processes get.
    pub env: &'a [(String, String)],
    pub limit: Duration,
    pub log: &'a LogStream,
}

fn pump(
    stream: impl Read + Send + 'static,
    log: Arc<Mutex<LogStream>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Ok(log) = log.lock() {
                let _ = log.append(&line);
            }
        }
    })
}

pub fn run(h: HookRun) -> Result<HookOutcome, LifecycleError> {
    std::fs::create_dir_all(h.workdir).map_err(LifecycleError::io(format!(
        "cannot make {}",
        h.workdir.display()
    )))?;
    let path = h.workdir.join(format!("{}.sh", h.hook.stream_suffix()));
    std::fs::write(&path, h.script)
        .and_then(|_| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)))
        .map_err(LifecycleError::io(format!(
            "cannot write {}",
            path.display()
        )))?;
    // A script with a #! line runs with its interpreter; anything else with bash.
    let mut command = if h.script.starts_with("#!") {
        Command::new(&path)
    } else {
        let mut c = Command::new("/bin/bash");
        c.arg(&path);
        c
    };
    command
        .current_dir("/")
        .envs(h.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    h.log.append(&format!(
        "{} starting ({})",
        h.hook.as_str(),
        path.display()
    ))?;
    let started = Instant::now();
    let mut child = command.spawn().map_err(LifecycleError::io(format!(
        "cannot start the {} script",
        h.hook.as_str()
    )))?;
    let pid = child.id();
    let log = Arc::new(Mutex::new(h.log.clone()));
    let readers = [
        pump(child.stdout.take().expect("piped"), log.clone()),
        pump(child.stderr.take().expect("piped"), log.clone()),
    ];
    let outcome = loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => break HookOutcome::Succeeded,
            Ok(Some(status)) => {
                kill_group(pid, libc::SIGKILL);
                let status = match status.code() {
                    Some(c) => format!("exit status {c}"),
                    None => "killed by a signal".into(),
                };
                break HookOutcome::Failed { status };
            }
            Ok(None) if started.elapsed() > h.limit => {
                kill_group(pid, libc::SIGTERM);
                let grace = Instant::now();
                while grace.elapsed() < Duration::from_secs(2) {
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                kill_group(pid, libc::SIGKILL);
                let _ = child.wait();
                break HookOutcome::TimedOut { limit: h.limit };
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(25)),
            Err(e) => {
                kill_group(pid, libc::SIGKILL);
                return Err(LifecycleError::io("waiting for the script")(e));
            }
        }
    };
    // The readers end when the pipes close; background work that keeps them open is left
    // to write on.
    let deadline = Instant::now() + Duration::from_millis(500);
    for r in readers {
        while !r.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if r.is_finished() {
            let _ = r.join();
        }
    }
    let summary = match &outcome {
        HookOutcome::Succeeded => "exited with status 0".to_owned(),
        HookOutcome::Failed { status } => format!("failed: {status}"),
        HookOutcome::TimedOut { limit } => format!("timed out after {} s: killed", limit.as_secs()),
    };
    h.log.append(&format!(
        "{} {summary} after {:.1} s",
        h.hook.as_str(),
        started.elapsed().as_secs_f64()
    ))?;
    Ok(outcome)
}
