//! Instances from the notebook-instance image (`rustmaker image build`): each run is the
//! image's root filesystem under an overlay whose upper layer is made afresh at each start,
//! with the instance's persistent volume (`home/SageMaker` in the service's folder) mounted at
//! the notebook user's `~/SageMaker`, in mount, PID, IPC and UTS namespaces of its own.
//! The image's boot step (`rustmaker instance boot`) is the instance's PID 1: it runs the
//! lifecycle hooks inside the instance and then JupyterLab.
//!
//! What is isolated: the filesystem (the instance sees the image, its volume and its own
//! writes, never the host's files), processes (its own PID namespace: it cannot see or signal
//! another instance's), System V IPC and the hostname. What is not: the network (JupyterLab
//! listens on the host's loopback so the service can reach it; an instance can reach the
//! host's loopback services), users (root inside is root on the host: the hooks run as root,
//! as SageMaker's do), and resources (no CPU or memory limits; the volume has no quota).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{
    free_port, make_dirs, serve, serving, stop_group, Backend, BootSpec, LaunchSpec, Running,
};
use crate::boot::{self, BootStatus, ImageBoot, InstanceBoot};
use crate::LifecycleError;

/// Mounts the instance's root and enters it: the overlay, the volume, the log streams, /proc,
/// a /dev of its own with the few devices a notebook needs, /tmp, the hostname.
const ENTER: &str = r#"lower=$1 upper=$2 work=$3 root=$4 volume=$5 volume_at=$6 logs=$7 logs_at=$8 name=$9
shift 9
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work" "$root"
mkdir -p "$root$volume_at" "$root$logs_at"
mount --bind "$volume" "$root$volume_at"
mount --bind "$logs" "$root$logs_at"
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
mount -t tmpfs -o mode=755 tmpfs "$root/dev"
for d in null zero full random urandom tty; do
  touch "$root/dev/$d"
  mount --bind "/dev/$d" "$root/dev/$d"
done
mkdir -p "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
ln -s /proc/self/fd "$root/dev/fd"
mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
echo "$name" > /proc/sys/kernel/hostname
cd /
exec chroot "$root" "$@""#;

/// Instances run from an image folder (`rootfs/` inside).
pub struct ImageBackend {
    pub image: PathBuf,
    boot: ImageBoot,
    /// How long JupyterLab may take to listen once the hooks are done.
    pub ready_timeout: Duration,
}

impl ImageBackend {
    /// The image at `image` (a folder that `rustmaker image build` wrote, or its `rootfs/`).
    pub fn open(image: &Path, ready_timeout: Duration) -> Result<ImageBackend, LifecycleError> {
        let root = if image.join("rootfs").is_dir() {
            image.join("rootfs")
        } else {
            image.to_owned()
        };
        let boot_file = root.join(boot::IMAGE_BOOT.trim_start_matches('/'));
        if !boot_file.is_file() {
            return Err(LifecycleError::Validation(format!(
                "{} is not a notebook-instance image (no {}): build one with `rustmaker image build --out {}`",
                image.display(),
                boot::IMAGE_BOOT,
                image.display()
            )));
        }
        let boot: ImageBoot = boot::read_json(&boot_file)?;
        Ok(ImageBackend {
            image: root,
            boot,
            ready_timeout,
        })
    }

    /// Whether this host can run image instances: root, `unshare` and overlayfs; the error
    /// says what is missing and how to get it.
    pub fn available() -> Result<(), LifecycleError> {
        let missing = |what: &str| {
            Err(LifecycleError::Validation(format!(
                "--backend image: {what}"
            )))
        };
        if unsafe { libc::geteuid() } != 0 {
            return missing(
                "the image backend mounts each instance's root: run the service as root",
            );
        }
        let overlay = std::fs::read_to_string("/proc/filesystems")
            .is_ok_and(|f| f.lines().any(|l| l.trim_end().ends_with("overlay")));
        if !overlay {
            return missing("this kernel has no overlay filesystem (modprobe overlay)");
        }
        if !crate::backend::LocalBackend::namespaces_available() {
            return missing("`unshare` cannot make namespaces here (install util-linux)");
        }
        Ok(())
    }
}

/// Only what says who the instance is and how it reaches the service crosses into it: the
/// host's paths and the service's own environment stay outside.
pub(super) fn passes_in(key: &str) -> bool {
    key.starts_with("AWS_")
        || matches!(
            key,
            "NOTEBOOK_INSTANCE_NAME" | "RUSTMAKER_INSTANCE_NAME" | "RUSTMAKER_INSTANCE_RUN"
        )
}

/// Who the instance is, its hooks and what crosses into it, for its boot step.
pub(super) fn instance_boot(b: &BootSpec, spec: &LaunchSpec, port: u16) -> InstanceBoot {
    InstanceBoot {
        name: b.instance.clone(),
        arn: b.arn.clone(),
        first: b.first,
        token: spec.token.clone(),
        port,
        hook_limit_secs: b.hook_limit.as_secs(),
        on_create: b.on_create.clone(),
        on_start: b.on_start.clone(),
        env: spec
            .env
            .iter()
            .filter(|(k, _)| passes_in(k))
            .cloned()
            .collect(),
        listen: "127.0.0.1".into(),
        machine: None,
    }
}

/// A file written into an instance for its boot: its path inside, content and mode.
pub(super) type BootFile = (&'static str, Vec<u8>, u32);

/// The files an instance's boot reads: its resource metadata, its name, its hosts and
/// resolver, and `instance.json`.
pub(super) fn boot_files(
    image: &Path,
    b: &BootSpec,
    me: &InstanceBoot,
    resolv: Option<Vec<u8>>,
) -> Result<Vec<BootFile>, LifecycleError> {
    let metadata = serde_json::json!({"ResourceArn": b.arn, "ResourceName": b.instance});
    let hosts = std::fs::read_to_string(image.join("etc/hosts")).unwrap_or_default();
    let mut files = vec![
        (
            "/opt/ml/metadata/resource-metadata.json",
            metadata.to_string().into_bytes(),
            0o644,
        ),
        (
            "/etc/hostname",
            format!("{}\n", b.instance).into_bytes(),
            0o644,
        ),
        (
            "/etc/hosts",
            format!("{hosts}127.0.1.1\t{}\n", b.instance).into_bytes(),
            0o644,
        ),
        (boot::INSTANCE_BOOT, serde_json::to_vec_pretty(me)?, 0o600),
    ];
    if let Some(resolv) = resolv {
        files.push(("/etc/resolv.conf", resolv, 0o644));
    }
    Ok(files)
}

pub(super) fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), LifecycleError> {
    rustmaker_process::write_atomic(path, bytes, Some(mode)).map_err(LifecycleError::io(format!(
        "cannot write {}",
        path.display()
    )))
}

impl Backend for ImageBackend {
    fn boots_itself(&self) -> bool {
        true
    }

    fn launch(&self, spec: &LaunchSpec) -> Result<Running, LifecycleError> {
        let b = spec.boot_spec("image")?;
        let port = free_port()?;
        let (upper, work, root) = (
            b.run_dir.join("upper"),
            b.run_dir.join("work"),
            b.run_dir.join("root"),
        );
        make_dirs(&[&upper, &work, &root, &b.logs])?;
        // What the instance learns at boot, written into its fresh upper layer.
        let me = instance_boot(b, spec, port);
        let resolv = std::fs::read("/etc/resolv.conf").ok();
        for (path, bytes, mode) in boot_files(&self.image, b, &me, resolv)? {
            write(&upper.join(path.trim_start_matches('/')), &bytes, mode)?;
        }
        let logs_at = format!("{}/{}", boot::LOGS_AT, b.instance);
        let mut command = Command::new("unshare");
        command
            .args([
                "--mount",
                "--pid",
                "--ipc",
                "--uts",
                "--fork",
                "--kill-child",
                "--",
                "/bin/sh",
                "-euc",
                ENTER,
                "sh",
            ])
            .arg(&self.image)
            .arg(&upper)
            .arg(&work)
            .arg(&root)
            .arg(&spec.root_dir)
            .arg(self.boot.volume_path())
            .arg(&b.logs)
            .arg(&logs_at)
            .arg(&b.instance)
            .args(&self.boot.command)
            .current_dir("/")
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LANG", "C.UTF-8");
        // The hooks' time comes before JupyterLab's.
        let limit = self.ready_timeout + b.hook_limit * 2;
        let status_file = upper.join(boot::BOOT_STATUS.trim_start_matches('/'));
        let host_logs = b.logs.display().to_string();
        serve(command, port, &spec.log, limit, |status| {
            match boot::read_json::<BootStatus>(&status_file) {
                Ok(s) => LifecycleError::Boot(s.failure.replace(&logs_at, &host_logs)),
                Err(_) => LifecycleError::Server(format!(
                    "the instance's boot step exited ({status}) before JupyterLab served; its log is {}",
                    spec.log.display()
                )),
            }
        })
    }

    fn alive(&self, running: &Running) -> bool {
        serving(running)
    }

    fn stop(&self, running: &Running) {
        stop_group(running)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_that_is_not_an_image_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let e = ImageBackend::open(&dir.path().join("nope"), Duration::from_secs(1))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("not a notebook-instance image"), "{e}");
        assert!(e.contains("rustmaker image build"), "{e}");
    }

    #[test]
    fn an_image_folder_or_its_rootfs_opens() {
        let dir = tempfile::tempdir().unwrap();
        let boot = dir.path().join("rootfs/etc/rustmaker/boot.json");
        std::fs::create_dir_all(boot.parent().unwrap()).unwrap();
        let image = ImageBoot {
            command: vec![
                "/usr/local/bin/rustmaker".into(),
                "instance".into(),
                "boot".into(),
            ],
            user: "ec2-user".into(),
            uid: 1000,
            home: "/home/ec2-user".into(),
            volume: "SageMaker".into(),
            jupyter: "/opt/jupyter".into(),
            path: "/usr/bin:/bin".into(),
        };
        std::fs::write(&boot, serde_json::to_vec(&image).unwrap()).unwrap();
        for path in [dir.path().to_owned(), dir.path().join("rootfs")] {
            let b = ImageBackend::open(&path, Duration::from_secs(1)).unwrap();
            assert_eq!(b.image, dir.path().join("rootfs"));
            assert_eq!(b.boot.volume_path(), Path::new("/home/ec2-user/SageMaker"));
        }
    }

    #[test]
    fn only_the_instances_identity_crosses_into_it() {
        for key in [
            "AWS_ACCESS_KEY_ID",
            "AWS_ENDPOINT_URL_SAGEMAKER",
            "NOTEBOOK_INSTANCE_NAME",
            "RUSTMAKER_INSTANCE_RUN",
        ] {
            assert!(passes_in(key), "{key}");
        }
        for key in [
            "PATH",
            "HOME",
            "VIRTUAL_ENV",
            "JUPYTER_PATH",
            "RUSTMAKER_INSTANCE_ENV",
        ] {
            assert!(!passes_in(key), "{key}");
        }
    }
}
