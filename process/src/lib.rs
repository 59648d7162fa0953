//! rustmaker-process: the process and file helpers that the kernel's engines and the instance
//! service share, so that each is written once: signalling a process group, finding the Python
//! to run, where rustmaker keeps its data, and writing a file whole or not at all.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Signals a process group by its leader's pid: the process and everything it started (a
/// child started with `process_group(0)` leads its own group).
pub fn kill_group(pid: u32, signal: i32) {
    // SAFETY: kill(2) with a negative pid only sends a signal; no memory is touched.
    unsafe {
        libc::kill(-(pid as i32), signal);
    }
}

/// Whether `tool` is an executable file in one of `$PATH`'s folders.
pub fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| on_paths(&paths, tool))
}

/// Whether `tool` is a file in one of `paths` (a `PATH`-style list).
pub fn on_paths(paths: &std::ffi::OsStr, tool: &str) -> bool {
    std::env::split_paths(paths).any(|d| d.join(tool).is_file())
}

/// Random bytes as hex (keys, tokens, unique folder names), from the kernel's generator.
pub fn random_hex(bytes: usize) -> String {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut buf);
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where rustmaker keeps its data (training jobs, the experiment store, the service's state):
/// `$RUSTMAKER_DATA_DIR`, else `$XDG_DATA_HOME/rustmaker`, else `~/.local/share/rustmaker`.
pub fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RUSTMAKER_DATA_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(dir).join("rustmaker");
    }
    let home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
    home.join(".local/share/rustmaker")
}

/// The Python that runs users' scripts and the PySpark sessions: `$RUSTMAKER_PYTHON`, else the
/// active virtual environment's (`$VIRTUAL_ENV/bin/python`), else `python3` on the PATH.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("RUSTMAKER_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        let p = PathBuf::from(venv).join("bin/python");
        if p.exists() {
            return p;
        }
    }
    PathBuf::from("python3")
}

/// Writes `bytes` to `path` whole or not at all: into a temporary file beside it (with
/// `mode` when given, e.g. 0o600 for secrets), then renamed over it. Readers never see a
/// half-written file, and a failed write leaves the old one.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Option<u32>) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|f| f.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        if let Some(mode) = mode {
            options.mode(mode);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_whole_files_and_keep_the_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        write_atomic(&path, b"{\"a\": 1}", Some(0o600)).unwrap();
        write_atomic(&path, b"{\"a\": 2}", Some(0o600)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\": 2}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left");
        // A folder where the file should be: the write fails and leaves nothing behind.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir_all(blocked.join("x")).unwrap();
        assert!(write_atomic(&blocked, b"no", None).is_err());
        assert!(blocked.join("x").is_dir());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn killing_a_group_ends_its_children() {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30; wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        kill_group(child.id(), libc::SIGKILL);
        let status = child.wait().unwrap();
        assert!(!status.success());
    }
}
