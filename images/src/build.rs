//! The build: cached steps that make the image's root filesystem, then its formats.
//!
//! | step | made by | cached under the hash of |
//! | --- | --- | --- |
//! | `base` | `mmdebstrap` (the suite, its packages) | suite, variant, packages, apt sources, epoch |
//! | `python` | a venv at `/opt/jupyter`, pinned packages installed without resolving | `base`, the requirements files |
//! | `rust` | the host's toolchain at `/opt/rust`, without its documentation | `rustc -vV`, `cargo -V` |
//! | `rustmaker` | the binary, the notebook user, the recipe's files, the kernelspec | never cached: it is the step a rebuild redoes |
//!
//! A build writes into `OUT.building` and replaces `OUT` only when every step and format
//! succeeded, so a failed build leaves the previous image as it was.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::outputs::{self, Format};
use crate::recipe::Resolved;
use crate::ImageError;

/// What one build is asked to do.
pub struct BuildOptions {
    pub recipe: Resolved,
    /// The image's folder: `rootfs/` and the formats beside it.
    pub out: PathBuf,
    /// Where cached steps are kept.
    pub cache: PathBuf,
    pub formats: Vec<Format>,
    /// An apt sources file (sources.list or deb822); default the host's.
    pub sources: Option<PathBuf>,
    /// The rustmaker binary copied in.
    pub rustmaker: PathBuf,
    /// Every timestamp in the image is clamped to this (SOURCE_DATE_EPOCH).
    pub source_date_epoch: u64,
    /// Ignore the cache (every step is made again).
    pub no_cache: bool,
}

/// What a build made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildReport {
    pub variant: String,
    pub out: PathBuf,
    pub seconds: f64,
    /// Bytes of the root filesystem (apparent size of its files).
    pub rootfs_bytes: u64,
    pub steps: Vec<StepReport>,
    pub outputs: Vec<outputs::Output>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StepReport {
    pub step: &'static str,
    pub cached: bool,
    pub seconds: f64,
}

/// Runs a command; on failure the error holds the lines of its output that say why.
pub(crate) fn run(step: &'static str, command: &mut Command) -> Result<(), ImageError> {
    let program = command.get_program().to_string_lossy().into_owned();
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ImageError::Step {
            step,
            reason: format!("cannot run {program}: {e}"),
        })?;
    if out.status.success() {
        return Ok(());
    }
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Err(ImageError::Step {
        step,
        reason: format!("{program} {}: {}", out.status, why(&text)),
    })
}

/// The lines of a tool's output that say what failed: apt's `E:` lines and lines naming an
/// error, else the last lines.
fn why(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let telling: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| {
            let lower = l.to_ascii_lowercase();
            l.starts_with("E:")
                || lower.contains("error")
                || lower.contains("no space left")
                || lower.contains("unable to")
                || lower.contains("failed")
        })
        .collect();
    let chosen = if telling.is_empty() {
        &lines[lines.len().saturating_sub(8)..]
    } else {
        &telling[telling.len().saturating_sub(8)..]
    };
    chosen.join(" | ")
}

/// The tools a build needs, installed with apt-get when missing and running as root.
pub fn ensure_tools(formats: &[Format]) -> Result<(), ImageError> {
    let mut need = vec![
        ("mmdebstrap", "mmdebstrap"),
        ("tar", "tar"),
        ("unshare", "util-linux"),
    ];
    for f in formats {
        match f {
            Format::Ext4 => need.push(("mke2fs", "e2fsprogs")),
            Format::Qcow2 => {
                need.push(("mke2fs", "e2fsprogs"));
                need.push(("qemu-img", "qemu-utils"));
            }
            Format::Squashfs => need.push(("mksquashfs", "squashfs-tools")),
            Format::Dir | Format::Tar | Format::Oci => {}
        }
    }
    let missing: Vec<(&str, &str)> = need
        .into_iter()
        .filter(|(tool, _)| !on_path(tool))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().map(|(_, p)| *p).collect();
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let installed = root
        && on_path("apt-get")
        && Command::new("apt-get")
            .args(["install", "-y", "-qq"])
            .args(&packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    match missing
        .iter()
        .find(|(tool, _)| !installed || !on_path(tool))
    {
        None => Ok(()),
        Some((tool, package)) => Err(ImageError::MissingTool {
            step: "tools",
            tool: tool.to_string(),
            package: package.to_string(),
            reason: if root {
                "apt-get install failed".into()
            } else {
                "not running as root".into()
            },
        }),
    }
}

pub(crate) use rustmaker_process::on_path;

fn key(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex::encode(&h.finalize()[..12])
}

pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(h.finalize()));
        }
        h.update(&buf[..n]);
    }
}

/// The host's apt sources, as apt itself would read them.
fn host_sources() -> Option<PathBuf> {
    [
        "/etc/apt/sources.list.d/debian.sources",
        "/etc/apt/sources.list",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
}

/// `cp -a` keeps owners, modes, links and times; reflinks where the filesystem has them.
fn copy_tree(step: &'static str, from: &Path, to: &Path) -> Result<(), ImageError> {
    run(
        step,
        Command::new("cp")
            .args(["-a", "--reflink=auto"])
            .arg(from)
            .arg(to),
    )
}

fn remove(path: &Path) {
    if std::fs::symlink_metadata(path).is_ok() {
        let _ = std::fs::remove_dir_all(path).or_else(|_| std::fs::remove_file(path));
    }
}

/// Runs `script` with /bin/sh inside `root` (chroot), with /proc and /dev mounted in a
/// mount namespace of its own, so nothing stays mounted when it ends.
pub(crate) fn in_root(
    step: &'static str,
    root: &Path,
    script: &str,
    env: &[(&str, &str)],
) -> Result<(), ImageError> {
    const ENTER: &str = r#"r=$1; shift
mount -t proc proc "$r/proc"
mount --rbind /dev "$r/dev"
exec chroot "$r" /bin/sh -euc "$1""#;
    let mut c = Command::new("unshare");
    c.args(["--mount", "--fork", "--", "/bin/sh", "-euc", ENTER, "sh"])
        .arg(root)
        .arg(script)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", "/root")
        .env("LANG", "C.UTF-8");
    for (k, v) in env {
        c.env(k, v);
    }
    run(step, &mut c)
}

/// One cached step: `make` fills a fresh folder, which is kept as `cache/NAME-KEY` once it
/// succeeds (older keys of the same step are removed).
fn cached(
    opts: &BuildOptions,
    name: &'static str,
    key: &str,
    steps: &mut Vec<StepReport>,
    make: impl FnOnce(&Path) -> Result<(), ImageError>,
) -> Result<PathBuf, ImageError> {
    let started = Instant::now();
    let done = opts.cache.join(format!("{name}-{key}"));
    if done.is_dir() && !opts.no_cache {
        eprintln!("==> {name}: cached ({})", done.display());
        steps.push(StepReport {
            step: name,
            cached: true,
            seconds: started.elapsed().as_secs_f64(),
        });
        return Ok(done);
    }
    eprintln!("==> {name}");
    let partial = opts.cache.join(format!("{name}-{key}.partial"));
    remove(&partial);
    std::fs::create_dir_all(&opts.cache).map_err(ImageError::io(name, &opts.cache))?;
    let result = make(&partial);
    if let Err(e) = result {
        remove(&partial);
        return Err(e);
    }
    remove(&done);
    std::fs::rename(&partial, &done).map_err(ImageError::io(name, &done))?;
    if let Ok(entries) = std::fs::read_dir(&opts.cache) {
        let prefix = format!("{name}-");
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(&prefix) && e.path() != done && n.len() == done_len(name) {
                remove(&e.path());
            }
        }
    }
    steps.push(StepReport {
        step: name,
        cached: false,
        seconds: started.elapsed().as_secs_f64(),
    });
    Ok(done)
}

fn done_len(name: &str) -> usize {
    name.len() + 1 + 24
}

/// The Debian base: mmdebstrap into a folder, reproducible for the same epoch and package
/// versions.
fn base(opts: &BuildOptions, steps: &mut Vec<StepReport>) -> Result<PathBuf, ImageError> {
    let r = &opts.recipe;
    let sources = match &opts.sources {
        Some(s) => s.clone(),
        None => host_sources().ok_or_else(|| ImageError::Step {
            step: "base",
            reason: "this host has no apt sources (/etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list); name a file with --sources".into(),
        })?,
    };
    let sources_text = std::fs::read(&sources).map_err(ImageError::io("base", &sources))?;
    let epoch = opts.source_date_epoch.to_string();
    let k = key(&[
        b"base-1",
        r.suite.as_bytes(),
        r.debian_variant.as_bytes(),
        r.packages.join(",").as_bytes(),
        &sources_text,
        epoch.as_bytes(),
    ]);
    cached(opts, "base", &k, steps, |dir| {
        let mut c = Command::new("mmdebstrap");
        c.arg(format!("--variant={}", r.debian_variant))
            .arg("--mode=root")
            .arg("--format=directory")
            .arg("--quiet");
        if !r.packages.is_empty() {
            c.arg(format!("--include={}", r.packages.join(",")));
        }
        c.arg(&r.suite)
            .arg(dir)
            .arg(&sources)
            .env("SOURCE_DATE_EPOCH", &epoch);
        run("base", &mut c)?;
        // mmdebstrap copies the building host's name and resolver in; an instance gets its
        // own at each start.
        let _ = std::fs::remove_file(dir.join("etc/resolv.conf"));
        write_file(&dir.join("etc/hostname"), b"localhost\n", 0o644)?;
        write_file(
            &dir.join("etc/hosts"),
            b"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
            0o644,
        )
    })
}

/// JupyterLab and the pinned Python packages in a venv at /opt/jupyter.
fn python(
    opts: &BuildOptions,
    base: &Path,
    steps: &mut Vec<StepReport>,
) -> Result<PathBuf, ImageError> {
    let r = &opts.recipe;
    if r.python.is_empty() {
        return Ok(base.to_owned());
    }
    let mut parts: Vec<&[u8]> = vec![b"python-1", base.as_os_str().as_encoded_bytes()];
    for (name, text) in &r.python {
        parts.push(name.as_bytes());
        parts.push(text.as_bytes());
    }
    let k = key(&parts);
    cached(opts, "python", &k, steps, |dir| {
        std::fs::remove_dir(dir).ok();
        copy_tree("python", base, dir)?;
        let tmp = dir.join("tmp");
        let requirements = tmp.join("requirements.txt");
        std::fs::write(&requirements, merge_requirements(&r.python))
            .map_err(ImageError::io("python", &requirements))?;
        let args = " -r /tmp/requirements.txt";
        // pip inside the root reaches the index as the host does: its CA bundle and resolver.
        let mut env = vec![("PIP_DISABLE_PIP_VERSION_CHECK", "1")];
        if std::fs::copy(
            "/etc/ssl/certs/ca-certificates.crt",
            tmp.join("host-ca.pem"),
        )
        .is_ok()
        {
            env.push(("PIP_CERT", "/tmp/host-ca.pem"));
        }
        let resolv = dir.join("etc/resolv.conf");
        let _ = std::fs::copy("/etc/resolv.conf", &resolv);
        let script = format!(
            "python3 -m venv /opt/jupyter\n\
             /opt/jupyter/bin/pip install --quiet --no-deps --no-compile --no-cache-dir{args}\n\
             find /opt/jupyter -name __pycache__ -type d -prune -exec rm -rf {{}} +"
        );
        let result = in_root("python", dir, &script, &env);
        let _ = std::fs::remove_file(&resolv);
        for e in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            remove(&e.path());
        }
        remove(&dir.join("root/.cache"));
        result
    })
}

/// One pinned list from a variant's files, base first: a later file's pin of a package
/// replaces the earlier one (names compared as pip compares them).
pub(crate) fn merge_requirements(files: &[(String, String)]) -> String {
    let mut pins: Vec<(String, String)> = Vec::new();
    for (_, text) in files {
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let name: String = line
                .split(|c: char| "=<>!~;[ @".contains(c))
                .next()
                .unwrap_or(line)
                .to_ascii_lowercase()
                .replace(['_', '.'], "-");
            pins.retain(|(n, _)| *n != name);
            pins.push((name, line.to_owned()));
        }
    }
    pins.sort();
    pins.into_iter().map(|(_, l)| l + "\n").collect()
}

/// The host's Rust toolchain at /opt/rust (its binaries and libraries, not its documentation).
fn rust(opts: &BuildOptions, steps: &mut Vec<StepReport>) -> Result<Option<PathBuf>, ImageError> {
    if !opts.recipe.rust {
        return Ok(None);
    }
    let ask = |args: &[&str]| -> Result<String, ImageError> {
        let out = Command::new(args[0])
            .args(&args[1..])
            .output()
            .map_err(|e| ImageError::Step {
                step: "rust",
                reason: format!(
                    "cannot run {}: {e} (the image copies the host's toolchain: install Rust)",
                    args[0]
                ),
            })?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let version = ask(&["rustc", "-vV"])?;
    let cargo = ask(&["cargo", "-V"])?;
    let sysroot = PathBuf::from(ask(&["rustc", "--print", "sysroot"])?);
    let k = key(&[b"rust-1", version.as_bytes(), cargo.as_bytes()]);
    cached(opts, "rust", &k, steps, |dir| {
        let into = dir.join("opt/rust");
        let bin = into.join("bin");
        std::fs::create_dir_all(&bin).map_err(ImageError::io("rust", &bin))?;
        for tool in ["rustc", "cargo"] {
            let from = sysroot.join("bin").join(tool);
            std::fs::copy(&from, bin.join(tool)).map_err(ImageError::io("rust", &from))?;
        }
        copy_tree("rust", &sysroot.join("lib"), &into.join("lib"))
    })
    .map(Some)
}

/// The last step, made afresh at each build: the root from the cached steps, the rustmaker
/// binary, the notebook user, the recipe's files and the kernelspec.
fn assemble(
    opts: &BuildOptions,
    python: &Path,
    rust: Option<&Path>,
    rootfs: &Path,
) -> Result<(), ImageError> {
    const STEP: &str = "rustmaker";
    let r = &opts.recipe;
    copy_tree(STEP, python, rootfs)?;
    if let Some(rust) = rust {
        copy_tree(STEP, &rust.join("opt/rust"), &rootfs.join("opt/rust"))?;
    }
    let bin = rootfs.join("usr/local/bin/rustmaker");
    // Without its debug information the binary is a fraction of its size.
    let stripped = on_path("strip")
        && run(
            STEP,
            Command::new("strip")
                .arg("--strip-debug")
                .arg("-o")
                .arg(&bin)
                .arg(&opts.rustmaker),
        )
        .is_ok();
    if !stripped {
        std::fs::copy(&opts.rustmaker, &bin).map_err(ImageError::io(STEP, &opts.rustmaker))?;
    }
    add_user(rootfs, &r.user, opts.source_date_epoch)?;
    for f in &r.files {
        let path = rootfs.join(f.path.trim_start_matches('/'));
        write_file(&path, f.content.trim_start_matches('\n').as_bytes(), f.mode)?;
    }
    let boot = serde_json::json!({
        "command": r.boot.command,
        "user": r.user.name,
        "uid": r.user.uid,
        "home": r.user.home,
        "volume": r.user.volume,
        "jupyter": "/opt/jupyter",
        "path": format!("{}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            if r.rust { "/opt/rust/bin:/opt/jupyter/bin:" } else { "/opt/jupyter/bin:" }),
    });
    write_file(
        &rootfs.join("etc/rustmaker/boot.json"),
        serde_json::to_string_pretty(&boot)
            .unwrap_or_default()
            .as_bytes(),
        0o644,
    )?;
    let binary_sha = sha256_file(&opts.rustmaker).map_err(ImageError::io(STEP, &opts.rustmaker))?;
    let about = serde_json::json!({
        "variant": r.variant,
        "suite": r.suite,
        "packages": r.packages,
        "python": r.python.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        "rust": r.rust,
        "rustmaker_sha256": binary_sha,
        "source_date_epoch": opts.source_date_epoch,
    });
    write_file(
        &rootfs.join("etc/rustmaker/image.json"),
        serde_json::to_string_pretty(&about)
            .unwrap_or_default()
            .as_bytes(),
        0o644,
    )?;
    let metadata = rootfs.join("opt/ml/metadata");
    std::fs::create_dir_all(&metadata).map_err(ImageError::io(STEP, &metadata))?;
    if r.python.is_empty() {
        return Ok(());
    }
    in_root(
        STEP,
        rootfs,
        "/usr/local/bin/rustmaker install --prefix /opt/jupyter >/dev/null",
        &[],
    )
}

pub(crate) fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ImageError> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(ImageError::io("rustmaker", parent))?;
    }
    std::fs::write(path, bytes)
        .and_then(|_| std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)))
        .map_err(ImageError::io("rustmaker", path))
}

/// The notebook user, written into passwd, group and shadow directly (useradd would stamp
/// today's date into shadow), with a home made from /etc/skel and the volume's folder.
fn add_user(rootfs: &Path, user: &crate::recipe::User, epoch: u64) -> Result<(), ImageError> {
    const STEP: &str = "rustmaker";
    let name = &user.name;
    let append = |file: &str, line: String| -> Result<(), ImageError> {
        let path = rootfs.join(file);
        let mut text = std::fs::read_to_string(&path).map_err(ImageError::io(STEP, &path))?;
        if text
            .lines()
            .any(|l| l.split(':').next() == Some(name.as_str()))
        {
            return Ok(());
        }
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&line);
        text.push('\n');
        std::fs::write(&path, text).map_err(ImageError::io(STEP, &path))
    };
    let uid = user.uid;
    append(
        "etc/passwd",
        format!("{name}:x:{uid}:{uid}::{}:/bin/bash", user.home),
    )?;
    append("etc/group", format!("{name}:x:{uid}:"))?;
    append(
        "etc/shadow",
        format!("{name}:*:{}:0:99999:7:::", epoch / 86_400),
    )?;
    let home = rootfs.join(user.home.trim_start_matches('/'));
    std::fs::create_dir_all(home.join(&user.volume)).map_err(ImageError::io(STEP, &home))?;
    let skel = rootfs.join("etc/skel");
    if skel.is_dir() {
        run(
            STEP,
            Command::new("cp")
                .arg("-a")
                .arg(format!("{}/.", skel.display()))
                .arg(&home),
        )?;
    }
    run(
        STEP,
        Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{uid}"))
            .arg(&home),
    )
}

/// Builds the image: the steps, then the formats, then `out` replaced in one rename.
pub fn build(opts: &BuildOptions) -> Result<BuildReport, ImageError> {
    let started = Instant::now();
    if !opts.rustmaker.is_file() {
        return Err(ImageError::Step {
            step: "rustmaker",
            reason: format!(
                "no rustmaker binary at {} (build it first: scripts/build)",
                opts.rustmaker.display()
            ),
        });
    }
    ensure_tools(&opts.formats)?;
    let mut steps = Vec::new();
    let base = base(opts, &mut steps)?;
    let python = python(opts, &base, &mut steps)?;
    let rust = rust(opts, &mut steps)?;

    let building = opts.out.with_extension("building");
    remove(&building);
    // The root is the python step's tree, the toolchain and the binary; an old image at `out`
    // stays until the new one is published, so it is not counted as free.
    let rootfs = du(&python)
        + rust.as_deref().map_or(0, du)
        + std::fs::metadata(&opts.rustmaker).map_or(0, |m| m.len());
    let needed = outputs::bytes_needed(rootfs, &opts.formats);
    if let Some(available) = free_bytes(&building) {
        if available < needed {
            return Err(ImageError::NoSpace {
                step: "rustmaker",
                path: building.clone(),
                needed,
                available,
            });
        }
    }
    std::fs::create_dir_all(&building).map_err(ImageError::io("rustmaker", &building))?;
    let result = (|| {
        let step_started = Instant::now();
        eprintln!("==> rustmaker");
        let rootfs = building.join("rootfs");
        assemble(opts, &python, rust.as_deref(), &rootfs)?;
        steps.push(StepReport {
            step: "rustmaker",
            cached: false,
            seconds: step_started.elapsed().as_secs_f64(),
        });
        let outputs = outputs::write(
            &building,
            &opts.recipe,
            &opts.formats,
            opts.source_date_epoch,
            &mut steps,
        )?;
        Ok::<_, ImageError>((outputs, du(&rootfs)))
    })();
    let (mut outputs, rootfs_bytes) = match result {
        Ok(done) => done,
        Err(e) => {
            remove(&building);
            return Err(e);
        }
    };
    let old = opts.out.with_extension("old");
    remove(&old);
    if opts.out.exists() {
        std::fs::rename(&opts.out, &old).map_err(ImageError::io("publish", &opts.out))?;
    }
    std::fs::rename(&building, &opts.out).map_err(ImageError::io("publish", &opts.out))?;
    remove(&old);
    for o in &mut outputs {
        if let Ok(rest) = o.path.strip_prefix(&building) {
            o.path = opts.out.join(rest);
        }
    }
    let report = BuildReport {
        variant: opts.recipe.variant.clone(),
        out: opts.out.clone(),
        seconds: started.elapsed().as_secs_f64(),
        rootfs_bytes,
        steps,
        outputs,
    };
    write_file(
        &opts.out.join("build.json"),
        serde_json::to_string_pretty(&report)
            .unwrap_or_default()
            .as_bytes(),
        0o644,
    )?;
    Ok(report)
}

/// Bytes free on the filesystem that holds `path` (or would hold it: its nearest existing
/// folder), as `df` reports them; `None` when df cannot tell.
pub(crate) fn free_bytes(path: &Path) -> Option<u64> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(existing)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)?
        .trim()
        .parse()
        .ok()
}

/// Apparent size of a tree's files (hard links counted once).
pub(crate) fn du(path: &Path) -> u64 {
    Command::new("du")
        .args(["-s", "-b"])
        .arg(path)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_tool_is_reported_with_the_lines_that_say_why() {
        let e = run(
            "base",
            Command::new("sh").args([
                "-c",
                "echo 'I: downloading'; echo 'E: Unable to locate package nosuchpkg' >&2; exit 100",
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("step base failed"), "{e}");
        assert!(e.contains("Unable to locate package nosuchpkg"), "{e}");
        assert!(!e.contains("downloading"), "{e}");
        let e = run("base", &mut Command::new("/no/such/tool"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot run /no/such/tool"), "{e}");
    }

    #[test]
    fn a_later_pin_replaces_the_bases() {
        let merged = merge_requirements(&[
            (
                "a".into(),
                "# base\npython-dateutil==4.0.0\nJupyterLab==4.6.6\n".into(),
            ),
            (
                "b".into(),
                "python_dateutil==2.9.0.post0\npyspark==3.5.9\n".into(),
            ),
        ]);
        assert_eq!(
            merged,
            "JupyterLab==4.6.6\npyspark==3.5.9\npython_dateutil==2.9.0.post0\n"
        );
    }

    #[test]
    fn free_space_is_read_for_a_folder_not_made_yet() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).expect("df reads a temporary folder");
        assert!(free > 0);
        let later = free_bytes(&dir.path().join("minimal.building/rootfs")).unwrap();
        // The same filesystem, read twice: close, not equal, while other tests write.
        assert!(
            later.abs_diff(free) < free / 10 + (64 << 20),
            "{free} {later}"
        );
    }

    #[test]
    fn keys_change_with_every_input() {
        let a = key(&[b"x", b"yz"]);
        assert_eq!(a, key(&[b"x", b"yz"]));
        assert_ne!(a, key(&[b"xy", b"z"]));
        assert_eq!(a.len(), 24);
    }

    #[test]
    fn users_are_written_once_with_the_epochs_day() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        for f in ["passwd", "group", "shadow"] {
            std::fs::write(root.join("etc").join(f), "root:x:0:0\n").unwrap();
        }
        let user = crate::recipe::User {
            name: "ec2-user".into(),
            uid: 1000,
            home: "/home/ec2-user".into(),
            volume: "SageMaker".into(),
        };
        for _ in 0..2 {
            add_user(root, &user, 86_400 * 20_000 + 5).unwrap();
        }
        let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
        let lines = passwd
            .lines()
            .filter(|l| l.starts_with("ec2-user:"))
            .count();
        assert_eq!(lines, 1, "{passwd}");
        assert!(passwd.contains("ec2-user:x:1000:1000::/home/ec2-user:/bin/bash"));
        let shadow = std::fs::read_to_string(root.join("etc/shadow")).unwrap();
        assert!(shadow.contains("ec2-user:*:20000:"), "{shadow}");
        assert!(root.join("home/ec2-user/SageMaker").is_dir());
    }
}
