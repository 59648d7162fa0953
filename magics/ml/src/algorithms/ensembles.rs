//! The decision tree, the random forest and gradient-boosted trees on the histogram learner.

use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use super::trees::{grow, stopped, Binned, Criterion, Limits, Rows, Tree};
use super::{Algorithm, FitData, Hyperparameters, Monitor, Output, Rng};
use crate::metrics::evaluate;
use crate::prep::ProblemType;
use crate::MlError;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum TreeKind {
    DecisionTree,
    RandomForest,
    GradientBoosting,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TreeModel {
    pub kind: TreeKind,
    pub problem: ProblemType,
    pub classes: usize,
    /// Boosting's starting scores (one per class, or one).
    pub base: Vec<f64>,
    /// Boosting: one tree per class per round; the others: one tree per entry.
    pub trees: Vec<Vec<Tree>>,
}

impl TreeModel {
    fn outputs(&self) -> usize {
        match (self.kind, self.problem) {
            (TreeKind::GradientBoosting, ProblemType::Multiclass) => self.classes,
            (TreeKind::GradientBoosting, _) => 1,
            (_, p) if p.is_classification() => self.classes,
            _ => 1,
        }
    }

    /// Summed (boosting) or averaged (tree, forest) leaf values.
    fn raw(&self, x: &Array2<f64>, rounds: &[Vec<Tree>]) -> Array2<f64> {
        let k = self.outputs();
        let mut out = Array2::<f64>::zeros((x.nrows(), k));
        for (i, row) in x.outer_iter().enumerate() {
            for round in rounds {
                for (t, tree) in round.iter().enumerate() {
                    let v = tree.leaf_value(row);
                    if self.kind == TreeKind::GradientBoosting {
                        out[[i, t]] += v[0];
                    } else {
                        for (j, value) in v.iter().enumerate() {
                            out[[i, j]] += value;
                        }
                    }
                }
            }
        }
        out
    }

    fn finish(&self, mut raw: Array2<f64>, count: usize) -> Output {
        if self.kind == TreeKind::GradientBoosting {
            for mut row in raw.outer_iter_mut() {
                row.iter_mut().zip(&self.base).for_each(|(v, b)| *v += b);
            }
            return match self.problem {
                ProblemType::Binary => {
                    Output::Classes(Array2::from_shape_fn((raw.nrows(), 2), |(i, j)| {
                        let p = sigmoid(raw[[i, 0]]);
                        if j == 1 {
                            p
                        } else {
                            1.0 - p
                        }
                    }))
                }
                ProblemType::Multiclass => {
                    for mut row in raw.outer_iter_mut() {
                        softmax(row.as_slice_mut().expect("rows are contiguous"));
                    }
                    Output::Classes(raw)
                }
                _ => Output::Values(raw.column(0).to_owned()),
            };
        }
        raw.mapv_inplace(|v| v / count.max(1) as f64);
        if self.problem.is_classification() {
            Output::Classes(raw)
        } else {
            Output::Values(raw.column(0).to_owned())
        }
    }

    fn clone_shape(&self) -> TreeModel {
        TreeModel {
            kind: self.kind,
            problem: self.problem,
            classes: self.classes,
            base: self.base.clone(),
            trees: Vec::new(),
        }
    }

    pub fn predict(&self, x: &Array2<f64>) -> Output {
        self.finish(self.raw(x, &self.trees), self.trees.len())
    }
}

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

fn softmax(row: &mut [f64]) {
    let max = row.iter().copied().fold(f64::MIN, f64::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    row.iter_mut().for_each(|v| *v /= sum);
}

fn limits(hp: &Hyperparameters, max_features: usize) -> Limits {
    Limits {
        max_depth: hp.int("max_depth"),
        min_samples_leaf: hp.int("min_samples_leaf").max(1) as f64,
        min_samples_split: hp.int("min_samples_split").max(2) as f64,
        min_child_weight: 0.0,
        max_features,
    }
}

fn criterion(hp: &Hyperparameters, data: &FitData) -> Criterion {
    if data.problem.is_classification() {
        if hp.text("criterion") == "entropy" {
            Criterion::Entropy {
                classes: data.classes,
            }
        } else {
            Criterion::Gini {
                classes: data.classes,
            }
        }
    } else {
        Criterion::Variance
    }
}

pub fn fit(
    algorithm: Algorithm,
    hp: &Hyperparameters,
    data: &FitData,
    monitor: &mut Monitor,
) -> Result<TreeModel, MlError> {
    match algorithm {
        Algorithm::GradientBoosting => boost(hp, data, monitor),
        _ => forest(algorithm, hp, data, monitor),
    }
}

fn forest(
    algorithm: Algorithm,
    hp: &Hyperparameters,
    data: &FitData,
    monitor: &mut Monitor,
) -> Result<TreeModel, MlError> {
    let (n, d) = data.x.dim();
    let binned = Binned::new(data.x, hp.int("max_bins"));
    let classes: Vec<u32> = data.y.iter().map(|v| *v as u32).collect();
    let criterion = criterion(hp, data);
    let is_forest = algorithm == Algorithm::RandomForest;
    let max_features = if !is_forest {
        d
    } else {
        match hp.text("max_features") {
            "all" => d,
            "sqrt" => (d as f64).sqrt() as usize,
            "log2" => (d as f64).log2() as usize,
            "auto" if data.problem.is_classification() => (d as f64).sqrt() as usize,
            "auto" => d,
            fraction => (fraction.parse::<f64>().unwrap_or(1.0) * d as f64).ceil() as usize,
        }
        .clamp(1, d)
    };
    let limits = limits(hp, max_features);
    let count = if is_forest { hp.int("num_trees") } else { 1 };
    let bootstrap = is_forest && hp.text("bootstrap") == "true";
    let kind = if is_forest {
        TreeKind::RandomForest
    } else {
        TreeKind::DecisionTree
    };
    let mut model = TreeModel {
        kind,
        problem: data.problem,
        classes: data.classes,
        base: Vec::new(),
        trees: Vec::new(),
    };
    let grow_one = |index: usize| -> Tree {
        let mut rng = Rng::new(data.seed.wrapping_mul(1_000_003).wrapping_add(index as u64));
        let mut weight = vec![0.0; n];
        if bootstrap {
            for _ in 0..n {
                weight[rng.below(n)] += 1.0;
            }
        } else {
            weight.iter_mut().for_each(|w| *w = 1.0);
        }
        let rows: Vec<u32> = (0..n as u32)
            .filter(|i| weight[*i as usize] > 0.0)
            .collect();
        let inputs = if data.problem.is_classification() {
            Rows::Classes {
                class: &classes,
                weight: &weight,
            }
        } else {
            Rows::Values {
                y: data.y.as_slice().expect("targets are contiguous"),
                weight: &weight,
            }
        };
        grow(&binned, rows, &inputs, criterion, limits, &mut rng).0
    };
    let threads = std::thread::available_parallelism().map_or(2, |t| t.get());
    // Running sums of the validation predictions, so the curve costs one pass per tree.
    let mut valid_raw = data
        .validation
        .map(|(x, _)| Array2::<f64>::zeros((x.nrows(), model.outputs())));
    let mut done = 0;
    while done < count {
        if stopped(monitor.stop) {
            return Err(MlError::Stopped);
        }
        let batch = threads.min(count - done);
        let grown: Vec<Tree> = if batch == 1 {
            vec![grow_one(done)]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = (done..done + batch)
                    .map(|i| s.spawn(move || grow_one(i)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("tree growth does not panic"))
                    .collect()
            })
        };
        if let (Some((x, y)), Some(acc)) = (data.validation, valid_raw.as_mut()) {
            let rounds: Vec<Vec<Tree>> = grown.iter().map(|t| vec![t.clone()]).collect();
            *acc += &model.raw(x, &rounds);
            let output = model.finish(acc.clone(), done + batch);
            (monitor.report)(
                (done + batch) as u64,
                evaluate("validation", data.problem, y, &output),
            );
        }
        model.trees.extend(grown.into_iter().map(|t| vec![t]));
        done += batch;
    }
    Ok(model)
}

fn boost(
    hp: &Hyperparameters,
    data: &FitData,
    monitor: &mut Monitor,
) -> Result<TreeModel, MlError> {
    let n = data.x.nrows();
    let y = data.y;
    let k = if data.problem == ProblemType::Multiclass {
        data.classes
    } else {
        1
    };
    let base: Vec<f64> = match data.problem {
        ProblemType::Binary => {
            let p = (y.sum() / n as f64).clamp(1e-6, 1.0 - 1e-6);
            vec![(p / (1.0 - p)).ln()]
        }
        ProblemType::Multiclass => (0..k)
            .map(|c| {
                let share = y.iter().filter(|v| **v as usize == c).count() as f64 / n as f64;
                share.max(1e-6).ln()
            })
            .collect(),
        _ => vec![y.mean().unwrap_or(0.0)],
    };
    let binned = Binned::new(data.x, hp.int("max_bins"));
    let eta = hp.float("eta");
    let lambda = hp.float("lambda");
    let subsample = hp.float("subsample");
    let patience = hp.int("early_stopping_rounds");
    let mut limits = limits(hp, data.x.ncols());
    limits.min_samples_leaf = 1.0;
    limits.min_samples_split = 2.0;
    limits.min_child_weight = hp.float("min_child_weight");
    let mut model = TreeModel {
        kind: TreeKind::GradientBoosting,
        problem: data.problem,
        classes: data.classes,
        base: base.clone(),
        trees: Vec::new(),
    };
    let mut score: Vec<f64> = (0..n).flat_map(|_| base.iter().copied()).collect();
    let mut valid_score: Option<Vec<f64>> = data
        .validation
        .map(|(x, _)| (0..x.nrows()).flat_map(|_| base.iter().copied()).collect());
    let mut g = vec![0.0; n];
    let mut h = vec![0.0; n];
    let mut prob = vec![0.0; n * k];
    let mut rng = Rng::new(data.seed);
    let mut best: Option<(f64, usize)> = None;
    for round in 0..hp.int("num_round") {
        if stopped(monitor.stop) {
            return Err(MlError::Stopped);
        }
        probabilities(data.problem, &score, k, &mut prob);
        let rows: Vec<u32> = if subsample < 1.0 {
            (0..n as u32).filter(|_| rng.unit() < subsample).collect()
        } else {
            (0..n as u32).collect()
        };
        let mut round_trees = Vec::with_capacity(k);
        for class in 0..k {
            for i in 0..n {
                let (gi, hi) = match data.problem {
                    ProblemType::Regression => (score[i] - y[i], 1.0),
                    ProblemType::Binary => {
                        let p = prob[i];
                        (p - y[i], (p * (1.0 - p)).max(1e-16))
                    }
                    _ => {
                        let p = prob[i * k + class];
                        let t = if y[i] as usize == class { 1.0 } else { 0.0 };
                        (p - t, (p * (1.0 - p)).max(1e-16))
                    }
                };
                g[i] = gi;
                h[i] = hi;
            }
            let (mut tree, leaves) = grow(
                &binned,
                rows.clone(),
                &Rows::Gradients { g: &g, h: &h },
                Criterion::Newton { lambda },
                limits,
                &mut rng,
            );
            tree.scale(eta);
            if subsample < 1.0 {
                for (i, row) in data.x.outer_iter().enumerate() {
                    score[i * k + class] += tree.leaf_value(row)[0];
                }
            } else {
                for (node, members) in leaves {
                    let v = tree.nodes[node].value[0];
                    for i in members {
                        score[i as usize * k + class] += v;
                    }
                }
            }
            if let (Some((x, _)), Some(vs)) = (data.validation, valid_score.as_mut()) {
                for (i, row) in x.outer_iter().enumerate() {
                    vs[i * k + class] += tree.leaf_value(row)[0];
                }
            }
            round_trees.push(tree);
        }
        model.trees.push(round_trees);
        let mut metrics = vec![loss_metric("train", data.problem, y, &score, k)];
        if let (Some((_, vy)), Some(vs)) = (data.validation, valid_score.as_ref()) {
            let loss = loss_metric("validation", data.problem, vy, vs, k);
            let raw = Array2::from_shape_vec((vy.len(), k), vs.clone()).expect("k scores per row");
            // The scores already hold the base, so finish them with none.
            let zeroed = TreeModel {
                base: vec![0.0; k],
                trees: Vec::new(),
                ..model.clone_shape()
            };
            metrics.extend(
                evaluate("validation", data.problem, vy, &zeroed.finish(raw, 1))
                    .into_iter()
                    .filter(|(m, _)| *m != loss.0),
            );
            if patience > 0 {
                match best {
                    Some((b, _)) if loss.1 >= b => {}
                    _ => best = Some((loss.1, round)),
                }
                if best.is_some_and(|(_, at)| round - at >= patience) {
                    metrics.push(loss);
                    (monitor.report)(round as u64 + 1, metrics);
                    model.trees.truncate(best.map_or(round, |(_, at)| at) + 1);
                    break;
                }
            }
            metrics.push(loss);
        }
        (monitor.report)(round as u64 + 1, metrics);
    }
    Ok(model)
}

fn probabilities(problem: ProblemType, score: &[f64], k: usize, out: &mut [f64]) {
    match problem {
        ProblemType::Binary => out
            .iter_mut()
            .zip(score)
            .for_each(|(p, s)| *p = sigmoid(*s)),
        ProblemType::Multiclass => {
            out.copy_from_slice(score);
            out.chunks_mut(k).for_each(softmax);
        }
        _ => {}
    }
}

/// The boosting loss XGBoost reports: logloss, mlogloss or rmse.
fn loss_metric(
    prefix: &str,
    problem: ProblemType,
    y: &Array1<f64>,
    score: &[f64],
    k: usize,
) -> (String, f64) {
    let n = y.len().max(1) as f64;
    match problem {
        ProblemType::Binary => {
            let loss: f64 = y
                .iter()
                .zip(score)
                .map(|(t, s)| {
                    let p = sigmoid(*s).clamp(1e-15, 1.0 - 1e-15);
                    -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())
                })
                .sum();
            (format!("{prefix}:logloss"), loss / n)
        }
        ProblemType::Multiclass => {
            let mut p = score.to_vec();
            p.chunks_mut(k).for_each(softmax);
            let loss: f64 = y
                .iter()
                .enumerate()
                .map(|(i, t)| -p[i * k + *t as usize].clamp(1e-15, 1.0).ln())
                .sum();
            (format!("{prefix}:mlogloss"), loss / n)
        }
        _ => {
            let se: f64 = y.iter().zip(score).map(|(t, s)| (t - s).powi(2)).sum();
            (format!("{prefix}:rmse"), (se / n).sqrt())
        }
    }
}
