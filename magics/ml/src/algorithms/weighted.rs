//! A weighted ensemble of fitted models (Caruana's ensemble selection, as Autopilot's
//! ENSEMBLING mode and AutoGluon build them): the members' class probabilities or values
//! averaged with fixed weights. The members were fitted on the same prepared features, so one
//! feature schema feeds them all; the weights are chosen elsewhere (on validation rows).

use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use super::{Model, Output};
use crate::MlError;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WeightedEnsemble {
    pub members: Vec<Model>,
    /// One weight a member, summing to 1.
    pub weights: Vec<f64>,
}

impl WeightedEnsemble {
    /// Refuses what cannot be averaged: no members, a weight a member missing, weights that
    /// are negative or sum to nothing. The weights are normalised to sum to 1.
    pub fn new(members: Vec<Model>, weights: Vec<f64>) -> Result<WeightedEnsemble, MlError> {
        if members.is_empty() || members.len() != weights.len() {
            return Err(MlError::Input(format!(
                "an ensemble needs one weight a member: {} members, {} weights",
                members.len(),
                weights.len()
            )));
        }
        let total: f64 = weights.iter().sum();
        if weights.iter().any(|w| !w.is_finite() || *w < 0.0) || total <= 0.0 {
            return Err(MlError::Input(format!(
                "an ensemble's weights must be at least 0 and sum above 0: {weights:?}"
            )));
        }
        let weights = weights.iter().map(|w| w / total).collect();
        Ok(WeightedEnsemble { members, weights })
    }

    pub fn predict(&self, x: &Array2<f64>) -> Output {
        let mut classes: Option<Array2<f64>> = None;
        let mut values: Option<Array1<f64>> = None;
        for (member, &w) in self.members.iter().zip(&self.weights) {
            match member.predict(x) {
                Output::Classes(p) => match classes.as_mut() {
                    Some(sum) if sum.dim() == p.dim() => sum.scaled_add(w, &p),
                    Some(_) => {}
                    None => classes = Some(p * w),
                },
                Output::Values(v) => match values.as_mut() {
                    Some(sum) => sum.scaled_add(w, &v),
                    None => values = Some(v * w),
                },
                // Clusters do not average; an ensemble is of classifiers or regressors.
                clusters @ Output::Clusters(..) => return clusters,
            }
        }
        match (classes, values) {
            (Some(p), _) => Output::Classes(p),
            (None, Some(v)) => Output::Values(v),
            (None, None) => Output::Values(Array1::zeros(x.nrows())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithms::logistic::LogisticModel;

    fn logistic(weight: f64, intercept: f64) -> Model {
        Model::Logistic(LogisticModel {
            weights: Array2::from_elem((1, 1), weight),
            intercept: Array1::from_elem(1, intercept),
            classes: 2,
            iterations: 1,
        })
    }

    #[test]
    fn probabilities_are_averaged_with_the_weights() {
        let x = Array2::from_shape_vec((3, 1), vec![-1.0, 0.0, 2.0]).unwrap();
        let (a, b) = (logistic(2.0, 0.0), logistic(-1.0, 0.5));
        let (Output::Classes(pa), Output::Classes(pb)) = (a.predict(&x), b.predict(&x)) else {
            panic!("classifiers")
        };
        let e = WeightedEnsemble::new(vec![a, b], vec![3.0, 1.0]).unwrap();
        assert_eq!(e.weights, vec![0.75, 0.25]);
        let Output::Classes(p) = e.predict(&x) else {
            panic!("a classifier")
        };
        for i in 0..3 {
            for c in 0..2 {
                let want = 0.75 * pa[[i, c]] + 0.25 * pb[[i, c]];
                assert!((p[[i, c]] - want).abs() < 1e-12);
            }
            assert!((p.row(i).sum() - 1.0).abs() < 1e-12);
        }
        // It round-trips through the artifact's JSON as one model.
        let json = serde_json::to_string(&Model::Ensemble(e)).unwrap();
        let back: Model = serde_json::from_str(&json).unwrap();
        let Output::Classes(q) = back.predict(&x) else {
            panic!("a classifier")
        };
        assert_eq!(p, q);
    }

    #[test]
    fn bad_weights_are_refused() {
        let err = WeightedEnsemble::new(vec![logistic(1.0, 0.0)], vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("1 members, 0 weights"), "{err}");
        let err = WeightedEnsemble::new(vec![logistic(1.0, 0.0)], vec![-1.0])
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least 0"), "{err}");
        assert!(WeightedEnsemble::new(vec![], vec![]).is_err());
    }
}
