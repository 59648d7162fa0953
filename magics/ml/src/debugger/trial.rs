//! A debugger output directory in smdebug's layout, written step by step ([`TrialWriter`])
//! and read back as it grows ([`Trial`], what the rules and `%debugger` look at):
//!
//! ```text
//! events/{step:012}/{step:012}_worker_0.tfevents   the step's tensors, one Event each
//! index/{step/1000:09}/{step:012}_worker_0.json     where each tensor's record lies, the mode
//! collections/000000000/worker_0_collections.json  collections and their tensor names
//! training_job_end.ts                               the job has ended
//! ```
//!
//! A step's event file is written before its index, and both through a rename, so a reader
//! that sees an index finds the whole step.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use prost::Message;
use serde_json::json;

use super::events::{
    self, Dim, Event, PluginData, Summary, SummaryMetadata, TensorProto, TensorShape, Value,
};
use super::DebuggerError;

pub const WORKER: &str = "worker_0";
pub const END_OF_JOB: &str = "training_job_end.ts";
pub const COLLECTIONS_FILE: &str = "collections/000000000/worker_0_collections.json";

/// smdebug's `ModeKeys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    Train = 1,
    Eval = 2,
    Predict = 3,
    Global = 4,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::Train, Mode::Eval, Mode::Predict, Mode::Global];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Train => "TRAIN",
            Mode::Eval => "EVAL",
            Mode::Predict => "PREDICT",
            Mode::Global => "GLOBAL",
        }
    }

    pub fn parse(text: &str) -> Option<Mode> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(text.trim()))
    }
}

/// A tensor's values (row-major) and shape; a scalar has the shape `[]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
}

impl Tensor {
    pub fn scalar(v: f64) -> Tensor {
        Tensor {
            shape: Vec::new(),
            values: vec![v],
        }
    }

    pub fn vector(values: Vec<f64>) -> Tensor {
        Tensor {
            shape: vec![values.len()],
            values,
        }
    }

    pub fn matrix(rows: usize, cols: usize, values: Vec<f64>) -> Tensor {
        debug_assert_eq!(rows * cols, values.len());
        Tensor {
            shape: vec![rows, cols],
            values,
        }
    }
}

/// How often a collection is saved in a mode (smdebug's `SaveConfigMode`).
#[derive(Debug, Clone, PartialEq)]
pub struct SaveConfig {
    pub save_interval: u64,
    pub save_steps: Vec<u64>,
    pub start_step: u64,
    pub end_step: Option<u64>,
}

impl Default for SaveConfig {
    fn default() -> Self {
        SaveConfig {
            save_interval: 500,
            save_steps: Vec::new(),
            start_step: 0,
            end_step: None,
        }
    }
}

impl SaveConfig {
    /// smdebug's `should_save_step` on the mode's own step count.
    pub fn saves(&self, mode_step: u64) -> bool {
        if !self.save_steps.is_empty() {
            return self.save_steps.contains(&mode_step);
        }
        mode_step >= self.start_step
            && self.end_step.is_none_or(|end| mode_step < end)
            && (mode_step - self.start_step).is_multiple_of(self.save_interval.max(1))
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "save_interval": self.save_interval,
            "save_steps": self.save_steps,
            "start_step": self.start_step,
            "end_step": self.end_step,
        })
    }
}

/// A collection as the hook saves it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Collection {
    pub include_regex: Vec<String>,
    /// Per mode, as smdebug keeps `save_config`.
    pub save: BTreeMap<Mode, SaveConfig>,
    /// smdebug's reductions saved instead of the tensor (`mean`, `l2_norm`, `abs_max`, …).
    pub reductions: Vec<String>,
    /// With reductions: whether the whole tensor is saved too.
    pub save_raw_tensor: bool,
    pub tensor_names: BTreeSet<String>,
}

/// Writes one worker's steps.
pub struct TrialWriter {
    dir: PathBuf,
    collections: BTreeMap<String, Collection>,
    written_names: usize,
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), DebuggerError> {
    let io = |source| DebuggerError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

pub fn event_file(step: u64) -> String {
    format!("events/{step:012}/{step:012}_{WORKER}.tfevents")
}

pub fn index_file(step: u64) -> String {
    format!("index/{:09}/{step:012}_{WORKER}.json", step / 1000)
}

impl TrialWriter {
    /// Starts a trial in `dir` (made if missing) with the collections the hook saves; the
    /// collections file is there from the start, as smdebug's reader waits for it.
    pub fn create(
        dir: &Path,
        collections: BTreeMap<String, Collection>,
    ) -> Result<TrialWriter, DebuggerError> {
        let mut writer = TrialWriter {
            dir: dir.to_path_buf(),
            collections,
            written_names: 0,
        };
        writer.write_collections()?;
        Ok(writer)
    }

    pub fn collections(&self) -> &BTreeMap<String, Collection> {
        &self.collections
    }

    /// Writes a step's tensors, each named in its collection.
    pub fn write_step(
        &mut self,
        step: u64,
        mode: Mode,
        mode_step: u64,
        tensors: &[(Vec<&str>, String, Tensor)],
    ) -> Result<(), DebuggerError> {
        let mut file = Vec::new();
        let mut payload = Vec::new();
        let metadata = SummaryMetadata {
            plugin_data: vec![
                PluginData {
                    plugin_name: events::MODE_STEP_PLUGIN.into(),
                    content: mode_step.to_string(),
                },
                PluginData {
                    plugin_name: events::MODE_PLUGIN.into(),
                    content: (mode as i64).to_string(),
                },
            ],
        };
        let wall_time = crate::store::now();
        for (in_collections, name, tensor) in tensors {
            let proto = TensorProto {
                dtype: events::DT_DOUBLE,
                tensor_shape: Some(TensorShape {
                    dim: tensor
                        .shape
                        .iter()
                        .map(|&d| Dim {
                            size: d as i64,
                            name: format!("{name}_{d}"),
                        })
                        .collect(),
                }),
                tensor_content: tensor.values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                ..Default::default()
            };
            let event = Event {
                wall_time,
                step: step as i64,
                file_version: None,
                summary: Some(Summary {
                    value: vec![Value {
                        tag: name.clone(),
                        simple_value: None,
                        tensor: Some(proto),
                        metadata: Some(metadata.clone()),
                    }],
                }),
            };
            let record = events::frame(&event.encode_to_vec(), events::Footer::Smdebug);
            payload
                .push(json!({"tensorname": name, "start_idx": file.len(), "length": record.len()}));
            file.extend(record);
            for collection in in_collections {
                if let Some(c) = self.collections.get_mut(*collection) {
                    c.tensor_names.insert(name.clone());
                }
            }
        }
        write_atomically(&self.dir.join(event_file(step)), &file)?;
        let index = json!({
            "meta": {"mode": mode.name(), "mode_step": mode_step, "event_file_name": event_file(step)},
            "tensor_payload": payload,
            "shape_payload": [],
        });
        write_atomically(
            &self.dir.join(index_file(step)),
            index.to_string().as_bytes(),
        )?;
        let names: usize = self
            .collections
            .values()
            .map(|c| c.tensor_names.len())
            .sum();
        if names != self.written_names {
            self.write_collections()?;
        }
        Ok(())
    }

    fn write_collections(&mut self) -> Result<(), DebuggerError> {
        let collections: serde_json::Map<String, serde_json::Value> = self
            .collections
            .iter()
            .map(|(name, c)| {
                let save: serde_json::Map<String, serde_json::Value> = c
                    .save
                    .iter()
                    .map(|(m, s)| (m.name().to_owned(), s.json()))
                    .collect();
                let reduction = if c.reductions.is_empty() {
                    serde_json::Value::Null
                } else {
                    json!({"save_raw_tensor": c.save_raw_tensor, "reductions": c.reductions.join(","), "save_shape": false})
                };
                (
                    name.clone(),
                    json!({
                        "name": name,
                        "include_regex": c.include_regex,
                        "tensor_names": c.tensor_names,
                        "reduction_config": reduction,
                        "save_config": save,
                        "save_histogram": true,
                    }),
                )
            })
            .collect();
        let text = json!({"collections": collections, "_meta": {"num_workers": 1}}).to_string();
        write_atomically(&self.dir.join(COLLECTIONS_FILE), text.as_bytes())?;
        self.written_names = self
            .collections
            .values()
            .map(|c| c.tensor_names.len())
            .sum();
        Ok(())
    }

    /// Names a tensor in its collections without writing it (a tensor saved as reductions).
    pub fn register(&mut self, collections: &[&str], name: &str) {
        for c in collections {
            if let Some(c) = self.collections.get_mut(*c) {
                c.tensor_names.insert(name.to_owned());
            }
        }
    }

    /// Marks the end of the job, as smdebug's `training_has_ended` does.
    pub fn finish(&mut self) -> Result<(), DebuggerError> {
        self.write_collections()?;
        write_atomically(&self.dir.join(END_OF_JOB), b"")
    }
}

/// What a saved step holds.
#[derive(Debug, Clone)]
pub struct Step {
    pub mode: Mode,
    pub mode_step: u64,
    pub tensors: BTreeMap<String, Tensor>,
}

/// A debugger output read as it grows (smdebug's `LocalTrial`).
#[derive(Debug, Default)]
pub struct Trial {
    dir: PathBuf,
    steps: BTreeMap<u64, Step>,
    collections: BTreeMap<String, BTreeSet<String>>,
    /// Each collection's `include_regex`, and the collections file's size and time.
    regexes: BTreeMap<String, Vec<regex::Regex>>,
    collections_stamp: Option<(u64, std::time::SystemTime)>,
    ended: bool,
}

impl Trial {
    pub fn open(dir: &Path) -> Trial {
        Trial {
            dir: dir.to_path_buf(),
            ..Trial::default()
        }
    }

    /// Reads the steps whose index appeared since the last call; returns them in order.
    pub fn refresh(&mut self) -> Result<Vec<u64>, DebuggerError> {
        // The end marker first: steps indexed before it are all there once it is.
        let ended = self.dir.join(END_OF_JOB).exists();
        let mut fresh = Vec::new();
        let mut failure = None;
        let index = self.dir.join("index");
        let mut files = Vec::new();
        if let Ok(prefixes) = std::fs::read_dir(&index) {
            for prefix in prefixes.flatten() {
                if let Ok(entries) = std::fs::read_dir(prefix.path()) {
                    files.extend(entries.flatten().map(|e| e.path()));
                }
            }
        }
        for path in files {
            let Some(step) = step_of(&path) else { continue };
            if self.steps.contains_key(&step) {
                continue;
            }
            match self.read_step(&path) {
                Ok(read) => {
                    self.steps.insert(step, read);
                    fresh.push(step);
                }
                // A step a program is still writing is read at the next refresh; one that
                // is still unreadable once the job has ended is an error.
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        fresh.sort_unstable();
        self.read_collections(&fresh)?;
        self.ended = ended;
        match failure {
            Some(e) if ended => Err(e),
            _ => Ok(fresh),
        }
    }

    fn read_step(&self, index_path: &Path) -> Result<Step, DebuggerError> {
        let format = |reason: String| DebuggerError::Format {
            path: index_path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(index_path).map_err(|source| DebuggerError::Io {
            path: index_path.to_path_buf(),
            source,
        })?;
        let index: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format(format!("not JSON: {e}")))?;
        let meta = &index["meta"];
        let mode = meta["mode"]
            .as_str()
            .and_then(Mode::parse)
            .ok_or_else(|| format("meta.mode is not TRAIN, EVAL, PREDICT or GLOBAL".into()))?;
        let mode_step = meta["mode_step"]
            .as_u64()
            .ok_or_else(|| format("meta.mode_step is not a step number".into()))?;
        let mut tensors = BTreeMap::new();
        if let Some(event_file) = meta["event_file_name"].as_str() {
            let path = self.dir.join(event_file);
            let bytes = std::fs::read(&path).map_err(|source| DebuggerError::Io {
                path: path.clone(),
                source,
            })?;
            let bad = |e: events::RecordError| DebuggerError::Format {
                path: path.clone(),
                reason: e.to_string(),
            };
            for (offset, _, data) in events::records(&bytes).map_err(bad)? {
                let event = events::decode(offset, data).map_err(bad)?;
                for value in event.summary.map(|s| s.value).unwrap_or_default() {
                    let Some(proto) = &value.tensor else { continue };
                    let shape: Vec<usize> = proto
                        .tensor_shape
                        .as_ref()
                        .map(|s| s.dim.iter().map(|d| d.size.max(0) as usize).collect())
                        .unwrap_or_default();
                    if let Some(values) = events::values(proto) {
                        tensors.insert(value.tag.clone(), Tensor { shape, values });
                    }
                }
            }
        }
        Ok(Step {
            mode,
            mode_step,
            tensors,
        })
    }

    /// The collections file, parsed again only when it changed; its regexes name the
    /// tensors of the steps read since (of every step, after a change).
    fn read_collections(&mut self, fresh: &[u64]) -> Result<(), DebuggerError> {
        let path = self.dir.join(COLLECTIONS_FILE);
        let stamp = std::fs::metadata(&path)
            .ok()
            .and_then(|m| Some((m.len(), m.modified().ok()?)));
        let changed = stamp.is_some() && stamp != self.collections_stamp;
        if changed {
            let text = std::fs::read_to_string(&path).map_err(|source| DebuggerError::Io {
                path: path.clone(),
                source,
            })?;
            let value: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| DebuggerError::Format {
                    path: path.clone(),
                    reason: format!("not JSON: {e}"),
                })?;
            self.collections.clear();
            self.regexes.clear();
            for (name, c) in value["collections"].as_object().into_iter().flatten() {
                let names: BTreeSet<String> = c["tensor_names"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                let regexes: Vec<regex::Regex> = c["include_regex"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str())
                            .filter_map(|r| regex::Regex::new(&format!("^(?:{r})")).ok())
                            .collect()
                    })
                    .unwrap_or_default();
                self.collections.insert(name.clone(), names);
                self.regexes.insert(name.clone(), regexes);
            }
            self.collections_stamp = stamp;
        }
        let steps: Vec<u64> = if changed {
            self.steps.keys().copied().collect()
        } else {
            fresh.to_vec()
        };
        for (name, regexes) in &self.regexes {
            if regexes.is_empty() {
                continue;
            }
            let names = self.collections.entry(name.clone()).or_default();
            for step in steps.iter().filter_map(|s| self.steps.get(s)) {
                for t in step.tensors.keys() {
                    if regexes.iter().any(|r| r.is_match(t)) {
                        names.insert(t.clone());
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads the step the hook has just written, by its index file alone (no listing).
    pub fn read_written(&mut self, step: u64) -> Result<(), DebuggerError> {
        if !self.steps.contains_key(&step) {
            let read = self.read_step(&self.dir.join(index_file(step)))?;
            self.steps.insert(step, read);
        }
        self.read_collections(&[step])
    }

    pub fn ended(&self) -> bool {
        self.ended
    }

    pub fn steps(&self) -> impl Iterator<Item = (u64, &Step)> {
        self.steps.iter().map(|(k, v)| (*k, v))
    }

    pub fn step(&self, step: u64) -> Option<&Step> {
        self.steps.get(&step)
    }

    pub fn collections(&self) -> &BTreeMap<String, BTreeSet<String>> {
        &self.collections
    }

    /// Every tensor name saved at any step.
    pub fn tensor_names(&self) -> BTreeSet<String> {
        self.steps
            .values()
            .flat_map(|s| s.tensors.keys().cloned())
            .collect()
    }

    /// A tensor's values over the steps that saved it, in a mode (all modes for `None`).
    pub fn series(&self, name: &str, mode: Option<Mode>) -> Vec<(u64, &Step, &Tensor)> {
        self.steps
            .iter()
            .filter(|(_, s)| mode.is_none_or(|m| s.mode == m))
            .filter_map(|(k, s)| s.tensors.get(name).map(|t| (*k, s, t)))
            .collect()
    }
}

fn step_of(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    if !name.ends_with(".json") {
        return None;
    }
    name.split('_').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_configs_follow_smdebugs_rules() {
        let every = SaveConfig {
            save_interval: 3,
            start_step: 2,
            end_step: Some(9),
            ..SaveConfig::default()
        };
        let saved: Vec<u64> = (0..12).filter(|s| every.saves(*s)).collect();
        assert_eq!(saved, vec![2, 5, 8]);
        let listed = SaveConfig {
            save_steps: vec![1, 4],
            ..SaveConfig::default()
        };
        assert_eq!(
            (0..6).filter(|s| listed.saves(*s)).collect::<Vec<_>>(),
            vec![1, 4]
        );
    }

    #[test]
    fn a_written_trial_reads_back_as_it_grows() {
        let dir = tempfile::tempdir().unwrap();
        let collections = BTreeMap::from([
            ("losses".to_owned(), Collection::default()),
            (
                "weights".to_owned(),
                Collection {
                    include_regex: vec!["w.*".into()],
                    ..Collection::default()
                },
            ),
        ]);
        let mut writer = TrialWriter::create(dir.path(), collections).unwrap();
        let mut trial = Trial::open(dir.path());
        assert!(trial.refresh().unwrap().is_empty());
        writer
            .write_step(
                0,
                Mode::Train,
                0,
                &[
                    (vec!["losses"], "loss".into(), Tensor::scalar(0.5)),
                    (
                        vec!["weights"],
                        "w0".into(),
                        Tensor::matrix(2, 2, vec![1.0, 2.0, 3.0, 4.0]),
                    ),
                ],
            )
            .unwrap();
        assert_eq!(trial.refresh().unwrap(), vec![0]);
        writer
            .write_step(
                1,
                Mode::Eval,
                0,
                &[(vec!["losses"], "loss".into(), Tensor::scalar(0.25))],
            )
            .unwrap();
        writer.finish().unwrap();
        assert_eq!(trial.refresh().unwrap(), vec![1]);
        assert!(trial.ended());
        assert_eq!(trial.step(1).unwrap().mode, Mode::Eval);
        assert_eq!(trial.series("loss", Some(Mode::Train)).len(), 1);
        assert_eq!(trial.series("loss", None)[1].2.values, vec![0.25]);
        assert_eq!(trial.step(0).unwrap().tensors["w0"].shape, vec![2, 2]);
        assert!(trial.collections()["weights"].contains("w0"));
        assert!(trial.collections()["losses"].contains("loss"));
        // Damage in a step's events is reported with the file.
        let path = dir.path().join(event_file(1));
        std::fs::write(&path, b"garbage!").unwrap();
        let err = Trial::open(dir.path()).refresh().unwrap_err().to_string();
        assert!(err.contains("000000000001_worker_0.tfevents"), "{err}");
    }
}
