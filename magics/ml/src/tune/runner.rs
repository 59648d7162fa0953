//! Runs a tuning job: asks the optimiser for points, runs each as a training job (up to
//! MaxParallelTrainingJobs at once, each in its own thread), watches their metrics for early
//! stopping and Hyperband, and ends on the resource limits, the completion criteria, a stop
//! request or an interrupt. Every trial is a training job in the experiment store and a row
//! of the tuning job; a trial that fails or is stopped is recorded with its reason and the
//! tuning job goes on.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use super::config::{Objective, TuningConfig};
use super::space::Point;
use super::stopping::{median_rule, Hyperband};
use super::strategy::{Observation, Optimizer, Strategy};
use crate::definition::TrainingDefinition;
use crate::job::{self, JobKind, JobResult, JobSpec, Watcher};
use crate::store::{Status, Store};
use crate::MlError;

/// One trial as the tuning job sees it.
#[derive(Debug, Clone)]
pub struct Trial {
    pub seq: usize,
    pub name: String,
    pub definition: usize,
    pub point: Point,
    pub tuned: BTreeMap<String, String>,
    pub status: Status,
    /// The objective as reported (not as a loss).
    pub objective: Option<f64>,
    /// The objective per step while it trains.
    pub series: Vec<(u64, f64)>,
    pub reason: Option<String>,
}

/// What the notebook shows while the job runs.
pub trait TuneWatcher {
    fn progress(&mut self, trials: &[Trial], best: Option<&Trial>, status: Status);
    /// An interrupt.
    fn should_stop(&mut self) -> bool;
}

pub struct TuningOutcome {
    pub status: Status,
    pub completion_reason: Option<String>,
    pub failure_reason: Option<String>,
    pub best: Option<Trial>,
    pub trials: Vec<Trial>,
    pub suggestion_seconds: f64,
}

/// What a trial's training job is made from: the job for each definition, where trials'
/// directories go, and their experiment.
pub struct TrialTemplate {
    /// Each definition's job (its data loaded once) and its definition.
    pub kinds: Vec<JobKind>,
    pub definitions: Vec<TrainingDefinition>,
    pub jobs_root: PathBuf,
    pub experiment: String,
    pub replace: bool,
}

enum Event {
    Metrics(usize, u64, Vec<(String, f64)>),
    Done(usize, Result<JobResult, MlError>),
}

struct TrialWatcher {
    index: usize,
    tx: mpsc::Sender<Event>,
    stop: Arc<AtomicBool>,
    reason: Arc<Mutex<Option<String>>>,
}

impl Watcher for TrialWatcher {
    fn metrics(&mut self, step: u64, values: &[(String, f64)]) {
        let _ = self
            .tx
            .send(Event::Metrics(self.index, step, values.to_vec()));
    }
    fn log(&mut self, _line: &str) {}
    fn should_stop(&mut self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
    fn stop_reason(&self) -> Option<String> {
        self.reason.lock().ok().and_then(|r| r.clone())
    }
}

struct Running {
    stop: Arc<AtomicBool>,
    reason: Arc<Mutex<Option<String>>>,
    started: Instant,
}

impl Running {
    fn stop(&self, why: &str) {
        if let Ok(mut r) = self.reason.lock() {
            r.get_or_insert_with(|| why.to_owned());
        }
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn better(objective: &Objective, a: f64, b: f64) -> bool {
    objective.loss(a) < objective.loss(b)
}

/// Runs the tuning job `name` to its end. `priors` are warm-start observations.
pub fn run(
    name: &str,
    config: &TuningConfig,
    template: TrialTemplate,
    priors: Vec<Observation>,
    store: &Store,
    watcher: &mut dyn TuneWatcher,
) -> Result<TuningOutcome, MlError> {
    let spaces = config.definitions.iter().map(|d| d.space.clone()).collect();
    let seed = config.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let mut optimizer = Optimizer::new(config.strategy, spaces, seed, config.max_jobs);
    let mut hyperband = config.hyperband.map(|(min, max)| Hyperband::new(min, max));
    let objectives: Vec<&Objective> = config.definitions.iter().map(|d| &d.objective).collect();
    let started = Instant::now();

    let mut observed: Vec<Observation> = priors.clone();
    let mut tried: Vec<(usize, Point)> = priors
        .iter()
        .map(|o| (o.definition, o.point.clone()))
        .collect();
    let mut trials: Vec<Trial> = Vec::new();
    let mut running: BTreeMap<usize, Running> = BTreeMap::new();
    let mut best: Option<usize> = None;
    let mut not_improving = 0usize;
    let mut low_ei = 0usize;
    let mut completion: Option<String> = None;
    let mut stopping = false;
    let mut exhausted = false;
    let mut suggestion_seconds = 0.0;
    let mut last_progress: Option<Instant> = None;
    let (tx, rx) = mpsc::channel::<Event>();

    std::thread::scope(|scope| -> Result<(), MlError> {
        loop {
            // Start trials while there is room.
            while !stopping
                && completion.is_none()
                && !exhausted
                && running.len() < config.max_parallel
                && trials.len() < config.max_jobs
            {
                let pending: Vec<(usize, Point)> = running
                    .keys()
                    .map(|i| (trials[*i].definition, trials[*i].point.clone()))
                    .collect();
                let Some(s) = optimizer.suggest(&observed, &pending, &tried) else {
                    exhausted = true;
                    break;
                };
                suggestion_seconds += s.seconds;
                if config.completion.convergence && config.strategy == Strategy::Bayesian {
                    // Converged: the model expects (almost) nothing more from any point.
                    let (lo, hi) = observed
                        .iter()
                        .fold((f64::INFINITY, f64::NEG_INFINITY), |a, o| {
                            (a.0.min(o.loss), a.1.max(o.loss))
                        });
                    let spread = (hi - lo).abs().max(1e-12);
                    if s.expected_improvement.is_some_and(|ei| ei < 1e-4 * spread) {
                        low_ei += 1;
                    } else {
                        low_ei = 0;
                    }
                    if low_ei >= 3 {
                        completion = Some(
                            "ConvergenceDetected: the model expected no further improvement for 3 suggestions in a row".into(),
                        );
                        break;
                    }
                }
                let index = trials.len();
                let def = s.definition;
                let trial_name = format!("{name}-{:03}", index + 1);
                let tuned = optimizer.spaces()[def].to_strings(&s.point);
                let definition = &config.definitions[def];
                store.add_trial(
                    name,
                    &trial_name,
                    index as u64 + 1,
                    &definition.name,
                    &tuned,
                )?;
                tried.push((def, s.point.clone()));
                trials.push(Trial {
                    seq: index + 1,
                    name: trial_name.clone(),
                    definition: def,
                    point: s.point,
                    tuned: tuned.clone(),
                    status: Status::InProgress,
                    objective: None,
                    series: Vec::new(),
                    reason: None,
                });
                if let Some(h) = hyperband.as_mut() {
                    h.add_trial(index, index);
                }
                // The trial's own definition: the tuned values become static ones.
                let mut trial_definition = template.definitions[def].clone();
                trial_definition.static_hyper_parameters.extend(tuned);
                let spec = JobSpec {
                    name: trial_name.clone(),
                    experiment: template.experiment.clone(),
                    trial: Some(name.to_owned()),
                    hyperparameters: trial_definition.static_hyper_parameters.clone(),
                    dir: template.jobs_root.join(&trial_name),
                    seed: trial_definition.seed.unwrap_or(1),
                    replace: template.replace,
                    definition: Some(trial_definition),
                };
                let kind = template.kinds[def].clone();
                let r = Running {
                    stop: Arc::new(AtomicBool::new(false)),
                    reason: Arc::new(Mutex::new(None)),
                    started: Instant::now(),
                };
                let mut trial_watcher = TrialWatcher {
                    index,
                    tx: tx.clone(),
                    stop: r.stop.clone(),
                    reason: r.reason.clone(),
                };
                running.insert(index, r);
                let done = tx.clone();
                std::thread::Builder::new()
                    .name(format!("trial-{trial_name}"))
                    .spawn_scoped(scope, move || {
                        let result = job::run(spec, kind, store, &mut trial_watcher);
                        let _ = done.send(Event::Done(index, result));
                    })
                    .map_err(|e| MlError::Training(format!("cannot start a trial thread: {e}")))?;
            }
            if running.is_empty()
                && (stopping
                    || completion.is_some()
                    || exhausted
                    || trials.len() >= config.max_jobs)
            {
                break;
            }

            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Event::Metrics(index, step, values)) => {
                    let def = trials[index].definition;
                    let objective = objectives[def];
                    if let Some((_, v)) = values.iter().find(|(k, _)| *k == objective.metric) {
                        trials[index].series.push((step, *v));
                        let loss = objective.loss(*v);
                        let mut stop_for: Option<String> = None;
                        if config.early_stopping {
                            let earlier: Vec<Vec<(u64, f64)>> = trials[..index]
                                .iter()
                                .filter(|t| t.definition == def)
                                .map(|t| {
                                    t.series
                                        .iter()
                                        .map(|(s, v)| (*s, objective.loss(*v)))
                                        .collect()
                                })
                                .collect();
                            let refs: Vec<&[(u64, f64)]> =
                                earlier.iter().map(Vec::as_slice).collect();
                            if median_rule(step, loss, &refs) {
                                stop_for = Some(format!(
                                    "early stopping: {} = {v} at step {step} is worse than the median of earlier training jobs' running averages",
                                    objective.metric
                                ));
                            }
                        }
                        if let Some(h) = hyperband.as_mut() {
                            stop_for = stop_for.or(h.report(index, step, loss));
                        }
                        if let (Some(why), Some(r)) = (stop_for, running.get(&index)) {
                            r.stop(&why);
                        }
                    }
                }
                Ok(Event::Done(index, result)) => {
                    running.remove(&index);
                    let def = trials[index].definition;
                    let objective = objectives[def];
                    let t = &mut trials[index];
                    match result {
                        Ok(result) => {
                            t.status = result.status;
                            t.reason = result.failure_reason;
                            t.objective = match result.status {
                                Status::Completed => result
                                    .metrics
                                    .iter()
                                    .find(|(k, _)| *k == objective.metric)
                                    .map(|(_, v)| *v)
                                    .or(t.series.last().map(|(_, v)| *v)),
                                // A stopped trial's objective is its last report.
                                Status::Stopped => t.series.last().map(|(_, v)| *v),
                                _ => None,
                            };
                            if t.status == Status::Completed && t.objective.is_none() {
                                t.reason = Some(format!(
                                    "the training job never reported the objective metric {}",
                                    objective.metric
                                ));
                            }
                        }
                        Err(e) => {
                            t.status = Status::Failed;
                            t.reason = Some(e.to_string());
                        }
                    }
                    store.finish_trial(
                        name,
                        &t.name,
                        t.status,
                        t.objective,
                        t.reason.as_deref(),
                    )?;
                    if let Some(v) = t.objective {
                        observed.push(Observation {
                            definition: def,
                            point: t.point.clone(),
                            loss: objective.loss(v),
                        });
                    }
                    if t.status == Status::Completed {
                        if let Some(v) = t.objective {
                            let improved = match best.and_then(|b| trials[b].objective) {
                                None => true,
                                Some(b) => {
                                    better(objective, v, b)
                                        && (v - b).abs() >= 0.01 * b.abs().max(1e-12)
                                }
                            };
                            let new_best = match best.and_then(|b| trials[b].objective) {
                                None => true,
                                Some(b) => better(objective, v, b),
                            };
                            if new_best {
                                best = Some(index);
                                store.set_best(name, &trials[index].name)?;
                            }
                            not_improving = if improved { 0 } else { not_improving + 1 };
                            if let Some(target) = config.completion.target {
                                if !better(objective, target, v) && completion.is_none() {
                                    completion = Some(format!(
                                        "TargetObjectiveMetricValue: {} reached {v} (target {target})",
                                        trials[index].name
                                    ));
                                }
                            }
                            let limit = config.completion.not_improving.or((config
                                .completion
                                .convergence
                                && config.strategy != Strategy::Bayesian)
                                .then_some(10));
                            if let Some(n) = limit {
                                if not_improving >= n && completion.is_none() {
                                    completion = Some(format!(
                                        "BestObjectiveNotImproving: {n} training jobs in a row did not improve the objective by 1%"
                                    ));
                                }
                            }
                        }
                    }
                    if let Some(why) = &completion {
                        for r in running.values() {
                            r.stop(&format!("the tuning job completed ({why})"));
                        }
                    }
                    last_progress = None;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }

            if !stopping && (watcher.should_stop() || store.tuning_stop_requested(name)) {
                stopping = true;
                store.set_tuning_status(name, Status::Stopping)?;
                for r in running.values() {
                    r.stop("the tuning job was stopped");
                }
            }
            if let Some(limit) = config.max_runtime {
                if completion.is_none() && started.elapsed() > limit {
                    completion = Some(format!(
                        "MaxRuntimeInSeconds: the tuning job ran {} s",
                        limit.as_secs()
                    ));
                    for r in running.values() {
                        r.stop("the tuning job reached its MaxRuntimeInSeconds");
                    }
                }
            }
            for (i, r) in &running {
                let limit = template.definitions[trials[*i].definition]
                    .stopping_condition
                    .as_ref()
                    .and_then(|s| s.max_runtime_in_seconds)
                    .map(Duration::from_secs);
                if let Some(limit) = limit {
                    if r.started.elapsed() > limit {
                        r.stop("MaxRuntimeInSeconds exceeded");
                    }
                }
            }
            if last_progress.is_none_or(|t| t.elapsed() > Duration::from_millis(250)) {
                let status = if stopping {
                    Status::Stopping
                } else {
                    Status::InProgress
                };
                watcher.progress(&trials, best.map(|b| &trials[b]), status);
                last_progress = Some(Instant::now());
            }
        }
        Ok(())
    })?;

    let completed = trials
        .iter()
        .filter(|t| t.status == Status::Completed)
        .count();
    let (status, completion_reason, failure_reason) = if stopping {
        (Status::Stopped, None, None)
    } else if completed == 0 && !trials.is_empty() {
        let first = trials
            .iter()
            .find_map(|t| t.reason.clone())
            .unwrap_or_default();
        (
            Status::Failed,
            None,
            Some(format!(
                "none of the {} training jobs completed; the first one's reason: {first}",
                trials.len()
            )),
        )
    } else {
        let combinations: Option<u128> = config
            .definitions
            .iter()
            .map(|d| d.space.size())
            .sum::<Option<u128>>();
        let all_tried = combinations.is_some_and(|n| tried.len() as u128 >= n);
        let why = completion.unwrap_or_else(|| {
            if exhausted || all_tried {
                "every combination of the ranges was tried".into()
            } else {
                format!("MaxNumberOfTrainingJobs ({}) reached", config.max_jobs)
            }
        });
        (Status::Completed, Some(why), None)
    };
    store.finish_tuning(
        name,
        status,
        failure_reason.as_deref(),
        completion_reason.as_deref(),
    )?;
    let best = best.map(|b| trials[b].clone());
    watcher.progress(&trials, best.as_ref(), status);
    Ok(TuningOutcome {
        status,
        completion_reason,
        failure_reason,
        best,
        trials,
        suggestion_seconds,
    })
}
