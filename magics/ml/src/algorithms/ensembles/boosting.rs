//! Gradient boosting's learner: rounds of trees grown by the booster on the gradients of the
//! loss, the training and validation scores kept up to date each round (so that the metrics
//! of every round, and the job's final ones, cost one pass), early stopping.

use std::borrow::Cow;
use std::sync::OnceLock;

use ndarray::Array1;

use super::super::blocks::{cores, for_blocks_mut, map_blocks, on_cores, row_major, BLOCK_ROWS};
use super::super::booster::{BinTree, Gradients, Grower, Growth};
use super::super::trees::{stopped, Binned, Tree};
use super::super::{FitData, Hyperparameters, Monitor, Rng};
use super::{sigmoid, softmax, Fitted, TreeKind, TreeModel};
use crate::debugger::learners::{boosting_round, Importance};
use crate::debugger::Mode;
use crate::metrics::{ClassTally, LnSum, ValueTally};
use crate::prep::ProblemType;
use crate::MlError;

pub(super) fn boost(
    hp: &Hyperparameters,
    data: &FitData,
    monitor: &mut Monitor,
) -> Result<TreeModel, MlError> {
    let n = data.x.nrows();
    let y = contiguous(data.y);
    let y = &y[..];
    let k = if data.problem == ProblemType::Multiclass {
        data.classes
    } else {
        1
    };
    let base: Vec<f64> = match data.problem {
        ProblemType::Binary => {
            let p = (y.iter().sum::<f64>() / n as f64).clamp(1e-6, 1.0 - 1e-6);
            vec![(p / (1.0 - p)).ln()]
        }
        ProblemType::Multiclass => (0..k)
            .map(|c| {
                let share = y.iter().filter(|v| **v as usize == c).count() as f64 / n as f64;
                share.max(1e-6).ln()
            })
            .collect(),
        _ => vec![y.iter().sum::<f64>() / n.max(1) as f64],
    };
    let binned = Binned::new(data.x, hp.int("max_bins"));
    let growth = Growth {
        max_depth: hp.int("max_depth"),
        max_leaves: hp.int("max_leaves"),
        lossguide: hp.text("grow_policy") == "lossguide",
        lambda: hp.float("lambda"),
        gamma: hp.float("gamma"),
        min_child_weight: hp.float("min_child_weight"),
        min_data_in_leaf: hp.int("min_data_in_leaf"),
    };
    let mut grower = Grower::new(&binned, growth);
    let eta = hp.float("eta");
    let subsample = hp.float("subsample");
    let patience = hp.int("early_stopping_rounds");
    let mut model = TreeModel {
        kind: TreeKind::GradientBoosting,
        problem: data.problem,
        classes: data.classes,
        base: base.clone(),
        trees: Vec::new(),
        scoring: OnceLock::new(),
        fitted: None,
    };
    let mut score: Vec<f64> = (0..n).flat_map(|_| base.iter().copied()).collect();
    let mut valid_score: Option<Vec<f64>> = data
        .validation
        .map(|(x, _)| (0..x.nrows()).flat_map(|_| base.iter().copied()).collect());
    // The validation rows binned as the training rows (a fifth of the memory to walk), and
    // the training rows row-major where a sample leaves some outside every leaf.
    let valid_bins = data.validation.map(|(x, _)| binned.bin_rows(x));
    let train_rows = (subsample < 1.0).then(|| row_major(data.x.view()));
    let mut targets = Targets::new(data.problem, n, k);
    targets.update(data.problem, y, &score, k);
    let mut rng = Rng::new(data.seed);
    let mut best: Option<(f64, usize)> = None;
    let mut importance = monitor
        .debug
        .is_some()
        .then(|| Importance::new(data.x.ncols()));
    let losses = [
        loss_name("train", data.problem),
        loss_name("validation", data.problem),
    ];
    for round in 0..hp.int("num_round") {
        if stopped(monitor.stop) {
            return Err(MlError::Stopped);
        }
        let sample: Option<Vec<u32>> =
            (subsample < 1.0).then(|| (0..n as u32).filter(|_| rng.unit() < subsample).collect());
        let mut round_trees = Vec::with_capacity(k);
        for class in 0..k {
            let grown = match &sample {
                Some(rows) => grower.grow_on(rows.iter().copied(), targets.of_class(k, class)),
                None => grower.grow_on(0..n as u32, targets.of_class(k, class)),
            };
            if let Some(i) = importance.as_mut() {
                i.add(&grown.splits);
            }
            if sample.is_none() {
                let leaves: Vec<(f64, &[u32])> = grown
                    .leaves()
                    .map(|(node, rows)| (eta * grown.tree.nodes[node].value[0], rows))
                    .collect();
                add_leaves(&mut score, k, class, &leaves);
            }
            if let (Some(bins), Some(vs)) = (&valid_bins, valid_score.as_mut()) {
                add_bin_tree(vs, k, class, bins, &grown.bin_tree(eta));
            }
            let mut tree = grown.tree;
            tree.scale(eta);
            if let Some(x) = &train_rows {
                // Rows outside the sample reached no leaf while growing.
                add_tree(&mut score, k, class, x, &tree);
            }
            round_trees.push(tree);
        }
        model.trees.push(round_trees);
        let train_loss = targets.update(data.problem, y, &score, k);
        let mut metrics = vec![(loss_name("train", data.problem), train_loss)];
        if let (Some((_, vy)), Some(vs)) = (data.validation, valid_score.as_ref()) {
            let mut valid = validation_metrics(data.problem, &contiguous(vy), vs, k);
            let name = loss_name("validation", data.problem);
            let loss = match valid.iter().position(|(m, _)| *m == name) {
                Some(at) => valid.remove(at),
                // Softmax's loss is XGBoost's mlogloss, the same number as logloss.
                None => (
                    name,
                    valid
                        .iter()
                        .find(|(m, _)| m.ends_with(":logloss"))
                        .map_or(0.0, |m| m.1),
                ),
            };
            metrics.extend(valid);
            if patience > 0 {
                match best {
                    Some((b, _)) if loss.1 >= b => {}
                    _ => best = Some((loss.1, round)),
                }
                if best.is_some_and(|(_, at)| round - at >= patience) {
                    metrics.push(loss);
                    (monitor.report)(round as u64 + 1, metrics);
                    // The scores include the rounds cut off here: the model scores anew.
                    model.trees.truncate(best.map_or(round, |(_, at)| at) + 1);
                    return Ok(model);
                }
            }
            metrics.push(loss);
        }
        let names = [losses[0].as_str(), losses[1].as_str()];
        monitor.debug_step(Mode::Train, |s| {
            boosting_round(s, &metrics, &names, importance.as_ref(), &model.trees)
        });
        (monitor.report)(round as u64 + 1, metrics);
    }
    model.fitted = Some(Fitted {
        train: score,
        validation: valid_score,
    });
    Ok(model)
}

/// The validation metrics of the scores (`k` a row), as `evaluate` gives them from the
/// model's output, summed over row blocks on every core.
fn validation_metrics(
    problem: ProblemType,
    y: &[f64],
    scores: &[f64],
    k: usize,
) -> Vec<(String, f64)> {
    if !problem.is_classification() {
        let mean = y.iter().sum::<f64>() / y.len().max(1) as f64;
        let tallies = map_blocks(y.len(), |rows| {
            let mut t = ValueTally::new(mean);
            rows.for_each(|i| t.add(y[i], scores[i]));
            t
        });
        let whole = tallies
            .iter()
            .fold(ValueTally::new(mean), |a, b| a.merge(b));
        return whole.metrics("validation");
    }
    let classes = k.max(2);
    let tallies = map_blocks(y.len(), |rows| {
        let mut t = ClassTally::new(classes);
        let mut proba = vec![0.0; classes];
        for i in rows {
            probabilities(&scores[i * k..(i + 1) * k], &mut proba);
            t.add(y[i] as usize, &proba);
        }
        t
    });
    let whole = tallies
        .iter()
        .fold(ClassTally::new(classes), |a, b| a.merge(b));
    whole.metrics("validation")
}

/// A row's class probabilities from its scores: the sigmoid of one, or the softmax of several.
fn probabilities(scores: &[f64], out: &mut [f64]) {
    if let [s] = scores {
        let p = sigmoid(*s);
        out[0] = 1.0 - p;
        out[1] = p;
    } else {
        out.copy_from_slice(scores);
        softmax(out);
    }
}

/// Adds each leaf's value to its rows' scores of `class` (`k` a row), the rows shared among
/// the cores by position: a leaf's rows ascend, so a core's share of them is one run.
pub(super) fn add_leaves(scores: &mut [f64], k: usize, class: usize, leaves: &[(f64, &[u32])]) {
    let n = scores.len() / k;
    let threads = cores().min(n.div_ceil(BLOCK_ROWS)).max(1);
    let mut parts = Vec::with_capacity(threads);
    let (mut rest, mut from) = (scores, 0);
    for t in 0..threads {
        let to = (t + 1) * n / threads;
        let (head, tail) = rest.split_at_mut((to - from) * k);
        parts.push((from, to, head));
        (rest, from) = (tail, to);
    }
    let work = |(from, to, part): (usize, usize, &mut [f64])| {
        for &(v, rows) in leaves {
            debug_assert!(rows.is_sorted());
            let start = rows.partition_point(|&r| (r as usize) < from);
            let end = rows.partition_point(|&r| (r as usize) < to);
            for &r in &rows[start..end] {
                part[(r as usize - from) * k + class] += v;
            }
        }
    };
    on_cores(parts, work);
}

/// Adds the tree's value for each row of `bins` (row-major, binned as the training rows) to
/// its score of `class`, over every core.
fn add_bin_tree(scores: &mut [f64], k: usize, class: usize, bins: &[u8], tree: &BinTree) {
    const TOGETHER: usize = 8;
    let d = bins.len() / (scores.len() / k).max(1);
    for_blocks_mut(scores, k, |rows, out| {
        let row = |i: usize| &bins[(rows.start + i) * d..(rows.start + i + 1) * d];
        let mut groups = out.chunks_exact_mut(TOGETHER * k);
        for (g, group) in (&mut groups).enumerate() {
            let values = tree.values::<TOGETHER>(std::array::from_fn(|j| row(g * TOGETHER + j)));
            for (score, v) in group.chunks_exact_mut(k).zip(values) {
                score[class] += v;
            }
        }
        let done = rows.len() / TOGETHER * TOGETHER;
        for (i, score) in groups.into_remainder().chunks_exact_mut(k).enumerate() {
            score[class] += tree.value(row(done + i));
        }
    });
}

/// Adds the tree's value for each row of the row-major `x` to its score of `class`, over
/// every core.
fn add_tree(scores: &mut [f64], k: usize, class: usize, x: &[f64], tree: &Tree) {
    let d = x.len() / (scores.len() / k).max(1);
    for_blocks_mut(scores, k, |rows, out| {
        for (i, score) in rows.zip(out.chunks_mut(k)) {
            let row = &x[i * d..(i + 1) * d];
            score[class] += tree.leaf_of(|f| row[f])[0];
        }
    });
}

fn contiguous(y: &Array1<f64>) -> Cow<'_, [f64]> {
    y.as_slice()
        .map_or_else(|| Cow::Owned(y.to_vec()), Cow::Borrowed)
}

/// What a round's trees are grown on: each row's gradient and hessian pairs, or squared
/// error's residuals alone (every hessian 1: half the memory to write and to gather).
enum Targets {
    Pairs(Vec<[f64; 2]>),
    Residuals(Vec<f64>),
}

impl Targets {
    fn new(problem: ProblemType, n: usize, k: usize) -> Targets {
        if problem.is_classification() {
            Targets::Pairs(vec![[0.0; 2]; n * k])
        } else {
            Targets::Residuals(vec![0.0; n])
        }
    }

    /// The targets for the scores; returns the loss the scores have, as XGBoost reports it.
    fn update(&mut self, problem: ProblemType, y: &[f64], score: &[f64], k: usize) -> f64 {
        match self {
            Targets::Pairs(pairs) => gradients(problem, y, score, k, pairs),
            Targets::Residuals(residuals) => squared_error(y, score, residuals),
        }
    }

    fn of_class(&self, k: usize, class: usize) -> Gradients<'_> {
        match self {
            Targets::Pairs(pairs) => Gradients::Pairs {
                pairs,
                stride: k,
                offset: class,
            },
            Targets::Residuals(residuals) => Gradients::Unit(residuals),
        }
    }
}

/// Squared error's gradients, each row's residual, in one pass over every core that also
/// sums the squares; returns the root mean square.
pub(super) fn squared_error(y: &[f64], score: &[f64], residuals: &mut [f64]) -> f64 {
    let sums = for_blocks_mut(residuals, 1, |rows, out| {
        rows.zip(out)
            .map(|(i, g)| {
                let r = score[i] - y[i];
                *g = r;
                r * r
            })
            .sum::<f64>()
    });
    (sums.iter().sum::<f64>() / y.len().max(1) as f64).sqrt()
}

/// A classifier's gradient and hessian pairs (`k` a row) for the scores, in one pass over
/// every core that also sums the log-loss the scores have; returns that mean loss.
pub(super) fn gradients(
    problem: ProblemType,
    y: &[f64],
    score: &[f64],
    k: usize,
    pairs: &mut [[f64; 2]],
) -> f64 {
    let sums = for_blocks_mut(pairs, k, |rows, out| {
        let mut ln_terms = LnSum::default();
        let linear = rows
            .zip(out.chunks_mut(k))
            .map(|(i, p)| row_loss(problem, y[i], &score[i * k..(i + 1) * k], p, &mut ln_terms))
            .sum::<f64>();
        linear + ln_terms.value()
    });
    sums.iter().sum::<f64>() / y.len().max(1) as f64
}

/// One classified row's loss for its scores, as a linear part returned and a logarithm
/// added to `ln_terms`; its gradient and hessian pairs go into `pairs`.
fn row_loss(
    problem: ProblemType,
    y: f64,
    s: &[f64],
    pairs: &mut [[f64; 2]],
    ln_terms: &mut LnSum,
) -> f64 {
    match problem {
        ProblemType::Binary => {
            let s = s[0];
            // One exp serves both the probability and the log-loss, stably:
            // max(s, 0) + ln(1 + e^-|s|) - y·s.
            let e = (-s.abs()).exp();
            let p = if s >= 0.0 {
                1.0 / (1.0 + e)
            } else {
                e / (1.0 + e)
            };
            pairs[0] = [p - y, (p * (1.0 - p)).max(1e-16)];
            ln_terms.add_ln_of(1.0 + e);
            s.max(0.0) - y * s
        }
        ProblemType::Multiclass => {
            let max = s.iter().copied().fold(f64::MIN, f64::max);
            let total: f64 = s.iter().map(|v| (v - max).exp()).sum();
            let class = y as usize;
            for (c, (pair, v)) in pairs.iter_mut().zip(s).enumerate() {
                let p = (v - max).exp() / total;
                let t = if c == class { 1.0 } else { 0.0 };
                *pair = [p - t, (p * (1.0 - p)).max(1e-16)];
            }
            ln_terms.add_ln_of(1.0 / ((s[class] - max).exp() / total).clamp(1e-15, 1.0));
            0.0
        }
        _ => unreachable!("squared error's targets are residuals (`squared_error`)"),
    }
}

fn loss_name(prefix: &str, problem: ProblemType) -> String {
    match problem {
        ProblemType::Binary => format!("{prefix}:logloss"),
        ProblemType::Multiclass => format!("{prefix}:mlogloss"),
        _ => format!("{prefix}:rmse"),
    }
}
