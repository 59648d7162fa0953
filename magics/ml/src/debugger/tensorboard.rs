//! The scalars of a job for TensorBoard, as smdebug's hook exports them with
//! `export_tensorboard` and `tensorboard_dir`: one event file a mode
//! (`{tensorboard_dir}/{MODE}/events.out.tfevents.{time}.rustmaker`), each scalar a
//! `simple_value`, every record checksummed as TensorFlow's reader (and TensorBoard's)
//! checks it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use prost::Message;

use super::events::{self, Event, Summary, Value};
use super::trial::Mode;
use super::DebuggerError;
use crate::store::now;

pub struct TensorboardWriter {
    dir: PathBuf,
    files: BTreeMap<Mode, (PathBuf, std::fs::File)>,
}

impl TensorboardWriter {
    /// A writer into `dir`; the event files an earlier run of the job wrote there go, so
    /// TensorBoard shows this run alone.
    pub fn new(dir: &Path) -> TensorboardWriter {
        for mode in Mode::ALL {
            let Ok(entries) = std::fs::read_dir(dir.join(mode.name())) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with("events.out.tfevents.") && name.ends_with(".rustmaker") {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        TensorboardWriter {
            dir: dir.to_path_buf(),
            files: BTreeMap::new(),
        }
    }

    /// Appends a step's scalars to the mode's file (made, with TensorFlow's file-version
    /// event first, at the mode's first step).
    pub fn write(
        &mut self,
        mode: Mode,
        step: u64,
        scalars: &[(String, f64)],
    ) -> Result<(), DebuggerError> {
        if scalars.is_empty() {
            return Ok(());
        }
        if !self.files.contains_key(&mode) {
            let dir = self.dir.join(mode.name());
            let path = dir.join(format!("events.out.tfevents.{}.rustmaker", now() as u64));
            let io = |source| DebuggerError::Io {
                path: path.clone(),
                source,
            };
            std::fs::create_dir_all(&dir).map_err(io)?;
            let mut file = std::fs::File::create(&path).map_err(io)?;
            let version = Event {
                wall_time: now(),
                step: 0,
                file_version: Some("brain.Event:2".into()),
                summary: None,
            };
            file.write_all(&events::frame(
                &version.encode_to_vec(),
                events::Footer::Data,
            ))
            .map_err(io)?;
            self.files.insert(mode, (path, file));
        }
        let (path, file) = self.files.get_mut(&mode).expect("opened above");
        let event = Event {
            wall_time: now(),
            step: step as i64,
            file_version: None,
            summary: Some(Summary {
                value: scalars
                    .iter()
                    .map(|(tag, v)| Value {
                        tag: tag.clone(),
                        simple_value: Some(*v as f32),
                        tensor: None,
                        metadata: None,
                    })
                    .collect(),
            }),
        };
        file.write_all(&events::frame(&event.encode_to_vec(), events::Footer::Data))
            .and_then(|_| file.flush())
            .map_err(|source| DebuggerError::Io {
                path: path.clone(),
                source,
            })
    }
}
