//! The instance's boot step, run inside an instance started from the notebook-instance image
//! (`rustmaker instance boot`, PID 1 of the instance's PID namespace), as a SageMaker
//! notebook instance boots: OnCreate (first boot only) and OnStart (every boot) as root with
//! cwd `/` and their time limit, their output in the log streams; then the kernels of the
//! environments kept on the persistent volume; then JupyterLab as the notebook user on
//! loopback with the instance's token. It stays as the instance's init: it reaps what the
//! hooks left in the background and ends the instance when JupyterLab ends (SIGTERM is
//! passed on to JupyterLab).
//!
//! The image says who the notebook user is (`/etc/rustmaker/boot.json`, written by
//! `rustmaker image build`); the service says who this instance is and what its hooks are
//! (`/etc/rustmaker/instance.json`, written into the run's fresh layer). If a hook fails,
//! `/etc/rustmaker/boot-status.json` says which and why, for the service to report.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Hook;
use crate::hooks::{self, HookOutcome, HookRun};
use crate::logs::LogStream;
use crate::LifecycleError;

pub const IMAGE_BOOT: &str = "/etc/rustmaker/boot.json";
pub const INSTANCE_BOOT: &str = "/etc/rustmaker/instance.json";
pub const BOOT_STATUS: &str = "/etc/rustmaker/boot-status.json";
/// KEY=VALUE lines a hook writes for JupyterLab's environment ($RUSTMAKER_INSTANCE_ENV).
pub const ENV_FILE: &str = "/etc/rustmaker/instance.env";
/// Where the service's log streams of this instance are mounted.
pub const LOGS_AT: &str = "/var/log/rustmaker-lifecycle";
/// Where the hook scripts are written (root's only).
const HOOKS_AT: &str = "/etc/rustmaker/hooks";

/// What the image says: the boot command, the notebook user and where JupyterLab lives.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageBoot {
    pub command: Vec<String>,
    pub user: String,
    pub uid: u32,
    pub home: String,
    pub volume: String,
    pub jupyter: String,
    pub path: String,
}

impl ImageBoot {
    /// The persistent volume's path inside the instance.
    pub fn volume_path(&self) -> PathBuf {
        Path::new(&self.home).join(&self.volume)
    }
}

/// What the service says for this run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceBoot {
    pub name: String,
    pub arn: String,
    pub first: bool,
    pub token: String,
    pub port: u16,
    pub hook_limit_secs: u64,
    pub on_create: Option<String>,
    pub on_start: Option<String>,
    /// What every process of the instance sees (its credentials, the API's address).
    pub env: Vec<(String, String)>,
    /// Where JupyterLab listens inside: loopback, unless the instance is a machine of its
    /// own whose port the host forwards.
    #[serde(default = "loopback")]
    pub listen: String,
    /// Set when the instance is a virtual machine (`--backend vm`): its own disks and network
    /// to bring up, and a power-off at the end.
    #[serde(default)]
    pub machine: Option<Machine>,
}

fn loopback() -> String {
    "127.0.0.1".into()
}

/// A virtual machine's own devices, as the VM backend attaches them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    /// The persistent volume's disk (ext4), mounted at the notebook user's volume.
    pub volume_device: String,
    /// A raw disk the boot step writes a tar to once the hooks are done: the hooks' log
    /// streams and the boot status, for the host to read.
    pub export_device: String,
    /// The machine's address (CIDR) on its one network interface, and the gateway.
    pub address: String,
    pub gateway: String,
}

/// Why the boot ended before JupyterLab served.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BootStatus {
    pub failure: String,
}

pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, LifecycleError> {
    let text = std::fs::read(path).map_err(LifecycleError::io(format!(
        "cannot read {}",
        path.display()
    )))?;
    Ok(serde_json::from_slice(&text)?)
}

/// KEY=VALUE lines (`export` and quotes allowed), as hooks write them.
pub fn parse_env_lines(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some((k, v)) = line.trim().split_once('=') {
            let k = k.trim().trim_start_matches("export ").trim();
            if !k.is_empty() {
                out.retain(|(key, _)| key != k);
                out.push((k.to_owned(), v.trim().trim_matches('"').to_owned()));
            }
        }
    }
    out
}

static SERVER: AtomicI32 = AtomicI32::new(0);

/// SIGTERM and SIGINT (what a virtual machine's init gets for Ctrl-Alt-Del, the host's way
/// to ask it to stop) both end JupyterLab as SIGTERM does: its SIGINT would ask a question.
extern "C" fn pass_on(_signal: libc::c_int) {
    let pid = SERVER.load(Ordering::SeqCst);
    if pid > 0 {
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
}

/// Runs a tool; its failure, made by `fail`, names the command line and what it printed.
pub(crate) fn run_tool(
    command: &mut Command,
    fail: impl FnOnce(String) -> LifecycleError,
) -> Result<(), LifecycleError> {
    let line = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let out = command
        .output()
        .map_err(LifecycleError::io(format!("cannot run `{line}`")))?;
    if out.status.success() {
        return Ok(());
    }
    Err(fail(format!(
        "`{line}` failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

/// A step of the machine's set-up; its failure fails the boot.
fn machine_step(program: &str, args: &[&str]) -> Result<(), LifecycleError> {
    run_tool(Command::new(program).args(args), LifecycleError::Boot)
}

/// A virtual machine's own devices: the volume's disk at the volume, the network up.
fn bring_up(m: &Machine, volume: &Path) -> Result<(), LifecycleError> {
    let at = volume.to_string_lossy();
    machine_step("mount", &["-t", "ext4", &m.volume_device, &at])?;
    // Built as a module in Debian's cloud kernel; usually loaded by the initramfs already.
    let _ = Command::new("modprobe").args(["-q", "virtio_net"]).status();
    machine_step("ip", &["link", "set", "lo", "up"])?;
    let interface = network_interface()?;
    machine_step("ip", &["link", "set", &interface, "up"])?;
    machine_step("ip", &["addr", "add", &m.address, "dev", &interface])?;
    machine_step("ip", &["route", "add", "default", "via", &m.gateway])
}

/// The machine's one network interface, whatever udev named it, once the kernel has it.
fn network_interface() -> Result<String, LifecycleError> {
    let started = std::time::Instant::now();
    loop {
        let found = std::fs::read_dir("/sys/class/net")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "lo")
            .min();
        if let Some(name) = found {
            return Ok(name);
        }
        if started.elapsed() > Duration::from_secs(20) {
            return Err(LifecycleError::Boot(
                "the machine has no network interface (is virtio-net attached?)".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The hooks' log streams and the boot status, as a tar on the export disk, for the host.
fn export(m: &Machine, name: &str) {
    let _ = std::fs::create_dir_all(Path::new(LOGS_AT).join(name));
    let logs = format!("{}/{name}", LOGS_AT.trim_start_matches('/'));
    let mut args = vec!["-cf", &m.export_device, "-C", "/", logs.as_str()];
    let status = BOOT_STATUS.trim_start_matches('/');
    if Path::new(BOOT_STATUS).exists() {
        args.push(status);
    }
    if let Err(e) = machine_step("tar", &args) {
        eprintln!("rustmaker instance boot: the hooks' logs stay inside: {e}");
    }
    unsafe { libc::sync() };
}

/// The boot step; returns JupyterLab's exit code (or an error before it started). In a
/// virtual machine it is PID 1 of the machine, which it powers off at the end, whatever the
/// outcome, so the host sees the instance end.
pub fn boot() -> Result<i32, LifecycleError> {
    let image: ImageBoot = read_json(Path::new(IMAGE_BOOT))?;
    let me: InstanceBoot = read_json(Path::new(INSTANCE_BOOT))?;
    let outcome = boot_as(&image, &me);
    if me.machine.is_some() {
        if let Err(e) = &outcome {
            eprintln!("rustmaker instance boot: {e}");
        }
        unsafe {
            libc::sync();
            libc::reboot(libc::RB_POWER_OFF);
        }
    }
    outcome
}

fn boot_as(image: &ImageBoot, me: &InstanceBoot) -> Result<i32, LifecycleError> {
    let volume = image.volume_path();
    std::fs::create_dir_all(&volume).map_err(LifecycleError::io(format!(
        "cannot make {}",
        volume.display()
    )))?;
    if let Some(m) = &me.machine {
        bring_up(m, &volume)?;
    }
    // The volume is the service's folder on the host: the notebook user owns it in here.
    own(&volume, image.uid);
    let _ = std::fs::write(ENV_FILE, "");

    let mut env = me.env.clone();
    for (k, v) in [
        ("PATH", image.path.clone()),
        ("HOME", "/root".to_owned()),
        ("USER", "root".to_owned()),
        ("LANG", "C.UTF-8".to_owned()),
        ("RUSTMAKER_INSTANCE_ENV", ENV_FILE.to_owned()),
    ] {
        env.retain(|(key, _)| key != k);
        env.push((k.to_owned(), v));
    }
    let hooks = run_hooks(me, &env);
    if let Some(m) = &me.machine {
        export(m, &me.name);
    }
    hooks?;
    register_environment_kernels(image, &volume);

    let extra = std::fs::read_to_string(ENV_FILE).unwrap_or_default();
    let mut server_env = env;
    for (k, v) in [
        ("HOME", image.home.clone()),
        ("USER", image.user.clone()),
        ("SHELL", "/bin/bash".to_owned()),
    ] {
        server_env.retain(|(key, _)| key != k);
        server_env.push((k.to_owned(), v));
    }
    for (k, v) in parse_env_lines(&extra) {
        server_env.retain(|(key, _)| *key != k);
        server_env.push((k, v));
    }
    server_env.retain(|(k, _)| k != "RUSTMAKER_INSTANCE_ENV");
    let python = Path::new(&image.jupyter).join("bin/python");
    let server = Command::new(&python)
        .args([
            "-m",
            "jupyterlab",
            "--no-browser",
            &format!("--ServerApp.ip={}", me.listen),
            &format!("--ServerApp.port={}", me.port),
            "--ServerApp.port_retries=0",
            &format!("--IdentityProvider.token={}", me.token),
            &format!("--ServerApp.root_dir={}", volume.display()),
            "--ServerApp.open_browser=False",
        ])
        .current_dir(&volume)
        .env_clear()
        .envs(server_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .uid(image.uid)
        .gid(image.uid)
        .spawn()
        .map_err(LifecycleError::io(format!(
            "cannot start JupyterLab ({})",
            python.display()
        )))?;
    let pid = server.id() as i32;
    SERVER.store(pid, Ordering::SeqCst);
    unsafe {
        libc::signal(libc::SIGTERM, pass_on as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, pass_on as *const () as libc::sighandler_t);
    }
    // As the instance's init: reap everything, end with JupyterLab.
    loop {
        let mut status = 0;
        let got = unsafe { libc::waitpid(-1, &mut status, 0) };
        if got == pid {
            return Ok(if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            });
        }
        if got < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Ok(1);
        }
    }
}

fn own(path: &Path, uid: u32) {
    use std::os::unix::ffi::OsStrExt;
    if let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) {
        unsafe {
            libc::chown(c.as_ptr(), uid, uid);
        }
    }
}

/// OnCreate (first boot), then OnStart; a failure is written to [`BOOT_STATUS`].
fn run_hooks(me: &InstanceBoot, env: &[(String, String)]) -> Result<(), LifecycleError> {
    let hooks: &[(Hook, &Option<String>)] = if me.first {
        &[
            (Hook::OnCreate, &me.on_create),
            (Hook::OnStart, &me.on_start),
        ]
    } else {
        &[(Hook::OnStart, &me.on_start)]
    };
    for (hook, script) in hooks {
        let Some(script) = script else { continue };
        let log = LogStream::for_hook(Path::new(LOGS_AT), &me.name, *hook);
        let outcome = hooks::run(HookRun {
            hook: *hook,
            script,
            workdir: Path::new(HOOKS_AT),
            env,
            limit: Duration::from_secs(me.hook_limit_secs),
            log: &log,
        })?;
        if outcome != HookOutcome::Succeeded {
            let failure = outcome.failure_reason(*hook, &log).unwrap_or_default();
            let status = serde_json::to_vec(&BootStatus {
                failure: failure.clone(),
            })?;
            let _ = std::fs::write(BOOT_STATUS, status);
            return Err(LifecycleError::Boot(failure));
        }
    }
    Ok(())
}

/// Python environments kept on the volume (`envs/NAME` with ipykernel installed) are offered
/// as kernels "Python (NAME)", so what a user installs there survives a stop.
fn register_environment_kernels(image: &ImageBoot, volume: &Path) {
    let kernels = Path::new(&image.jupyter).join("share/jupyter/kernels");
    for (name, python) in environments(volume) {
        let spec = serde_json::json!({
            "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": format!("Python ({name})"),
            "language": "python",
            "metadata": {"debugger": true},
        });
        let dir = kernels.join(format!("env-{name}"));
        if std::fs::create_dir_all(&dir).is_ok() {
            let _ = std::fs::write(dir.join("kernel.json"), spec.to_string());
        }
    }
}

/// (name, its python) of each `envs/NAME` with ipykernel in its site-packages.
pub fn environments(volume: &Path) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(volume.join("envs")) else {
        return found;
    };
    for e in entries.flatten() {
        let python = e.path().join("bin/python");
        let has_kernel = std::fs::read_dir(e.path().join("lib"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|lib| lib.path().join("site-packages/ipykernel").is_dir());
        if python.exists() && has_kernel {
            found.push((e.file_name().to_string_lossy().into_owned(), python));
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_file_without_a_machine_listens_on_loopback() {
        let mut me = serde_json::json!({
            "name": "a", "arn": "arn:aws:sagemaker:us-east-1:000000000000:notebook-instance/a",
            "first": true, "token": "t", "port": 9, "hook_limit_secs": 300,
            "on_create": null, "on_start": null, "env": [],
        });
        let plain: InstanceBoot = serde_json::from_value(me.clone()).unwrap();
        assert_eq!(plain.listen, "127.0.0.1");
        assert!(plain.machine.is_none());
        me["listen"] = "0.0.0.0".into();
        me["machine"] = serde_json::json!({
            "volume_device": "/dev/vdc", "export_device": "/dev/vdd",
            "address": "10.0.2.15/24", "gateway": "10.0.2.2",
        });
        let vm: InstanceBoot = serde_json::from_value(me).unwrap();
        assert_eq!(vm.machine.unwrap().volume_device, "/dev/vdc");
    }

    #[test]
    fn environment_lines_are_read_as_hooks_write_them() {
        let env = parse_env_lines("A=1\nexport B=\"two words\"\n\nnot a line\nA=3\n =x\n");
        assert_eq!(
            env,
            vec![("B".into(), "two words".into()), ("A".into(), "3".into())]
        );
    }

    #[test]
    fn only_environments_with_ipykernel_are_offered() {
        let dir = tempfile::tempdir().unwrap();
        let envs = dir.path().join("envs");
        for (name, kernel) in [("torch", true), ("plain", false)] {
            let env = envs.join(name);
            std::fs::create_dir_all(env.join("bin")).unwrap();
            std::fs::write(env.join("bin/python"), "").unwrap();
            let site = env.join("lib/python3.11/site-packages");
            std::fs::create_dir_all(&site).unwrap();
            if kernel {
                std::fs::create_dir_all(site.join("ipykernel")).unwrap();
            }
        }
        std::fs::create_dir_all(envs.join("empty")).unwrap();
        let found = environments(dir.path());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "torch");
        assert!(environments(&dir.path().join("nothing")).is_empty());
    }
}
