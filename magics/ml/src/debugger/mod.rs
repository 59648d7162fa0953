//! Debugger: SageMaker's `DebugHookConfig` and `DebugRuleConfigurations` for every training
//! job. A built-in learner saves its tensors through a [`Hook`] at each step (boosting
//! round, solver iteration, epoch) into smdebug's on-disk format ([`trial`], [`events`]),
//! so smdebug's own `create_trial` reads them; the configured [`rules`] read each saved step
//! back as it appears and, with the StopTraining action, stop the job within the step.
//! [`config`] checks the configuration before training starts.

pub mod config;
pub mod events;
pub mod learners;
pub mod rules;
pub mod summary;
pub mod tensorboard;
pub mod trial;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde_json::json;

pub use config::{DebugHookConfig, DebugRuleConfiguration, Settings};
use rules::Evaluation;
use trial::TrialWriter;
pub use trial::{Mode, Tensor, Trial};

/// smdebug's scalar collections: exported to TensorBoard, never reduced.
const SCALAR_COLLECTIONS: [&str; 2] = ["losses", "metrics"];

/// A hook or rule parameter's boolean, as smdebug's `parse_bool` reads it.
pub(crate) fn is_true(v: &str) -> bool {
    matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes")
}

/// What went wrong in the debugger, in words for the notebook.
#[derive(Debug, thiserror::Error)]
pub enum DebuggerError {
    #[error("{field}: {reason}")]
    Config { field: String, reason: String },
    #[error("cannot use {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not smdebug's format: {reason}")]
    Format { path: PathBuf, reason: String },
}

impl From<DebuggerError> for crate::MlError {
    fn from(e: DebuggerError) -> Self {
        match e {
            DebuggerError::Config { .. } => crate::MlError::Input(e.to_string()),
            _ => crate::MlError::Training(format!("debugger: {e}")),
        }
    }
}

/// Why a rule stopped the job.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleStop {
    pub rule: String,
    pub step: u64,
    pub details: String,
    /// StalledTrainingRule's: the learner is not reaching its next step.
    pub stalled: bool,
}

impl std::fmt::Display for RuleStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stopped by rule {} at step {}: {}",
            self.rule, self.step, self.details
        )
    }
}

/// The rules of a job and the trial they read; shared by the hook (which evaluates each
/// step it saves) and the job's watcher (which shows them and judges stalls).
pub struct Rules {
    job: String,
    trial: Trial,
    evaluations: Vec<Evaluation>,
    last_step_at: Instant,
    last_step: Option<u64>,
    stop: Option<RuleStop>,
    /// Steps the rules have seen.
    evaluated: std::collections::BTreeSet<u64>,
}

impl Rules {
    pub fn new(job: &str, settings: &Settings) -> Rules {
        Rules {
            job: job.to_owned(),
            trial: Trial::open(&settings.dir),
            evaluations: settings
                .rules
                .iter()
                .cloned()
                .map(Evaluation::new)
                .collect(),
            last_step_at: Instant::now(),
            last_step: None,
            stop: None,
            evaluated: Default::default(),
        }
    }

    /// Reads the steps saved since the last call and evaluates every rule on each.
    pub fn poll(&mut self) -> Result<(), DebuggerError> {
        // Steps read before an unreadable one are evaluated all the same.
        let read = self.trial.refresh();
        let fresh: Vec<u64> = self
            .trial
            .steps()
            .map(|(s, _)| s)
            .filter(|s| !self.evaluated.contains(s))
            .collect();
        self.evaluate(fresh);
        read.map(|_| ())
    }

    /// The step a built-in learner's hook has just written: read by its own index file,
    /// without listing the trial again.
    pub fn step_written(&mut self, step: u64) -> Result<(), DebuggerError> {
        self.trial.read_written(step)?;
        self.evaluate(vec![step]);
        Ok(())
    }

    fn evaluate(&mut self, steps: Vec<u64>) {
        for step in steps {
            if !self.evaluated.insert(step) {
                continue;
            }
            self.last_step_at = Instant::now();
            self.last_step = Some(step);
            for e in &mut self.evaluations {
                if let Some(what) = e.invoke(&self.trial, step) {
                    if e.spec.stop_training && self.stop.is_none() {
                        self.stop = Some(RuleStop {
                            rule: e.spec.name.clone(),
                            step,
                            details: what,
                            stalled: false,
                        });
                    }
                }
            }
        }
    }

    /// StalledTrainingRule's clock: time since the last saved step.
    pub fn check_idle(&mut self) {
        let idle = self.last_step_at.elapsed().as_secs_f64();
        for e in &mut self.evaluations {
            if let Some(what) = e.idle(idle, self.last_step) {
                if e.spec.stop_training && self.stop.is_none() {
                    self.stop = Some(RuleStop {
                        rule: e.spec.name.clone(),
                        step: self.last_step.unwrap_or(0),
                        details: what,
                        stalled: true,
                    });
                }
            }
        }
    }

    pub fn stop(&self) -> Option<&RuleStop> {
        self.stop.as_ref()
    }

    pub fn finish(&mut self, stopped: bool) {
        for e in &mut self.evaluations {
            e.finish(stopped);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.evaluations.is_empty()
    }

    /// `DebugRuleEvaluationStatuses` as DescribeTrainingJob gives them.
    pub fn statuses(&self) -> serde_json::Value {
        let now = crate::store::now();
        serde_json::Value::Array(
            self.evaluations
                .iter()
                .map(|e| {
                    let mut v = json!({
                        "RuleConfigurationName": e.spec.name,
                        "RuleEvaluationJobArn": format!(
                            "arn:aws:sagemaker:local:000000000000:processing-job/{}-{}",
                            self.job,
                            e.spec.name.to_ascii_lowercase()
                        ),
                        "RuleEvaluationStatus": e.status.as_str(),
                        "LastModifiedTime": now,
                    });
                    if let Some(d) = &e.details {
                        v["StatusDetails"] = json!(d);
                    }
                    if let Some(s) = e.fired_at {
                        v["FiredAtStep"] = json!(s);
                    }
                    v
                })
                .collect(),
        )
    }

    /// Statuses in words, one line a rule, for logs and the live view.
    pub fn summary(&self) -> Vec<(String, &'static str, Option<String>)> {
        self.evaluations
            .iter()
            .map(|e| (e.spec.name.clone(), e.status.as_str(), e.details.clone()))
            .collect()
    }
}

pub type SharedRules = Arc<Mutex<Rules>>;

pub fn lock(rules: &SharedRules) -> MutexGuard<'_, Rules> {
    rules
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where a job keeps its rules' statuses.
pub fn statuses_path(job_dir: &Path) -> PathBuf {
    job_dir.join("debug-rules.json")
}

pub fn save_statuses(job_dir: &Path, rules: &Rules) -> Result<(), DebuggerError> {
    let path = statuses_path(job_dir);
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&rules.statuses()).unwrap_or_default(),
    )
    .map_err(|source| DebuggerError::Io { path, source })
}

pub fn load_statuses(job_dir: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(statuses_path(job_dir)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Where a job's tensors are: the hook's `LocalPath`, else `JOB/debug-output`.
pub fn output_dir(job_dir: &Path) -> PathBuf {
    crate::definition::TrainingDefinition::load(job_dir)
        .ok()
        .and_then(|d| d.debug_hook_config)
        .and_then(|h| h.local_path)
        .map(PathBuf::from)
        .unwrap_or_else(|| job_dir.join("debug-output"))
}

/// Where a script-mode job's program finds the hook's configuration, as smdebug looks for
/// it in a SageMaker container (`/opt/ml/input/config/debughookconfig.json`, or the file
/// `SMDEBUG_CONFIG_FILE_PATH` names).
pub const SMDEBUG_CONFIG_FILE: &str = "debughookconfig.json";

/// Writes the hook's configuration in the shape smdebug's `create_hook_from_json_config`
/// reads: `LocalPath`, `HookParameters`, `CollectionConfigurations`.
pub fn write_smdebug_config(settings: &Settings, path: &Path) -> Result<(), DebuggerError> {
    let collections: Vec<serde_json::Value> = settings
        .collections
        .iter()
        .map(|(name, c)| {
            let mut params = serde_json::Map::new();
            if let Some(s) = c.save.get(&Mode::Train) {
                params.insert("save_interval".into(), json!(s.save_interval.to_string()));
                if !s.save_steps.is_empty() {
                    let steps: Vec<String> = s.save_steps.iter().map(u64::to_string).collect();
                    params.insert("save_steps".into(), json!(steps.join(",")));
                }
            }
            if !c.include_regex.is_empty() {
                params.insert("include_regex".into(), json!(c.include_regex.join(",")));
            }
            json!({"CollectionName": name, "CollectionParameters": params})
        })
        .collect();
    let config = json!({
        "LocalPath": settings.dir,
        "HookParameters": settings.hook_parameters,
        "CollectionConfigurations": collections,
    });
    std::fs::create_dir_all(&settings.dir)
        .and_then(|_| std::fs::write(path, config.to_string()))
        .map_err(|source| DebuggerError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// Marks a trial a program wrote as ended, with a collections file if it wrote none (smdebug's
/// reader waits for one).
pub fn end_trial(dir: &Path) -> Result<(), DebuggerError> {
    if !dir.exists() {
        return Ok(());
    }
    let io = |path: PathBuf| move |source| DebuggerError::Io { path, source };
    let collections = dir.join(trial::COLLECTIONS_FILE);
    if !collections.exists() {
        let parent = collections.parent().unwrap_or(dir).to_path_buf();
        std::fs::create_dir_all(&parent).map_err(io(parent))?;
        std::fs::write(
            &collections,
            r#"{"collections": {}, "_meta": {"num_workers": 1}}"#,
        )
        .map_err(io(collections.clone()))?;
    }
    let end = dir.join(trial::END_OF_JOB);
    std::fs::write(&end, b"").map_err(io(end.clone()))
}

/// Every file of a trial with its path inside it (`/`-separated), for copying to S3.
pub fn files(dir: &Path) -> Result<Vec<(PathBuf, String)>, DebuggerError> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| DebuggerError::Io {
            path: d.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir) {
                let rel = rel.to_string_lossy().replace('\\', "/");
                out.push((path, rel));
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

/// What a learner saves at one step: it asks which collections are saved and adds tensors.
pub struct Saving<'h> {
    hook: &'h Hook,
    mode_step: u64,
    mode: Mode,
    tensors: Vec<(Vec<&'static str>, String, Tensor)>,
}

impl Saving<'_> {
    pub fn wants(&self, collection: &str) -> bool {
        self.hook
            .writer
            .collections()
            .get(collection)
            .and_then(|c| c.save.get(&self.mode))
            .is_some_and(|s| s.saves(self.mode_step))
    }

    /// Adds a tensor to a collection saved at this step; a name already added joins the
    /// collection (smdebug lets a tensor be in several) and is written once.
    pub fn add(&mut self, collection: &'static str, name: impl Into<String>, tensor: Tensor) {
        if !self.wants(collection) {
            return;
        }
        let name = name.into();
        match self.tensors.iter_mut().find(|(_, n, _)| *n == name) {
            Some((collections, _, _)) => collections.push(collection),
            None => self.tensors.push((vec![collection], name, tensor)),
        }
    }

    /// The model's feature names, in the order of the columns a learner sees.
    pub fn features(&self) -> &[String] {
        &self.hook.features
    }
}

/// A job's hook: counts steps per mode as smdebug does (a global step across modes, a step
/// within each), writes what each step saves, and runs the rules on it.
pub struct Hook {
    writer: TrialWriter,
    rules: SharedRules,
    features: Vec<String>,
    hyperparameters: Vec<(String, f64)>,
    global_step: u64,
    mode_steps: [u64; 4],
    error: Option<DebuggerError>,
    tensorboard: Option<tensorboard::TensorboardWriter>,
}

impl Hook {
    pub fn new(
        settings: &Settings,
        rules: SharedRules,
        features: Vec<String>,
        hyperparameters: Vec<(String, f64)>,
    ) -> Result<Hook, DebuggerError> {
        // A rerun (`--replace`) starts a fresh trial, as a new SageMaker job would; only what
        // a trial holds goes, since `LocalPath` may be a folder of the user's.
        for part in ["events", "index", "collections", trial::END_OF_JOB] {
            let path = settings.dir.join(part);
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else if path.exists() {
                std::fs::remove_file(&path)
            } else {
                Ok(())
            };
            removed.map_err(|source| DebuggerError::Io { path, source })?;
        }
        Ok(Hook {
            writer: TrialWriter::create(&settings.dir, settings.collections.clone())?,
            rules,
            features,
            hyperparameters,
            global_step: 0,
            mode_steps: [0; 4],
            error: None,
            tensorboard: settings
                .tensorboard_dir
                .as_deref()
                .map(tensorboard::TensorboardWriter::new),
        })
    }

    /// One step in `mode`: `fill` adds the tensors of the collections saved at it (it is
    /// not called when none is). Returns the rule that asks to stop, if one fired.
    pub fn step(&mut self, mode: Mode, fill: impl FnOnce(&mut Saving)) -> Option<RuleStop> {
        let mode_step = self.mode_steps[mode as usize - 1];
        let step = self.global_step;
        self.global_step += 1;
        self.mode_steps[mode as usize - 1] += 1;
        if self.error.is_some() {
            return None;
        }
        let saves_any = self
            .writer
            .collections()
            .values()
            .any(|c| c.save.get(&mode).is_some_and(|s| s.saves(mode_step)));
        if saves_any {
            let mut saving = Saving {
                hook: self,
                mode_step,
                mode,
                tensors: Vec::new(),
            };
            for (name, value) in &self.hyperparameters {
                saving.add(
                    "hyperparameters",
                    format!("hyperparameters/{name}"),
                    Tensor::scalar(*value),
                );
            }
            fill(&mut saving);
            let tensors = self.reduce(saving.tensors);
            if tensors.is_empty() {
                return None;
            }
            if let Err(e) = self.writer.write_step(step, mode, mode_step, &tensors) {
                self.error = Some(e);
                return None;
            }
            if let Some(tb) = self.tensorboard.as_mut() {
                // smdebug exports the scalars of its scalar collections.
                let scalars: Vec<(String, f64)> = tensors
                    .iter()
                    .filter(|(c, _, t)| {
                        t.values.len() == 1 && c.iter().any(|c| SCALAR_COLLECTIONS.contains(c))
                    })
                    .map(|(_, n, t)| (n.clone(), t.values[0]))
                    .collect();
                if let Err(e) = tb.write(mode, step, &scalars) {
                    self.error = Some(e);
                    return None;
                }
            }
        } else {
            return None;
        }
        let mut rules = lock(&self.rules);
        if rules.is_empty() {
            return None;
        }
        if let Err(e) = rules.step_written(step) {
            self.error = Some(e);
        }
        rules.stop().cloned()
    }

    /// Ends the trial (`training_job_end.ts`); the first write error, if any, is returned.
    pub fn finish(&mut self) -> Result<(), DebuggerError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.writer.finish()
    }

    /// Replaces tensors whose collections save reductions by those reductions, named as
    /// smdebug names them (`smdebug/reductions/mean/NAME`, `…/abs_l2/NAME`); the tensor
    /// itself stays where a collection saves it whole. Losses and metrics are never reduced.
    fn reduce(
        &mut self,
        tensors: Vec<(Vec<&'static str>, String, Tensor)>,
    ) -> Vec<(Vec<&'static str>, String, Tensor)> {
        let collections = self.writer.collections();
        let mut out = Vec::with_capacity(tensors.len());
        let mut registered = Vec::new();
        for (names, name, tensor) in tensors {
            let reducing: Vec<&trial::Collection> = names
                .iter()
                .filter(|c| !SCALAR_COLLECTIONS.contains(*c))
                .filter_map(|c| collections.get(*c))
                .filter(|c| !c.reductions.is_empty())
                .collect();
            if reducing.is_empty() {
                out.push((names, name, tensor));
                continue;
            }
            let raw = reducing.iter().any(|c| c.save_raw_tensor) || reducing.len() < names.len();
            let mut done: Vec<&str> = Vec::new();
            let mut reduced = Vec::new();
            for r in reducing.iter().flat_map(|c| c.reductions.iter()) {
                if done.contains(&r.as_str()) {
                    continue;
                }
                done.push(r);
                let (abs, op) = match r.strip_prefix("abs_") {
                    Some(op) => (true, op),
                    None => (false, r.as_str()),
                };
                let op = op.trim_end_matches("_norm");
                let Ok(reduction) = summary::Reduction::parse(op) else {
                    continue;
                };
                let values: Vec<f64> = if abs {
                    tensor.values.iter().map(|v| v.abs()).collect()
                } else {
                    tensor.values.clone()
                };
                let prefix = if abs { "abs_" } else { "" };
                reduced.push((
                    Vec::new(),
                    format!("smdebug/reductions/{prefix}{op}/{name}"),
                    Tensor::scalar(reduction.apply(&values)),
                ));
            }
            registered.push((names.clone(), name.clone()));
            if raw {
                out.push((names, name, tensor));
            }
            out.extend(reduced);
        }
        for (names, name) in registered {
            self.writer.register(&names, &name);
        }
        out
    }
}
