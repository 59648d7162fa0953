//! The kernel's side of the frame bridge (`rustmaker-frames`): a Unix socket in a session
//! folder of its own that answers a Rust cell's requests for frames, the crate's sources
//! written out for evcxr on first use, and the rendering of a DataFrame that ends a cell.
//!
//! The store is shared with the magics behind a mutex: a Rust cell runs while no magic runs,
//! so the socket's thread takes it then; a request that waits on it longer than
//! [`STORE_PATIENCE`] (a magic evaluating Rust that asks for frames) is refused, not left
//! hanging.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustmaker_frames::wire::{Reply, Request};
use rustmaker_frames::{FrameError, FRAME_MIME};
use rustmaker_magics::table::head_bundle;
use rustmaker_magics::FrameStore;
use serde_json::Value;

use rustmaker_jupyter::server::Bundle;

const STORE_PATIENCE: Duration = Duration::from_secs(5);
/// How long one connection may take to send its request.
const REQUEST_PATIENCE: Duration = Duration::from_secs(10);

/// The crate's sources, as evcxr builds it: `(path in the crate, contents)`.
const SOURCES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../../../frames/Cargo.toml")),
    ("src/lib.rs", include_str!("../../../frames/src/lib.rs")),
    (
        "src/columns.rs",
        include_str!("../../../frames/src/columns.rs"),
    ),
    (
        "src/dataframe.rs",
        include_str!("../../../frames/src/dataframe.rs"),
    ),
    ("src/error.rs", include_str!("../../../frames/src/error.rs")),
    ("src/wire.rs", include_str!("../../../frames/src/wire.rs")),
];

/// What in a cell asks for the bridge's polars form.
const POLARS_FORMS: &[&str] = &[
    "frames::get(",
    "frames::put(",
    "frames::to_polars",
    "frames::from_polars",
    "frames::DataFrame",
    "frames::polars",
];

/// Whether the crate must be added before `code` runs, and with polars (`Some(true)`):
/// where the cell names `frames::` and the session lacks the crate, or the polars form it uses.
/// `added` is what the session has (`Some(true)`: with polars).
pub fn needed(code: &str, added: Option<bool>) -> Option<bool> {
    if !code.contains("frames::") {
        return None;
    }
    let polars = POLARS_FORMS.iter().any(|form| code.contains(form));
    match added {
        Some(had) if had || !polars => None,
        _ => Some(polars),
    }
}

pub struct FramesBridge {
    dir: PathBuf,
    socket: PathBuf,
}

impl FramesBridge {
    /// Makes the session folder (owner only) and starts answering on its socket.
    pub fn open(store: Arc<Mutex<FrameStore>>) -> std::io::Result<FramesBridge> {
        remove_abandoned(&std::env::temp_dir());
        let dir = std::env::temp_dir().join(format!(
            "rustmaker-frames-{}-{}",
            std::process::id(),
            rustmaker_process::random_hex(8)
        ));
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        let socket = dir.join("frames.sock");
        let listener = UnixListener::bind(&socket)?;
        let folder = dir.clone();
        std::thread::Builder::new()
            .name("frames-bridge".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    answer(stream, &store, &folder);
                }
            })?;
        Ok(FramesBridge { dir, socket })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Replaces a frame marker (a DataFrame that ended a cell) by the kernel's table.
    pub fn render(&self, bundle: &mut Bundle) {
        let Some(Value::String(marker)) = bundle.remove(FRAME_MIME) else {
            return;
        };
        let shown = marker
            .trim_end()
            .split_once('\t')
            .and_then(|(rows, path)| Some((rows.parse::<usize>().ok()?, PathBuf::from(path))))
            .filter(|(_, path)| path.parent() == Some(self.dir.as_path()));
        let table = shown.map(|(rows, path)| {
            let read = rustmaker_frames::columns::read_file(&path, "shown")
                .and_then(rustmaker_frames::to_polars);
            let _ = std::fs::remove_file(&path);
            read.map(|head| head_bundle(&head, rows))
        });
        match table {
            Some(Ok(table)) => {
                bundle.clear();
                bundle.extend(table.0);
            }
            Some(Err(e)) => {
                bundle.insert(
                    "text/plain".into(),
                    Value::String(format!("(the frame could not be shown: {e})")),
                );
            }
            None => {}
        }
    }

    /// The evcxr commands that add the crate to the Rust session as `frames`, with polars and
    /// the DataFrame display where asked.
    ///
    /// With polars, evcxr's build cache is turned on first (`RUSTMAKER_EVCXR_CACHE_MB`, 4096
    /// by default; 0 leaves it as it is), so polars builds once per machine, not once per
    /// kernel start. Only then: the cache makes every rustc call of the session go through
    /// a wrapper process, which a session without big dependencies need not pay.
    pub fn session_setup(&self, polars: bool) -> std::io::Result<String> {
        let (cache, features, display) = if polars {
            let cache = match evcxr_cache_mb() {
                0 => String::new(),
                mb => format!(":cache {mb}\n"),
            };
            (
                cache,
                ", features = [\"polars\"]",
                "\nuse rustmaker_frames::FrameDisplay;",
            )
        } else {
            (String::new(), "", "")
        };
        Ok(format!(
            "{cache}:dep rustmaker-frames = {{ path = {:?}{features} }}\nuse rustmaker_frames as frames;{display}",
            self.crate_dir()?.display().to_string()
        ))
    }

    /// Writes the crate out for evcxr (once per version of its sources) and names it.
    fn crate_dir(&self) -> std::io::Result<PathBuf> {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for (path, text) in SOURCES {
            for b in path.bytes().chain(text.bytes()) {
                hash = (hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
            }
        }
        let dir = rustmaker_process::data_dir()
            .join("rust-bridge")
            .join(format!("rustmaker-frames-{hash:016x}"));
        if !dir.join("src/lib.rs").exists() {
            let partial = dir.with_extension(format!("partial-{}", std::process::id()));
            for (path, text) in SOURCES {
                let file = partial.join(path);
                std::fs::create_dir_all(file.parent().expect("a file in the crate"))?;
                std::fs::write(file, text)?;
            }
            if let Err(e) = std::fs::rename(&partial, &dir) {
                let _ = std::fs::remove_dir_all(&partial);
                if !dir.join("src/lib.rs").exists() {
                    return Err(e);
                }
            }
        }
        Ok(dir)
    }

    pub fn close(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The session folders of kernels that were killed (a kill leaves no time to remove them):
/// those whose process is gone.
fn remove_abandoned(temp: &Path) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix("rustmaker-frames-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

fn evcxr_cache_mb() -> u64 {
    std::env::var("RUSTMAKER_EVCXR_CACHE_MB")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(4096)
}

fn answer(stream: UnixStream, store: &Mutex<FrameStore>, dir: &Path) {
    let _ = stream.set_read_timeout(Some(REQUEST_PATIENCE));
    let mut line = String::new();
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let reply = match reader.read_line(&mut line) {
        Ok(_) => match Request::parse(&line).and_then(|r| serve(r, store, dir)) {
            Ok(reply) => reply.line(),
            Err(e) => Reply::error_line(&e.to_string()),
        },
        Err(e) => Reply::error_line(&format!("the request could not be read: {e}")),
    };
    let _ = writer.write_all(reply.as_bytes());
}

fn lock(store: &Mutex<FrameStore>) -> Result<MutexGuard<'_, FrameStore>, FrameError> {
    let started = Instant::now();
    loop {
        match store.try_lock() {
            Ok(guard) => return Ok(guard),
            Err(std::sync::TryLockError::Poisoned(p)) => return Ok(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) if started.elapsed() < STORE_PATIENCE => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(std::sync::TryLockError::WouldBlock) => {
                return Err(FrameError::Kernel(
                    "the frame store is in use by a magic that is running: use frames:: in a Rust cell of its own".into(),
                ))
            }
        }
    }
}

fn serve(request: Request, store: &Mutex<FrameStore>, dir: &Path) -> Result<Reply, FrameError> {
    let refused = |e: rustmaker_magics::MagicError| FrameError::Kernel(e.to_string());
    match request {
        Request::List => Ok(Reply::Frames(
            lock(store)?
                .iter()
                .map(|(name, df)| (name.to_owned(), df.height(), df.width()))
                .collect(),
        )),
        Request::Get { name } => {
            let store = lock(store)?;
            let df = store.get(&name).map_err(refused)?;
            rustmaker_frames::check_size(&name, df.estimated_size() as u64)?;
            let columns = rustmaker_frames::from_polars(df)?;
            drop(store);
            let path = rustmaker_frames::exchange_file(dir, "out");
            rustmaker_frames::columns::write_file(&columns, &path)?;
            Ok(Reply::File(path))
        }
        Request::Put { name, path } => {
            // Only files of this session: the socket reads nothing else on a cell's word.
            if path.parent() != Some(dir) {
                return Err(FrameError::Kernel(format!(
                    "{} is not in this kernel's session folder",
                    path.display()
                )));
            }
            let columns = rustmaker_frames::columns::read_file(&path, &name)?;
            let df = rustmaker_frames::to_polars(columns)?;
            lock(store)?.insert(&name, df).map_err(refused)?;
            Ok(Reply::Stored)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crate_is_added_once_and_again_only_for_polars() {
        assert_eq!(needed("let x = 1;", None), None);
        assert_eq!(needed("frames::columns(\"a\")?", None), Some(false));
        assert_eq!(needed("frames::columns(\"a\")?", Some(false)), None);
        assert_eq!(
            needed(
                "let d: frames::DataFrame = frames::get(\"a\")?;",
                Some(false)
            ),
            Some(true)
        );
        assert_eq!(needed("frames::put(\"a\", &d)?;", Some(true)), None);
        assert_eq!(needed("frames::put_columns(\"a\", &c)?;", Some(true)), None);
    }

    #[test]
    fn requests_are_answered_from_the_store_and_refusals_keep_it() {
        let store = Arc::new(Mutex::new(FrameStore::new()));
        let bridge = FramesBridge::open(store.clone()).unwrap();
        let dir = bridge.dir.clone();
        let frame = rustmaker_frames::Columns::new().with("x", vec![1.0, 2.0]);
        let path = rustmaker_frames::exchange_file(&dir, "in");
        rustmaker_frames::columns::write_file(&frame, &path).unwrap();
        let put = Request::Put {
            name: "a".into(),
            path: path.clone(),
        };
        assert_eq!(serve(put, &store, &dir).unwrap(), Reply::Stored);
        let Reply::File(out) = serve(Request::Get { name: "a".into() }, &store, &dir).unwrap()
        else {
            panic!("a file");
        };
        assert_eq!(
            rustmaker_frames::columns::read_file(&out, "a").unwrap(),
            frame
        );
        let outside = Request::Put {
            name: "b".into(),
            path: "/etc/hostname".into(),
        };
        let e = serve(outside, &store, &dir).unwrap_err().to_string();
        assert!(e.contains("not in this kernel's session folder"), "{e}");
        let bad = Request::Put {
            name: "1b".into(),
            path,
        };
        assert!(serve(bad, &store, &dir)
            .unwrap_err()
            .to_string()
            .contains("not a valid frame name"));
        assert_eq!(
            serve(Request::List, &store, &dir).unwrap(),
            Reply::Frames(vec![("a".into(), 2, 1)])
        );
        // A store held by a running magic is refused after a while, not waited on forever.
        let held = store.lock().unwrap();
        let started = Instant::now();
        let e = serve(Request::List, &store, &dir).unwrap_err().to_string();
        assert!(e.contains("in use by a magic") && started.elapsed() >= STORE_PATIENCE);
        drop(held);
        bridge.close();
        assert!(!dir.exists());
    }

    #[test]
    fn a_killed_kernels_folder_goes_at_the_next_start() {
        // A killed kernel's folder goes at the next start (4194305 is past any pid_max); a live
        // one's stays.
        let temp = std::env::temp_dir().join(format!("frames-abandoned-{}", std::process::id()));
        let (dead, alive) = (
            temp.join("rustmaker-frames-4194305-ab"),
            temp.join(format!("rustmaker-frames-{}-cd", std::process::id())),
        );
        std::fs::create_dir_all(&dead).unwrap();
        std::fs::create_dir_all(&alive).unwrap();
        remove_abandoned(&temp);
        assert!(!dead.exists() && alive.exists());
        std::fs::remove_dir_all(&temp).unwrap();
    }
}
