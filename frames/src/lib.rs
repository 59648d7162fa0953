//! rustmaker-frames: how a Rust cell reads and writes the kernel's frames (what `%%sql -o`,
//! `%s3 read` or `%predict -o` produce, and what `%train --data` or `%%send_to_spark` read).
//!
//! ```ignore
//! let counts = frames::columns("counts")?;            // no dependency: column vectors
//! let words = counts.text("word").unwrap();
//! frames::put_columns("lengths", &frames::Columns::new()
//!     .with("len", words.iter().map(|w| w.as_ref().map(|w| w.len() as i64)).collect::<Vec<_>>()))?;
//! let df: frames::DataFrame = frames::get("counts")?;  // polars (feature `polars`)
//! frames::put("scored", &df)?;
//! ```
//!
//! The kernel adds this crate to the Rust session the first time a cell names `frames::`,
//! with the `polars` feature when the cell uses `frames::get` or `frames::put`; cells that do
//! not use frames compile nothing of it. A request travels over the kernel's Unix socket
//! (`RUSTMAKER_FRAMES_SOCKET`, which the kernel sets for its Rust process) and the frame
//! itself through a file beside it in [`columns`]' format, so neither side needs Arrow.
//! Frames over the bridge's limit (`RUSTMAKER_FRAMES_LIMIT_MB`, 2048 by default) are
//! refused on both sides with what to do instead.

pub mod columns;
#[cfg(feature = "polars")]
mod dataframe;
mod error;
pub mod wire;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

pub use columns::{Column, Columns};
#[cfg(feature = "polars")]
pub use dataframe::{from_polars, to_polars, FrameDisplay, FRAME_MIME, SHOWN_ROWS};
pub use error::FrameError;
/// polars itself, for the session that reached it through the bridge: `frames::polars::prelude::*`.
#[cfg(feature = "polars")]
pub use polars;
/// The type to name where evcxr cannot infer it: `let df: frames::DataFrame = frames::get("x")?;`.
#[cfg(feature = "polars")]
pub use polars::prelude::DataFrame;
use wire::{Reply, Request};

/// The environment variable naming the kernel's socket.
pub const SOCKET_ENV: &str = "RUSTMAKER_FRAMES_SOCKET";
/// The environment variable with the bridge's limit in MB (decimals allowed).
pub const LIMIT_ENV: &str = "RUSTMAKER_FRAMES_LIMIT_MB";
const DEFAULT_LIMIT_MB: f64 = 2048.0;

/// The bridge's limit in bytes: `RUSTMAKER_FRAMES_LIMIT_MB`, else 2048 MB.
pub fn limit_bytes() -> u64 {
    let mb = std::env::var(LIMIT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|mb| *mb > 0.0)
        .unwrap_or(DEFAULT_LIMIT_MB);
    (mb * 1_000_000.0) as u64
}

/// The refusal for a frame of `bytes` over the limit.
pub fn check_size(name: &str, bytes: u64) -> Result<(), FrameError> {
    let limit = limit_bytes();
    if bytes > limit {
        return Err(FrameError::TooLarge {
            name: name.to_owned(),
            bytes,
            limit,
        });
    }
    Ok(())
}

/// The frame `name` as column vectors.
pub fn columns(name: &str) -> Result<Columns, FrameError> {
    match ask(&Request::Get { name: name.into() })? {
        Reply::File(path) => {
            let read = columns::read_file(&path, name);
            let _ = std::fs::remove_file(&path);
            read
        }
        other => Err(FrameError::Protocol(format!("unexpected answer {other:?}"))),
    }
}

/// Stores `frame` in the kernel as `name`, replacing a frame of that name.
pub fn put_columns(name: &str, frame: &Columns) -> Result<(), FrameError> {
    wire::check_name(name)?;
    check_size(name, frame.size_bytes())?;
    let socket = socket()?;
    let path = exchange_file(socket.parent().unwrap_or(Path::new(".")), "in");
    columns::write_file(frame, &path)?;
    let answer = ask_at(
        &socket,
        &Request::Put {
            name: name.into(),
            path: path.clone(),
        },
    );
    let _ = std::fs::remove_file(&path);
    match answer? {
        Reply::Stored => Ok(()),
        other => Err(FrameError::Protocol(format!("unexpected answer {other:?}"))),
    }
}

/// The kernel's frames: (name, rows, columns), in name order.
pub fn list() -> Result<Vec<(String, usize, usize)>, FrameError> {
    match ask(&Request::List)? {
        Reply::Frames(frames) => Ok(frames),
        other => Err(FrameError::Protocol(format!("unexpected answer {other:?}"))),
    }
}

/// The frame `name` as a polars DataFrame.
#[cfg(feature = "polars")]
pub fn get(name: &str) -> Result<polars::prelude::DataFrame, FrameError> {
    to_polars(columns(name)?)
}

/// Stores a polars DataFrame in the kernel as `name`.
#[cfg(feature = "polars")]
pub fn put(name: &str, frame: &polars::prelude::DataFrame) -> Result<(), FrameError> {
    put_columns(name, &from_polars(frame)?)
}

fn socket() -> Result<PathBuf, FrameError> {
    std::env::var_os(SOCKET_ENV)
        .map(PathBuf::from)
        .ok_or(FrameError::NoKernel)
}

/// A fresh file in `folder` (the kernel's session folder, which holds its socket) for one
/// exchange.
pub fn exchange_file(folder: &Path, kind: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    folder.join(format!("{kind}-{}-{n}.cols", std::process::id()))
}

fn ask(request: &Request) -> Result<Reply, FrameError> {
    ask_at(&socket()?, request)
}

fn ask_at(socket: &Path, request: &Request) -> Result<Reply, FrameError> {
    let unreachable = |source| FrameError::Unreachable {
        socket: socket.to_owned(),
        source,
    };
    request.check()?;
    let mut stream = UnixStream::connect(socket).map_err(unreachable)?;
    stream
        .write_all(request.line().as_bytes())
        .map_err(unreachable)?;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .map_err(unreachable)?;
    Reply::parse(&line)
}
