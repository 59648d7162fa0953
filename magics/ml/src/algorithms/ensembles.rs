//! The decision tree, the random forest and gradient-boosted trees on the histogram learner.

use std::sync::OnceLock;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::blocks::{cores, for_blocks_mut, map_indexed, row_major};
use super::scoring::Boosted;
use super::trees::{grow, stopped, Binned, Criterion, Limits, Rows, Tree};
use super::{Algorithm, FitData, Hyperparameters, Monitor, Output, Rng};
use crate::metrics::evaluate;
use crate::prep::ProblemType;
use crate::MlError;

mod boosting;

use boosting::boost;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum TreeKind {
    DecisionTree,
    RandomForest,
    GradientBoosting,
    /// Extremely randomised trees: a forest whose splits are drawn, not searched.
    ExtraTrees,
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
    /// Boosting's trees laid out for scoring, made on the first prediction.
    #[serde(skip)]
    pub scoring: OnceLock<Boosted>,
    /// Boosting's scores of the rows it was fitted on, as the learner kept them up to date
    /// round by round: the job's final metrics need them, and walking every row through every
    /// tree again cost a boosting job on many rows more than a third of its time.
    #[serde(skip)]
    pub fitted: Option<Fitted>,
}

/// Raw scores (the base included, `k` a row) of the training rows and, where there were
/// some, the validation rows.
#[derive(Debug, Clone)]
pub struct Fitted {
    train: Vec<f64>,
    validation: Option<Vec<f64>>,
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

    /// Summed (boosting) or averaged (tree, forest) leaf values, over row blocks on every
    /// core.
    fn raw(&self, x: &Array2<f64>, rounds: &[Vec<Tree>]) -> Array2<f64> {
        let k = self.outputs();
        let mut out = Array2::<f64>::zeros((x.nrows(), k));
        let boosting = self.kind == TreeKind::GradientBoosting;
        let slots = out.as_slice_mut().expect("a new array is contiguous");
        for_blocks_mut(slots, k, |rows, block| {
            for (i, sums) in rows.zip(block.chunks_mut(k)) {
                let row = x.row(i);
                for round in rounds {
                    for (t, tree) in round.iter().enumerate() {
                        let v = tree.leaf_value(row);
                        if boosting {
                            sums[t] += v[0];
                        } else {
                            sums.iter_mut().zip(v).for_each(|(s, value)| *s += value);
                        }
                    }
                }
            }
        });
        out
    }

    fn finish(&self, mut raw: Array2<f64>, count: usize) -> Output {
        if self.kind == TreeKind::GradientBoosting {
            for mut row in raw.outer_iter_mut() {
                row.iter_mut().zip(&self.base).for_each(|(v, b)| *v += b);
            }
            return self.boosted(raw);
        }
        raw.mapv_inplace(|v| v / count.max(1) as f64);
        if self.problem.is_classification() {
            Output::Classes(raw)
        } else {
            Output::Values(raw.column(0).to_owned())
        }
    }

    /// The output of boosting's summed scores, the base included.
    fn boosted(&self, mut raw: Array2<f64>) -> Output {
        match self.problem {
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
        }
    }

    /// The outputs for the training and validation rows the model was just fitted on, taken
    /// from the learner (once; None where it did not keep them).
    pub fn take_fitted(&mut self) -> Option<(Output, Option<Output>)> {
        let fitted = self.fitted.take()?;
        let k = self.outputs();
        let output = |scores: Vec<f64>| {
            let rows = scores.len() / k;
            Array2::from_shape_vec((rows, k), scores)
                .ok()
                .map(|raw| self.boosted(raw))
        };
        let train = output(fitted.train)?;
        let validation = match fitted.validation {
            Some(scores) => Some(output(scores)?),
            None => None,
        };
        Some((train, validation))
    }

    pub fn predict(&self, x: &Array2<f64>) -> Output {
        if self.kind != TreeKind::GradientBoosting {
            return self.finish(self.raw(x, &self.trees), self.trees.len());
        }
        let scoring = self.scoring.get_or_init(|| Boosted::new(&self.trees));
        let k = self.outputs();
        let d = x.ncols();
        let values = row_major(x.view());
        let mut raw = Array2::<f64>::zeros((x.nrows(), k));
        let slots = raw.as_slice_mut().expect("a new array is contiguous");
        for_blocks_mut(slots, k, |rows, block| {
            scoring.add(&values, d, rows.start, block)
        });
        self.finish(raw, self.trees.len())
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

fn limits(hp: &Hyperparameters, max_features: usize, random_thresholds: bool) -> Limits {
    Limits {
        max_depth: hp.int("max_depth"),
        min_samples_leaf: hp.int("min_samples_leaf").max(1) as f64,
        min_samples_split: hp.int("min_samples_split").max(2) as f64,
        max_features,
        random_thresholds,
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
    let extra = algorithm == Algorithm::ExtraTrees;
    let is_forest = algorithm == Algorithm::RandomForest || extra;
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
    let limits = limits(hp, max_features, extra);
    let count = if is_forest { hp.int("num_trees") } else { 1 };
    let bootstrap = is_forest && hp.text("bootstrap") == "true";
    let kind = if extra {
        TreeKind::ExtraTrees
    } else if is_forest {
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
        scoring: OnceLock::new(),
        fitted: None,
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
    let threads = cores();
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
        let grown: Vec<Tree> = map_indexed(batch, |i| grow_one(done + i));
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::AtomicBool;

    use super::boosting::{add_leaves, gradients, squared_error};
    use super::*;
    use crate::algorithms::blocks::BLOCK_ROWS;
    use crate::algorithms::trees::LEAF;
    use crate::algorithms::Algorithm;
    use ndarray::Array1;

    /// A binary table whose label follows the first two features with a quarter of the labels
    /// flipped: boosting with a large step learns the noise, so its validation loss turns up.
    fn noisy(n: usize, seed: u64) -> (Array2<f64>, Array1<f64>) {
        let mut rng = Rng::new(seed);
        let x = Array2::from_shape_fn((n, 4), |_| rng.unit() * 2.0 - 1.0);
        let y = Array1::from_shape_fn(n, |i| {
            let clean = x[[i, 0]] + 0.5 * x[[i, 1]] > 0.0;
            f64::from(u8::from(clean != (rng.unit() < 0.25)))
        });
        (x, y)
    }

    type Reports = Vec<(u64, Vec<(String, f64)>)>;

    fn boost_with(
        given: &[(&str, &str)],
        seed: u64,
        stop_at: Option<u64>,
    ) -> (Result<TreeModel, MlError>, Reports) {
        let (x, y) = noisy(3000, 1);
        let (vx, vy) = noisy(1000, 2);
        let hp = Algorithm::GradientBoosting
            .resolve(
                &given
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            )
            .unwrap();
        let data = FitData {
            x: &x,
            y: &y,
            classes: 2,
            problem: ProblemType::Binary,
            validation: Some((&vx, &vy)),
            seed,
        };
        let stop = AtomicBool::new(false);
        let mut reports = Vec::new();
        let mut report = |step: u64, metrics: Vec<(String, f64)>| {
            if stop_at == Some(step) {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            reports.push((step, metrics));
        };
        let mut monitor = Monitor {
            stop: &stop,
            report: &mut report,
            debug: None,
        };
        let model = fit(Algorithm::GradientBoosting, &hp, &data, &mut monitor);
        (model, reports)
    }

    fn leaves(tree: &Tree) -> usize {
        tree.nodes.iter().filter(|n| n.feature == LEAF).count()
    }

    fn depth(tree: &Tree, node: usize) -> usize {
        let n = &tree.nodes[node];
        if n.feature == LEAF {
            0
        } else {
            1 + depth(tree, n.left as usize).max(depth(tree, n.right as usize))
        }
    }

    #[test]
    fn early_stopping_stops_patience_rounds_after_the_best_and_keeps_the_best() {
        let patience = 4;
        let (model, reports) = boost_with(
            &[
                ("eta", "0.6"),
                ("num_round", "300"),
                ("min_child_weight", "0"),
                ("early_stopping_rounds", "4"),
            ],
            7,
            None,
        );
        let model = model.unwrap();
        let losses: Vec<f64> = reports
            .iter()
            .map(|(_, m)| m.iter().find(|(k, _)| k == "validation:logloss").unwrap().1)
            .collect();
        let best = (0..losses.len())
            .min_by(|&a, &b| losses[a].total_cmp(&losses[b]).then(a.cmp(&b)))
            .unwrap();
        assert!(
            losses.len() < 300,
            "the noisy table overfits well before 300 rounds"
        );
        assert_eq!(
            losses.len(),
            best + 1 + patience,
            "stopped {patience} rounds after the best"
        );
        assert_eq!(
            model.trees.len(),
            best + 1,
            "the model ends at the best round"
        );
    }

    #[test]
    fn the_learners_scores_are_what_the_model_predicts_and_an_early_stop_drops_them() {
        let (x, _) = noisy(3000, 1);
        let (vx, _) = noisy(1000, 2);
        let probabilities = |output: &Output| match output {
            Output::Classes(p) => p.clone(),
            _ => panic!("a binary model gives classes"),
        };
        for given in [
            vec![("num_round", "20")],
            vec![("num_round", "20"), ("subsample", "0.6")],
        ] {
            let mut model = boost_with(&given, 3, None).0.unwrap();
            let (train, validation) = model.take_fitted().expect("the learner keeps its scores");
            for (kept, rows) in [(train, &x), (validation.unwrap(), &vx)] {
                let (kept, predicted) = (probabilities(&kept), probabilities(&model.predict(rows)));
                assert_eq!(kept.dim(), predicted.dim());
                let worst = (&kept - &predicted)
                    .iter()
                    .fold(0.0f64, |m, d| m.max(d.abs()));
                assert!(worst < 1e-12, "{given:?}: {worst}");
            }
            assert!(model.take_fitted().is_none(), "taken once");
        }
        let given = [
            ("eta", "0.6"),
            ("num_round", "300"),
            ("min_child_weight", "0"),
            ("early_stopping_rounds", "4"),
        ];
        let mut stopped = boost_with(&given, 7, None).0.unwrap();
        assert!(
            stopped.take_fitted().is_none(),
            "the scores include the rounds cut off"
        );
    }

    #[test]
    fn a_stop_between_rounds_ends_the_fit() {
        let (model, reports) = boost_with(&[("num_round", "50")], 7, Some(3));
        assert!(matches!(model, Err(MlError::Stopped)), "{model:?}");
        assert_eq!(reports.len(), 3, "no round after the stop");
    }

    #[test]
    fn the_same_seed_grows_the_same_trees() {
        let hp = [("subsample", "0.7"), ("num_round", "10")];
        let trees = |seed| boost_with(&hp, seed, None).0.unwrap().trees;
        assert_eq!(trees(5), trees(5));
        assert_ne!(trees(5), trees(6), "another seed samples other rows");
    }

    #[test]
    fn leaf_wise_trees_grow_to_max_leaves_and_depth_wise_to_max_depth() {
        let (model, _) = boost_with(
            &[
                ("grow_policy", "lossguide"),
                ("max_leaves", "7"),
                ("max_depth", "0"),
                ("min_child_weight", "0"),
                ("num_round", "5"),
            ],
            7,
            None,
        );
        for round in model.unwrap().trees {
            assert_eq!(leaves(&round[0]), 7);
        }
        let (model, _) = boost_with(
            &[
                ("max_depth", "2"),
                ("min_child_weight", "0"),
                ("num_round", "5"),
            ],
            7,
            None,
        );
        for round in model.unwrap().trees {
            assert_eq!(depth(&round[0], 0), 2);
            assert_eq!(leaves(&round[0]), 4, "a full tree of depth 2");
        }
        let (model, _) = boost_with(
            &[("max_depth", "4"), ("max_leaves", "5"), ("num_round", "3")],
            7,
            None,
        );
        for round in model.unwrap().trees {
            assert_eq!(leaves(&round[0]), 5, "depth-wise stops at max_leaves too");
        }
    }

    #[test]
    fn the_reported_losses_are_the_models_own() {
        let (model, reports) = boost_with(&[("num_round", "8")], 7, None);
        let model = model.unwrap();
        let (vx, vy) = noisy(1000, 2);
        let Output::Classes(p) = model.predict(&vx) else {
            panic!("a classifier gives classes")
        };
        let logloss = vy
            .iter()
            .enumerate()
            .map(|(i, y)| -(if *y > 0.5 { p[[i, 1]] } else { p[[i, 0]] }).ln())
            .sum::<f64>()
            / vy.len() as f64;
        let (_, last) = reports.last().unwrap();
        let reported = last
            .iter()
            .find(|(k, _)| k == "validation:logloss")
            .unwrap()
            .1;
        assert!(
            (reported - logloss).abs() < 1e-9,
            "{reported} against {logloss}"
        );
        let train = last.iter().find(|(k, _)| k == "train:logloss").unwrap().1;
        assert!(
            train < reported,
            "the training loss is below the validation loss on noise"
        );
    }

    #[test]
    fn the_round_loss_is_the_plain_mean_loss_over_several_blocks() {
        let n = crate::algorithms::blocks::BLOCK_ROWS * 2 + 123;
        let mut rng = Rng::new(5);
        let score: Vec<f64> = (0..n * 3).map(|_| rng.unit() * 16.0 - 8.0).collect();
        let binary: Vec<f64> = (0..n).map(|i| (i % 2) as f64).collect();
        let mut pairs = vec![[0.0; 2]; n * 3];
        let got = gradients(
            ProblemType::Binary,
            &binary,
            &score[..n],
            1,
            &mut pairs[..n],
        );
        let want = (0..n)
            .map(|i| {
                let p = 1.0 / (1.0 + (-score[i]).exp());
                -(if binary[i] > 0.5 { p } else { 1.0 - p }).ln()
            })
            .sum::<f64>()
            / n as f64;
        assert!((got - want).abs() < 1e-12, "binary {got} against {want}");
        let targets: Vec<f64> = score[n..2 * n].iter().map(|s| s * 0.5 + 1.0).collect();
        let mut residuals = vec![0.0; n];
        let got = squared_error(&targets, &score[..n], &mut residuals);
        let want = ((0..n).map(|i| (score[i] - targets[i]).powi(2)).sum::<f64>() / n as f64).sqrt();
        assert!((got - want).abs() < 1e-9, "rmse {got} against {want}");
        assert!((0..n).all(|i| residuals[i] == score[i] - targets[i]));
        let classes: Vec<f64> = (0..n).map(|i| (i % 3) as f64).collect();
        let got = gradients(ProblemType::Multiclass, &classes, &score, 3, &mut pairs);
        let want = (0..n)
            .map(|i| {
                let s = &score[i * 3..i * 3 + 3];
                let total: f64 = s.iter().map(|v| v.exp()).sum();
                -(s[classes[i] as usize].exp() / total).ln()
            })
            .sum::<f64>()
            / n as f64;
        assert!(
            (got - want).abs() < 1e-12,
            "multiclass {got} against {want}"
        );
    }

    #[test]
    fn leaf_values_reach_every_row_of_their_leaf_on_every_core() {
        let (n, k) = (BLOCK_ROWS * 3 + 5, 3);
        let rows: Vec<u32> = (0..n as u32).collect();
        // Three leaves with interleaved rows, each ascending.
        let leaves: Vec<Vec<u32>> = (0..3)
            .map(|l| rows.iter().copied().filter(|r| r % 3 == l).collect())
            .collect();
        let values = [0.5, -2.0, 8.0];
        let given: Vec<(f64, &[u32])> = values
            .iter()
            .zip(&leaves)
            .map(|(v, r)| (*v, &r[..]))
            .collect();
        let mut scores = vec![1.0; n * k];
        add_leaves(&mut scores, k, 1, &given);
        for (r, row) in scores.chunks(k).enumerate() {
            assert_eq!(row, [1.0, 1.0 + values[r % 3], 1.0], "row {r}");
        }
    }
}
