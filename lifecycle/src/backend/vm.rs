//! Instances as virtual machines: qemu boots the image's `rootfs.qcow2` (the image's `vm`
//! variant, which has Debian's cloud kernel) with that kernel and initramfs. Each run is a
//! new qcow2 overlay on the image, so a stop discards everything but the persistent volume,
//! which is a disk of its own (ext4, `volume.ext4` in the instance's folder, VolumeSizeInGB
//! large, grown when that grows).
//!
//! Four disks, in this order: the run's root (`/dev/vda`); the run's instance disk, a tar of
//! what the service tells the boot step (`instance.json`, the resource metadata, the
//! hostname), which the image's init (`/usr/local/sbin/rustmaker-vm-init`) unpacks; the
//! volume (`/dev/vdc`), which the boot step mounts at `~/SageMaker`; and the export disk
//! (`/dev/vdd`), where the boot step writes a tar of the hooks' log streams and the boot
//! status once the hooks are done, before JupyterLab starts. The host reads it when JupyterLab
//! answers or when the machine ends, into the instance's log streams.
//!
//! The network is qemu's user-mode network: the guest is 10.0.2.15 behind qemu's NAT, the
//! host's loopback is 10.0.2.2 to it (the service's API among it), and only JupyterLab's port
//! is forwarded from the host's loopback. A stop is Ctrl-Alt-Del through qemu's monitor,
//! which the guest's init (the boot step) turns into JupyterLab's SIGTERM and a power-off;
//! a machine that does not end in time is killed.
//!
//! What is isolated, beyond the image backend: everything, since it is a machine of its own
//! with its own kernel, memory (2 GiB) and two virtual CPUs. What is not enforced: the CPU
//! share on the host. Under full emulation (TCG, the default: KVM guests crash on the
//! development machines) a boot to JupyterLab takes tens of seconds.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::image::{boot_files, instance_boot, write};
use super::{
    free_port, make_dirs, running, serve_until, stop_group, Backend, BootSpec, LaunchSpec, Running,
};
use crate::boot::{self, BootStatus, ImageBoot, Machine};
use crate::LifecycleError;

/// The guest's side of qemu's user-mode network.
const GUEST_ADDRESS: &str = "10.0.2.15/24";
const GATEWAY: &str = "10.0.2.2";
const NAMESERVER: &str = "10.0.2.3";
const MEMORY_MIB: u32 = 2048;
const CPUS: u32 = 2;
/// Room for the hooks' logs on the export disk (sparse: only what is written takes space).
const EXPORT_BYTES: u64 = 64 << 20;
/// How long a machine has to end after Ctrl-Alt-Del before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// Instances run as machines booted from an image folder (`rootfs.qcow2` and `rootfs/`).
pub struct VmBackend {
    pub image: PathBuf,
    disk: PathBuf,
    kernel: PathBuf,
    initrd: PathBuf,
    boot: ImageBoot,
    /// How long the machine may take from its start to JupyterLab answering, past the hooks.
    pub ready_timeout: Duration,
    /// qemu's accelerator: `tcg` (full emulation) or `kvm`.
    pub accel: String,
}

/// The newest `vmlinuz-VERSION` in `boot/` with its `initrd.img-VERSION`.
fn kernel_of(rootfs: &Path) -> Option<(PathBuf, PathBuf)> {
    let mut versions: Vec<String> = std::fs::read_dir(rootfs.join("boot"))
        .ok()?
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix("vmlinuz-")
                .map(str::to_owned)
        })
        .filter(|v| rootfs.join(format!("boot/initrd.img-{v}")).is_file())
        .collect();
    // By the numbers in the version, so 6.1.0-10 comes after 6.1.0-9.
    versions.sort_by_key(|v| {
        v.split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse::<u64>().ok())
            .collect::<Vec<_>>()
    });
    let v = versions.pop()?;
    Some((
        rootfs.join(format!("boot/vmlinuz-{v}")),
        rootfs.join(format!("boot/initrd.img-{v}")),
    ))
}

impl VmBackend {
    /// The image folder `rustmaker image build --variant vm --format dir,qcow2` wrote.
    pub fn open(
        image: &Path,
        ready_timeout: Duration,
        accel: &str,
    ) -> Result<VmBackend, LifecycleError> {
        let bad = |what: String| {
            Err(LifecycleError::Validation(format!(
                "{} {what}: build one with `rustmaker image build --variant vm --format dir,qcow2 --out {}`",
                image.display(),
                image.display()
            )))
        };
        let rootfs = image.join("rootfs");
        let boot_file = rootfs.join(boot::IMAGE_BOOT.trim_start_matches('/'));
        if !boot_file.is_file() {
            return bad(format!(
                "is not a notebook-instance image folder (no rootfs{})",
                boot::IMAGE_BOOT
            ));
        }
        let disk = image.join("rootfs.qcow2");
        if !disk.is_file() {
            return bad("has no rootfs.qcow2".into());
        }
        let Some((kernel, initrd)) = kernel_of(&rootfs) else {
            return bad("has no kernel (rootfs/boot/vmlinuz-*): it is not the vm variant".into());
        };
        if !matches!(accel, "tcg" | "kvm") {
            return Err(LifecycleError::Validation(format!(
                "--vm-accel {accel}: use tcg (full emulation) or kvm"
            )));
        }
        let boot: ImageBoot = boot::read_json(&boot_file)?;
        let disk = disk.canonicalize().map_err(LifecycleError::io(format!(
            "cannot read {}",
            disk.display()
        )))?;
        Ok(VmBackend {
            image: image.to_owned(),
            disk,
            kernel,
            initrd,
            boot,
            ready_timeout,
            accel: accel.to_owned(),
        })
    }

    /// Whether this host can run machines: qemu's x86-64 system emulator, qemu-img and
    /// mke2fs on the PATH; the error names the package to install.
    pub fn available() -> Result<(), LifecycleError> {
        let paths = std::env::var_os("PATH").unwrap_or_default();
        match first_missing(&paths) {
            Some((tool, package)) => Err(LifecycleError::Validation(format!(
                "--backend vm needs `{tool}`: apt-get install {package}"
            ))),
            None => Ok(()),
        }
    }

    /// The volume's disk: made from the volume's folder on the first start, grown when
    /// VolumeSizeInGB grew.
    fn volume_disk(&self, spec: &LaunchSpec, b: &BootSpec) -> Result<PathBuf, LifecycleError> {
        let disk = b.volume_disk.clone();
        let bytes = b.volume_gb << 30;
        let size = std::fs::metadata(&disk).map(|m| m.len()).ok();
        let io = |what: &str| LifecycleError::io(format!("cannot {what} {}", disk.display()));
        match size {
            None => {
                std::fs::create_dir_all(&spec.root_dir).map_err(io("seed"))?;
                let file = std::fs::File::create(&disk).map_err(io("make"))?;
                file.set_len(bytes).map_err(io("size"))?;
                let owner = format!("root_owner={0}:{0}", self.boot.uid);
                tool(
                    Command::new("mke2fs")
                        .args(["-q", "-F", "-t", "ext4", "-L", "SageMaker", "-E", &owner])
                        .arg("-d")
                        .arg(&spec.root_dir)
                        .arg(&disk),
                )?;
            }
            Some(have) if have < bytes => {
                // resize2fs wants a checked filesystem; e2fsck's 1 is "errors corrected".
                let _ = Command::new("e2fsck")
                    .args(["-f", "-p"])
                    .arg(&disk)
                    .output();
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&disk)
                    .and_then(|f| f.set_len(bytes))
                    .map_err(io("grow"))?;
                tool(Command::new("resize2fs").arg(&disk))?;
            }
            Some(_) => {}
        }
        Ok(disk)
    }
}

/// The first tool the VM backend needs that `paths` lacks, with its Debian package.
fn first_missing(paths: &std::ffi::OsStr) -> Option<(&'static str, &'static str)> {
    [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("qemu-img", "qemu-utils"),
        ("mke2fs", "e2fsprogs"),
    ]
    .into_iter()
    .find(|(tool, _)| !rustmaker_process::on_paths(paths, tool))
}

/// Runs a host tool; its failure says which and what it printed.
fn tool(command: &mut Command) -> Result<(), LifecycleError> {
    boot::run_tool(command, LifecycleError::Server)
}

/// The service's address on the host's loopback, as the guest reaches it.
fn through_gateway(value: &str) -> String {
    value
        .replace("//127.0.0.1:", &format!("//{GATEWAY}:"))
        .replace("//localhost:", &format!("//{GATEWAY}:"))
}

/// Whether JupyterLab answers through the forwarded port (qemu accepts on it from the start).
fn answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /api HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

/// The export disk's tar: the hooks' log streams into the service's folder, and the boot
/// status if the boot failed.
fn import(export: &Path, b: &BootSpec) -> Option<BootStatus> {
    let unpacked = b.run_dir.join("export");
    let _ = std::fs::remove_dir_all(&unpacked);
    std::fs::create_dir_all(&unpacked).ok()?;
    // An export disk the guest never wrote holds zeros: an empty archive.
    let _ = Command::new("tar")
        .arg("-xf")
        .arg(export)
        .arg("-C")
        .arg(&unpacked)
        .args(["--no-same-owner", "--no-same-permissions"])
        .output();
    let logs = unpacked
        .join(boot::LOGS_AT.trim_start_matches('/'))
        .join(&b.instance);
    // A run's streams start empty inside (its root is new): added to what earlier runs wrote.
    for e in std::fs::read_dir(&logs).into_iter().flatten().flatten() {
        if let Ok(text) = std::fs::read(e.path()) {
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(b.logs.join(e.file_name()))
                .and_then(|mut f| f.write_all(&text));
        }
    }
    boot::read_json(&unpacked.join(boot::BOOT_STATUS.trim_start_matches('/'))).ok()
}

/// The monitor's socket: a short path (a socket's is at most 107 bytes), in a folder only
/// this user may enter, since the monitor controls the machine.
fn monitor_socket(port: u16) -> Result<PathBuf, LifecycleError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let uid = unsafe { libc::geteuid() };
    let dir = std::env::temp_dir().join(format!("rustmaker-vm-{uid}"));
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    let meta = std::fs::symlink_metadata(&dir)
        .map_err(LifecycleError::io(format!("cannot make {}", dir.display())))?;
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
        return Err(LifecycleError::Server(format!(
            "{} is not a private folder of this user: remove it",
            dir.display()
        )));
    }
    Ok(dir.join(format!("{port}.sock")))
}

impl Backend for VmBackend {
    fn boots_itself(&self) -> bool {
        true
    }

    fn launch(&self, spec: &LaunchSpec) -> Result<Running, LifecycleError> {
        let b = spec.boot_spec("vm")?;
        let port = free_port()?;
        make_dirs(&[&b.run_dir, &b.logs])?;
        let volume = self.volume_disk(spec, b)?;
        let root = b.run_dir.join("root.qcow2");
        let _ = std::fs::remove_file(&root);
        tool(
            Command::new("qemu-img")
                .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
                .arg(&self.disk)
                .arg(&root),
        )?;

        // The instance disk: what the boot step reads, as a tar padded to whole mebibytes.
        let mut me = instance_boot(b, spec, port);
        for (_, v) in me.env.iter_mut() {
            *v = through_gateway(v);
        }
        me.listen = "0.0.0.0".into();
        me.machine = Some(Machine {
            volume_device: "/dev/vdc".into(),
            export_device: "/dev/vdd".into(),
            address: GUEST_ADDRESS.into(),
            gateway: GATEWAY.into(),
        });
        let staged = b.run_dir.join("instance");
        let _ = std::fs::remove_dir_all(&staged);
        let resolv = format!("nameserver {NAMESERVER}\n").into_bytes();
        let mut paths = Vec::new();
        for (path, bytes, mode) in boot_files(&self.image.join("rootfs"), b, &me, Some(resolv))? {
            let rel = path.trim_start_matches('/');
            write(&staged.join(rel), &bytes, mode)?;
            paths.push(rel);
        }
        let instance = b.run_dir.join("instance.tar");
        tool(
            Command::new("tar")
                .args(["--numeric-owner", "--owner=0", "--group=0", "-cf"])
                .arg(&instance)
                .arg("-C")
                .arg(&staged)
                .args(&paths),
        )?;
        let pad = |path: &Path, to: u64| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|f| {
                    let len = f.metadata()?.len();
                    f.set_len(len.max(to).div_ceil(1 << 20) * (1 << 20))
                })
                .map_err(LifecycleError::io(format!(
                    "cannot size {}",
                    path.display()
                )))
        };
        pad(&instance, 0)?;
        let export = b.run_dir.join("export.img");
        std::fs::File::create(&export).map_err(LifecycleError::io(format!(
            "cannot make {}",
            export.display()
        )))?;
        pad(&export, EXPORT_BYTES)?;

        let monitor = monitor_socket(port)?;
        let _ = std::fs::remove_file(&monitor);
        let drive = |path: &Path, format: &str| {
            format!("file={},if=virtio,format={format}", path.display())
        };
        let mut command = Command::new("qemu-system-x86_64");
        command
            .args(["-accel", &self.accel, "-smp", &CPUS.to_string()])
            .args(["-m", &MEMORY_MIB.to_string()])
            .args(["-display", "none", "-vga", "none", "-no-reboot"])
            .args(["-name", &b.instance])
            .arg("-chardev")
            .arg(format!(
                "file,id=console,path={},append=on",
                spec.log.display()
            ))
            .args(["-serial", "chardev:console"])
            .arg("-monitor")
            .arg(format!("unix:{},server=on,wait=off", monitor.display()))
            .arg("-kernel")
            .arg(&self.kernel)
            .arg("-initrd")
            .arg(&self.initrd)
            .args([
                "-append",
                "root=/dev/vda rw console=ttyS0 loglevel=4 panic=-1 init=/usr/local/sbin/rustmaker-vm-init",
            ])
            .args(["-drive", &drive(&root, "qcow2")])
            .args(["-drive", &format!("{},readonly=on", drive(&instance, "raw"))])
            .args(["-drive", &drive(&volume, "raw")])
            .args(["-drive", &drive(&export, "raw")])
            .arg("-netdev")
            .arg(format!("user,id=net0,hostfwd=tcp:127.0.0.1:{port}-:{port}"))
            .args(["-device", "virtio-net-pci,netdev=net0"])
            .current_dir(&b.run_dir)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        let limit = self.ready_timeout + b.hook_limit * 2;
        let host_logs = b.logs.display().to_string();
        let logs_at = format!("{}/{}", boot::LOGS_AT, b.instance);
        let running = serve_until(
            command,
            port,
            &spec.log,
            limit,
            || answers(port),
            |status| match import(&export, b) {
                Some(s) => LifecycleError::Boot(s.failure.replace(&logs_at, &host_logs)),
                None => LifecycleError::Server(format!(
                    "the machine ended ({status}) before JupyterLab served; its console is {}",
                    spec.log.display()
                )),
            },
        )?;
        import(&export, b);
        Ok(running)
    }

    fn alive(&self, r: &Running) -> bool {
        running(r.pid)
    }

    fn stop(&self, r: &Running) {
        // Ctrl-Alt-Del: the guest's init ends JupyterLab and powers the machine off.
        if let Ok(socket) = monitor_socket(r.port) {
            let started = Instant::now();
            let mut asked = None;
            while running(r.pid) && started.elapsed() < STOP_GRACE {
                // Asked again every few seconds: a key press the guest missed (it was busy
                // starting, or the monitor had not read the first) is not the end of it.
                if asked.is_none_or(|t: Instant| t.elapsed() > Duration::from_secs(5)) {
                    ctrl_alt_del(&socket);
                    asked = Some(Instant::now());
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            let _ = std::fs::remove_file(socket);
        }
        stop_group(r)
    }
}

/// Presses Ctrl-Alt-Del through qemu's human monitor: waits for its prompt, sends the key
/// and waits for the next prompt, so the command is read before the connection closes.
fn ctrl_alt_del(socket: &Path) {
    let Ok(mut m) = std::os::unix::net::UnixStream::connect(socket) else {
        return;
    };
    let _ = m.set_read_timeout(Some(Duration::from_secs(2)));
    let prompt = |m: &mut std::os::unix::net::UnixStream| {
        let mut seen = Vec::new();
        let mut buf = [0u8; 512];
        while !seen.ends_with(b"(qemu) ") {
            match m.read(&mut buf) {
                Ok(n) if n > 0 => seen.extend_from_slice(&buf[..n]),
                _ => return,
            }
        }
    };
    prompt(&mut m);
    if m.write_all(b"sendkey ctrl-alt-delete\n").is_ok() {
        prompt(&mut m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_is_named_with_its_package() {
        let dir = tempfile::tempdir().unwrap();
        let paths = dir.path().as_os_str();
        assert_eq!(
            first_missing(paths),
            Some(("qemu-system-x86_64", "qemu-system-x86"))
        );
        for tool in ["qemu-system-x86_64", "qemu-img"] {
            std::fs::write(dir.path().join(tool), "").unwrap();
        }
        assert_eq!(first_missing(paths), Some(("mke2fs", "e2fsprogs")));
        std::fs::write(dir.path().join("mke2fs"), "").unwrap();
        assert_eq!(first_missing(paths), None);
    }

    #[test]
    fn the_service_on_the_hosts_loopback_is_the_guests_gateway() {
        assert_eq!(
            through_gateway("http://127.0.0.1:8443/api"),
            "http://10.0.2.2:8443/api"
        );
        assert_eq!(through_gateway("http://localhost:9/"), "http://10.0.2.2:9/");
        assert_eq!(through_gateway("us-east-1"), "us-east-1");
    }

    #[test]
    fn an_image_without_a_kernel_or_disk_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let e = VmBackend::open(dir.path(), Duration::from_secs(1), "tcg")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("not a notebook-instance image"), "{e}");
        let boot = dir.path().join("rootfs/etc/rustmaker/boot.json");
        std::fs::create_dir_all(boot.parent().unwrap()).unwrap();
        std::fs::write(&boot, "{}").unwrap();
        let e = VmBackend::open(dir.path(), Duration::from_secs(1), "tcg")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("no rootfs.qcow2"), "{e}");
        assert!(e.contains("--variant vm --format dir,qcow2"), "{e}");
        std::fs::write(dir.path().join("rootfs.qcow2"), "").unwrap();
        let e = VmBackend::open(dir.path(), Duration::from_secs(1), "tcg")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("no kernel"), "{e}");
    }

    #[test]
    fn the_newest_kernel_with_its_initramfs_is_booted() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path().join("boot");
        std::fs::create_dir_all(&b).unwrap();
        for f in [
            "vmlinuz-6.1.0-9-cloud-amd64",
            "initrd.img-6.1.0-9-cloud-amd64",
            "vmlinuz-6.1.0-10-cloud-amd64",
            "initrd.img-6.1.0-10-cloud-amd64",
            "vmlinuz-6.1.0-11-cloud-amd64",
        ] {
            std::fs::write(b.join(f), "").unwrap();
        }
        // 10 is newer than 9; 11 has no initramfs.
        let (k, i) = kernel_of(dir.path()).unwrap();
        assert!(k.ends_with("vmlinuz-6.1.0-10-cloud-amd64"), "{k:?}");
        assert!(i.ends_with("initrd.img-6.1.0-10-cloud-amd64"), "{i:?}");
        assert!(kernel_of(&dir.path().join("none")).is_none());
    }
}
