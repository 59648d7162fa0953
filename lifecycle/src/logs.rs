//! Log streams: one file per instance and hook, named as SageMaker names the CloudWatch
//! streams (`<instance>/LifecycleConfigOnCreate`, `<instance>/LifecycleConfigOnStart`), each
//! line stamped with its UTC time and kept across restarts (appended, never truncated).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::Hook;
use crate::LifecycleError;

#[derive(Debug, Clone)]
pub struct LogStream {
    pub name: String,
    path: PathBuf,
}

pub fn stamp() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

impl LogStream {
    /// The stream of `instance`'s `hook`, under the service's `logs` folder.
    pub fn for_hook(root: &Path, instance: &str, hook: Hook) -> LogStream {
        LogStream {
            name: format!("{instance}/{}", hook.stream_suffix()),
            path: root
                .join(instance)
                .join(format!("{}.log", hook.stream_suffix())),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends lines, each stamped with the time.
    pub fn append(&self, text: &str) -> Result<(), LifecycleError> {
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).map_err(LifecycleError::io(format!(
                "cannot make {}",
                parent.display()
            )))?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(LifecycleError::io(format!(
                "cannot write {}",
                self.path.display()
            )))?;
        let now = stamp();
        let mut out = String::new();
        for line in text.lines() {
            out.push_str(&now);
            out.push(' ');
            out.push_str(line);
            out.push('\n');
        }
        file.write_all(out.as_bytes())
            .map_err(LifecycleError::io(format!(
                "cannot write {}",
                self.path.display()
            )))
    }

    /// The stream's text from byte `from` on (empty when it has none yet).
    pub fn read_from(&self, from: u64) -> (String, u64) {
        let text = std::fs::read(&self.path).unwrap_or_default();
        let from = (from as usize).min(text.len());
        (
            String::from_utf8_lossy(&text[from..]).into_owned(),
            text.len() as u64,
        )
    }
}
