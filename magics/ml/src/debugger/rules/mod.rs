//! The built-in rules, each with SageMaker's parameters and defaults, evaluated step by step
//! over a [`Trial`] as smdebug's `invoke_rule` does: a rule that cannot find its tensors at
//! a step skips it, a rule whose condition is met fires once and is done.

use std::collections::BTreeMap;

use regex::Regex;

use super::trial::{Mode, Step, Tensor, Trial};

mod spec;
pub use spec::{RuleKind, RuleSpec};
#[cfg(test)]
mod tests;

/// smdebug's rule evaluation statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    InProgress,
    NoIssuesFound,
    IssuesFound,
    Error,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "InProgress",
            Status::NoIssuesFound => "NoIssuesFound",
            Status::IssuesFound => "IssuesFound",
            Status::Error => "Error",
            Status::Stopped => "Stopped",
        }
    }
}

/// A rule's state over the job.
pub struct Evaluation {
    pub spec: RuleSpec,
    pub status: Status,
    pub details: Option<String>,
    pub fired_at: Option<u64>,
    /// Steps at which it found what it reads.
    pub evaluated: u64,
    memory: Memory,
}

#[derive(Default)]
struct Memory {
    last_check: BTreeMap<String, u64>,
    streak: u64,
    best: BTreeMap<&'static str, (f64, u64)>,
    counts: BTreeMap<i64, (u64, u64)>,
    samples: u64,
}

/// Scalars of a tensor.
fn scalar(t: &Tensor) -> Option<f64> {
    (t.values.len() == 1).then(|| t.values[0])
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn variance(v: &[f64]) -> f64 {
    let m = mean(v);
    v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len().max(1) as f64
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// The tensors at a step that a rule's collections and regexes select.
fn selected<'t>(
    trial: &'t Trial,
    step: &'t Step,
    collections: &[String],
    regexes: &[Regex],
) -> Vec<(&'t String, &'t Tensor)> {
    step.tensors
        .iter()
        .filter(|(name, _)| {
            regexes.iter().any(|r| r.is_match(name))
                || collections.iter().any(|c| {
                    trial
                        .collections()
                        .get(c)
                        .is_some_and(|names| names.contains(*name))
                })
        })
        .collect()
}

/// The training and validation losses at a step: `train…`/`validation…` tensors of the
/// losses collection (a tree learner's round), or the same loss in TRAIN and EVAL at the
/// same mode step (a network's epoch).
fn loss_pair(trial: &Trial, at: u64, regexes: &[Regex]) -> Option<(f64, f64, u64)> {
    let step = trial.step(at)?;
    let losses = trial.collections().get("losses");
    let picked = |name: &str| {
        if regexes.is_empty() {
            losses.is_some_and(|l| l.contains(name))
        } else {
            regexes.iter().any(|r| r.is_match(name))
        }
    };
    let find = |s: &Step, prefix: &str| {
        s.tensors
            .iter()
            .find(|(n, _)| picked(n) && n.starts_with(prefix))
            .and_then(|(_, t)| scalar(t))
    };
    if let (Some(t), Some(v)) = (find(step, "train"), find(step, "validation")) {
        return Some((t, v, step.mode_step));
    }
    if step.mode != Mode::Eval {
        return None;
    }
    let (name, eval) = step
        .tensors
        .iter()
        .find(|(n, _)| picked(n))
        .and_then(|(n, t)| scalar(t).map(|v| (n, v)))?;
    let train = trial
        .steps()
        .filter(|(_, s)| s.mode == Mode::Train && s.mode_step == step.mode_step)
        .find_map(|(_, s)| s.tensors.get(name).and_then(scalar))?;
    Some((train, eval, step.mode_step))
}

/// The depth of each tree in XGBoost's `trees/` columns (Tree, Node, Yes, No).
fn tree_depths(step: &Step) -> Option<Vec<u64>> {
    let tree = &step.tensors.get("trees/Tree")?.values;
    let node = &step.tensors.get("trees/Node")?.values;
    let yes = &step.tensors.get("trees/Yes")?.values;
    let no = &step.tensors.get("trees/No")?.values;
    let mut depths: BTreeMap<i64, BTreeMap<i64, u64>> = BTreeMap::new();
    for i in 0..tree.len().min(node.len()).min(yes.len()).min(no.len()) {
        let nodes = depths.entry(tree[i] as i64).or_default();
        let d = *nodes.entry(node[i] as i64).or_insert(0);
        for child in [yes[i], no[i]] {
            if child.is_finite() {
                nodes.insert(child as i64, d + 1);
            }
        }
    }
    Some(
        depths
            .values()
            .map(|n| n.values().copied().max().unwrap_or(0))
            .collect(),
    )
}

impl Evaluation {
    pub fn new(spec: RuleSpec) -> Evaluation {
        Evaluation {
            spec,
            status: Status::InProgress,
            details: None,
            fired_at: None,
            evaluated: 0,
            memory: Memory::default(),
        }
    }

    /// Evaluates the rule at a saved step; `Some(what)` when its condition is met.
    pub fn invoke(&mut self, trial: &Trial, at: u64) -> Option<String> {
        if self.status != Status::InProgress {
            return None;
        }
        let step = trial.step(at)?;
        let found = self.condition(trial, at, step);
        if let Some(what) = &found {
            self.status = Status::IssuesFound;
            self.fired_at = Some(at);
            self.details = Some(format!("{} at step {at}: {what}", self.spec.kind.name()));
        }
        found
    }

    fn seen(&mut self) {
        self.evaluated += 1;
    }

    fn condition(&mut self, trial: &Trial, at: u64, step: &Step) -> Option<String> {
        let spec = self.spec.clone();
        let collections = spec.list("collection_names");
        match spec.kind {
            RuleKind::LossNotDecreasing => {
                let mode = Mode::parse(&spec.params["mode"]).unwrap_or(Mode::Global);
                if mode != Mode::Global && step.mode != mode {
                    return None;
                }
                let mut colls = collections.clone();
                if spec.flag("use_losses_collection") {
                    colls.push("losses".into());
                }
                let regexes = spec.regexes("tensor_regex");
                let num_steps = spec.int("num_steps").max(1);
                let diff = spec.float("diff_percent") / 100.0;
                let rise = spec.float("increase_threshold_percent") / 100.0;
                for (name, tensor) in selected(trial, step, &colls, &regexes) {
                    let Some(now) = scalar(tensor) else { continue };
                    self.seen();
                    let key = format!("{name}/{}", step.mode.name());
                    let last = self.memory.last_check.get(&key).copied();
                    if last.is_some_and(|l| step.mode_step < l + num_steps) {
                        continue;
                    }
                    // The newest loss at least num_steps before, in this step's mode.
                    let before = trial
                        .series(name, Some(step.mode))
                        .into_iter()
                        .filter(|(_, s, _)| s.mode_step + num_steps <= step.mode_step)
                        .filter_map(|(_, s, t)| scalar(t).map(|v| (s.mode_step, v)))
                        .next_back();
                    let Some((then_step, then)) = before else {
                        if last.is_none() {
                            self.memory.last_check.insert(key, step.mode_step);
                        }
                        continue;
                    };
                    self.memory.last_check.insert(key, step.mode_step);
                    let lowest = trial
                        .series(name, Some(step.mode))
                        .into_iter()
                        .filter(|(s, _, _)| *s <= at)
                        .filter_map(|(_, _, t)| scalar(t))
                        .fold(f64::INFINITY, f64::min);
                    if now > then - diff * then.abs() {
                        return Some(format!(
                            "{name} is {now:.6} at {} step {}, not {:.2} % below {then:.6} at step {then_step}",
                            step.mode.name(), step.mode_step, diff * 100.0
                        ));
                    }
                    if now > lowest + rise * lowest.abs() {
                        return Some(format!(
                            "{name} is {now:.6}, more than {:.1} % above its lowest, {lowest:.6}",
                            rise * 100.0
                        ));
                    }
                }
                None
            }
            RuleKind::Overfit => {
                if step.mode_step < spec.int("start_step") {
                    return None;
                }
                let (train, validation, _) = loss_pair(trial, at, &spec.regexes("tensor_regex"))?;
                self.seen();
                let ratio = (validation - train) / train.abs().max(f64::MIN_POSITIVE);
                if ratio > spec.float("ratio_threshold") {
                    self.memory.streak += 1;
                } else {
                    self.memory.streak = 0;
                }
                (self.memory.streak >= spec.int("patience").max(1)).then(|| {
                    format!(
                        "validation loss {validation:.6} is {:.1} % above training loss {train:.6} for {} steps (ratio_threshold {})",
                        ratio * 100.0,
                        self.memory.streak,
                        spec.params["ratio_threshold"]
                    )
                })
            }
            RuleKind::Overtraining => {
                let (train, validation, _) = loss_pair(trial, at, &[])?;
                self.seen();
                let delta = spec.float("delta");
                let stalled = |which: &'static str, v: f64, memory: &mut Memory| {
                    let entry = memory.best.entry(which).or_insert((f64::INFINITY, 0));
                    if v < entry.0 - delta {
                        *entry = (v, 0);
                    } else {
                        entry.1 += 1;
                    }
                    entry.1
                };
                let t = stalled("train", train, &mut self.memory);
                let v = stalled("validation", validation, &mut self.memory);
                if v >= spec.int("patience_validation") {
                    return Some(format!(
                        "validation loss has not improved by {delta} for {v} steps"
                    ));
                }
                (t >= spec.int("patience_train"))
                    .then(|| format!("training loss has not improved by {delta} for {t} steps"))
            }
            RuleKind::VanishingGradient => {
                let threshold = spec.float("threshold");
                for (name, t) in selected(trial, step, &["gradients".into()], &[]) {
                    self.seen();
                    let m = mean(&t.values.iter().map(|v| v.abs()).collect::<Vec<_>>());
                    if m < threshold {
                        return Some(format!(
                            "the mean absolute value of {name} is {m:e}, below {threshold:e}"
                        ));
                    }
                }
                None
            }
            RuleKind::ExplodingTensor => {
                let regexes = spec.regexes("tensor_regex");
                let all = collections.is_empty() && regexes.is_empty();
                let only_nan = spec.flag("only_nan");
                let chosen: Vec<&String> = selected(trial, step, &collections, &regexes)
                    .into_iter()
                    .map(|(n, _)| n)
                    .collect();
                // XGBoost's tree columns mark a leaf's split with NaN: not a value at all.
                let trees = trial.collections().get("trees");
                for (name, t) in &step.tensors {
                    let pick = if all {
                        trees.is_none_or(|names| !names.contains(name))
                    } else {
                        chosen.contains(&name)
                    };
                    if !pick {
                        continue;
                    }
                    self.seen();
                    let bad = t
                        .values
                        .iter()
                        .filter(|v| v.is_nan() || (!only_nan && v.is_infinite()))
                        .count();
                    if bad > 0 {
                        return Some(format!(
                            "{name} has {bad} {} values",
                            if only_nan { "NaN" } else { "NaN or infinite" }
                        ));
                    }
                }
                None
            }
            RuleKind::WeightUpdateRatio => {
                let need = spec.opt_float("num_steps").map(|v| v as u64);
                for (name, t) in selected(trial, step, &["weights".into()], &[]) {
                    let previous = trial
                        .series(name, Some(step.mode))
                        .into_iter()
                        .rfind(|(_, s, _)| s.mode_step < step.mode_step);
                    let Some((_, prev_step, prev)) = previous else {
                        continue;
                    };
                    if need.is_some_and(|n| step.mode_step - prev_step.mode_step != n)
                        || prev.values.len() != t.values.len()
                    {
                        continue;
                    }
                    self.seen();
                    let update: Vec<f64> = t
                        .values
                        .iter()
                        .zip(&prev.values)
                        .map(|(a, b)| a - b)
                        .collect();
                    let ratio = norm(&update) / (norm(&prev.values) + spec.float("epsilon"));
                    if ratio > spec.float("large_threshold")
                        || ratio < spec.float("small_threshold")
                    {
                        return Some(format!(
                            "the update of {name} is {ratio:e} of its size (allowed {} to {})",
                            spec.params["small_threshold"], spec.params["large_threshold"]
                        ));
                    }
                }
                None
            }
            RuleKind::AllZero => {
                let threshold = spec.float("threshold");
                for (name, t) in selected(trial, step, &collections, &spec.regexes("tensor_regex"))
                {
                    self.seen();
                    let zeros = t.values.iter().filter(|v| **v == 0.0).count() as f64 * 100.0
                        / t.values.len().max(1) as f64;
                    if zeros >= threshold {
                        return Some(format!(
                            "{name} is {zeros:.1} % zeros (threshold {threshold} %)"
                        ));
                    }
                }
                None
            }
            RuleKind::UnchangedTensor => {
                let (rtol, atol) = (spec.float("rtol"), spec.float("atol"));
                let equal_nan = spec.flag("equal_nan");
                let n = spec.int("num_steps").max(2) as usize;
                for (name, t) in selected(trial, step, &collections, &spec.regexes("tensor_regex"))
                {
                    let series = trial.series(name, Some(step.mode));
                    let upto: Vec<&Tensor> = series
                        .iter()
                        .filter(|(s, _, _)| *s <= at)
                        .map(|(_, _, t)| *t)
                        .collect();
                    if upto.len() < n {
                        continue;
                    }
                    self.seen();
                    let close = |a: f64, b: f64| {
                        (equal_nan && a.is_nan() && b.is_nan())
                            || (a - b).abs() <= atol + rtol * b.abs()
                    };
                    let unchanged = upto[upto.len() - n..].iter().all(|p| {
                        p.values.len() == t.values.len()
                            && p.values.iter().zip(&t.values).all(|(a, b)| close(*a, *b))
                    });
                    if unchanged {
                        return Some(format!(
                            "{name} has not changed over the last {n} saved steps"
                        ));
                    }
                }
                None
            }
            RuleKind::TensorVariance => {
                let (max, min) = (
                    spec.opt_float("max_threshold"),
                    spec.opt_float("min_threshold"),
                );
                for (name, t) in selected(trial, step, &collections, &spec.regexes("tensor_regex"))
                {
                    self.seen();
                    let v = variance(&t.values);
                    if max.is_some_and(|m| v > m) || min.is_some_and(|m| v < m) {
                        return Some(format!(
                            "the variance of {name} is {v:e}, outside {} to {}",
                            spec.params["min_threshold"], spec.params["max_threshold"]
                        ));
                    }
                }
                None
            }
            RuleKind::DeadRelu | RuleKind::SaturatedActivation => {
                let regexes = spec.regexes("tensor_regex");
                let inactivity = spec.float("threshold_inactivity");
                let layer = spec.float("threshold_layer");
                for (name, t) in selected(trial, step, &collections, &regexes) {
                    if t.shape.len() != 2 {
                        continue;
                    }
                    self.seen();
                    let (rows, units) = (t.shape[0], t.shape[1]);
                    let active = |v: f64| match spec.kind {
                        RuleKind::DeadRelu => v > 0.0,
                        _ if name.contains("tanh") => {
                            v > spec.float("threshold_tanh_min")
                                && v < spec.float("threshold_tanh_max")
                        }
                        _ => {
                            v > spec.float("threshold_sigmoid_min")
                                && v < spec.float("threshold_sigmoid_max")
                        }
                    };
                    let inactive_units = (0..units)
                        .filter(|&u| {
                            let on = (0..rows)
                                .filter(|&r| active(t.values[r * units + u]))
                                .count();
                            (on as f64 * 100.0 / rows.max(1) as f64) < inactivity
                        })
                        .count();
                    let share = inactive_units as f64 * 100.0 / units.max(1) as f64;
                    if share > layer {
                        let what = if spec.kind == RuleKind::DeadRelu {
                            "dead"
                        } else {
                            "saturated"
                        };
                        return Some(format!("{share:.1} % of {name}'s {units} units are {what} (threshold_layer {layer} %)"));
                    }
                }
                None
            }
            RuleKind::PoorWeightInitialization => {
                if step.mode_step >= spec.int("steps").max(1) {
                    return None;
                }
                let inputs = selected(trial, step, &[], &spec.regexes("activation_inputs_regex"));
                let variances: Vec<(String, f64)> = inputs
                    .iter()
                    .map(|(n, t)| ((*n).clone(), variance(&t.values)))
                    .collect();
                if variances.len() >= 2 {
                    self.seen();
                    let (lo, hi) = variances
                        .iter()
                        .fold((f64::INFINITY, 0.0f64), |(lo, hi), (_, v)| {
                            (lo.min(*v), hi.max(*v))
                        });
                    let threshold = spec.float("threshold");
                    if hi / lo.max(f64::MIN_POSITIVE) > threshold {
                        return Some(format!("the variances of the layers' activation inputs differ {:.1}-fold (threshold {threshold}): {}", hi / lo.max(f64::MIN_POSITIVE), variances.iter().map(|(n, v)| format!("{n} {v:.3e}")).collect::<Vec<_>>().join(", ")));
                    }
                }
                for (name, t) in selected(trial, step, &["gradients".into()], &[]) {
                    self.seen();
                    let (lo, hi) = t
                        .values
                        .iter()
                        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                            (lo.min(*v), hi.max(*v))
                        });
                    if t.values.len() > 1 && hi - lo < spec.float("distribution_range") {
                        self.memory.streak += 1;
                        if self.memory.streak >= spec.int("patience").max(1) {
                            return Some(format!(
                                "the gradients of {name} span only {:e} (distribution_range {})",
                                hi - lo,
                                spec.params["distribution_range"]
                            ));
                        }
                    }
                }
                None
            }
            RuleKind::ClassImbalance => {
                let labels = selected(trial, step, &[], &spec.regexes("labels_regex"));
                let predictions = selected(trial, step, &[], &spec.regexes("predictions_regex"));
                let (Some((_, l)), Some((_, p))) = (labels.first(), predictions.first()) else {
                    return None;
                };
                self.seen();
                let rows = l.values.len();
                // Rows of class probabilities can only be compared through their argmax.
                let predicted: Vec<f64> = if p.shape.len() == 2 && p.shape[0] == rows {
                    let k = p.shape[1];
                    (0..rows)
                        .map(|r| {
                            (0..k)
                                .max_by(|&a, &b| {
                                    p.values[r * k + a].total_cmp(&p.values[r * k + b])
                                })
                                .unwrap_or(0) as f64
                        })
                        .collect()
                } else {
                    p.values.clone()
                };
                let limit = spec.int("samples").max(1);
                for (label, pred) in l.values.iter().zip(&predicted) {
                    if self.memory.samples >= limit {
                        break;
                    }
                    self.memory.samples += 1;
                    let e = self.memory.counts.entry(*label as i64).or_insert((0, 0));
                    e.0 += 1;
                    if (pred - label).abs() > 0.5 {
                        e.1 += 1;
                    }
                }
                let counts = &self.memory.counts;
                if counts.len() < 2 {
                    return None;
                }
                let (small, &(fewest, wrong)) = counts.iter().min_by_key(|(_, (n, _))| *n)?;
                let most = counts.values().map(|(n, _)| *n).max().unwrap_or(0);
                let ratio = most as f64 / fewest.max(1) as f64;
                if ratio > spec.float("threshold_imbalance") {
                    return Some(format!("the largest class has {ratio:.1} times the rows of class {small} ({most} against {fewest})"));
                }
                let miss = wrong as f64 / fewest.max(1) as f64;
                (miss > spec.float("threshold_misprediction")).then(|| {
                    format!(
                        "{:.0} % of class {small}'s rows are mispredicted",
                        miss * 100.0
                    )
                })
            }
            RuleKind::TreeDepth => {
                let depths = tree_depths(step)?;
                self.seen();
                let deepest = depths.iter().copied().max().unwrap_or(0);
                let want = spec.float("depth");
                ((deepest as f64) < want).then(|| {
                    format!("the trees grow to depth {deepest} at most, not to depth {want}")
                })
            }
            RuleKind::FeatureImportanceOverweight => {
                let mut weights: Vec<(String, f64)> =
                    selected(trial, step, &[], &spec.regexes("tensor_regex"))
                        .into_iter()
                        .filter_map(|(n, t)| scalar(t).map(|v| (n.clone(), v)))
                        .collect();
                if weights.is_empty() {
                    return None;
                }
                self.seen();
                let total: f64 = weights.iter().map(|w| w.1).sum();
                weights.sort_by(|a, b| b.1.total_cmp(&a.1));
                let n = spec.int("nfeatures").max(1) as usize;
                let top: f64 =
                    weights.iter().take(n).map(|w| w.1).sum::<f64>() / total.max(f64::MIN_POSITIVE);
                (top > spec.float("threshold")).then(|| {
                    format!(
                        "the {n} most important features hold {:.0} % of the importance: {}",
                        top * 100.0,
                        weights
                            .iter()
                            .take(n)
                            .map(|w| w.0.rsplit('/').next().unwrap_or(&w.0).to_owned())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
            }
            RuleKind::StalledTrainingRule => {
                // Judged on time between steps, by `idle`.
                self.seen();
                None
            }
        }
    }

    /// StalledTrainingRule: fires when no step has been saved for `threshold` seconds.
    pub fn idle(&mut self, seconds: f64, last_step: Option<u64>) -> Option<String> {
        if self.status != Status::InProgress || self.spec.kind != RuleKind::StalledTrainingRule {
            return None;
        }
        let threshold = self.spec.float("threshold");
        (seconds >= threshold).then(|| {
            let what = format!("no tensor saved for {seconds:.0} s (threshold {threshold} s)");
            self.status = Status::IssuesFound;
            self.fired_at = last_step;
            self.details = Some(format!("StalledTrainingRule: {what}"));
            what
        })
    }

    /// The status once the job has ended (or was stopped).
    pub fn finish(&mut self, stopped: bool) {
        if self.status != Status::InProgress {
            return;
        }
        if stopped {
            self.status = Status::Stopped;
        } else if self.evaluated == 0 && self.spec.kind != RuleKind::StalledTrainingRule {
            self.status = Status::Error;
            self.details = Some(format!(
                "{} found no tensor to evaluate: the job saved none of {}",
                self.spec.kind.name(),
                self.wanted()
            ));
        } else {
            self.status = Status::NoIssuesFound;
        }
    }

    fn wanted(&self) -> String {
        let mut parts: Vec<String> = self
            .spec
            .kind
            .collections()
            .iter()
            .map(|c| format!("collection {c}"))
            .collect();
        for key in [
            "collection_names",
            "tensor_regex",
            "activation_inputs_regex",
            "labels_regex",
            "predictions_regex",
        ] {
            if let Some(v) = self.spec.params.get(key).filter(|v| !v.is_empty()) {
                parts.push(format!("{key} {v}"));
            }
        }
        if parts.is_empty() {
            "the tensors it reads".into()
        } else {
            parts.join(", ")
        }
    }
}
