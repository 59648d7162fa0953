//! The process Rust cells run in: evcxr's runtime loop, with a copy of the process kept
//! aside while each cell runs, so that an interrupt returns to the variables as they were
//! before the cell instead of losing them all.
//!
//! evcxr re-runs this binary as its child; the child reads `LOAD_AND_RUN <library> <fn>`,
//! calls the cell's function with the variable store and says `EVCXR_EXECUTION_COMPLETE`
//! (evcxr's `runtime.rs`). Here, before each cell, the serving process forks: the parent runs
//! the cell, the child (a copy-on-write snapshot) waits for its parent to end. A cell that
//! ends has its parent kill the snapshot before answering, so only one answer ever reaches
//! evcxr. An interrupt kills the serving process (named in [`serving_file`]); the snapshot sees
//! its parent gone, tells evcxr the cell failed (`EVCXR_PANIC_NOTIFICATION`: evcxr then drops
//! the variables the cell defined and keeps its process), names itself the server and serves
//! the next cells with the store as it was. A cell that aborts or crashes the process ends
//! the same way.
//!
//! fork keeps only the calling thread: a process with other threads (a cell started one, or a
//! library's thread pool) would continue without them, so it is not forked, and an interrupt
//! there loses the variables, as evcxr's own runtime does.

use std::ffi::c_void;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// evcxr's protocol lines (its `runtime.rs` and `eval_context.rs`).
const EXECUTION_COMPLETE: &str = "EVCXR_EXECUTION_COMPLETE";
const PANIC_NOTIFICATION: &str = "EVCXR_PANIC_NOTIFICATION";
const IS_RUNTIME: &str = "EVCXR_IS_RUNTIME";

/// `0` runs evcxr's own runtime instead (no snapshots).
pub const SNAPSHOTS_ENV: &str = "RUSTMAKER_CELL_SNAPSHOTS";

/// How often a snapshot looks whether the cell's process still runs.
const SNAPSHOT_POLL: Duration = Duration::from_millis(10);

/// The file naming the process that serves the cells of the kernel `kernel_pid`: evcxr's
/// child at first, a snapshot after an interrupt.
pub fn serving_file(kernel_pid: u32) -> PathBuf {
    std::env::temp_dir().join(format!("rustmaker-cells-{kernel_pid}.pid"))
}

/// The process serving the kernel's cells, when this runtime runs them. The file is in a
/// folder every user can write: only a plain file of this user is believed, so no one else
/// can have the kernel signal a process of their choosing.
pub fn serving_pid(kernel_pid: u32) -> Option<i32> {
    use std::os::unix::fs::MetadataExt;
    let file = serving_file(kernel_pid);
    let meta = std::fs::symlink_metadata(&file).ok()?;
    if !meta.is_file() || meta.uid() != unsafe { libc::geteuid() } {
        return None;
    }
    std::fs::read_to_string(file)
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|pid| *pid > 0)
}

/// Forgets what killed kernels left (a kill leaves no time to remove the file; the runtime
/// removes it when evcxr closes its pipe, unless it is killed with the kernel's process
/// group): this kernel's pid's file, and those of kernels whose process is gone. Called
/// before the runtime starts.
pub fn forget_serving(kernel_pid: u32) {
    let _ = std::fs::remove_file(serving_file(kernel_pid));
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix("rustmaker-cells-"))
            .and_then(|n| n.strip_suffix(".pid"))
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Turns this process into the cells' runtime when evcxr started it; returns otherwise.
pub fn hook() {
    let wanted = std::env::var_os(SNAPSHOTS_ENV).is_none_or(|v| v != "0");
    if std::env::var_os(IS_RUNTIME).is_some() && wanted {
        serve();
    }
}

/// Jupyter's `signal` interrupt mode sends SIGINT to the kernel's whole process group. The
/// kernel decides what an interrupt stops (the process running the cell, which the snapshot
/// then replaces); a cell's process and its snapshot dying of the signal themselves would
/// lose the variables, and race the kernel's own handling. A handler that does nothing, not
/// SIG_IGN, so that programs a cell starts get the default back when they exec.
fn outlive_group_interrupts() {
    extern "C" fn nothing(_: libc::c_int) {}
    // SAFETY: installs a handler that touches nothing; sigaction is given a zeroed struct
    // with the handler, SA_RESTART and an empty mask.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = nothing as extern "C" fn(libc::c_int) as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
    }
}

fn serve() -> ! {
    outlive_group_interrupts();
    // evcxr's child is started by the kernel's process.
    let file = serving_file(unsafe { libc::getppid() } as u32);
    announce(&file);
    // Libraries are never unloaded, as in evcxr: thread-local destructors may live in them.
    let mut libraries: Vec<libloading::Library> = Vec::new();
    let mut store: *mut c_void = std::ptr::null_mut();
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    while let Some(Ok(line)) = lines.next() {
        let Some((library, function)) = line
            .strip_prefix("LOAD_AND_RUN ")
            .and_then(|rest| rest.split_once(' '))
        else {
            eprintln!("While processing instruction `{line:?}`, got error: unrecognised line");
            std::process::exit(99);
        };
        let snapshot = if alone() {
            fork_snapshot(&file)
        } else {
            Fork::NotForked
        };
        if let Fork::TookOver = snapshot {
            continue;
        }
        let ran = run_cell(library, function, &mut store);
        if let Fork::Parent(pid) = snapshot {
            // Before the answer: once evcxr has it, an interrupt must find no snapshot.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
        match ran {
            Ok(library) => libraries.push(library),
            Err(e) => {
                eprintln!("While processing instruction `{line:?}`, got error: {e}");
                std::process::exit(99);
            }
        }
        say(EXECUTION_COMPLETE);
    }
    // evcxr closed the pipe: the kernel ended or restarts its runtime.
    if std::fs::read_to_string(&file).is_ok_and(|pid| pid.trim() == std::process::id().to_string())
    {
        let _ = std::fs::remove_file(&file);
    }
    std::process::exit(0)
}

fn run_cell(
    library: &str,
    function: &str,
    store: &mut *mut c_void,
) -> Result<libloading::Library, libloading::Error> {
    // SAFETY: as evcxr's runtime: the library is the cell evcxr just compiled, and its
    // function takes and returns the variable store.
    unsafe {
        let library = libloading::Library::new(library)?;
        let user_fn =
            library.get::<extern "C" fn(*mut c_void) -> *mut c_void>(function.as_bytes())?;
        *store = user_fn(*store);
        Ok(library)
    }
}

enum Fork {
    /// This is the process that runs the cell; the snapshot has this pid.
    Parent(libc::pid_t),
    /// This is the snapshot, and the cell's process ended before the cell did.
    TookOver,
    NotForked,
}

fn fork_snapshot(file: &Path) -> Fork {
    let server = unsafe { libc::getpid() };
    // Nothing buffered may be written twice.
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    match unsafe { libc::fork() } {
        -1 => Fork::NotForked,
        0 => {
            while unsafe { libc::getppid() } == server {
                std::thread::sleep(SNAPSHOT_POLL);
            }
            // The kernel reads a panic's report from stderr; an interrupt is told as such.
            eprintln!("thread 'cell' panicked at the process running it:");
            eprintln!(
                "the process ended before the cell did (it aborted or crashed); the variables are as they were before the cell"
            );
            say(PANIC_NOTIFICATION);
            say(EXECUTION_COMPLETE);
            announce(file);
            Fork::TookOver
        }
        pid => Fork::Parent(pid),
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Whether this process has one thread, so a fork copies all of it.
fn alone() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|tasks| tasks.count() == 1)
}

fn announce(file: &Path) {
    let pid = std::process::id();
    let written = file.with_extension(format!("{pid}.tmp"));
    if std::fs::write(&written, pid.to_string()).is_ok() {
        let _ = std::fs::rename(&written, file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plain_file_of_this_user_names_the_server() {
        // A pid no kernel has here: its file is ours to write.
        let kernel = u32::MAX - 7;
        let file = serving_file(kernel);
        std::fs::write(&file, "12345\n").unwrap();
        assert_eq!(serving_pid(kernel), Some(12345));
        std::fs::write(&file, "not a pid").unwrap();
        assert_eq!(serving_pid(kernel), None);
        std::fs::remove_file(&file).unwrap();
        // A link is not believed, wherever it points.
        let target = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(target.path(), "1").unwrap();
        std::os::unix::fs::symlink(target.path(), &file).unwrap();
        assert_eq!(serving_pid(kernel), None);
        // The file of a kernel that is gone is forgotten when another starts.
        forget_serving(u32::MAX - 8);
        assert!(std::fs::symlink_metadata(&file).is_err());
    }
}
