//! A training job from start to end: checks, the experiment-store record, the job directory
//! laid out as SageMaker's training toolkit does, the fit (a built-in algorithm in a worker
//! thread, or the user's program as a child process), metrics, logs, stop, and the model
//! artifact.

mod script;

use rustmaker_sagemaker::Resource;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use ndarray::{Array1, Array2, Axis};
use polars::prelude::*;
use regex::Regex;

use crate::algorithms::{self, Algorithm, FitData, Monitor, Output};
use crate::artifact::{self, Manifest};
use crate::debugger;
use crate::metrics::evaluate;
use crate::prep::{self, ProblemType};
use crate::store::{NewComponent, Status, Store};
use crate::MlError;
use script::Script;

/// How a running job reports to whoever watches it (the notebook, a test).
pub trait Watcher {
    fn metrics(&mut self, step: u64, values: &[(String, f64)]);
    fn log(&mut self, line: &str);
    /// Polled while the job runs: an interrupt or a stop request.
    fn should_stop(&mut self) -> bool;
    /// Why the job is being stopped, when it is not the user (a tuner's early stopping).
    fn stop_reason(&self) -> Option<String> {
        None
    }
    /// The Debugger rules' statuses (name, status, details), when they change.
    fn rules(&mut self, _statuses: &[(String, &'static str, Option<String>)]) {}
}

const STOPPED_BY_USER: &str = "stopped by the user";

#[derive(Clone)]
pub enum Validation {
    /// Hold out this share of the training rows (shuffled with the job's seed).
    Fraction(f64),
    /// A separate data set, with where it came from.
    Data(DataFrame, String),
}

#[derive(Clone)]
pub enum Channel {
    Frame(DataFrame),
    Path(PathBuf),
}

#[derive(Clone)]
pub enum JobKind {
    Builtin {
        algorithm: Algorithm,
        train: DataFrame,
        train_uri: String,
        validation: Validation,
        target: Option<String>,
        problem: Option<ProblemType>,
    },
    Script {
        entry_point: PathBuf,
        channels: Vec<(String, Channel, String)>,
        metric_definitions: Vec<(String, Regex)>,
        /// Stop the job after this long, as SageMaker's MaxRuntimeInSeconds.
        max_runtime: Option<Duration>,
    },
}

pub struct JobSpec {
    pub name: String,
    pub experiment: String,
    pub trial: Option<String>,
    pub hyperparameters: BTreeMap<String, String>,
    /// The job's own directory (input/, model/, output/, logs).
    pub dir: PathBuf,
    pub seed: u64,
    pub replace: bool,
    /// What the job was made from, kept in its directory as `definition.json` once the job
    /// is recorded (what `%tune --job NAME` starts from).
    pub definition: Option<crate::definition::TrainingDefinition>,
}

pub struct JobResult {
    pub status: Status,
    pub model: Option<PathBuf>,
    pub metrics: Vec<(String, f64)>,
    pub failure_reason: Option<String>,
    /// The Debugger rule whose StopTraining ended the job (its status is Stopped).
    pub rule_stop: Option<debugger::RuleStop>,
}

/// A job name as SageMaker allows it: 1 to 63 letters, digits and hyphens, not starting
/// with a hyphen.
pub fn check_name(name: &str) -> Result<(), MlError> {
    check_name_of(name, Resource::TrainingJob)
}

pub(crate) fn check_name_of(name: &str, resource: Resource) -> Result<(), MlError> {
    rustmaker_sagemaker::check_name(name, resource).map_err(|e| MlError::Input(e.to_string()))
}

pub fn log_path(dir: &Path) -> PathBuf {
    dir.join("logs").join("train.log")
}

pub fn model_path(dir: &Path) -> PathBuf {
    dir.join("output").join("model.tar.gz")
}

/// A model made from other jobs' models (an ensemble of them), to be recorded as a training
/// job of its own.
pub struct ComposedJob<'a> {
    pub name: &'a str,
    pub experiment: &'a str,
    pub trial: &'a str,
    pub dir: &'a Path,
    /// What made it (`weighted-ensemble`), as a built-in algorithm's name is recorded.
    pub algorithm: &'a str,
    pub hyperparameters: BTreeMap<String, String>,
    pub schema: prep::FeatureSchema,
    pub model: &'a algorithms::Model,
    /// The member jobs' artifacts, as a job's input channels.
    pub inputs: &'a [(String, String)],
    pub metrics: &'a [(String, f64)],
    pub replace: bool,
}

/// Records `job` as a completed training job with its artifact at `<dir>/output/model.tar.gz`,
/// so `%predict --model NAME`, endpoints and the experiments' leaderboard take it as they take
/// a trained model. The artifact's path is returned.
pub fn record_composed(store: &Store, job: ComposedJob) -> Result<PathBuf, MlError> {
    check_name(job.name)?;
    let path = model_path(job.dir);
    std::fs::create_dir_all(job.dir.join("output"))
        .map_err(|e| MlError::Input(format!("cannot make {}: {e}", job.dir.display())))?;
    let mut parameters: Vec<(String, String)> = job.hyperparameters.clone().into_iter().collect();
    parameters.push(("algorithm".into(), job.algorithm.into()));
    parameters.push((
        "problem_type".into(),
        job.schema.problem_type.as_str().into(),
    ));
    store.start(&NewComponent {
        experiment: job.experiment,
        trial: job.trial,
        name: job.name,
        source: "training-job",
        job_dir: Some(job.dir),
        parameters: &parameters,
        inputs: job.inputs,
        replace: job.replace,
    })?;
    let manifest = Manifest {
        format_version: 1,
        training_job: job.name.to_owned(),
        algorithm: job.algorithm.to_owned(),
        hyperparameters: job.hyperparameters,
        schema: Some(job.schema),
        created: chrono::Utc::now().to_rfc3339(),
    };
    store.log_metrics(job.name, 0, job.metrics)?;
    complete_with_model(store, job.name, &path, &manifest, job.model)?;
    Ok(path)
}

/// Writes a started job's artifact at `path` and records it as the job's model, ending the
/// job Completed; a write that fails ends it Failed with the reason.
fn complete_with_model(
    store: &Store,
    name: &str,
    path: &Path,
    manifest: &Manifest,
    model: &algorithms::Model,
) -> Result<(), MlError> {
    if let Err(e) = artifact::write(path, manifest, Some(model), None) {
        store.finish(name, Status::Failed, Some(&e.to_string()))?;
        return Err(e);
    }
    store.add_output(
        name,
        "SageMaker.ModelArtifact",
        &path.display().to_string(),
        "application/x-tar",
    )?;
    store.finish(name, Status::Completed, None)
}

/// `name=value …` for the job log.
fn metric_text(values: &[(String, f64)]) -> String {
    values
        .iter()
        .map(|(k, v)| format!("{k}={v:.6}"))
        .collect::<Vec<_>>()
        .join(" ")
}

struct Log(std::fs::File);

impl Log {
    fn create(dir: &Path) -> Result<Log, MlError> {
        let path = log_path(dir);
        std::fs::create_dir_all(path.parent().expect("the log has a folder"))
            .map_err(|e| MlError::Input(format!("cannot make {}: {e}", dir.display())))?;
        std::fs::File::create(&path)
            .map(Log)
            .map_err(|e| MlError::Input(format!("cannot write {}: {e}", path.display())))
    }

    fn line(&mut self, text: &str) {
        let _ = writeln!(self.0, "{text}");
    }
}

/// Runs a job to its end. Checks that need no training (names, hyperparameters, columns,
/// problem type) fail before anything is recorded; after that the job is in the store and
/// ends Completed, Failed (with the reason) or Stopped.
pub fn run(
    spec: JobSpec,
    kind: JobKind,
    store: &Store,
    watcher: &mut dyn Watcher,
) -> Result<JobResult, MlError> {
    check_name(&spec.name)?;
    let result = match kind {
        JobKind::Builtin {
            algorithm,
            train,
            train_uri,
            validation,
            target,
            problem,
        } => {
            let debug = match &spec.definition {
                Some(d) => debugger::config::resolve(
                    d.debug_hook_config.as_ref(),
                    &d.debug_rule_configurations,
                    &spec.dir,
                    Some(algorithm.debug_collections()),
                )?,
                None => None,
            };
            let builtin = Builtin {
                algorithm,
                train,
                train_uri,
                validation,
                target,
                problem,
                debug,
            };
            builtin.run(
                &spec.name,
                &spec.experiment,
                spec.trial.as_deref(),
                &spec.hyperparameters,
                &spec.dir,
                spec.seed,
                spec.replace,
                store,
                watcher,
            )
        }
        JobKind::Script {
            entry_point,
            channels,
            metric_definitions,
            max_runtime,
        } => {
            let script = Script {
                entry_point,
                channels,
                metric_definitions,
                max_runtime,
            };
            script.run(&spec, store, watcher)
        }
    }?;
    if let Some(definition) = &spec.definition {
        definition.save(&spec.dir)?;
    }
    Ok(result)
}

struct Builtin {
    algorithm: Algorithm,
    train: DataFrame,
    train_uri: String,
    validation: Validation,
    target: Option<String>,
    problem: Option<ProblemType>,
    debug: Option<debugger::Settings>,
}

fn rows(x: &Array2<f64>, idx: &[usize]) -> Array2<f64> {
    x.select(Axis(0), idx)
}

impl Builtin {
    #[allow(clippy::too_many_arguments)]
    fn run(
        self,
        name: &str,
        experiment: &str,
        trial: Option<&str>,
        given: &BTreeMap<String, String>,
        dir: &Path,
        seed: u64,
        replace: bool,
        store: &Store,
        watcher: &mut dyn Watcher,
    ) -> Result<JobResult, MlError> {
        let algorithm = self.algorithm;
        let hp = algorithm.resolve(given)?;
        let target = if algorithm == Algorithm::KMeans {
            None
        } else {
            Some(self.target.clone().ok_or_else(|| {
                MlError::Input(format!("{} needs --target COLUMN", algorithm.name()))
            })?)
        };
        // k-means learns from the features alone; a named target is left out of them.
        let train = match (&self.target, algorithm) {
            (Some(t), Algorithm::KMeans) => self.train.drop(t).unwrap_or(self.train.clone()),
            _ => self.train.clone(),
        };
        let (schema, prepared) = prep::fit(&train, target.as_deref(), self.problem)?;
        if !algorithm.supports(schema.problem_type) {
            return Err(MlError::Input(format!(
                "{} does not do {} (the target `{}` was taken for {}; --problem-type overrides that)",
                algorithm.name(),
                schema.problem_type.as_str(),
                target.as_deref().unwrap_or(""),
                schema.problem_type.as_str()
            )));
        }
        let (x, y, validation) = match (&self.validation, schema.problem_type) {
            (Validation::Fraction(f), _) if *f > 0.0 => {
                let n = prepared.x.nrows();
                let mut order: Vec<usize> = (0..n).collect();
                algorithms::Rng::new(seed).shuffle(&mut order);
                let held = ((n as f64) * f).round() as usize;
                if held == 0 || held >= n {
                    return Err(MlError::Input(format!(
                        "--validation {f} of {n} rows leaves {} for validation and {} for training; both need rows",
                        held,
                        n - held
                    )));
                }
                let (v, t) = order.split_at(held);
                let (mut v, mut t) = (v.to_vec(), t.to_vec());
                v.sort_unstable();
                t.sort_unstable();
                let pick = |idx: &[usize]| {
                    if prepared.y.is_empty() {
                        Array1::zeros(0)
                    } else {
                        prepared.y.select(Axis(0), idx)
                    }
                };
                (
                    rows(&prepared.x, &t),
                    pick(&t),
                    Some((rows(&prepared.x, &v), pick(&v))),
                )
            }
            (Validation::Fraction(_), _) => (prepared.x, prepared.y, None),
            (Validation::Data(frame, _), _) => {
                let vx = prep::transform(&schema, frame)?;
                let vy = if schema.target.is_some() {
                    let (keep, vy) = prep::target(&schema, frame)?;
                    let idx: Vec<usize> = (0..keep.len()).filter(|i| keep[*i]).collect();
                    (rows(&vx, &idx), vy)
                } else {
                    (vx, Array1::zeros(0))
                };
                (prepared.x, prepared.y, Some(vy))
            }
        };

        let mut parameters: Vec<(String, String)> = hp.0.clone().into_iter().collect();
        parameters.push(("algorithm".into(), algorithm.name().into()));
        parameters.push(("problem_type".into(), schema.problem_type.as_str().into()));
        let mut inputs = vec![("train".to_owned(), self.train_uri.clone())];
        if let Validation::Data(_, uri) = &self.validation {
            inputs.push(("validation".to_owned(), uri.clone()));
        }
        std::fs::create_dir_all(dir.join("output"))
            .map_err(|e| MlError::Input(format!("cannot make {}: {e}", dir.display())))?;
        let mut log = Log::create(dir)?;
        store.start(&NewComponent {
            experiment,
            trial: trial.unwrap_or(name),
            name,
            source: "training-job",
            job_dir: Some(dir),
            parameters: &parameters,
            inputs: &inputs,
            replace,
        })?;
        log.line(&format!(
            "{name}: {} on {} rows × {} features ({}), {} validation rows",
            algorithm.name(),
            x.nrows(),
            x.ncols(),
            schema.problem_type.as_str(),
            validation.as_ref().map_or(0, |(v, _)| v.nrows())
        ));
        for (column, what) in &schema.imputation {
            log.line(&format!("imputed {column}: {what}"));
        }

        let rules = self
            .debug
            .as_ref()
            .map(|s| Arc::new(Mutex::new(debugger::Rules::new(name, s))));
        let outcome = self.fit_watched(
            algorithm,
            hp.clone(),
            Arc::new(x),
            Arc::new(y),
            validation.map(Arc::new),
            &schema,
            seed,
            name,
            store,
            &mut log,
            watcher,
            rules.as_ref(),
        );
        let rule_stop = match &rules {
            Some(r) => end_rules(
                r,
                matches!(outcome, Err(MlError::Stopped)),
                dir,
                &mut log,
                watcher,
            )?,
            None => None,
        };
        match outcome {
            Ok((model, metrics)) => {
                let manifest = Manifest {
                    format_version: 1,
                    training_job: name.to_owned(),
                    algorithm: algorithm.name().to_owned(),
                    hyperparameters: hp.0.clone(),
                    schema: Some(schema),
                    created: chrono::Utc::now().to_rfc3339(),
                };
                let path = model_path(dir);
                complete_with_model(store, name, &path, &manifest, &model)?;
                log.line("Completed");
                Ok(JobResult {
                    status: Status::Completed,
                    model: Some(path),
                    metrics,
                    failure_reason: None,
                    rule_stop: None,
                })
            }
            Err(MlError::Stopped) => {
                let reason = rule_stop
                    .as_ref()
                    .map(ToString::to_string)
                    .or_else(|| watcher.stop_reason())
                    .unwrap_or_else(|| STOPPED_BY_USER.into());
                store.finish(name, Status::Stopped, Some(&reason))?;
                log.line(&format!("Stopped: {reason}"));
                Ok(JobResult {
                    status: Status::Stopped,
                    model: None,
                    metrics: Vec::new(),
                    failure_reason: Some(reason),
                    rule_stop,
                })
            }
            Err(e) => {
                let reason = e.to_string();
                store.finish(name, Status::Failed, Some(&reason))?;
                log.line(&format!("Failed: {reason}"));
                Ok(JobResult {
                    status: Status::Failed,
                    model: None,
                    metrics: Vec::new(),
                    failure_reason: Some(reason),
                    rule_stop: None,
                })
            }
        }
    }

    /// Fits in a worker thread while this thread records metrics and watches for a stop.
    /// Tree learners stop between trees or rounds; linfa's fits cannot be interrupted, so a
    /// stopped job is marked Stopped at once and the thread's late result is dropped.
    #[allow(clippy::too_many_arguments)]
    fn fit_watched(
        &self,
        algorithm: Algorithm,
        hp: algorithms::Hyperparameters,
        x: Arc<Array2<f64>>,
        y: Arc<Array1<f64>>,
        validation: Option<Arc<(Array2<f64>, Array1<f64>)>>,
        schema: &prep::FeatureSchema,
        seed: u64,
        name: &str,
        store: &Store,
        log: &mut Log,
        watcher: &mut dyn Watcher,
        rules: Option<&debugger::SharedRules>,
    ) -> Result<(algorithms::Model, Vec<(String, f64)>), MlError> {
        enum Event {
            Metrics(u64, Vec<(String, f64)>),
            Done(
                Result<algorithms::Model, MlError>,
                Option<Box<debugger::Hook>>,
            ),
        }
        let mut hook = match (&self.debug, rules) {
            (Some(settings), Some(rules)) => {
                log.line(&format!("debugger: tensors to {}", settings.dir.display()));
                let numeric =
                    hp.0.iter()
                        .filter_map(|(k, v)| v.parse::<f64>().ok().map(|v| (k.clone(), v)))
                        .collect();
                Some(debugger::Hook::new(
                    settings,
                    rules.clone(),
                    schema.feature_names(),
                    numeric,
                )?)
            }
            _ => None,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let classes = schema.classes.len();
        let problem = schema.problem_type;
        {
            let (stop, x, y, validation) = (stop.clone(), x.clone(), y.clone(), validation.clone());
            std::thread::Builder::new()
                .name(format!("train-{name}"))
                .spawn(move || {
                    let progress = tx.clone();
                    let mut report = move |step: u64, values: Vec<(String, f64)>| {
                        let _ = progress.send(Event::Metrics(step, values));
                    };
                    let data = FitData {
                        x: &x,
                        y: &y,
                        classes,
                        problem,
                        validation: validation.as_deref().map(|(a, b)| (a, b)),
                        seed,
                    };
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        algorithms::fit(
                            algorithm,
                            &hp,
                            &data,
                            &mut Monitor {
                                stop: &stop,
                                report: &mut report,
                                debug: hook.as_mut(),
                            },
                        )
                    }))
                    .unwrap_or_else(|panic| {
                        let text = panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_else(|| "unknown".into());
                        Err(MlError::Training(format!("the algorithm failed: {text}")))
                    });
                    let _ = tx.send(Event::Done(result, hook.map(Box::new)));
                })
                .map_err(|e| MlError::Training(format!("cannot start the training thread: {e}")))?;
        }
        let fit_started = Instant::now();
        let mut reported: Vec<String> = Vec::new();
        let mut last_step = 0;
        let finished_hook;
        let mut shown_rules = Vec::new();
        let mut model = loop {
            if watcher.should_stop() || store.stop_requested(name) {
                stop.store(true, Ordering::Relaxed);
                return Err(MlError::Stopped);
            }
            if let Some(rules) = rules {
                let mut rules = debugger::lock(rules);
                rules.check_idle();
                let now = rules.summary();
                if now != shown_rules {
                    watcher.rules(&now);
                    shown_rules = now;
                }
                if let Some(why) = rules.stop() {
                    // The learner stops at its next step; a stalled one is left behind.
                    stop.store(true, Ordering::Relaxed);
                    if why.stalled {
                        return Err(MlError::Stopped);
                    }
                }
            }
            let first = match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(event) => event,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(MlError::Training(
                        "the training thread ended without a result".into(),
                    ))
                }
            };
            // The steps queued behind the first go into the store with it, in one commit: a
            // learner's rounds on a small table come faster than the disk commits.
            let mut steps = Vec::new();
            let mut done = None;
            for event in std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok())) {
                match event {
                    Event::Metrics(step, values) => steps.push((step, values)),
                    Event::Done(result, hook) => {
                        done = Some((result, hook));
                        break;
                    }
                }
            }
            if !steps.is_empty() {
                store.log_steps(name, steps.iter().map(|(s, v)| (*s, v.as_slice())))?;
            }
            for (step, values) in &steps {
                log.line(&format!("[{step}] {}", metric_text(values)));
                for (k, _) in values {
                    if !reported.contains(k) {
                        reported.push(k.clone());
                    }
                }
                last_step = *step;
                watcher.metrics(*step, values);
            }
            if let Some((result, hook)) = done {
                finished_hook = hook;
                break result?;
            }
        };
        log.line(&format!(
            "fit took {:.3} s",
            fit_started.elapsed().as_secs_f64()
        ));
        // The final quality on both sets; series already reported keep their last value.
        let (train_output, mut valid_output) = match model.take_fitted() {
            Some((train, validation)) => (train, validation),
            None => (model.predict(&x), None),
        };
        let mut finals = evaluate("train", problem, &y, &train_output);
        let mut scored = None;
        if let Some(v) = validation.as_deref() {
            let output = valid_output.take().unwrap_or_else(|| model.predict(&v.0));
            finals.extend(evaluate("validation", problem, &v.1, &output));
            scored = Some((output, &v.1));
        }
        if let Some(mut hook) = finished_hook {
            hook.step(debugger::Mode::Eval, |s| {
                debugger::learners::final_step(s, &finals, scored.as_ref().map(|(o, y)| (o, *y)))
            });
            hook.finish()?;
        }
        if problem == ProblemType::Clustering {
            finals.retain(|(k, _)| !k.starts_with("validation") || validation.is_some());
        }
        let fresh: Vec<(String, f64)> = finals
            .iter()
            .filter(|(k, _)| !reported.contains(k))
            .cloned()
            .collect();
        if !fresh.is_empty() {
            store.log_metrics(name, last_step, &fresh)?;
            watcher.metrics(last_step, &fresh);
        }
        log.line(&format!("final: {}", metric_text(&finals)));
        Ok((model, finals))
    }
}

/// Ends a job's rules: their final statuses in the log, the live view and
/// `debug-rules.json`; the rule that stopped the job, if one did.
fn end_rules(
    rules: &debugger::SharedRules,
    stopped: bool,
    dir: &Path,
    log: &mut Log,
    watcher: &mut dyn Watcher,
) -> Result<Option<debugger::RuleStop>, MlError> {
    let mut r = debugger::lock(rules);
    let stop = r.stop().cloned();
    r.finish(stopped);
    watcher.rules(&r.summary());
    for (rule, status, details) in r.summary() {
        log.line(&format!(
            "rule {rule}: {status}{}",
            details.map(|d| format!(" ({d})")).unwrap_or_default()
        ));
    }
    if !r.is_empty() {
        debugger::save_statuses(dir, &r)?;
    }
    Ok(stop)
}

/// The model's answer for each row, in the columns SageMaker's built-in algorithms use:
/// `predicted_label` and `probability` (classification), `score` (regression),
/// `closest_cluster` and `distance_to_cluster` (k-means).
pub fn prediction_columns(
    schema: &prep::FeatureSchema,
    output: &Output,
) -> Result<Vec<Column>, MlError> {
    let columns = match output {
        Output::Classes(p) => {
            let label: Vec<String> = p
                .outer_iter()
                .map(|row| {
                    let i = crate::metrics::argmax_of(row.iter());
                    schema
                        .classes
                        .get(i)
                        .cloned()
                        .unwrap_or_else(|| i.to_string())
                })
                .collect();
            let probability: Vec<f64> = p
                .outer_iter()
                .map(|row| row.iter().copied().fold(0.0, f64::max))
                .collect();
            vec![
                Column::new("predicted_label".into(), label),
                Column::new("probability".into(), probability),
            ]
        }
        Output::Values(v) => vec![Column::new("score".into(), v.to_vec())],
        Output::Clusters(c, d) => vec![
            Column::new(
                "closest_cluster".into(),
                c.iter().map(|v| *v as u32).collect::<Vec<_>>(),
            ),
            Column::new("distance_to_cluster".into(), d.clone()),
        ],
    };
    Ok(columns)
}

/// Scores a frame with a model artifact; returns the frame with the prediction columns added.
pub fn predict(model_tar: &Path, frame: &DataFrame) -> Result<DataFrame, MlError> {
    let served = crate::serving::Served::load(model_tar)?;
    if frame.height() == 0 {
        return Err(MlError::Input("the data to score has no rows".into()));
    }
    let mut out = frame.clone();
    for c in served.answer_columns(frame)? {
        if out.column(c.name()).is_ok() {
            return Err(MlError::Input(format!(
                "the data already has a column `{}`; rename it before scoring",
                c.name()
            )));
        }
        out.with_column(c)
            .map_err(|e| MlError::Input(e.to_string()))?;
    }
    Ok(out)
}
