//! An Autopilot job from its settings to its end: the data read and analysed, split with the
//! job's seed, the two notebooks written, the candidates tuned as one multi-algorithm tuning
//! job on the training engine, each candidate scored on the validation rows with the job's
//! objective, and the best one saved as the job's model. The job's record
//! ([`crate::record`]) is rewritten at every step, so `describe` from any notebook sees
//! where it is, and a stop or an interrupt keeps the candidates that finished.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use polars::prelude::*;
use rustmaker_magics::data::ObjectStore;
use rustmaker_magics::scratch::Scratch;
use rustmaker_magics::{MagicContext, MagicError};
use rustmaker_ml::serving::Served;
use rustmaker_ml::store::{now, Status, Store, TrialRow};
use rustmaker_ml::tune::runner::{Trial, TuneWatcher};
use serde_json::json;

use crate::analysis::{self, Analysis};
use crate::candidates;
use crate::definition_notebook::{self, Definition};
use crate::ensemble;
use crate::exploration;
use crate::objective::{Objective, Problem};
use crate::record::{self, CandidateRecord, JobRecord, JobStatus, Secondary};
use crate::request::{JobSpec, Mode};
use crate::split;
use crate::AutopilotError;

/// `Mode: AUTO` ensembles a table smaller than this and tunes a larger one, as SageMaker's
/// AUTO chooses.
pub const AUTO_ENSEMBLING_BYTES: usize = 100 * 1024 * 1024;

/// SageMaker's default share of rows kept for validation.
pub const DEFAULT_VALIDATION_FRACTION: f64 = 0.2;
/// The seed of a job that names none, so that two runs of one request agree.
pub const DEFAULT_SEED: u64 = 0;

pub const EXPLORATION_NOTEBOOK: &str = "SageMakerAutopilotDataExplorationNotebook.ipynb";
pub const CANDIDATE_NOTEBOOK: &str = "SageMakerAutopilotCandidateDefinitionNotebook.ipynb";

/// Where a running job is shown; it lends the notebook's context to the steps that read data.
pub trait Live {
    fn ctx(&mut self) -> &mut dyn MagicContext;
    /// The job as it stands, with its tuning job's trials while they run.
    fn show(&mut self, job: &JobRecord, trials: &[Trial]);
}

/// The tuning job the candidate notebook runs: the job's name is its own tuning job's.
pub fn notebook_tuning_job(name: &str) -> String {
    let head: String = name.chars().take(29).collect();
    format!("{}-nb", head.trim_end_matches('-'))
}

/// The job's folders, in SageMaker's output layout under `<output>/<job>/`.
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn notebooks(&self, job: &str) -> PathBuf {
        self.dir
            .join("sagemaker-automl-candidates")
            .join(format!("{job}-pr-1"))
            .join("notebooks")
    }
    pub fn tuning_data(&self) -> PathBuf {
        self.dir.join("preprocessed-data").join("tuning_data")
    }
    pub fn best(&self) -> PathBuf {
        self.dir.join("best-candidate")
    }
    pub fn explainability(&self, candidate: &str) -> PathBuf {
        self.dir
            .join("documentation")
            .join("explainability")
            .join("output")
            .join(candidate)
    }
}

/// Persists `job`, keeping a stop another kernel asked for meanwhile.
fn persist(root: &Path, job: &mut JobRecord) -> Result<(), AutopilotError> {
    if let Ok(Some(stored)) = record::load(root, &job.name) {
        if stored.stop_requested && !job.status.is_final() {
            job.stop_requested = true;
            job.status = JobStatus::Stopping;
        }
    }
    job.modified = now();
    record::save(root, job)
}

fn stop_asked(root: &Path, name: &str, ctx: &dyn MagicContext) -> bool {
    ctx.is_interrupted()
        || record::load(root, name)
            .ok()
            .flatten()
            .is_some_and(|j| j.stop_requested)
}

/// Reads a source, unzipping it first for `CompressionType: Gzip`.
fn read_source(
    source: &str,
    gzip: bool,
    object_store: &dyn ObjectStore,
    scratch: &Scratch,
    ctx: &mut dyn MagicContext,
) -> Result<DataFrame, MagicError> {
    if !gzip {
        return rustmaker_ml::magic::load_source(source, None, object_store, scratch, ctx)
            .map(|(f, _)| f);
    }
    let local = if source.starts_with("s3://") {
        object_store.fetch(source, scratch.path(), Some(&*ctx))?
    } else {
        PathBuf::from(source)
    };
    let name = local
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".gz").ok_or_else(|| {
        MagicError::Data(format!(
            "{source}: CompressionType Gzip needs a .csv.gz or .parquet.gz file"
        ))
    })?;
    let io = |e: std::io::Error| MagicError::Data(format!("{source}: cannot unzip it ({e})"));
    let file = std::fs::File::open(&local).map_err(io)?;
    let out = scratch.path().join(stem);
    let mut writer = std::fs::File::create(&out).map_err(io)?;
    std::io::copy(&mut flate2::read::GzDecoder::new(file), &mut writer).map_err(io)?;
    rustmaker_ml::magic::load_source(&out.to_string_lossy(), None, object_store, scratch, ctx)
        .map(|(f, _)| f)
}

/// A candidate's validation score, from its model's predictions.
pub fn score_model(
    served: &Served,
    validation: &DataFrame,
    objective: Objective,
) -> Result<f64, AutopilotError> {
    let (output, y) = served.evaluate(validation)?;
    score_output(output, &y, objective)
}

/// The objective of a model's `output` for validation rows whose target is `y`.
pub fn score_output(
    output: rustmaker_ml::algorithms::Output,
    y: &ndarray::Array1<f64>,
    objective: Objective,
) -> Result<f64, AutopilotError> {
    ensemble::Said::of(output, y)
        .and_then(|(truth, said)| ensemble::score(objective, &truth, &said))
        .ok_or_else(|| {
            AutopilotError::request(
                "AutoMLJobObjective.MetricName",
                format!("{objective} cannot be computed from this model's predictions"),
            )
        })
}

/// The tuning job's trials as candidates, each completed one scored on `validation`.
pub fn score_trials(
    store: &Store,
    trials: &[TrialRow],
    validation: &DataFrame,
    objective: Objective,
) -> (Vec<CandidateRecord>, Vec<String>) {
    let mut failures = Vec::new();
    let candidates = trials
        .iter()
        .map(|t| {
            let mut c = CandidateRecord {
                name: t.training_job.clone(),
                definition: t.definition.clone(),
                status: t.status.as_str().to_owned(),
                objective: None,
                tuned: t.tuned.clone(),
                model: None,
                failure_reason: t.failure_reason.clone(),
                created: t.created,
                ended: t.end_time,
                refit: false,
            };
            if t.status == Status::Completed {
                let scored = rustmaker_ml::magic::job_artifact_in(store, &t.training_job)
                    .map_err(|e| e.to_string())
                    .and_then(|m| {
                        Served::load(Path::new(&m))
                            .map_err(AutopilotError::from)
                            .and_then(|served| score_model(&served, validation, objective))
                            .map(|v| (m, v))
                            .map_err(|e| e.to_string())
                    });
                match scored {
                    Ok((m, v)) => {
                        c.model = Some(m);
                        c.objective = Some(v);
                    }
                    Err(e) => {
                        failures.push(format!("{}: {e}", t.training_job));
                        c.failure_reason = Some(e);
                    }
                }
            }
            c
        })
        .collect();
    (candidates, failures)
}

/// Permutation importance of `model` on `validation`: how much the objective worsens when a
/// column's values are shuffled (seeded), the most important first.
pub fn permutation_importance(
    model: &Path,
    validation: &DataFrame,
    target: &str,
    objective: Objective,
    seed: u64,
) -> Result<Vec<(String, f64)>, AutopilotError> {
    let model = Served::load(model)?;
    let base = score_model(&model, validation, objective)?;
    let order = split::permutation(validation.height(), seed);
    let index = IdxCa::from_vec("rows".into(), order.iter().map(|&i| i as IdxSize).collect());
    let mut out = Vec::new();
    for name in validation.get_column_names() {
        if name.as_str() == target {
            continue;
        }
        let shuffled = validation
            .column(name)
            .and_then(|c| c.take(&index))
            .map_err(|e| AutopilotError::request("feature importance", e.to_string()))?;
        let mut frame = validation.clone();
        frame
            .with_column(shuffled)
            .map_err(|e| AutopilotError::request("feature importance", e.to_string()))?;
        let worse = score_model(&model, &frame, objective)?;
        let drop = if objective.maximize() {
            base - worse
        } else {
            worse - base
        };
        out.push((name.to_string(), drop));
    }
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(out)
}

/// Watches the tuning job for the job: its candidates, its deadline and an interrupt. A
/// `stop` from another kernel reaches the tuning job through the experiment store, which the
/// tuner polls already.
struct Watch<'a> {
    live: &'a mut dyn Live,
    job: &'a mut JobRecord,
    root: PathBuf,
    deadline: Option<Instant>,
    out_of_time: bool,
    interrupted: bool,
    definitions: Vec<String>,
}

impl TuneWatcher for Watch<'_> {
    fn progress(&mut self, trials: &[Trial], _best: Option<&Trial>, _status: Status) {
        let candidates: Vec<CandidateRecord> = trials
            .iter()
            .map(|t| {
                let old = self.job.candidates.iter().find(|c| c.name == t.name);
                CandidateRecord {
                    name: t.name.clone(),
                    definition: self.definitions[t.definition].clone(),
                    status: t.status.as_str().to_owned(),
                    objective: None,
                    tuned: t.tuned.clone(),
                    model: None,
                    failure_reason: t.reason.clone(),
                    created: old.map_or_else(now, |c| c.created),
                    ended: old
                        .and_then(|c| c.ended)
                        .or_else(|| (t.status != Status::InProgress).then(now)),
                    refit: false,
                }
            })
            .collect();
        // The tuner reports four times a second; the record is rewritten only when a
        // candidate starts or ends.
        let changed = candidates.len() != self.job.candidates.len()
            || candidates
                .iter()
                .zip(&self.job.candidates)
                .any(|(new, old)| new.status != old.status);
        self.job.candidates = candidates;
        if changed {
            let _ = persist(&self.root, self.job);
        }
        self.live.show(self.job, trials);
    }

    fn should_stop(&mut self) -> bool {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.out_of_time = true;
        }
        if self.live.ctx().is_interrupted() {
            self.interrupted = true;
        }
        self.out_of_time || self.interrupted
    }
}

fn fail(root: &Path, job: &mut JobRecord, live: &mut dyn Live, e: &MagicError) {
    job.status = JobStatus::Failed;
    job.secondary = Secondary::Failed;
    job.failure_reason = Some(e.to_string());
    job.ended = Some(now());
    let _ = persist(root, job);
    live.show(job, &[]);
}

/// Ends a job stopped before or while tuning, keeping what finished.
fn stopped(root: &Path, job: &mut JobRecord, live: &mut dyn Live) -> MagicError {
    job.status = JobStatus::Stopped;
    job.secondary = Secondary::Stopped;
    job.ended = Some(now());
    let _ = persist(root, job);
    live.show(job, &[]);
    rustmaker_magics::long_work::interrupted(
        format!("Autopilot job {} was stopped", job.name),
        "the candidates that finished are kept (`%autopilot candidates`)",
    )
}

/// Runs the job `spec` to its end; the record is returned as it ended.
pub fn run(
    spec: &JobSpec,
    object_store: &dyn ObjectStore,
    live: &mut dyn Live,
) -> Result<JobRecord, MagicError> {
    spec.check()?;
    rustmaker_sagemaker::check_name(&spec.name, rustmaker_sagemaker::Resource::AutoMlJob)
        .map_err(|e| MagicError::Data(e.to_string()))?;
    let root = record::root();
    if record::load(&root, &spec.name)?.is_some() {
        return Err(AutopilotError::JobExists(spec.name.clone()).into());
    }
    let (output_dir, output_uri) = match &spec.output {
        Some(o) if o.starts_with("s3://") => (
            root.join("output").join(&spec.name),
            Some(format!("{}/{}", o.trim_end_matches('/'), spec.name)),
        ),
        Some(o) => (
            std::path::absolute(o)
                .unwrap_or_else(|_| PathBuf::from(o))
                .join(&spec.name),
            None,
        ),
        None => (root.join("output").join(&spec.name), None),
    };
    let now = now();
    let mut job = JobRecord {
        name: spec.name.clone(),
        status: JobStatus::InProgress,
        secondary: Secondary::Starting,
        created: now,
        modified: now,
        ended: None,
        request: spec.to_request(),
        output_dir: output_dir.to_string_lossy().into_owned(),
        output_uri,
        problem: None,
        problem_reason: None,
        objective: None,
        maximize: true,
        target: spec.target.clone(),
        train_data: None,
        validation_data: None,
        tuning_job: None,
        exploration_notebook: None,
        candidate_notebook: None,
        feature_importance: None,
        candidates: Vec::new(),
        best: None,
        failure_reason: None,
        partial_failures: Vec::new(),
        stop_requested: false,
        mode: None,
    };
    persist(&root, &mut job)?;
    live.show(&job, &[]);
    match steps(
        spec,
        object_store,
        live,
        &root,
        &mut job,
        Layout { dir: output_dir },
    ) {
        Ok(()) => Ok(job),
        Err(Stop::Stopped) => Err(stopped(&root, &mut job, live)),
        Err(Stop::Failed(e)) => {
            fail(&root, &mut job, live, &e);
            Err(e)
        }
    }
}

enum Stop {
    Stopped,
    Failed(MagicError),
}

impl<E: Into<MagicError>> From<E> for Stop {
    fn from(e: E) -> Stop {
        Stop::Failed(e.into())
    }
}

fn set(root: &Path, job: &mut JobRecord, live: &mut dyn Live, s: Secondary) -> Result<(), Stop> {
    if stop_asked(root, &job.name, live.ctx()) {
        return Err(Stop::Stopped);
    }
    job.secondary = s;
    persist(root, job)?;
    live.show(job, &[]);
    Ok(())
}

fn analysed(spec: &JobSpec, frame: &DataFrame) -> Result<(Analysis, Objective), AutopilotError> {
    let analysis = analysis::analyse(frame, &spec.target, spec.problem)?;
    let objective = match &spec.objective {
        Some(o) => Objective::parse(o, analysis.problem)?,
        None => analysis.problem.default_objective(),
    };
    Ok((analysis, objective))
}

fn steps(
    spec: &JobSpec,
    object_store: &dyn ObjectStore,
    live: &mut dyn Live,
    root: &Path,
    job: &mut JobRecord,
    layout: Layout,
) -> Result<(), Stop> {
    let started = Instant::now();
    let deadline = spec.max_runtime.map(|s| started + Duration::from_secs(s));
    // The share of the job's time its steps may reach: a small table's ensemble is
    // cross-validated after the tuning, so the tuning leaves it a fifth of the time.
    let by = |share: f64| {
        spec.max_runtime
            .map(|s| started + Duration::from_secs_f64(s as f64 * share))
    };
    set(root, job, live, Secondary::AnalyzingData)?;
    let scratch = Scratch::new("autopilot")?;
    let frame = read_source(&spec.data, spec.gzip, object_store, &scratch, live.ctx())?;
    let given_validation = match &spec.validation {
        Some(v) => Some(read_source(
            v,
            spec.gzip,
            object_store,
            &scratch,
            live.ctx(),
        )?),
        None => None,
    };
    let (analysis, objective) = analysed(spec, &frame)?;
    let ensembling = match spec.mode {
        Mode::Ensembling => true,
        Mode::HyperparameterTuning => false,
        Mode::Auto => frame.estimated_size() < AUTO_ENSEMBLING_BYTES,
    };
    job.mode = Some(
        if ensembling {
            Mode::Ensembling
        } else {
            Mode::HyperparameterTuning
        }
        .as_str()
        .to_owned(),
    );
    job.problem = Some(analysis.problem.as_str().to_owned());
    job.problem_reason = Some(analysis.problem_reason.clone());
    job.objective = Some(objective.as_str().to_owned());
    job.maximize = objective.maximize();
    if analysis.target.missing_rows > 0 {
        job.partial_failures.push(format!(
            "{} rows without a value of the target `{}` were left out",
            analysis.target.missing_rows, spec.target
        ));
    }
    let seed = spec.seed.unwrap_or(DEFAULT_SEED);
    let kept = split::with_target(&frame, &spec.target)?;
    let classify = analysis.problem != Problem::Regression;
    // Constant and identifier-like columns carry nothing a model can learn from: the
    // pipelines leave them out (a model scores rows that still have them).
    let left_out: Vec<&str> = analysis
        .columns
        .iter()
        .filter(|c| c.constant || c.identifier_like)
        .map(|c| c.name.as_str())
        .collect();
    let features = kept.drop_many(left_out.iter().copied());
    let (train, validation) = match given_validation {
        Some(v) => (
            features.clone(),
            split::with_target(&v, &spec.target)?.drop_many(left_out.iter().copied()),
        ),
        None => split::split(
            &features,
            &spec.target,
            classify,
            spec.validation_fraction
                .unwrap_or(DEFAULT_VALIDATION_FRACTION),
            seed,
        )?,
    };
    let data_dir = layout.tuning_data();
    let train_path = data_dir.join("train.parquet");
    let validation_path = data_dir.join("validation.parquet");
    split::write_parquet(&train, &train_path)?;
    split::write_parquet(&validation, &validation_path)?;
    job.train_data = Some(train_path.to_string_lossy().into_owned());
    job.validation_data = Some(validation_path.to_string_lossy().into_owned());

    set(root, job, live, Secondary::FeatureEngineering)?;
    let notebooks = layout.notebooks(&spec.name);
    let sample_rows: Vec<IdxSize> = {
        let mut rows: Vec<IdxSize> = split::permutation(kept.height(), seed)
            .into_iter()
            .take(10)
            .map(|i| i as IdxSize)
            .collect();
        rows.sort_unstable();
        rows
    };
    let sample = kept
        .take(&IdxCa::from_vec("rows".into(), sample_rows))
        .map_err(|e| MagicError::Failed(e.to_string()))?;
    let exploration_path = notebooks.join(EXPLORATION_NOTEBOOK);
    exploration::notebook(&spec.name, &analysis, &sample).write(&exploration_path)?;
    job.exploration_notebook = Some(exploration_path.to_string_lossy().into_owned());

    let candidates = candidates::generate(&analysis, spec)?;
    let tuning_request = candidates::tuning_request(
        &candidates,
        &analysis,
        objective,
        &job.train_data.clone().unwrap_or_default(),
        &job.validation_data.clone().unwrap_or_default(),
        spec.max_candidates,
        spec.max_runtime_per_job,
        spec.not_improving_limit(candidates.len()),
        seed,
    );
    let best_dir = layout.best();
    let notebook_job = notebook_tuning_job(&spec.name);
    let candidate_path = notebooks.join(CANDIDATE_NOTEBOOK);
    let notebook_best = notebooks.join("best-candidate");
    definition_notebook::notebook(&Definition {
        job: &spec.name,
        analysis: &analysis,
        objective,
        candidates: &candidates,
        tuning_request: &tuning_request,
        notebook_tuning_job: &notebook_job,
        train_data: job.train_data.as_deref().unwrap_or_default(),
        validation_data: job.validation_data.as_deref().unwrap_or_default(),
        best_dir: &notebook_best.to_string_lossy(),
        ensemble: ensembling,
    })
    .write(&candidate_path)?;
    job.candidate_notebook = Some(candidate_path.to_string_lossy().into_owned());
    persist(root, job)?;

    if spec.candidates_only {
        job.status = JobStatus::Completed;
        job.secondary = Secondary::CandidateDefinitionsGenerated;
        return finish(root, job, live, object_store, &layout);
    }
    if deadline.is_some_and(|d| Instant::now() >= d) {
        return Err(Stop::Failed(MagicError::Data(format!(
            "MaxAutoMLJobRuntimeInSeconds ({} s) ran out while the data was analysed, before a candidate could train: raise it",
            spec.max_runtime.unwrap_or_default()
        ))));
    }

    set(root, job, live, Secondary::ModelTuning)?;
    job.tuning_job = Some(spec.name.clone());
    let mut tuning = rustmaker_ml::tune::magic::start(
        &spec.name,
        tuning_request,
        None,
        false,
        object_store,
        live.ctx(),
    )?;
    let definitions = tuning
        .config
        .definitions
        .iter()
        .map(|d| d.name.clone())
        .collect();
    let mut watch = Watch {
        live,
        job,
        root: root.to_owned(),
        deadline: if ensembling && ensemble::cross_validates(&train, &validation) {
            by(0.8)
        } else {
            deadline
        },
        out_of_time: false,
        interrupted: false,
        definitions,
    };
    let outcome = tuning.run(&mut watch)?;
    // Stopped and not by the deadline: an interrupt, or `stop` through the tuning job.
    let (out_of_time, user_stop) = (
        watch.out_of_time,
        watch.interrupted || (outcome.status == Status::Stopped && !watch.out_of_time),
    );
    let (live, job) = (watch.live, watch.job);

    let trials = tuning.store.tuning_trials(&spec.name)?;
    let (scored, failures) = score_trials(&tuning.store, &trials, &validation, objective);
    job.candidates = scored;
    job.partial_failures.extend(failures);
    if ensembling {
        ensemble::add_to(
            &tuning.store,
            &spec.name,
            &mut job.candidates,
            &mut job.partial_failures,
            &ensemble::Rows {
                train: &train,
                validation: &validation,
                target: &spec.target,
                seed,
                // Past the tuning's share, the out-of-fold fits may take a tenth; a stop
                // asked for keeps the ensemble on the validation rows.
                deadline: if user_stop {
                    Some(Instant::now())
                } else {
                    by(0.9)
                },
            },
            objective,
            false,
        );
    }
    job.best = record::ranked(job)
        .first()
        .filter(|c| c.objective.is_some())
        .map(|c| c.name.clone());
    if let Some(best) = job.best.clone() {
        let model = job
            .candidates
            .iter()
            .find(|c| c.name == best)
            .and_then(|c| c.model.clone())
            .unwrap_or_default();
        save_best(Path::new(&model), &best_dir)?;
        match permutation_importance(
            Path::new(&model),
            &validation,
            &spec.target,
            objective,
            seed,
        ) {
            Ok(importance) => {
                let dir = layout.explainability(&best);
                let path = dir.join("analysis.json");
                write_importance(&path, &best, objective, &importance)?;
                job.feature_importance = Some(path.to_string_lossy().into_owned());
            }
            Err(e) => job
                .partial_failures
                .push(format!("feature importance of {best}: {e}")),
        }
    }
    if user_stop {
        persist(root, job)?;
        return Err(Stop::Stopped);
    }
    if job.best.is_none() {
        let reasons: Vec<String> = job
            .candidates
            .iter()
            .filter_map(|c| {
                c.failure_reason
                    .as_ref()
                    .map(|r| format!("{}: {r}", c.name))
            })
            .collect();
        let why = match (out_of_time, reasons.is_empty()) {
            (true, _) => format!(
                "MaxAutoMLJobRuntimeInSeconds ({} s) ran out before a candidate finished: raise it",
                spec.max_runtime.unwrap_or_default()
            ),
            (false, true) => format!(
                "no candidate finished (tuning job {}: {})",
                spec.name,
                outcome
                    .failure_reason
                    .clone()
                    .unwrap_or_else(|| outcome.status.as_str().to_owned())
            ),
            (false, false) => format!("no candidate finished: {}", reasons.join("; ")),
        };
        return Err(Stop::Failed(MagicError::Failed(why)));
    }
    job.status = JobStatus::Completed;
    job.secondary = if out_of_time {
        Secondary::MaxAutoMLJobRuntimeReached
    } else if trials.len() >= spec.max_candidates {
        Secondary::MaxCandidatesReached
    } else {
        Secondary::Completed
    };
    finish(root, job, live, object_store, &layout)
}

/// Copies the best candidate's model into the job's output.
fn save_best(model: &Path, dir: &Path) -> Result<(), AutopilotError> {
    std::fs::create_dir_all(dir).map_err(|source| AutopilotError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let to = dir.join("model.tar.gz");
    std::fs::copy(model, &to)
        .map(|_| ())
        .map_err(|source| AutopilotError::Io { path: to, source })
}

/// SageMaker Clarify's `analysis.json` shape, with permutation importance as the method.
fn write_importance(
    path: &Path,
    candidate: &str,
    objective: Objective,
    importance: &[(String, f64)],
) -> Result<(), AutopilotError> {
    let values: serde_json::Map<String, serde_json::Value> = importance
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let doc = json!({
        "version": "1.0",
        "candidate": candidate,
        "explanations": {"permutation": {"label": {
            "global_importance": values,
            "metric": objective.as_str(),
        }}}
    });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| AutopilotError::Io {
            path: dir.to_owned(),
            source,
        })?;
    }
    std::fs::write(path, serde_json::to_string_pretty(&doc).expect("json")).map_err(|source| {
        AutopilotError::Io {
            path: path.to_owned(),
            source,
        }
    })
}

/// Uploads an `s3://` output, records the end and shows it.
fn finish(
    root: &Path,
    job: &mut JobRecord,
    live: &mut dyn Live,
    object_store: &dyn ObjectStore,
    layout: &Layout,
) -> Result<(), Stop> {
    if let Some(uri) = job.output_uri.clone() {
        upload(&layout.dir, &layout.dir, &uri, object_store, live.ctx())?;
        // The artifacts are where the user asked for them, as SageMaker reports them.
        let moved = |p: &Option<String>| {
            p.as_ref()
                .map(|p| match Path::new(p).strip_prefix(&layout.dir) {
                    Ok(rel) => format!("{uri}/{}", rel.to_string_lossy()),
                    Err(_) => p.clone(),
                })
        };
        job.exploration_notebook = moved(&job.exploration_notebook);
        job.candidate_notebook = moved(&job.candidate_notebook);
        job.feature_importance = moved(&job.feature_importance);
    }
    job.ended = Some(now());
    persist(root, job)?;
    live.show(job, &[]);
    Ok(())
}

fn upload(
    base: &Path,
    dir: &Path,
    uri: &str,
    object_store: &dyn ObjectStore,
    ctx: &mut dyn MagicContext,
) -> Result<(), MagicError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| MagicError::Failed(format!("cannot read {}: {e}", dir.display())))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            upload(base, &path, uri, object_store, ctx)?;
        } else {
            let rel = path.strip_prefix(base).unwrap_or(&path);
            object_store.put(&path, &format!("{uri}/{}", rel.to_string_lossy()), ctx)?;
        }
    }
    Ok(())
}
