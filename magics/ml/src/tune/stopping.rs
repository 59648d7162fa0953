//! Stopping trials while they train: SageMaker's median stopping rule (early stopping
//! `Auto`) and Hyperband's rungs. Both read the objective as a loss (lower is better) at a
//! step, which is the epoch, boosting round or tree count the training job reports.

use std::collections::BTreeMap;

/// The median rule: a trial whose objective at `step` is worse than the median of the
/// earlier trials' running averages up to that step is stopped. Trials that never reached
/// the step do not count, and fewer than `MIN_SAMPLES` earlier trials decide nothing.
pub fn median_rule(step: u64, loss: f64, earlier: &[&[(u64, f64)]]) -> bool {
    const MIN_SAMPLES: usize = 3;
    let mut averages: Vec<f64> = earlier
        .iter()
        .filter(|series| series.last().is_some_and(|(s, _)| *s >= step))
        .map(|series| {
            let upto: Vec<f64> = series
                .iter()
                .filter(|(s, _)| *s <= step)
                .map(|(_, v)| *v)
                .collect();
            upto.iter().sum::<f64>() / upto.len().max(1) as f64
        })
        .filter(|v| v.is_finite())
        .collect();
    if averages.len() < MIN_SAMPLES {
        return false;
    }
    averages.sort_by(f64::total_cmp);
    let n = averages.len();
    let median = if n % 2 == 1 {
        averages[n / 2]
    } else {
        0.5 * (averages[n / 2 - 1] + averages[n / 2])
    };
    loss > median
}

/// Asynchronous Hyperband: brackets differ in how early their first rung is (MinResource ×
/// η^bracket); at each rung (× η) a trial goes on only if its loss is among the best 1/η of
/// the losses its bracket has seen at that rung. Trials are dealt to brackets in turn.
pub struct Hyperband {
    min: u64,
    max: u64,
    brackets: usize,
    /// Per bracket: rung resource → losses recorded there.
    rungs: Vec<BTreeMap<u64, Vec<f64>>>,
    /// Per trial: its bracket and the rungs it has passed.
    trials: BTreeMap<usize, (usize, u64)>,
}

pub const ETA: u64 = 3;

impl Hyperband {
    pub fn new(min: u64, max: u64) -> Hyperband {
        let mut brackets = 1;
        let mut r = min.saturating_mul(ETA);
        while r <= max {
            brackets += 1;
            r = r.saturating_mul(ETA);
        }
        Hyperband {
            min,
            max,
            brackets,
            rungs: vec![BTreeMap::new(); brackets],
            trials: BTreeMap::new(),
        }
    }

    pub fn brackets(&self) -> usize {
        self.brackets
    }

    pub fn add_trial(&mut self, trial: usize, seq: usize) {
        self.trials.insert(trial, (seq % self.brackets, 0));
    }

    /// The trial's bracket and its rungs' resources.
    fn rung_resources(&self, bracket: usize) -> Vec<u64> {
        let mut out = Vec::new();
        let mut r = self.min.saturating_mul(ETA.saturating_pow(bracket as u32));
        while r < self.max {
            out.push(r);
            r = r.saturating_mul(ETA);
        }
        out
    }

    /// Records a report; Some(reason) when the trial should stop at this rung.
    pub fn report(&mut self, trial: usize, step: u64, loss: f64) -> Option<String> {
        let (bracket, passed) = *self.trials.get(&trial)?;
        let rung = self
            .rung_resources(bracket)
            .into_iter()
            .filter(|r| *r > passed && *r <= step)
            .max()?;
        self.trials.insert(trial, (bracket, rung));
        let seen = self.rungs[bracket].entry(rung).or_default();
        seen.push(loss);
        let mut sorted = seen.clone();
        sorted.sort_by(f64::total_cmp);
        // The best 1/η go on (at least one: the first trial at a rung always does).
        let keep = (sorted.len() as u64).div_ceil(ETA).max(1) as usize;
        let cutoff = sorted[keep - 1];
        (loss > cutoff).then(|| {
            format!(
                "Hyperband: at resource {rung} (bracket {bracket}) its objective is not among the best 1/{ETA} of the {} trials there",
                sorted.len()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_rule_stops_only_what_is_worse_than_the_median() {
        let a: Vec<(u64, f64)> = vec![(1, 1.0), (2, 0.8), (3, 0.6)];
        let b: Vec<(u64, f64)> = vec![(1, 0.9), (2, 0.7), (3, 0.5)];
        let c: Vec<(u64, f64)> = vec![(1, 1.1), (2, 0.9), (3, 0.7)];
        let short: Vec<(u64, f64)> = vec![(1, 5.0)];
        let earlier: Vec<&[(u64, f64)]> = vec![&a, &b, &c, &short];
        // Running averages at step 2: 0.9, 0.8, 1.0 (the short trial never reached it).
        assert!(median_rule(2, 0.95, &earlier));
        assert!(!median_rule(2, 0.85, &earlier));
        // Two earlier trials are too few to judge.
        assert!(!median_rule(2, 10.0, &earlier[..2]));
    }

    #[test]
    fn hyperband_brackets_and_rungs() {
        let mut h = Hyperband::new(1, 27);
        assert_eq!(h.brackets(), 4);
        assert_eq!(h.rung_resources(0), vec![1, 3, 9]);
        assert_eq!(h.rung_resources(3), Vec::<u64>::new());
        for t in 0..4 {
            h.add_trial(t * 4, 0);
        }
        // Bracket 0: the first trial at rung 1 goes on, a worse second one stops, a better
        // one goes on.
        assert_eq!(h.report(0, 1, 0.5), None);
        assert!(h.report(4, 1, 0.9).is_some());
        assert_eq!(h.report(8, 1, 0.1), None);
        // A rung is judged once per trial.
        assert_eq!(h.report(8, 2, 0.1), None);
    }
}
