//! Where instances run. The trait is what the manager needs of a host: launch an instance's
//! notebook server, tell whether it still runs, stop it. [`LocalBackend`], the embedded
//! default, runs each instance as a process tree on this host, after the manager ran its
//! lifecycle hooks here; [`image::ImageBackend`] runs each instance from the notebook-instance
//! image as a root of its own, whose boot step runs the hooks inside it.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::LifecycleError;

pub mod image;
pub mod vm;

/// What a launch needs: where the instance lives and what its processes see.
pub struct LaunchSpec {
    /// The folder the notebook server opens (`home/SageMaker`).
    pub root_dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub token: String,
    pub log: PathBuf,
    /// For a backend whose instances boot themselves: what their boot step runs.
    pub boot: Option<BootSpec>,
}

impl LaunchSpec {
    /// The boot spec a backend whose instances boot themselves is launched with.
    pub(crate) fn boot_spec(&self, backend: &str) -> Result<&BootSpec, LifecycleError> {
        self.boot.as_ref().ok_or_else(|| {
            LifecycleError::Server(format!(
                "the {backend} backend was launched without a boot spec"
            ))
        })
    }
}

/// Makes each folder a launch writes into.
pub(crate) fn make_dirs(dirs: &[&std::path::Path]) -> Result<(), LifecycleError> {
    for dir in dirs {
        std::fs::create_dir_all(dir)
            .map_err(LifecycleError::io(format!("cannot make {}", dir.display())))?;
    }
    Ok(())
}

/// What an instance's own boot step needs from the service: who it is, whether this is its
/// first boot, and its lifecycle hooks.
#[derive(Debug, Clone)]
pub struct BootSpec {
    pub instance: String,
    pub arn: String,
    pub first: bool,
    pub on_create: Option<String>,
    pub on_start: Option<String>,
    pub hook_limit: Duration,
    /// The service's folder for this instance's log streams (`logs/NAME`).
    pub logs: PathBuf,
    /// This run's folder: made afresh at each start.
    pub run_dir: PathBuf,
    /// VolumeSizeInGB, for a backend that gives the volume a disk of its own, and where that
    /// disk is kept (beside the instance's folders, which a start resets).
    pub volume_gb: u64,
    pub volume_disk: PathBuf,
}

#[derive(Debug, Clone, Copy)]
pub struct Running {
    pub pid: u32,
    pub port: u16,
}

pub trait Backend: Send + Sync {
    fn launch(&self, spec: &LaunchSpec) -> Result<Running, LifecycleError>;
    fn alive(&self, running: &Running) -> bool;
    fn stop(&self, running: &Running);
    /// Whether instances run OnCreate/OnStart themselves, inside, as their boot step (the
    /// launch then gets a [`BootSpec`]); otherwise the manager runs them on this host first.
    fn boots_itself(&self) -> bool {
        false
    }
}

/// Instances as local process trees: JupyterLab (or `server_command`) on a free loopback port
/// with token authentication, in its own process group.
pub struct LocalBackend {
    /// The server's command line; `{port}`, `{token}` and `{root}` are filled in.
    pub server_command: Vec<String>,
    pub ready_timeout: Duration,
    /// Runs the server in PID, mount (its own /proc), IPC and UTS namespaces of its own, so an
    /// instance sees only its own processes. The network is shared: the server listens on the
    /// host's loopback.
    pub namespaces: bool,
}

impl LocalBackend {
    /// Whether this host lets instances have namespaces: root, with `unshare` on the PATH.
    pub fn namespaces_available() -> bool {
        let root = unsafe { libc::geteuid() } == 0;
        root && Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "--ipc", "--uts", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// JupyterLab of the instance's Python (`$VIRTUAL_ENV` of the launch env, else `python3`).
    pub fn jupyterlab() -> Vec<String> {
        [
            "{python}",
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            "--IdentityProvider.token={token}",
            "--ServerApp.root_dir={root}",
            "--ServerApp.open_browser=False",
            // Instances run as the host user, who may be root (RootAccess Enabled).
            "--ServerApp.allow_root=True",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}

/// A free loopback port below the kernel's ephemeral range. A port found by binding port 0
/// is itself ephemeral, so in the seconds before the server binds it, any process binding
/// port 0 (a kernel's ZMQ sockets, another instance's probe) can be handed the same port and
/// the server exits with "address already in use". Below the range, only another explicit
/// choice can collide: the counter keeps this service's own concurrent launches apart.
/// The first port of the kernel's ephemeral range, which port-0 binds are given.
fn ephemeral_start() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}

pub(crate) fn free_port() -> Result<u16, LifecycleError> {
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let (low, high) = (10_000u32, ephemeral_start().max(10_001));
    let span = high - low;
    // A start that differs between services on one host, then successive ports.
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % span,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..span.min(2000) {
        let port = (low + NEXT.fetch_add(1, Ordering::SeqCst) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(LifecycleError::io("no free port"))
}

/// Whether a process runs (a zombie waiting to be reaped counts as gone).
pub fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

pub(crate) use rustmaker_process::kill_group;

/// Starts `command` in a process group of its own with its output appended to `log`, and
/// waits until something listens on `port`. If it exits first, `exited` says why; if nothing
/// listens within `timeout`, its group is killed.
pub(crate) fn serve(
    command: Command,
    port: u16,
    log: &std::path::Path,
    timeout: Duration,
    exited: impl FnOnce(std::process::ExitStatus) -> LifecycleError,
) -> Result<Running, LifecycleError> {
    let listens = || {
        TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_millis(200),
        )
        .is_ok()
    };
    serve_until(command, port, log, timeout, listens, exited)
}

/// [`serve`], ready when `ready` says so (a forwarded port listens before anything answers).
pub(crate) fn serve_until(
    mut command: Command,
    port: u16,
    log: &std::path::Path,
    timeout: Duration,
    ready: impl Fn() -> bool,
    exited: impl FnOnce(std::process::ExitStatus) -> LifecycleError,
) -> Result<Running, LifecycleError> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(LifecycleError::io(format!(
            "cannot write {}",
            log.display()
        )))?;
    let err = out
        .try_clone()
        .map_err(LifecycleError::io("cannot share the log"))?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(LifecycleError::io(format!(
            "cannot start the notebook server `{}`",
            command.get_program().to_string_lossy()
        )))?;
    let running = Running {
        pid: child.id(),
        port,
    };
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(exited(status));
        }
        if ready() {
            // Reaped by a thread of its own, so a stopped server leaves no zombie.
            std::thread::spawn(move || {
                let _ = child.wait();
            });
            return Ok(running);
        }
        if started.elapsed() > timeout {
            kill_group(running.pid, libc::SIGKILL);
            let _ = child.wait();
            return Err(LifecycleError::Server(format!(
                "the notebook server did not listen within {} s; its log is {}",
                timeout.as_secs(),
                log.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Backend for LocalBackend {
    fn launch(&self, spec: &LaunchSpec) -> Result<Running, LifecycleError> {
        let port = free_port()?;
        let python = spec
            .env
            .iter()
            .find(|(k, _)| k == "VIRTUAL_ENV")
            .map(|(_, v)| format!("{v}/bin/python"))
            .unwrap_or_else(|| "python3".into());
        let fill = |s: &String| {
            s.replace("{port}", &port.to_string())
                .replace("{token}", &spec.token)
                .replace("{root}", &spec.root_dir.display().to_string())
                .replace("{python}", &python)
        };
        let mut argv: Vec<String> = self.server_command.iter().map(fill).collect();
        if self.namespaces {
            let wrap = [
                "unshare",
                "--pid",
                "--fork",
                "--mount-proc",
                "--ipc",
                "--uts",
                "--kill-child",
                "--",
            ];
            argv.splice(0..0, wrap.iter().map(|s| s.to_string()));
        }
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .current_dir(&spec.root_dir)
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        serve(command, port, &spec.log, self.ready_timeout, |status| {
            LifecycleError::Server(format!(
                "the notebook server exited ({status}) before it served; its log is {}",
                spec.log.display()
            ))
        })
    }

    fn alive(&self, running: &Running) -> bool {
        serving(running)
    }

    fn stop(&self, running: &Running) {
        stop_group(running)
    }
}

/// The launched process still runs and its port answers.
pub(crate) fn serving(running: &Running) -> bool {
    self::running(running.pid)
        && TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], running.port)),
            Duration::from_millis(500),
        )
        .is_ok()
}

/// SIGTERM to the launched process group, SIGKILL after 10 s.
pub(crate) fn stop_group(running: &Running) {
    kill_group(running.pid, libc::SIGTERM);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if !self::running(running.pid) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    kill_group(running.pid, libc::SIGKILL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_from_below_the_ephemeral_range_and_differ_between_launches() {
        let low = ephemeral_start() as u16;
        let (a, b) = (free_port().unwrap(), free_port().unwrap());
        assert!(a != b, "two launches got port {a}");
        for p in [a, b] {
            assert!((10_000..low).contains(&p), "port {p} is not below {low}");
            // Free when chosen: the server can bind it.
            drop(TcpListener::bind(("127.0.0.1", p)).unwrap());
        }
    }
}
