//! `rustmaker install`: writes the kernelspec that makes Jupyter offer "Rust (rustmaker)".

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::json;

const LOGO_32: &[u8] = include_bytes!("../assets/logo-32x32.png");
const LOGO_64: &[u8] = include_bytes!("../assets/logo-64x64.png");
const LOGO_SVG: &[u8] = include_bytes!("../assets/logo-svg.svg");

/// Where Jupyter looks for kernelspecs, as `jupyter kernelspec install` names them.
#[derive(Debug, Clone)]
pub enum Location {
    /// The user's Jupyter data directory (`$JUPYTER_DATA_DIR`, else `~/.local/share/jupyter`).
    User,
    /// The active Python environment (`$VIRTUAL_ENV`, `$CONDA_PREFIX`, else `python3`'s prefix).
    SysPrefix,
    /// `DIR/share/jupyter`.
    Prefix(PathBuf),
}

fn data_dir(location: &Location) -> anyhow::Result<PathBuf> {
    Ok(match location {
        Location::User => {
            if let Some(dir) = std::env::var_os("JUPYTER_DATA_DIR") {
                PathBuf::from(dir)
            } else if let Some(xdg) = std::env::var_os("XDG_DATA_HOME") {
                PathBuf::from(xdg).join("jupyter")
            } else {
                let home = std::env::var_os("HOME").context("HOME is not set: use --prefix DIR")?;
                PathBuf::from(home).join(".local/share/jupyter")
            }
        }
        Location::SysPrefix => python_prefix()?.join("share/jupyter"),
        Location::Prefix(dir) => dir.join("share/jupyter"),
    })
}

fn python_prefix() -> anyhow::Result<PathBuf> {
    for var in ["VIRTUAL_ENV", "CONDA_PREFIX"] {
        if let Some(dir) = std::env::var_os(var) {
            return Ok(PathBuf::from(dir));
        }
    }
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.prefix)"])
        .output()
        .context("--sys-prefix needs an active Python environment or python3 on PATH")?;
    if !out.status.success() {
        bail!("python3 could not tell its sys.prefix; use --prefix DIR instead");
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Writes `kernels/<name>/` with kernel.json and the logos; returns the directory.
pub fn install(location: &Location, name: &str, interrupt_mode: &str) -> anyhow::Result<PathBuf> {
    if !matches!(interrupt_mode, "message" | "signal") {
        bail!("interrupt mode must be `message` or `signal`, not `{interrupt_mode}`");
    }
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        bail!("a kernel name may hold only ASCII letters, digits, `.`, `_` and `-`: `{name}`");
    }
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .context("cannot find the rustmaker executable's own path")?;
    let dir = data_dir(location)?.join("kernels").join(name);
    // The environment's Python runs the local Livy server's PySpark sessions.
    let python = match location {
        Location::User => None,
        Location::SysPrefix => python_prefix().ok(),
        Location::Prefix(dir) => Some(dir.clone()),
    }
    .map(|prefix| prefix.join("bin").join("python"))
    .filter(|p| p.exists());
    write_spec(&dir, &exe, interrupt_mode, python.as_deref())?;
    Ok(dir)
}

fn write_spec(
    dir: &Path,
    exe: &Path,
    interrupt_mode: &str,
    python: Option<&Path>,
) -> anyhow::Result<()> {
    let env = match python {
        Some(p) => json!({ "RUSTMAKER_PYTHON": p }),
        None => json!({}),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let spec = json!({
        "argv": [exe, "kernel", "--connection-file", "{connection_file}"],
        "display_name": "Rust (rustmaker)",
        "language": "rust",
        "interrupt_mode": interrupt_mode,
        "env": env,
        "metadata": { "debugger": false },
    });
    let files: [(&str, &[u8]); 4] = [
        ("kernel.json", &serde_json::to_vec_pretty(&spec)?),
        ("logo-32x32.png", LOGO_32),
        ("logo-64x64.png", LOGO_64),
        ("logo-svg.svg", LOGO_SVG),
    ];
    for (file, bytes) in files {
        let path = dir.join(file);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// `rustmaker install`'s options.
#[derive(Args)]
#[group(multiple = false)]
pub struct Where {
    /// Install for the current user (the default).
    #[arg(long)]
    pub user: bool,
    /// Install into the active Python environment (a virtualenv or conda env).
    #[arg(long)]
    pub sys_prefix: bool,
    /// Install under DIR/share/jupyter.
    #[arg(long, value_name = "DIR")]
    pub prefix: Option<PathBuf>,
}

#[derive(Args)]
pub struct InstallArgs {
    #[command(flatten)]
    pub location: Where,
    /// The kernelspec's name.
    #[arg(long, default_value = "rustmaker")]
    pub name: String,
    /// How Jupyter interrupts the kernel: `message` (interrupt_request) or `signal` (SIGINT).
    #[arg(long, default_value = "message")]
    pub interrupt_mode: String,
}

/// Runs `rustmaker install`.
pub fn run(args: InstallArgs) -> anyhow::Result<()> {
    let location = match args.location {
        Where {
            sys_prefix: true, ..
        } => Location::SysPrefix,
        Where {
            prefix: Some(dir), ..
        } => Location::Prefix(dir),
        _ => Location::User,
    };
    let dir = install(&location, &args.name, &args.interrupt_mode)?;
    println!(
        "Installed the kernelspec `{}` in {}",
        args.name,
        dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_complete_kernelspec_under_a_prefix() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = install(&Location::Prefix(tmp.path().into()), "rustmaker", "message").unwrap();
        assert_eq!(dir, tmp.path().join("share/jupyter/kernels/rustmaker"));
        let spec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("kernel.json")).unwrap()).unwrap();
        assert_eq!(spec["display_name"], "Rust (rustmaker)");
        assert_eq!(spec["language"], "rust");
        assert_eq!(spec["interrupt_mode"], "message");
        assert_eq!(spec["argv"][3], "{connection_file}");
        for logo in ["logo-32x32.png", "logo-64x64.png", "logo-svg.svg"] {
            assert!(dir.join(logo).metadata().unwrap().len() > 100, "{logo}");
        }
        assert_eq!(
            &std::fs::read(dir.join("logo-32x32.png")).unwrap()[..4],
            b"\x89PNG"
        );
        assert_eq!(
            spec["env"],
            serde_json::json!({}),
            "no Python in this prefix"
        );
    }

    #[test]
    fn an_environment_with_python_runs_the_local_spark_sessions() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("bin")).unwrap();
        std::fs::write(tmp.path().join("bin/python"), "").unwrap();
        let dir = install(&Location::Prefix(tmp.path().into()), "rm", "message").unwrap();
        let spec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("kernel.json")).unwrap()).unwrap();
        assert_eq!(
            spec["env"]["RUSTMAKER_PYTHON"],
            tmp.path().join("bin/python").to_str().unwrap()
        );
    }

    #[test]
    fn bad_options_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let at = Location::Prefix(tmp.path().into());
        assert!(install(&at, "rustmaker", "sometimes").is_err());
        assert!(install(&at, "../escape", "message").is_err());
    }
}
