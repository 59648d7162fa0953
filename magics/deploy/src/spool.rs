//! Data capture to `s3://`, as SageMaker writes it: an endpoint's records go to a local spool
//! (`capture-spool/{bucket}/{prefix}/…` beside the store) in the same rolled files as local
//! capture, and the service's timer uploads each file once it has rolled, to the same
//! `{DestinationS3Uri}/{endpoint}/{variant}/yyyy/mm/dd/hh/` key, then removes it. A file is
//! only ever uploaded whole; one that fails to upload stays and is tried again, and the
//! failure shows in `DescribeEndpoint` until an upload succeeds.

use std::path::{Path, PathBuf};

use crate::capture::CaptureConfig;
use crate::hosting::Hosting;

/// Rolled capture files under `dir` (hidden files are still being written).
fn rolled(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if path.is_dir() {
            rolled(&path, out);
        } else if !hidden && path.extension().is_some_and(|e| e == "jsonl") {
            out.push(path);
        }
    }
}

impl Hosting {
    /// The capture an endpoint writes: an `s3://` destination becomes its spool folder.
    pub(crate) fn spooled(&self, mut capture: CaptureConfig) -> Result<CaptureConfig, String> {
        if let Some(rest) = capture.destination.strip_prefix("s3://") {
            if self.store.is_none() {
                return Err(format!(
                    "DataCaptureConfig.DestinationS3Uri {}: this service has no S3 access; give a local folder",
                    capture.destination
                ));
            }
            capture.destination = self
                .spool
                .join(rest.trim_matches('/'))
                .display()
                .to_string();
        }
        Ok(capture)
    }

    /// Uploads every rolled capture file in the spool (for the service's timer), oldest
    /// first; returns how many went up.
    pub fn upload_captures(&self) -> usize {
        let Some(store) = &self.store else {
            return 0;
        };
        let mut files = Vec::new();
        rolled(&self.spool, &mut files);
        files.sort();
        let mut uploaded = 0;
        for file in files {
            let Ok(relative) = file.strip_prefix(&self.spool) else {
                continue;
            };
            let url = format!("s3://{}", relative.display());
            let mut quiet = rustmaker_magics::console::Console::new();
            match store.put(&file, &url, &mut quiet) {
                Ok(()) => {
                    let _ = std::fs::remove_file(&file);
                    *self.upload_failure.lock().expect("never poisoned") = None;
                    uploaded += 1;
                }
                Err(e) => {
                    *self.upload_failure.lock().expect("never poisoned") =
                        Some(format!("cannot upload captured data to {url}: {e}"));
                    break;
                }
            }
        }
        uploaded
    }

    /// The captured traffic of an endpoint whose destination is `s3://`, downloaded into
    /// `dir` for a monitoring execution (after uploading what was still spooled).
    pub(crate) fn download_capture(&self, prefix: &str, dir: &Path) -> Result<PathBuf, String> {
        let store = self
            .store
            .as_ref()
            .ok_or_else(|| format!("{prefix}: this service has no S3 access"))?;
        self.upload_captures();
        store
            .fetch(prefix, dir, None)
            .map_err(|e| format!("cannot read the captured data at {prefix}: {e}"))
    }
}
