//! A private temporary folder for a magic's downloads, removed when dropped.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::context::MagicError;

pub struct Scratch(PathBuf);

impl Scratch {
    /// A new empty folder `$TMPDIR/rustmaker-{purpose}-{pid}-{n}`.
    pub fn new(purpose: &str) -> Result<Scratch, MagicError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "rustmaker-{purpose}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| MagicError::Failed(format!("cannot make {}: {e}", dir.display())))?;
        Ok(Scratch(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
