//! What engines share about data: the object store they read from and write to (S3, wired in
//! by the composition root, so no engine imports another), and how a data argument
//! (`--data SOURCE`) is resolved: an `s3://` object first, then a frame, then a local file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::DataFrame;

use crate::context::{MagicContext, MagicError};

/// Object storage (`s3://…`) as engines see it.
pub trait ObjectStore: Send + Sync {
    /// Downloads an object, or every object under a prefix, into `dir`; returns the local path
    /// (a file for an object, a folder for a prefix). `ctx` shows progress when given.
    fn fetch(
        &self,
        url: &str,
        dir: &Path,
        ctx: Option<&dyn MagicContext>,
    ) -> Result<PathBuf, MagicError>;
    /// Uploads a local file to `url`.
    fn put(&self, path: &Path, url: &str, ctx: &mut dyn MagicContext) -> Result<(), MagicError>;
}

/// The store engines get when none is wired (a console without AWS): every call says so.
pub struct NoObjectStore;

impl ObjectStore for NoObjectStore {
    fn fetch(
        &self,
        url: &str,
        _: &Path,
        _: Option<&dyn MagicContext>,
    ) -> Result<PathBuf, MagicError> {
        Err(MagicError::Service(format!(
            "{url}: no object store is configured here; give a local file instead"
        )))
    }
    fn put(&self, _: &Path, url: &str, _: &mut dyn MagicContext) -> Result<(), MagicError> {
        Err(MagicError::Service(format!(
            "{url}: no object store is configured here; give a local folder instead"
        )))
    }
}

pub type SharedObjectStore = Arc<dyn ObjectStore>;

/// A data argument, resolved.
#[derive(Debug)]
pub enum DataArg {
    /// A frame of the kernel's frame store.
    Frame { name: String, frame: DataFrame },
    /// A local file: given as a path, or downloaded from `uri` (`s3://…`) into the scratch
    /// folder.
    File { path: PathBuf, uri: String },
}

/// Resolves `source`: `s3://` (one object, not a prefix) is downloaded into `scratch`; then a
/// frame by that name; then a file. The error says what `source` was not.
pub fn resolve(
    source: &str,
    store: &dyn ObjectStore,
    scratch: &Path,
    ctx: &mut dyn MagicContext,
    formats: &str,
) -> Result<DataArg, MagicError> {
    if source.starts_with("s3://") {
        let path = store.fetch(source, scratch, Some(&*ctx))?;
        if path.is_dir() {
            return Err(MagicError::Data(format!(
                "{source} is a prefix; give one object ({formats})"
            )));
        }
        return Ok(DataArg::File {
            path,
            uri: source.to_owned(),
        });
    }
    if let Ok(frame) = ctx.frames().get(source) {
        return Ok(DataArg::Frame {
            name: source.to_owned(),
            frame: frame.clone(),
        });
    }
    let path = PathBuf::from(source);
    if !path.exists() {
        return Err(MagicError::Data(format!(
            "`{source}` is neither a frame (`%frames` lists them) nor a file"
        )));
    }
    let uri = std::fs::canonicalize(&path)
        .unwrap_or(path.clone())
        .display()
        .to_string();
    Ok(DataArg::File { path, uri })
}
