//! Production variants: an endpoint's traffic split among them by weight, or sent to one by
//! name (`TargetVariant`), as SageMaker routes it.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::DeployError;

/// Variant names as SageMaker takes them.
pub fn check_name(name: &str) -> Result<(), DeployError> {
    rustmaker_sagemaker::check_name(name, rustmaker_sagemaker::Resource::ProductionVariant)
        .map_err(|e| DeployError::Config(e.to_string()))
}

/// Variants and their weights, ready to route a request.
#[derive(Debug, Clone)]
pub struct Weights {
    names: Vec<String>,
    weights: Vec<f64>,
    /// Running sums of the weights: a draw below `upto[i]` (and above the one before) is `i`.
    upto: Vec<f64>,
    /// The last variant with a weight, for a draw that rounding puts at the top.
    last: usize,
}

impl Weights {
    /// Refuses no variants, a repeated name, and weights that are negative, not numbers, or
    /// all zero (nothing would be served).
    pub fn new(variants: &[(String, f64)]) -> Result<Weights, DeployError> {
        if variants.is_empty() {
            return Err(DeployError::Config(
                "an endpoint needs at least one production variant".into(),
            ));
        }
        let mut upto = Vec::with_capacity(variants.len());
        let mut total = 0.0;
        for (i, (name, weight)) in variants.iter().enumerate() {
            check_name(name)?;
            if variants[..i].iter().any(|(n, _)| n == name) {
                return Err(DeployError::Config(format!(
                    "the variant name `{name}` is given twice; each variant needs its own"
                )));
            }
            if !weight.is_finite() || *weight < 0.0 {
                return Err(DeployError::Config(format!(
                    "variant `{name}` has weight {weight}: a weight is a number of at least 0"
                )));
            }
            total += weight;
            upto.push(total);
        }
        if total <= 0.0 {
            return Err(DeployError::Config(
                "every variant's weight is 0, so no request could be served: give at least one a weight above 0".into(),
            ));
        }
        let last = variants.iter().rposition(|(_, w)| *w > 0.0).unwrap_or(0);
        Ok(Weights {
            names: variants.iter().map(|(n, _)| n.clone()).collect(),
            weights: variants.iter().map(|(_, w)| *w).collect(),
            upto: upto.into_iter().map(|u| u / total).collect(),
            last,
        })
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Each variant with its weight, as given.
    pub fn pairs(&self) -> Vec<(String, f64)> {
        self.names
            .iter()
            .cloned()
            .zip(self.weights.iter().copied())
            .collect()
    }

    /// The variant of a request: the target if one is named, else one drawn by weight with
    /// `draw` in [0, 1).
    pub fn route(&self, target: Option<&str>, draw: f64) -> Result<usize, DeployError> {
        if let Some(target) = target {
            return self.names.iter().position(|n| n == target).ok_or_else(|| {
                DeployError::UnknownVariant {
                    given: target.to_owned(),
                    known: self.names.join(", "),
                }
            });
        }
        Ok(self.upto.partition_point(|&u| u <= draw).min(self.last))
    }
}

/// Uniform draws in [0, 1) for routing and capture sampling, shared by every thread without
/// a lock: a counter hashed by SplitMix64.
#[derive(Debug)]
pub struct Draws {
    next: AtomicU64,
}

impl Draws {
    pub fn new(seed: u64) -> Draws {
        Draws {
            next: AtomicU64::new(seed),
        }
    }

    pub fn unit(&self) -> f64 {
        let mut z = self
            .next
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(pairs: &[(&str, f64)]) -> Result<Weights, DeployError> {
        let owned: Vec<(String, f64)> = pairs.iter().map(|(n, w)| (n.to_string(), *w)).collect();
        Weights::new(&owned)
    }

    #[test]
    fn traffic_follows_the_weights_and_a_target_overrides_them() {
        let w = weights(&[("blue", 3.0), ("green", 1.0), ("off", 0.0)]).unwrap();
        let draws = Draws::new(7);
        let mut counts = [0usize; 3];
        let n = 100_000;
        for _ in 0..n {
            counts[w.route(None, draws.unit()).unwrap()] += 1;
        }
        let share = counts[0] as f64 / n as f64;
        assert!((share - 0.75).abs() < 0.01, "blue's share {share}");
        assert_eq!(counts[2], 0, "a variant of weight 0 gets no traffic");
        assert_eq!(w.route(Some("off"), 0.1).unwrap(), 2, "but can be targeted");
        assert_eq!(w.route(None, 0.0).unwrap(), 0);
        assert_eq!(w.route(None, 0.999_999_999_999).unwrap(), 1);
        let e = w.route(Some("red"), 0.5).unwrap_err().to_string();
        assert_eq!(
            e,
            "the endpoint has no variant `red`; its variants are blue, green, off"
        );
    }

    #[test]
    fn weights_that_serve_nothing_are_refused() {
        for (pairs, want) in [
            (vec![], "at least one production variant"),
            (vec![("a", 0.0), ("b", 0.0)], "every variant's weight is 0"),
            (vec![("a", -1.0)], "variant `a` has weight -1"),
            (vec![("a", f64::NAN)], "variant `a` has weight NaN"),
            (vec![("a", 1.0), ("a", 2.0)], "given twice"),
            (vec![("bad name", 1.0)], "is not a valid variant name"),
            (vec![("-a", 1.0)], "is not a valid variant name"),
        ] {
            let e = weights(&pairs).unwrap_err().to_string();
            assert!(e.contains(want), "{pairs:?}: {e}");
        }
    }

    #[test]
    fn draws_are_uniform_in_the_unit_interval() {
        let d = Draws::new(1);
        let values: Vec<f64> = (0..50_000).map(|_| d.unit()).collect();
        assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
        let low = values.iter().filter(|v| **v < 0.1).count() as f64 / values.len() as f64;
        assert!((low - 0.1).abs() < 0.01, "share below 0.1: {low}");
    }
}
