//! `Mode: ENSEMBLING`: the finished candidates combined into one weighted ensemble by
//! Caruana's ensemble selection (the method AutoGluon's WeightedEnsemble, which SageMaker's
//! ensembling mode runs, uses): starting from nothing, each round adds (with replacement) the
//! candidate whose addition scores best on the validation rows with the job's objective, and
//! the ensemble kept is the best-scoring one met on the way. A candidate picked `n` times of
//! `N` weighs `n / N`. [`select`] is the pure selection; [`build`] loads the candidates,
//! selects, and records the ensemble as a training job of the tuning job's experiment, so it
//! is one model that `%predict` and endpoints take.
//!
//! On a large table the weights are chosen on the validation rows the ensemble is then scored
//! on, as AutoGluon's and SageMaker's ensembles are: its objective is an optimistic estimate,
//! and a separate holdout (the benchmark's) is the fair comparison. A small table (at most
//! [`CROSS_VALIDATION_ROWS`] rows) has too few validation rows to choose on: a few hundred
//! rows let the selection fit their noise (diabetes: 71 validation rows, a holdout RMSE 12 %
//! worse than ridge regression's). There each member is cross-validated on every row and the
//! members picked are trained again on every row, as AutoGluon's bagged modes do (see
//! [`build`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use ndarray::{Array1, Array2, Axis};
use polars::prelude::DataFrame;
use rustmaker_ml::algorithms::{
    self, Algorithm, FitData, Hyperparameters, Model, Monitor, Output, WeightedEnsemble,
};
use rustmaker_ml::job::{record_composed, ComposedJob};
use rustmaker_ml::prep::{self, ProblemType};
use rustmaker_ml::serving::Served;
use rustmaker_ml::store::{now, Store};

use crate::job::score_output;
use crate::objective::Objective;
use crate::record::CandidateRecord;
use crate::scoring::{self, Predictions};
use crate::split;
use crate::AutopilotError;

/// The candidate definition an ensemble is listed with.
pub const DEFINITION: &str = "weighted-ensemble";
/// The candidates an ensemble may draw from: the best ones.
pub const LIBRARY: usize = 10;
/// Selection rounds: the weights are multiples of 1/ROUNDS.
pub const ROUNDS: usize = 25;
/// Tables of at most this many rows (training and validation together) are ensembled on
/// cross-validated answers and their members trained again on every row (see [`build`]).
pub const CROSS_VALIDATION_ROWS: usize = 5_000;
/// The folds of that cross-validation.
pub const FOLDS: usize = 5;

/// The true answers of the validation rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Truth {
    Classes(Vec<usize>),
    Values(Vec<f64>),
}

/// A model's answers for the validation rows: class probabilities a row, or values.
#[derive(Debug, Clone, PartialEq)]
pub enum Said {
    Classes(Vec<Vec<f64>>),
    Values(Vec<f64>),
}

impl Said {
    /// What a model's output says, with the validation target it was computed for; clusters
    /// say nothing an objective scores.
    pub fn of(output: Output, y: &ndarray::Array1<f64>) -> Option<(Truth, Said)> {
        match output {
            Output::Classes(p) => Some((
                Truth::Classes(y.iter().map(|v| *v as usize).collect()),
                Said::Classes(p.outer_iter().map(|r| r.to_vec()).collect()),
            )),
            Output::Values(v) => Some((Truth::Values(y.to_vec()), Said::Values(v.to_vec()))),
            Output::Clusters(..) => None,
        }
    }

    /// `n` rows of nothing, shaped as `self`'s rows are.
    fn empty(&self, n: usize) -> Said {
        match self {
            Said::Classes(p) => Said::Classes(vec![vec![0.0; p.first().map_or(0, Vec::len)]; n]),
            Said::Values(_) => Said::Values(vec![0.0; n]),
        }
    }

    /// The answers as a model's output.
    fn output(&self) -> Output {
        match self {
            Said::Classes(p) => {
                let width = p.first().map_or(0, Vec::len);
                Output::Classes(
                    Array2::from_shape_vec((p.len(), width), p.concat())
                        .expect("every row has the same classes"),
                )
            }
            Said::Values(v) => Output::Values(Array1::from(v.clone())),
        }
    }

    fn zeros_like(&self) -> Said {
        match self {
            Said::Classes(p) => Said::Classes(p.iter().map(|r| vec![0.0; r.len()]).collect()),
            Said::Values(v) => Said::Values(vec![0.0; v.len()]),
        }
    }

    /// `self + other`, or `None` when the shapes differ (a member of another problem).
    fn plus(&self, other: &Said) -> Option<Said> {
        match (self, other) {
            (Said::Classes(a), Said::Classes(b))
                if a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.len() == y.len()) =>
            {
                Some(Said::Classes(
                    a.iter()
                        .zip(b)
                        .map(|(x, y)| x.iter().zip(y).map(|(p, q)| p + q).collect())
                        .collect(),
                ))
            }
            (Said::Values(a), Said::Values(b)) if a.len() == b.len() => {
                Some(Said::Values(a.iter().zip(b).map(|(p, q)| p + q).collect()))
            }
            _ => None,
        }
    }

    fn scaled(&self, by: f64) -> Said {
        match self {
            Said::Classes(p) => Said::Classes(
                p.iter()
                    .map(|r| r.iter().map(|v| v * by).collect())
                    .collect(),
            ),
            Said::Values(v) => Said::Values(v.iter().map(|x| x * by).collect()),
        }
    }
}

/// The objective of `said` against `truth`; `None` where it does not apply.
pub fn score(objective: Objective, truth: &Truth, said: &Said) -> Option<f64> {
    match (truth, said) {
        (Truth::Classes(truth), Said::Classes(proba)) => {
            scoring::score(objective, &Predictions::Classes { truth, proba })
        }
        (Truth::Values(truth), Said::Values(predicted)) => {
            scoring::score(objective, &Predictions::Values { truth, predicted })
        }
        _ => None,
    }
    .filter(|v| v.is_finite())
}

/// A smooth loss that orders ensembles the objective ties (accuracy and F1 move in steps of
/// one row): log loss for classes, squared error for values.
fn smooth_loss(truth: &Truth, said: &Said) -> f64 {
    let objective = match truth {
        Truth::Classes(_) => Objective::LogLoss,
        Truth::Values(_) => Objective::Mse,
    };
    score(objective, truth, said).unwrap_or(f64::INFINITY)
}

/// How many times each of `said` is picked in `rounds` rounds of greedy selection with
/// replacement, in the best-scoring ensemble met (ties keep the earlier, smaller one; among
/// additions that tie, the smooth loss decides, then the lower index). All zeros when no
/// member can be scored.
pub fn select(said: &[Said], truth: &Truth, objective: Objective, rounds: usize) -> Vec<usize> {
    let mut counts = vec![0; said.len()];
    let Some(first) = said.first() else {
        return counts;
    };
    // Lower is better for both parts of the key.
    let key = |s: &Said| -> Option<(f64, f64)> {
        let v = score(objective, truth, s)?;
        Some((
            if objective.maximize() { -v } else { v },
            smooth_loss(truth, s),
        ))
    };
    let mut sum = first.zeros_like();
    let mut best: Option<((f64, f64), Vec<usize>)> = None;
    for round in 1..=rounds {
        let mut pick: Option<(usize, (f64, f64), Said)> = None;
        for (j, s) in said.iter().enumerate() {
            let Some(next) = sum.plus(s) else { continue };
            let Some(k) = key(&next.scaled(1.0 / round as f64)) else {
                continue;
            };
            let better = pick
                .as_ref()
                .is_none_or(|(_, pk, _)| k.0 < pk.0 || (k.0 == pk.0 && k.1 < pk.1));
            if better {
                pick = Some((j, k, next));
            }
        }
        let Some((j, k, next)) = pick else { break };
        sum = next;
        counts[j] += 1;
        let improves = best
            .as_ref()
            .is_none_or(|(bk, _)| k.0 < bk.0 - 1e-12 || (k.0 <= bk.0 && k.1 < bk.1 - 1e-12));
        if improves {
            best = Some((k, counts.clone()));
        }
    }
    best.map(|(_, c)| c).unwrap_or(counts)
}

/// The rows an ensemble is chosen on, and how long it may take.
pub struct Rows<'a> {
    /// The rows the candidates trained on.
    pub train: &'a DataFrame,
    /// The rows they were scored on.
    pub validation: &'a DataFrame,
    pub target: &'a str,
    /// The seed of the folds and of the members' refits.
    pub seed: u64,
    /// When the out-of-fold fits must end: the members not cross-validated by then stay out.
    pub deadline: Option<Instant>,
}

impl Rows<'_> {
    /// Whether the table is small enough to be cross-validated.
    pub fn cross_validated(&self) -> bool {
        cross_validates(self.train, self.validation)
    }
}

/// Whether an ensemble of candidates trained on `train` and scored on `validation` is
/// cross-validated: the one rule the job's time split and [`build`] follow.
pub fn cross_validates(train: &DataFrame, validation: &DataFrame) -> bool {
    train.height() + validation.height() <= CROSS_VALIDATION_ROWS
}

/// The library the ensemble draws from: the best candidate of each definition (so a linear
/// model is there beside the trees), then the best of the rest, [`LIBRARY`] in all at least.
fn library(candidates: &[CandidateRecord], objective: Objective) -> Vec<&CandidateRecord> {
    let mut ranked: Vec<&CandidateRecord> = candidates
        .iter()
        .filter(|c| c.objective.is_some() && c.model.is_some())
        .collect();
    let key = |c: &CandidateRecord| {
        let v = c.objective.unwrap_or_default();
        if objective.maximize() {
            -v
        } else {
            v
        }
    };
    ranked.sort_by(|a, b| key(a).total_cmp(&key(b)).then_with(|| a.name.cmp(&b.name)));
    let mut out: Vec<&CandidateRecord> = Vec::new();
    for c in &ranked {
        if !out.iter().any(|o| o.definition == c.definition) {
            out.push(c);
        }
    }
    for c in ranked {
        if out.len() >= LIBRARY {
            break;
        }
        if !out.iter().any(|o| o.name == c.name) {
            out.push(c);
        }
    }
    out
}

/// A member of the library: its candidate, its model, and how it was trained.
struct Member<'a> {
    candidate: &'a CandidateRecord,
    served: Served,
    algorithm: Option<(Algorithm, Hyperparameters)>,
}

/// An ensemble chosen, before it is recorded.
struct Blend {
    served: Served,
    /// The members picked (indices into the library) with their weights.
    picked: Vec<(usize, f64)>,
    value: f64,
    metrics: Vec<(String, f64)>,
    refit: bool,
}

/// The ensemble of the best finished `candidates` (see [`library`]), recorded as the
/// training job `name` beside the first candidate's job and scored as a candidate is; `None`
/// when fewer than two candidates finished or no mix beats the best one alone.
///
/// A table of at most [`CROSS_VALIDATION_ROWS`] rows is cross-validated: each member is
/// trained again with its hyperparameters on [`FOLDS`] folds of the training and validation
/// rows together, the weights are chosen on those out-of-fold answers (every row, where the
/// validation rows alone are few and noisy), and the members picked are trained once more on
/// every row. Its objective is then the out-of-fold one, and the record says it was `refit`.
/// Larger tables, or a cross-validation that cannot run, choose on the validation rows.
pub fn build(
    store: &Store,
    name: &str,
    candidates: &[CandidateRecord],
    rows: &Rows,
    objective: Objective,
    replace: bool,
) -> Result<Option<CandidateRecord>, AutopilotError> {
    let started = now();
    let library = library(candidates, objective);
    if library.len() < 2 {
        return Ok(None);
    }
    let mut members: Vec<Member> = Vec::new();
    for c in library {
        let path = Path::new(c.model.as_deref().unwrap_or_default());
        let (manifest, model) = rustmaker_ml::artifact::read(path)?;
        let (Some(schema), Some(model)) = (manifest.schema, model) else {
            continue;
        };
        // One schema prepares the ensemble's input: a candidate prepared otherwise (trained
        // on other rows) stays out.
        if members
            .first()
            .is_some_and(|m| m.served.schema() != &schema)
        {
            continue;
        }
        let algorithm = Algorithm::parse(&manifest.algorithm)
            .and_then(|a| a.resolve(&manifest.hyperparameters).map(|hp| (a, hp)))
            .ok();
        members.push(Member {
            candidate: c,
            served: Served::new(schema, model),
            algorithm,
        });
    }
    let cross_validated = if rows.cross_validated() {
        cross_validated(&members, rows, objective)?
    } else {
        None
    };
    let blend = match cross_validated {
        Some(b) => b,
        None => match on_validation(&members, rows.validation, objective)? {
            Some(b) => b,
            None => return Ok(None),
        },
    };
    let tuned: BTreeMap<String, String> = blend
        .picked
        .iter()
        .map(|(i, w)| (members[*i].candidate.name.clone(), w.to_string()))
        .collect();
    let inputs: Vec<(String, String)> = blend
        .picked
        .iter()
        .map(|(i, _)| {
            let c = members[*i].candidate;
            (c.name.clone(), c.model.clone().unwrap_or_default())
        })
        .collect();
    let first = members[blend.picked[0].0].candidate;
    let component = store.component(&first.name)?.ok_or_else(|| {
        AutopilotError::request(
            "ensemble",
            format!(
                "the candidate {} is not in the experiment store",
                first.name
            ),
        )
    })?;
    let dir = component
        .job_dir
        .as_deref()
        .and_then(Path::parent)
        .map(|p| p.join(name))
        .ok_or_else(|| {
            AutopilotError::request(
                "ensemble",
                format!("the candidate {} has no job folder", first.name),
            )
        })?;
    let path = record_composed(
        store,
        ComposedJob {
            name,
            experiment: &component.experiment,
            trial: &component.trial,
            dir: &dir,
            algorithm: DEFINITION,
            hyperparameters: tuned.clone(),
            schema: blend.served.schema().clone(),
            model: blend.served.model(),
            inputs: &inputs,
            metrics: &blend.metrics,
            replace,
        },
    )?;
    Ok(Some(CandidateRecord {
        name: name.to_owned(),
        definition: DEFINITION.to_owned(),
        status: "Completed".to_owned(),
        objective: Some(blend.value),
        tuned,
        model: Some(path.to_string_lossy().into_owned()),
        failure_reason: None,
        created: started,
        ended: Some(now()),
        refit: blend.refit,
    }))
}

/// The weights chosen on the validation rows, the members as they are.
fn on_validation(
    members: &[Member],
    validation: &DataFrame,
    objective: Objective,
) -> Result<Option<Blend>, AutopilotError> {
    let mut said = Vec::new();
    let mut scored = Vec::new();
    let mut truth = None;
    for (i, m) in members.iter().enumerate() {
        let (output, y) = m.served.evaluate(validation)?;
        let Some((t, s)) = Said::of(output, &y) else {
            continue;
        };
        truth.get_or_insert(t);
        said.push(s);
        scored.push(i);
    }
    let Some(truth) = truth else { return Ok(None) };
    let counts = select(&said, &truth, objective, ROUNDS);
    let picked = weights(&scored, &counts);
    if picked.len() < 2 {
        return Ok(None);
    }
    let models = picked
        .iter()
        .map(|(i, _)| members[*i].served.model().clone())
        .collect();
    let ensemble = WeightedEnsemble::new(models, picked.iter().map(|(_, w)| *w).collect())?;
    let schema = members[picked[0].0].served.schema().clone();
    let problem = schema.problem_type;
    let served = Served::new(schema, Model::Ensemble(ensemble));
    // The metrics a training job of the problem reports, so the experiments' leaderboard
    // ranks the ensemble beside the candidates.
    let (output, y) = served.evaluate(validation)?;
    let metrics = rustmaker_ml::metrics::evaluate("validation", problem, &y, &output);
    let value = score_output(output, &y, objective)?;
    Ok(Some(Blend {
        served,
        picked,
        value,
        metrics,
        refit: false,
    }))
}

/// `(member, weight)` of the members picked `counts` times, weights summing to 1.
fn weights(members: &[usize], counts: &[usize]) -> Vec<(usize, f64)> {
    let total: usize = counts.iter().sum();
    members
        .iter()
        .zip(counts)
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| (*i, *n as f64 / total as f64))
        .collect()
}

/// Trains `algorithm` on `x` and `y`, without validation rows or a watcher (the candidate
/// it repeats already trained once under both).
fn fit_rows(
    (algorithm, hp): &(Algorithm, Hyperparameters),
    x: &Array2<f64>,
    y: &Array1<f64>,
    classes: usize,
    problem: ProblemType,
    seed: u64,
) -> Option<Model> {
    let stop = AtomicBool::new(false);
    let mut report = |_: u64, _: Vec<(String, f64)>| {};
    let data = FitData {
        x,
        y,
        classes,
        problem,
        validation: None,
        seed,
    };
    // A learner that panics on a fold leaves its member out, as a failing trial would.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        algorithms::fit(
            *algorithm,
            hp,
            &data,
            &mut Monitor {
                stop: &stop,
                report: &mut report,
                debug: None,
            },
        )
    }))
    .ok()?
    .ok()
}

/// The answers of `said` for `n` rows, with the rows of `at` set from `part`.
fn fill(whole: &mut Option<Said>, part: Said, at: &[usize], n: usize) {
    match (whole.get_or_insert_with(|| part.empty(n)), part) {
        (Said::Classes(w), Said::Classes(p)) => {
            for (row, v) in at.iter().zip(p) {
                w[*row] = v;
            }
        }
        (Said::Values(w), Said::Values(p)) => {
            for (row, v) in at.iter().zip(p) {
                w[*row] = v;
            }
        }
        _ => {}
    }
}

/// The weights chosen on out-of-fold answers for every row, the members picked trained
/// again on every row; `None` where the training and validation rows do not stack (a
/// validation file of other columns) or no member could be cross-validated in time.
fn cross_validated(
    members: &[Member],
    rows: &Rows,
    objective: Objective,
) -> Result<Option<Blend>, AutopilotError> {
    let Some(first) = members.first() else {
        return Ok(None);
    };
    let Ok(all) = rows.train.vstack(rows.validation) else {
        return Ok(None);
    };
    let problem = first.served.schema().problem_type;
    let (schema, prepared) = prep::fit(&all, Some(rows.target), Some(problem))?;
    let classes = schema.classes.len();
    let n = prepared.x.nrows();
    let fold = split::folds(
        prepared.y.as_slice().unwrap_or_default(),
        classes > 0,
        FOLDS,
        rows.seed,
    );
    // Each fold's rows, sliced once for every member.
    let mut folds = Vec::new();
    for k in 0..FOLDS {
        let (held, kept): (Vec<usize>, Vec<usize>) = (0..n).partition(|&r| fold[r] == k);
        if held.is_empty() || kept.is_empty() {
            return Ok(None);
        }
        let pick = |rows: &[usize]| {
            (
                prepared.x.select(Axis(0), rows),
                prepared.y.select(Axis(0), rows),
            )
        };
        folds.push((pick(&kept), pick(&held), held));
    }
    let in_time = || rows.deadline.is_none_or(|d| Instant::now() < d);
    let mut said = Vec::new();
    let mut done = Vec::new();
    // The folds of a member on every core at once: on a small table most learners fit on one.
    let threads = std::thread::available_parallelism().map_or(2, |t| t.get());
    'members: for (i, m) in members.iter().enumerate() {
        let Some(how) = &m.algorithm else { continue };
        if !in_time() {
            break;
        }
        let next = AtomicUsize::new(0);
        let fit_fold = |k: usize| {
            let ((train_x, train_y), (held_x, held_y), _) = &folds[k];
            let model = fit_rows(how, train_x, train_y, classes, problem, rows.seed)?;
            Said::of(model.predict(held_x), held_y).map(|(_, part)| part)
        };
        let mut parts: Vec<Option<Said>> = vec![None; folds.len()];
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads.min(folds.len()))
                .map(|_| {
                    s.spawn(|| {
                        let mut mine = Vec::new();
                        loop {
                            let k = next.fetch_add(1, Ordering::Relaxed);
                            if k >= folds.len() || !in_time() {
                                return mine;
                            }
                            mine.push((k, fit_fold(k)));
                        }
                    })
                })
                .collect();
            for worker in workers {
                for (k, part) in worker.join().unwrap_or_default() {
                    parts[k] = part;
                }
            }
        });
        // A fold not fitted in time, or whose learner failed, leaves the member out.
        let mut whole: Option<Said> = None;
        for (part, (_, _, held)) in parts.into_iter().zip(&folds) {
            let Some(part) = part else {
                continue 'members;
            };
            fill(&mut whole, part, held, n);
        }
        if let Some(w) = whole {
            said.push(w);
            done.push(i);
        }
    }
    let truth = if classes > 0 {
        Truth::Classes(prepared.y.iter().map(|c| *c as usize).collect())
    } else {
        Truth::Values(prepared.y.to_vec())
    };
    let counts = select(&said, &truth, objective, ROUNDS);
    let picked = weights(&done, &counts);
    if picked.is_empty() {
        return Ok(None);
    }
    let mut models = Vec::new();
    for (i, _) in &picked {
        let how = members[*i]
            .algorithm
            .as_ref()
            .expect("cross-validated members have one");
        match fit_rows(how, &prepared.x, &prepared.y, classes, problem, rows.seed) {
            Some(m) => models.push(m),
            None => return Ok(None),
        }
    }
    let total: usize = counts.iter().sum();
    let blended = said
        .iter()
        .zip(&counts)
        .fold(said[0].zeros_like(), |sum, (s, c)| {
            sum.plus(&s.scaled(*c as f64 / total as f64)).unwrap_or(sum)
        });
    let value = score(objective, &truth, &blended).ok_or_else(|| {
        AutopilotError::request(
            "AutoMLJobObjective.MetricName",
            format!("{objective} cannot be computed from the ensemble's out-of-fold answers"),
        )
    })?;
    let metrics =
        rustmaker_ml::metrics::evaluate("validation", problem, &prepared.y, &blended.output());
    let ensemble = WeightedEnsemble::new(models, picked.iter().map(|(_, w)| *w).collect())?;
    Ok(Some(Blend {
        served: Served::new(schema, Model::Ensemble(ensemble)),
        picked,
        value,
        metrics,
        refit: true,
    }))
}

/// Adds the ensemble of a tuning job's `candidates` to them as [`build`] makes it, named by
/// [`name_for`]; when it cannot be built, why goes to `failures` (SageMaker's partial failure
/// reasons) and the candidates stay as they are.
pub fn add_to(
    store: &Store,
    tuning_job: &str,
    candidates: &mut Vec<CandidateRecord>,
    failures: &mut Vec<String>,
    rows: &Rows,
    objective: Objective,
    replace: bool,
) {
    let name = name_for(tuning_job);
    match build(store, &name, candidates, rows, objective, replace) {
        Ok(Some(c)) => candidates.push(c),
        Ok(None) => {}
        Err(e) => failures.push(format!("{name}: {e}")),
    }
}

/// The ensemble's training-job name for a tuning job's candidates.
pub fn name_for(tuning_job: &str) -> String {
    let head: String = tuning_job.chars().take(54).collect();
    format!("{}-ensemble", head.trim_end_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes(rows: &[[f64; 2]]) -> Said {
        Said::Classes(rows.iter().map(|r| r.to_vec()).collect())
    }

    #[test]
    fn a_mix_that_beats_each_member_is_found() {
        // Each member is right on a different two of three rows; their average is right on
        // all three.
        let truth = Truth::Classes(vec![0, 1, 1]);
        let a = classes(&[[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]);
        let b = classes(&[[0.4, 0.6], [0.3, 0.7], [0.1, 0.9]]);
        let c = classes(&[[0.5, 0.5], [0.9, 0.1], [0.5, 0.5]]);
        let counts = select(&[a.clone(), b.clone(), c], &truth, Objective::Accuracy, 10);
        assert_eq!(counts[2], 0, "the poor member is left out: {counts:?}");
        assert!(counts[0] > 0 && counts[1] > 0, "{counts:?}");
        let mixed = a
            .scaled(counts[0] as f64)
            .plus(&b.scaled(counts[1] as f64))
            .unwrap()
            .scaled(1.0 / (counts[0] + counts[1]) as f64);
        let acc = |s: &Said| score(Objective::Accuracy, &truth, s).unwrap();
        assert_eq!(acc(&mixed), 1.0);
        assert!(acc(&a) < 1.0 && acc(&b) < 1.0);
    }

    #[test]
    fn a_best_member_alone_is_kept_alone() {
        let truth = Truth::Values(vec![1.0, 2.0, 3.0]);
        let exact = Said::Values(vec![1.0, 2.0, 3.0]);
        let off = Said::Values(vec![3.0, 3.0, 3.0]);
        let counts = select(&[off, exact], &truth, Objective::Mse, 25);
        assert_eq!(counts, vec![0, 1]);
    }

    #[test]
    fn regression_values_are_blended() {
        // One member is high, one low by the same amount: half and half is exact.
        let truth = Truth::Values(vec![1.0, 2.0, 3.0, 4.0]);
        let high = Said::Values(vec![2.0, 3.0, 4.0, 5.0]);
        let low = Said::Values(vec![0.0, 1.0, 2.0, 3.0]);
        let counts = select(&[high, low], &truth, Objective::Rmse, 25);
        assert_eq!(counts[0], counts[1], "{counts:?}");
    }

    #[test]
    fn nothing_to_select_from_selects_nothing() {
        let truth = Truth::Values(vec![1.0]);
        assert!(select(&[], &truth, Objective::Mse, 5).is_empty());
        // A classifier's answers do not score a regression target.
        let counts = select(&[classes(&[[0.5, 0.5]])], &truth, Objective::Mse, 5);
        assert_eq!(counts, vec![0]);
    }

    #[test]
    fn names_fit_a_training_job() {
        assert_eq!(name_for("ap-bina"), "ap-bina-ensemble");
        assert!(name_for(&"x".repeat(63)).len() <= 63);
    }
}
