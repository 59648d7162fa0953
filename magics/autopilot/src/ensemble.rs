//! `Mode: ENSEMBLING`: the finished candidates combined into one weighted ensemble by
//! Caruana's ensemble selection (the method AutoGluon's WeightedEnsemble, which SageMaker's
//! ensembling mode runs, uses): starting from nothing, each round adds (with replacement) the
//! candidate whose addition scores best on the validation rows with the job's objective, and
//! the ensemble kept is the best-scoring one met on the way. A candidate picked `n` times of
//! `N` weighs `n / N`. [`select`] is the pure selection; [`build`] loads the candidates,
//! selects, and records the ensemble as a training job of the tuning job's experiment, so it
//! is one model that `%predict` and endpoints take.
//!
//! The ensemble's weights are chosen on the validation rows it is then scored on, as
//! AutoGluon's and SageMaker's ensembles are: its objective is an optimistic estimate, and a
//! separate holdout (the benchmark's) is the fair comparison.

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::DataFrame;
use rustmaker_ml::algorithms::{Model, Output, WeightedEnsemble};
use rustmaker_ml::job::{record_composed, ComposedJob};
use rustmaker_ml::serving::Served;
use rustmaker_ml::store::{now, Store};

use crate::job::score_output;
use crate::objective::Objective;
use crate::record::CandidateRecord;
use crate::scoring::{self, Predictions};
use crate::AutopilotError;

/// The candidate definition an ensemble is listed with.
pub const DEFINITION: &str = "weighted-ensemble";
/// The candidates an ensemble may draw from: the best ones.
pub const LIBRARY: usize = 10;
/// Selection rounds: the weights are multiples of 1/ROUNDS.
pub const ROUNDS: usize = 25;

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

/// The ensemble of the best finished `candidates` (at most [`LIBRARY`]), recorded as the
/// training job `name` beside the first candidate's job and scored as a candidate is; `None`
/// when fewer than two candidates finished or no mix beats the best one alone.
pub fn build(
    store: &Store,
    name: &str,
    candidates: &[CandidateRecord],
    validation: &DataFrame,
    objective: Objective,
    replace: bool,
) -> Result<Option<CandidateRecord>, AutopilotError> {
    let started = now();
    let mut library: Vec<&CandidateRecord> = candidates
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
    library.sort_by(|a, b| key(a).total_cmp(&key(b)).then_with(|| a.name.cmp(&b.name)));
    library.truncate(LIBRARY);
    if library.len() < 2 {
        return Ok(None);
    }
    let mut members: Vec<(&CandidateRecord, Served)> = Vec::new();
    let mut said = Vec::new();
    let mut truth = None;
    for c in library {
        let served = Served::load(Path::new(c.model.as_deref().unwrap_or_default()))?;
        // One schema prepares the ensemble's input: a candidate prepared otherwise (trained
        // on other rows) stays out.
        if members
            .first()
            .is_some_and(|(_, m)| m.schema() != served.schema())
        {
            continue;
        }
        let (output, y) = served.evaluate(validation)?;
        let Some((t, s)) = Said::of(output, &y) else {
            continue;
        };
        truth.get_or_insert(t);
        said.push(s);
        members.push((c, served));
    }
    let Some(truth) = truth else { return Ok(None) };
    let counts = select(&said, &truth, objective, ROUNDS);
    let picked: Vec<(&(&CandidateRecord, Served), usize)> =
        members.iter().zip(counts).filter(|(_, n)| *n > 0).collect();
    if picked.len() < 2 {
        return Ok(None);
    }
    let total: usize = picked.iter().map(|(_, n)| n).sum();
    let weights: Vec<f64> = picked
        .iter()
        .map(|(_, n)| *n as f64 / total as f64)
        .collect();
    let models: Vec<Model> = picked.iter().map(|((_, m), _)| m.model().clone()).collect();
    let ensemble = WeightedEnsemble::new(models, weights.clone())?;
    let tuned: BTreeMap<String, String> = picked
        .iter()
        .zip(&weights)
        .map(|(((c, _), _), w)| (c.name.clone(), w.to_string()))
        .collect();
    let inputs: Vec<(String, String)> = picked
        .iter()
        .map(|((c, _), _)| (c.name.clone(), c.model.clone().unwrap_or_default()))
        .collect();
    let first = picked[0].0 .0;
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
    let schema = picked[0].0 .1.schema().clone();
    let problem = schema.problem_type;
    let served = Served::new(schema.clone(), Model::Ensemble(ensemble));
    // The metrics a training job of the problem reports, so the experiments' leaderboard
    // ranks the ensemble beside the candidates.
    let (output, y) = served.evaluate(validation)?;
    let metrics = rustmaker_ml::metrics::evaluate("validation", problem, &y, &output);
    let value = score_output(output, &y, objective)?;
    let path = record_composed(
        store,
        ComposedJob {
            name,
            experiment: &component.experiment,
            trial: &component.trial,
            dir: &dir,
            algorithm: DEFINITION,
            hyperparameters: tuned.clone(),
            schema,
            model: served.model(),
            inputs: &inputs,
            metrics: &metrics,
            replace,
        },
    )?;
    Ok(Some(CandidateRecord {
        name: name.to_owned(),
        definition: DEFINITION.to_owned(),
        status: "Completed".to_owned(),
        objective: Some(value),
        tuned,
        model: Some(path.to_string_lossy().into_owned()),
        failure_reason: None,
        created: started,
        ended: Some(now()),
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
    validation: &DataFrame,
    objective: Objective,
    replace: bool,
) {
    let name = name_for(tuning_job);
    match build(store, &name, candidates, validation, objective, replace) {
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
