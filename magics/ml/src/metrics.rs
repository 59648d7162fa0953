//! Model quality as SageMaker's built-in algorithms name it (`validation:accuracy`,
//! `validation:rmse`, …), computed from a model's output.

use ndarray::{Array1, Array2};

use crate::algorithms::Output;
use crate::prep::ProblemType;

/// A sum of logarithms kept as the product of their arguments (a mantissa and a power of
/// two), so that a log-loss over a million rows costs a multiply a row and one `ln` at the
/// end: the `ln` a row was most of a boosting round's loss. Exact to about 1e-16 relative a
/// row, as a sum of `ln`s is.
#[derive(Debug, Clone, Copy)]
pub struct LnSum {
    mantissa: f64,
    exponent: i64,
}

impl Default for LnSum {
    fn default() -> LnSum {
        LnSum {
            mantissa: 1.0,
            exponent: 0,
        }
    }
}

impl LnSum {
    /// Adds `ln(x)`; `x` positive and finite (callers clamp probabilities away from 0).
    #[inline]
    pub fn add_ln_of(&mut self, x: f64) {
        self.mantissa *= x;
        // Far from both ends of f64's range: any factor a caller passes (a clamped
        // probability or its inverse, 1e-15 to 1e15) keeps the next product normal.
        if !(1e-150..=1e150).contains(&self.mantissa) {
            self.normalise();
        }
    }

    fn normalise(&mut self) {
        if !self.mantissa.is_normal() {
            // A NaN or an infinity stays what it is, for the metric to show it.
            return;
        }
        let bits = self.mantissa.to_bits();
        let biased = ((bits >> 52) & 0x7ff) as i64;
        self.exponent += biased - 1023;
        self.mantissa = f64::from_bits((bits & !(0x7ff << 52)) | (1023 << 52));
    }

    pub fn merge(mut self, other: LnSum) -> LnSum {
        self.mantissa *= other.mantissa;
        self.exponent += other.exponent;
        self.normalise();
        self
    }

    pub fn value(&self) -> f64 {
        self.mantissa.ln() + self.exponent as f64 * std::f64::consts::LN_2
    }
}

/// What every classification metric is read from, summed row by row, so that row blocks on
/// several cores can each keep one and merge them in order.
#[derive(Debug, Clone)]
pub struct ClassTally {
    rows: f64,
    hits: f64,
    /// The product of the true classes' probabilities, whose ln is the summed log-loss.
    likelihood: LnSum,
    /// Per class: true positives, false positives, false negatives.
    counts: Vec<[f64; 3]>,
}

impl ClassTally {
    pub fn new(classes: usize) -> ClassTally {
        ClassTally {
            rows: 0.0,
            hits: 0.0,
            likelihood: LnSum::default(),
            counts: vec![[0.0; 3]; classes.max(2)],
        }
    }

    /// One row: its true class and the model's probabilities.
    pub fn add(&mut self, truth: usize, proba: &[f64]) {
        let predicted = argmax(proba);
        self.rows += 1.0;
        if predicted == truth {
            self.hits += 1.0;
            self.counts[truth][0] += 1.0;
        } else {
            self.counts[predicted][1] += 1.0;
            self.counts[truth][2] += 1.0;
        }
        self.likelihood.add_ln_of(proba[truth].clamp(1e-15, 1.0));
    }

    pub fn merge(mut self, other: &ClassTally) -> ClassTally {
        self.rows += other.rows;
        self.hits += other.hits;
        self.likelihood = self.likelihood.merge(other.likelihood);
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        }
        self
    }

    pub fn accuracy(&self) -> f64 {
        self.hits / self.rows.max(1.0)
    }

    pub fn logloss(&self) -> f64 {
        -self.likelihood.value() / self.rows.max(1.0)
    }

    /// F1 of the positive class (index 1) for two classes; the unweighted mean over classes
    /// (macro) for more.
    pub fn f1(&self) -> f64 {
        let score = |[tp, fp, fneg]: [f64; 3]| {
            if tp == 0.0 {
                0.0
            } else {
                2.0 * tp / (2.0 * tp + fp + fneg)
            }
        };
        if self.counts.len() == 2 {
            score(self.counts[1])
        } else {
            self.counts.iter().map(|c| score(*c)).sum::<f64>() / self.counts.len() as f64
        }
    }

    pub fn metrics(&self, prefix: &str) -> Vec<(String, f64)> {
        vec![
            (format!("{prefix}:accuracy"), self.accuracy()),
            (format!("{prefix}:f1"), self.f1()),
            (format!("{prefix}:logloss"), self.logloss()),
        ]
    }
}

/// What every regression metric is read from, summed row by row (see [`ClassTally`]).
#[derive(Debug, Clone, Copy)]
pub struct ValueTally {
    /// The targets' mean, known before the rows are summed, for R²'s total sum of squares.
    mean: f64,
    rows: f64,
    squared: f64,
    absolute: f64,
    total: f64,
}

impl ValueTally {
    pub fn new(mean: f64) -> ValueTally {
        ValueTally {
            mean,
            rows: 0.0,
            squared: 0.0,
            absolute: 0.0,
            total: 0.0,
        }
    }

    pub fn add(&mut self, truth: f64, predicted: f64) {
        self.rows += 1.0;
        self.squared += (truth - predicted).powi(2);
        self.absolute += (truth - predicted).abs();
        self.total += (truth - self.mean).powi(2);
    }

    pub fn merge(mut self, other: &ValueTally) -> ValueTally {
        self.rows += other.rows;
        self.squared += other.squared;
        self.absolute += other.absolute;
        self.total += other.total;
        self
    }

    pub fn metrics(&self, prefix: &str) -> Vec<(String, f64)> {
        let n = self.rows.max(1.0);
        let mse = self.squared / n;
        let r2 = if self.total == 0.0 {
            0.0
        } else {
            1.0 - self.squared / self.total
        };
        vec![
            (format!("{prefix}:r2"), r2),
            (format!("{prefix}:rmse"), mse.sqrt()),
            (format!("{prefix}:mse"), mse),
            (format!("{prefix}:mae"), self.absolute / n),
        ]
    }
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

/// The metrics of a data set (`prefix` is `train` or `validation`).
pub fn evaluate(
    prefix: &str,
    problem: ProblemType,
    y: &Array1<f64>,
    output: &Output,
) -> Vec<(String, f64)> {
    match output {
        Output::Classes(p) if problem.is_classification() => classes(y, p).metrics(prefix),
        Output::Values(p) => {
            let mut tally = ValueTally::new(y.mean().unwrap_or(0.0));
            y.iter().zip(p).for_each(|(t, v)| tally.add(*t, *v));
            tally.metrics(prefix)
        }
        Output::Clusters(_, d) => vec![(
            format!("{prefix}:msd"),
            d.iter().map(|x| x * x).sum::<f64>() / d.len().max(1) as f64,
        )],
        Output::Classes(_) => Vec::new(),
    }
}

fn classes(y: &Array1<f64>, proba: &Array2<f64>) -> ClassTally {
    let mut tally = ClassTally::new(proba.ncols());
    for (t, p) in y.iter().zip(proba.outer_iter()) {
        match p.as_slice() {
            Some(p) => tally.add(*t as usize, p),
            None => tally.add(*t as usize, &p.to_vec()),
        }
    }
    tally
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
    fn ln_sum_is_the_sum_of_logarithms_over_any_range_and_merges() {
        let values: Vec<f64> = (0..200_000)
            .map(|i| match i % 4 {
                0 => 1e-15,
                1 => 0.5 + (i % 97) as f64 / 200.0,
                2 => 1.0 + (i % 13) as f64 / 13.0,
                _ => 1e-3,
            })
            .collect();
        let expected: f64 = values.iter().map(|v| v.ln()).sum();
        let (mut a, mut b) = (LnSum::default(), LnSum::default());
        let (first, second) = values.split_at(70_001);
        first.iter().for_each(|v| a.add_ln_of(*v));
        second.iter().for_each(|v| b.add_ln_of(*v));
        let merged = a.merge(b);
        assert!(
            (merged.value() - expected).abs() < 1e-9 * expected.abs(),
            "{} against {expected}",
            merged.value()
        );
        assert_eq!(LnSum::default().value(), 0.0);
        let mut broken = LnSum::default();
        broken.add_ln_of(f64::NAN);
        broken.add_ln_of(0.5);
        assert!(broken.value().is_nan(), "a NaN probability is not hidden");
    }

    #[test]
    fn classification_metrics() {
        let y = array![0.0, 1.0, 1.0, 0.0];
        let p = array![[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]];
        let tally = classes(&y, &p);
        assert_eq!(tally.accuracy(), 0.75);
        // tp 1, fp 0, fn 1.
        assert!((tally.f1() - 2.0 / 3.0).abs() < 1e-12);
        let logloss = -(0.9f64.ln() + 0.8f64.ln() + 0.4f64.ln() + 0.7f64.ln()) / 4.0;
        assert!((tally.logloss() - logloss).abs() < 1e-12);
        assert!(lower_is_better("validation:rmse") && !lower_is_better("validation:accuracy"));
    }

    #[test]
    fn tallies_of_blocks_merge_into_the_whole() {
        let y = array![0.0, 2.0, 1.0, 2.0, 0.0];
        let p = array![
            [0.5, 0.3, 0.2],
            [0.1, 0.2, 0.7],
            [0.6, 0.3, 0.1],
            [0.2, 0.5, 0.3],
            [0.3, 0.3, 0.4]
        ];
        let whole = classes(&y, &p);
        let mut first = ClassTally::new(3);
        let mut second = ClassTally::new(3);
        for i in 0..5 {
            let t = if i < 2 { &mut first } else { &mut second };
            t.add(y[i] as usize, p.row(i).as_slice().unwrap());
        }
        let merged = first.merge(&second);
        for ((a, x), (b, y)) in merged.metrics("v").iter().zip(whole.metrics("v")) {
            assert_eq!(*a, b);
            assert!((x - y).abs() < 1e-12, "{a}: {x} against {y}");
        }
        assert_eq!(whole.accuracy(), 0.4);
        // Predicted 0, 2, 0, 1, 2. Macro F1: class 0 (tp 1, fp 1, fn 1) 1/2, class 1 (no tp) 0,
        // class 2 (tp 1, fp 1, fn 1) 1/2.
        assert!((whole.f1() - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn regression_metrics() {
        let y = array![1.0, 2.0, 3.0];
        let m = |p: Array1<f64>| evaluate("v", ProblemType::Regression, &y, &Output::Values(p));
        assert_eq!(m(y.clone())[0], ("v:r2".to_owned(), 1.0));
        let off = m(array![1.0, 2.0, 4.0]);
        assert!((off[2].1 - 1.0 / 3.0).abs() < 1e-12, "mse: {off:?}");
        assert!((off[0].1 - 0.5).abs() < 1e-12, "r2 = 1 - 1/2: {off:?}");
        assert!((off[3].1 - 1.0 / 3.0).abs() < 1e-12, "mae: {off:?}");
    }
}
