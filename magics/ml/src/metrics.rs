//! Model quality as SageMaker's built-in algorithms name it (`validation:accuracy`,
//! `validation:rmse`, …), computed from a model's output.

use ndarray::{Array1, Array2};

use crate::algorithms::Output;
use crate::prep::ProblemType;

pub fn accuracy(y: &Array1<f64>, proba: &Array2<f64>) -> f64 {
    let hits = y
        .iter()
        .zip(proba.outer_iter())
        .filter(|(t, p)| argmax_of(p.iter()) == **t as usize)
        .count();
    hits as f64 / y.len().max(1) as f64
}

pub fn argmax(p: &[f64]) -> usize {
    argmax_of(p.iter())
}

/// The index of the largest value (the first of equals).
pub fn argmax_of<'a>(values: impl Iterator<Item = &'a f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if *v > best.1 {
            best = (i, *v);
        }
    }
    best.0
}

pub fn logloss(y: &Array1<f64>, proba: &Array2<f64>) -> f64 {
    let total: f64 = y
        .iter()
        .zip(proba.outer_iter())
        .map(|(t, p)| -p[*t as usize].clamp(1e-15, 1.0).ln())
        .sum();
    total / y.len().max(1) as f64
}

/// F1 of the positive class (index 1) for two classes; the unweighted mean over classes
/// (macro) for more.
pub fn f1(y: &Array1<f64>, proba: &Array2<f64>) -> f64 {
    let k = proba.ncols();
    let predicted: Vec<usize> = proba.outer_iter().map(|p| argmax_of(p.iter())).collect();
    let score = |class: usize| {
        let (mut tp, mut fp, mut fneg) = (0.0, 0.0, 0.0);
        for (t, p) in y.iter().zip(&predicted) {
            let (t, p) = (*t as usize == class, *p == class);
            match (t, p) {
                (true, true) => tp += 1.0,
                (false, true) => fp += 1.0,
                (true, false) => fneg += 1.0,
                _ => {}
            }
        }
        if tp == 0.0 {
            0.0
        } else {
            2.0 * tp / (2.0 * tp + fp + fneg)
        }
    };
    if k == 2 {
        score(1)
    } else {
        (0..k).map(score).sum::<f64>() / k as f64
    }
}

pub fn mse(y: &Array1<f64>, p: &Array1<f64>) -> f64 {
    y.iter().zip(p).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / y.len().max(1) as f64
}

pub fn r2(y: &Array1<f64>, p: &Array1<f64>) -> f64 {
    let mean = y.mean().unwrap_or(0.0);
    let total: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
    let residual: f64 = y.iter().zip(p).map(|(a, b)| (a - b).powi(2)).sum();
    if total == 0.0 {
        0.0
    } else {
        1.0 - residual / total
    }
}

/// The metrics of a data set (`prefix` is `train` or `validation`).
pub fn evaluate(
    prefix: &str,
    problem: ProblemType,
    y: &Array1<f64>,
    output: &Output,
) -> Vec<(String, f64)> {
    let name = |m: &str| format!("{prefix}:{m}");
    match output {
        Output::Classes(p) if problem.is_classification() => vec![
            (name("accuracy"), accuracy(y, p)),
            (name("f1"), f1(y, p)),
            (name("logloss"), logloss(y, p)),
        ],
        Output::Values(p) => {
            let m = mse(y, p);
            vec![
                (name("r2"), r2(y, p)),
                (name("rmse"), m.sqrt()),
                (name("mse"), m),
                (
                    name("mae"),
                    y.iter().zip(p).map(|(a, b)| (a - b).abs()).sum::<f64>()
                        / y.len().max(1) as f64,
                ),
            ]
        }
        Output::Clusters(_, d) => vec![(
            name("msd"),
            d.iter().map(|x| x * x).sum::<f64>() / d.len().max(1) as f64,
        )],
        Output::Classes(_) => Vec::new(),
    }
}

/// Whether a smaller value of the metric is better (for sorting leaderboards).
pub fn lower_is_better(metric: &str) -> bool {
    let base = metric
        .rsplit(':')
        .next()
        .unwrap_or(metric)
        .to_ascii_lowercase();
    [
        "loss", "logloss", "rmse", "mse", "mae", "msd", "error", "merror",
    ]
    .iter()
    .any(|m| base == *m || base.ends_with(&format!("_{m}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn classification_metrics() {
        let y = array![0.0, 1.0, 1.0, 0.0];
        let p = array![[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]];
        assert_eq!(accuracy(&y, &p), 0.75);
        // tp 1, fp 0, fn 1.
        assert!((f1(&y, &p) - 2.0 / 3.0).abs() < 1e-12);
        assert!(lower_is_better("validation:rmse") && !lower_is_better("validation:accuracy"));
    }

    #[test]
    fn regression_metrics() {
        let y = array![1.0, 2.0, 3.0];
        assert_eq!(r2(&y, &y), 1.0);
        assert!((mse(&y, &array![1.0, 2.0, 4.0]) - 1.0 / 3.0).abs() < 1e-12);
    }
}
