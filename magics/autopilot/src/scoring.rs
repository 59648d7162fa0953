//! Every Autopilot objective computed from a candidate's validation predictions, so candidates
//! are ranked on the metric the user chose whatever their training job reports. Definitions
//! as SageMaker documents them: `F1`, `Precision` and `Recall` of the positive class (the
//! second label) for a binary problem, their `…macro` forms the unweighted mean over classes,
//! `BalancedAccuracy` the mean of the classes' recalls, `AUC` the area under the ROC curve
//! (tied scores counted half), `LogLoss` the mean negative log-likelihood with probabilities
//! clipped at 1e-15, and `MSE`, `RMSE`, `MAE`, `R2` over the values.

use crate::objective::Objective;

/// What a candidate said about the validation rows.
pub enum Predictions<'a> {
    /// Each row's class index and probabilities (one per class, in the classes' order).
    Classes {
        truth: &'a [usize],
        proba: &'a [Vec<f64>],
    },
    Values {
        truth: &'a [f64],
        predicted: &'a [f64],
    },
}

/// The objective's value; `None` when it does not apply to the predictions (a regression
/// metric of classes, or the reverse) or there are no rows.
pub fn score(objective: Objective, predictions: &Predictions) -> Option<f64> {
    use Objective::*;
    match predictions {
        Predictions::Values { truth, predicted } => {
            if truth.is_empty() || truth.len() != predicted.len() {
                return None;
            }
            let n = truth.len() as f64;
            let mse = truth
                .iter()
                .zip(*predicted)
                .map(|(t, p)| (t - p).powi(2))
                .sum::<f64>()
                / n;
            match objective {
                Mse => Some(mse),
                Rmse => Some(mse.sqrt()),
                Mae => Some(
                    truth
                        .iter()
                        .zip(*predicted)
                        .map(|(t, p)| (t - p).abs())
                        .sum::<f64>()
                        / n,
                ),
                R2 => {
                    let mean = truth.iter().sum::<f64>() / n;
                    let total = truth.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / n;
                    Some(if total == 0.0 { 0.0 } else { 1.0 - mse / total })
                }
                _ => None,
            }
        }
        Predictions::Classes { truth, proba } => {
            if truth.is_empty() || truth.len() != proba.len() {
                return None;
            }
            let k = proba.iter().map(Vec::len).max().unwrap_or(0).max(2);
            let n = truth.len() as f64;
            let predicted: Vec<usize> = proba.iter().map(|p| argmax(p)).collect();
            // Per class: true positives, predicted, actual.
            let mut counts = vec![[0.0f64; 3]; k];
            for (t, p) in truth.iter().zip(&predicted) {
                counts[*p][1] += 1.0;
                counts[*t][2] += 1.0;
                if t == p {
                    counts[*t][0] += 1.0;
                }
            }
            let ratio = |a: f64, b: f64| if b == 0.0 { 0.0 } else { a / b };
            let precision = |c: usize| ratio(counts[c][0], counts[c][1]);
            let recall = |c: usize| ratio(counts[c][0], counts[c][2]);
            let f1 = |c: usize| ratio(2.0 * counts[c][0], counts[c][1] + counts[c][2]);
            let macro_of = |f: &dyn Fn(usize) -> f64| (0..k).map(f).sum::<f64>() / k as f64;
            let present: Vec<usize> = (0..k).filter(|c| counts[*c][2] > 0.0).collect();
            match objective {
                Accuracy => Some(counts.iter().map(|c| c[0]).sum::<f64>() / n),
                F1 => Some(f1(1)),
                Precision => Some(precision(1)),
                Recall => Some(recall(1)),
                F1macro => Some(macro_of(&f1)),
                PrecisionMacro => Some(macro_of(&precision)),
                RecallMacro => Some(macro_of(&recall)),
                BalancedAccuracy => Some(
                    present.iter().map(|c| recall(*c)).sum::<f64>() / present.len().max(1) as f64,
                ),
                LogLoss => Some(
                    truth
                        .iter()
                        .zip(*proba)
                        .map(|(t, p)| -p.get(*t).copied().unwrap_or(0.0).clamp(1e-15, 1.0).ln())
                        .sum::<f64>()
                        / n,
                ),
                Auc => auc(truth, proba),
                Mse | Rmse | Mae | R2 => None,
            }
        }
    }
}

fn argmax(p: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in p.iter().enumerate() {
        if *v > p[best] {
            best = i;
        }
    }
    best
}

/// The binary AUC of the positive class's probability: the share of (positive, negative)
/// pairs the positive scores higher, ties counting half (the Mann–Whitney U over both).
fn auc(truth: &[usize], proba: &[Vec<f64>]) -> Option<f64> {
    let mut scored: Vec<(f64, bool)> = truth
        .iter()
        .zip(proba)
        .map(|(t, p)| (p.get(1).copied().unwrap_or(0.0), *t == 1))
        .collect();
    let positives = scored.iter().filter(|s| s.1).count() as f64;
    let negatives = scored.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Ranks from 1, tied scores sharing their mean rank.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < scored.len() {
        let mut j = i;
        while j < scored.len() && scored[j].0 == scored[i].0 {
            j += 1;
        }
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += mean_rank * scored[i..j].iter().filter(|s| s.1).count() as f64;
        i = j;
    }
    Some((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Objective::*;

    fn close(a: Option<f64>, b: f64) {
        let a = a.unwrap();
        assert!((a - b).abs() < 1e-12, "{a} against {b}");
    }

    #[test]
    fn binary_metrics_match_their_definitions_worked_by_hand() {
        // truth:     1    1    1    0    0    0    0    1
        // p(1):     .9   .8   .4   .3   .6   .1   .4   .7
        // predicted: 1    1    0    0    1    0    0    1
        let truth = [1, 1, 1, 0, 0, 0, 0, 1];
        let p1 = [0.9, 0.8, 0.4, 0.3, 0.6, 0.1, 0.4, 0.7];
        let proba: Vec<Vec<f64>> = p1.iter().map(|p| vec![1.0 - p, *p]).collect();
        let at = |o| {
            score(
                o,
                &Predictions::Classes {
                    truth: &truth,
                    proba: &proba,
                },
            )
        };
        close(at(Accuracy), 6.0 / 8.0);
        // tp 3, fp 1, fn 1.
        close(at(Precision), 0.75);
        close(at(Recall), 0.75);
        close(at(F1), 0.75);
        // Recall of class 0: 3 of 4.
        close(at(BalancedAccuracy), 0.75);
        // 16 (positive, negative) pairs: .9, .8 and .7 beat all four negatives; .4 beats .3
        // and .1, ties the other .4 (half) and loses to .6.
        close(at(Auc), (12.0 + 2.5) / 16.0);
        let ll = -(0.9f64.ln()
            + 0.8f64.ln()
            + 0.4f64.ln()
            + 0.7f64.ln()
            + 0.7f64.ln()
            + 0.4f64.ln()
            + 0.9f64.ln()
            + 0.6f64.ln())
            / 8.0;
        close(at(LogLoss), ll);
        assert_eq!(at(Mse), None);
    }

    #[test]
    fn multiclass_macro_metrics_average_the_classes() {
        let truth = [0, 0, 1, 1, 2, 2];
        let pick = |c: usize| {
            let mut p = vec![0.1; 3];
            p[c] = 0.8;
            p
        };
        let proba: Vec<Vec<f64>> = [0, 1, 1, 1, 2, 0].iter().map(|c| pick(*c)).collect();
        let at = |o| {
            score(
                o,
                &Predictions::Classes {
                    truth: &truth,
                    proba: &proba,
                },
            )
        };
        close(at(Accuracy), 4.0 / 6.0);
        // Recalls 1/2, 1, 1/2; precisions 1/2, 2/3, 1.
        close(at(RecallMacro), 2.0 / 3.0);
        close(at(BalancedAccuracy), 2.0 / 3.0);
        close(at(PrecisionMacro), (0.5 + 2.0 / 3.0 + 1.0) / 3.0);
        let f1s = [0.5, 0.8, 2.0 / 3.0];
        close(at(F1macro), f1s.iter().sum::<f64>() / 3.0);
    }

    #[test]
    fn regression_metrics_and_what_does_not_apply() {
        let truth = [1.0, 2.0, 3.0, 4.0];
        let predicted = [1.5, 2.0, 2.0, 5.0];
        let at = |o| {
            score(
                o,
                &Predictions::Values {
                    truth: &truth,
                    predicted: &predicted,
                },
            )
        };
        close(at(Mse), (0.25 + 0.0 + 1.0 + 1.0) / 4.0);
        close(at(Rmse), (2.25f64 / 4.0).sqrt());
        close(at(Mae), 2.5 / 4.0);
        close(at(R2), 1.0 - 0.5625 / 1.25);
        assert_eq!(at(Accuracy), None);
        assert_eq!(
            score(
                Mse,
                &Predictions::Values {
                    truth: &[],
                    predicted: &[]
                }
            ),
            None
        );
        // AUC needs both classes among the rows.
        let one = [1, 1];
        let proba = vec![vec![0.2, 0.8], vec![0.6, 0.4]];
        assert_eq!(
            score(
                Auc,
                &Predictions::Classes {
                    truth: &one,
                    proba: &proba
                }
            ),
            None
        );
    }
}
