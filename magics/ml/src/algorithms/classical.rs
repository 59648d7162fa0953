//! The algorithms linfa fits: least squares and elastic net, Gaussian naive Bayes and support
//! vector machines. Logistic regression and k-means fitted by linfa before they had solvers of
//! their own ([`super::logistic`], [`super::kmeans`]) still predict from here.

use linfa::prelude::*;
use linfa_bayes::{GaussianNb, NaiveBayes};
use linfa_clustering::KMeans;
use linfa_elasticnet::ElasticNet;
use linfa_linear::{FittedLinearRegression, LinearRegression};
use linfa_logistic::{FittedLogisticRegression, MultiFittedLogisticRegression};
use linfa_svm::Svm;
use ndarray::{Array1, Array2, Axis};
use serde::{Deserialize, Serialize};

use super::{Algorithm, FitData, Hyperparameters, Monitor, Output};
use crate::prep::ProblemType;
use crate::MlError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "linfa", content = "fitted", rename_all = "snake_case")]
pub enum LinfaModel {
    LeastSquares(FittedLinearRegression<f64>),
    ElasticNet(ElasticNet<f64>),
    Logistic(FittedLogisticRegression<f64, usize>),
    MultiLogistic(MultiFittedLogisticRegression<f64, usize>),
    NaiveBayes {
        model: GaussianNb<f64, usize>,
        classes: usize,
    },
    /// One machine per class against the rest (two classes: one machine).
    SvmClassifier(Vec<Svm<f64, bool>>),
    SvmRegressor(Svm<f64, f64>),
    KMeans(KMeans<f64, linfa_nn::distance::L2Dist>),
}

fn failed(what: &str, e: impl std::fmt::Display) -> MlError {
    MlError::Training(format!("{what}: {e}"))
}

fn class_targets(y: &Array1<f64>) -> Array1<usize> {
    y.mapv(|v| v as usize)
}

pub fn fit(
    algorithm: Algorithm,
    hp: &Hyperparameters,
    data: &FitData,
    _monitor: &mut Monitor,
) -> Result<LinfaModel, MlError> {
    let x = data.x;
    match algorithm {
        Algorithm::LinearRegression => {
            let dataset = Dataset::new(x.clone(), data.y.clone());
            let penalty = hp.text("penalty");
            if penalty == "none" {
                return LinearRegression::new()
                    .fit(&dataset)
                    .map(LinfaModel::LeastSquares)
                    .map_err(|e| failed("least squares", e));
            }
            let l1_ratio = match penalty {
                "l2" => 0.0,
                "l1" => 1.0,
                _ => hp.float("l1_ratio"),
            };
            // linfa scales the penalty by the row count as scikit-learn's ElasticNet does.
            ElasticNet::params()
                .penalty(hp.float("alpha"))
                .l1_ratio(l1_ratio)
                .max_iterations(hp.int("max_iter") as u32)
                .tolerance(hp.float("tol"))
                .fit(&dataset)
                .map(LinfaModel::ElasticNet)
                .map_err(|e| failed("elastic net", e))
        }
        Algorithm::NaiveBayes => {
            let dataset = Dataset::new(x.clone(), class_targets(data.y));
            GaussianNb::params()
                .var_smoothing(hp.float("var_smoothing"))
                .fit(&dataset)
                .map(|model| LinfaModel::NaiveBayes {
                    model,
                    classes: data.classes,
                })
                .map_err(|e| failed("naive Bayes", e))
        }
        Algorithm::Svm => {
            let gamma = match hp.float("gamma") {
                g if g > 0.0 => g,
                _ => 1.0 / x.ncols().max(1) as f64,
            };
            let c = hp.float("C");
            let tol = hp.float("tol");
            macro_rules! kernel {
                ($params:expr) => {
                    match hp.text("kernel") {
                        "linear" => $params.linear_kernel(),
                        "poly" => $params.polynomial_kernel(1.0, hp.int("degree") as f64),
                        _ => $params.gaussian_kernel(1.0 / gamma),
                    }
                };
            }
            if data.problem == ProblemType::Regression {
                let params = Svm::<f64, f64>::params()
                    .c_svr(c, Some(hp.float("epsilon")))
                    .eps(tol);
                let dataset = Dataset::new(x.clone(), data.y.clone());
                return kernel!(params)
                    .fit(&dataset)
                    .map(LinfaModel::SvmRegressor)
                    .map_err(|e| failed("SVM", e));
            }
            let machines = if data.classes == 2 { 1 } else { data.classes };
            let mut out = Vec::with_capacity(machines);
            for class in 0..machines {
                let positive = if data.classes == 2 { 1 } else { class };
                let target = data.y.mapv(|v| v as usize == positive);
                let params = Svm::<f64, bool>::params().pos_neg_weights(c, c).eps(tol);
                let dataset = Dataset::new(x.clone(), target);
                out.push(
                    kernel!(params)
                        .fit(&dataset)
                        .map_err(|e| failed("SVM", e))?,
                );
            }
            Ok(LinfaModel::SvmClassifier(out))
        }
        _ => unreachable!("trees, k-means and logistic regression have solvers of their own"),
    }
}

fn softmax_rows(mut m: Array2<f64>) -> Array2<f64> {
    for mut row in m.outer_iter_mut() {
        let max = row.iter().copied().fold(f64::MIN, f64::max);
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row.mapv_inplace(|v| v / sum);
    }
    m
}

impl LinfaModel {
    pub fn predict(&self, x: &Array2<f64>) -> Output {
        match self {
            LinfaModel::LeastSquares(m) => Output::Values(m.predict(x)),
            LinfaModel::ElasticNet(m) => Output::Values(m.predict(x)),
            LinfaModel::Logistic(m) => {
                // The fitted model's probabilities are those of its positive class, which is
                // the larger label (class 1).
                let p = m.predict_probabilities(x);
                let positive_is_one = m.labels().pos.class == 1;
                Output::Classes(Array2::from_shape_fn((x.nrows(), 2), |(i, j)| {
                    let p1 = if positive_is_one { p[i] } else { 1.0 - p[i] };
                    if j == 1 {
                        p1
                    } else {
                        1.0 - p1
                    }
                }))
            }
            LinfaModel::MultiLogistic(m) => {
                let p = m.predict_probabilities(x);
                // Columns follow the model's sorted classes, which are 0..k here.
                let mut out = Array2::zeros((x.nrows(), m.classes().len()));
                for (j, class) in m.classes().iter().enumerate() {
                    out.column_mut(*class).assign(&p.column(j));
                }
                Output::Classes(out)
            }
            LinfaModel::NaiveBayes { model, classes } => {
                let jll = model.joint_log_likelihood(x.view());
                let mut out = Array2::from_elem((x.nrows(), *classes), f64::MIN);
                for (class, values) in jll {
                    out.column_mut(*class).assign(&values);
                }
                Output::Classes(softmax_rows(out))
            }
            LinfaModel::SvmClassifier(machines) => {
                let decisions = Array2::from_shape_fn((x.nrows(), machines.len()), |(i, j)| {
                    machines[j].weighted_sum(&x.row(i)) - machines[j].rho
                });
                if machines.len() == 1 {
                    // Uncalibrated: a logistic of the decision value.
                    Output::Classes(Array2::from_shape_fn((x.nrows(), 2), |(i, j)| {
                        let p = 1.0 / (1.0 + (-decisions[[i, 0]]).exp());
                        if j == 1 {
                            p
                        } else {
                            1.0 - p
                        }
                    }))
                } else {
                    Output::Classes(softmax_rows(decisions))
                }
            }
            LinfaModel::SvmRegressor(m) => Output::Values(m.predict(x)),
            LinfaModel::KMeans(m) => {
                let centroids = m.centroids();
                let mut cluster = Vec::with_capacity(x.nrows());
                let mut distance = Vec::with_capacity(x.nrows());
                for row in x.outer_iter() {
                    let (best, d2) = centroids
                        .axis_iter(Axis(0))
                        .enumerate()
                        .map(|(c, centre)| (c, (&row - &centre).mapv(|v| v * v).sum()))
                        .min_by(|a, b| a.1.total_cmp(&b.1))
                        .unwrap_or((0, 0.0));
                    cluster.push(best);
                    distance.push(d2.sqrt());
                }
                Output::Clusters(cluster, distance)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Model;
    use super::*;
    use linfa_logistic::LogisticRegression;
    use rand_xoshiro::rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro256Plus;

    /// Artifacts written before logistic regression and k-means had solvers of their own hold
    /// linfa's models: they still load and predict as they did.
    #[test]
    fn models_fitted_by_linfa_still_load_and_predict() {
        let x = Array2::from_shape_fn((40, 2), |(i, j)| (i as f64 - 20.0) * (j as f64 + 1.0));
        let y = Array1::from_shape_fn(40, |i| usize::from(i >= 20));
        let logistic = LogisticRegression::default()
            .fit(&Dataset::new(x.clone(), y))
            .unwrap();
        let kmeans = KMeans::params_with_rng(2, Xoshiro256Plus::seed_from_u64(0))
            .fit(&DatasetBase::from(x.clone()))
            .unwrap();
        for model in [
            Model::Linfa(LinfaModel::Logistic(logistic)),
            Model::Linfa(LinfaModel::KMeans(kmeans)),
        ] {
            let before = model.predict(&x);
            let stored = serde_json::to_vec(&model).unwrap();
            let loaded: Model = serde_json::from_slice(&stored).unwrap();
            match (before, loaded.predict(&x)) {
                (Output::Classes(a), Output::Classes(b)) => {
                    assert_eq!(a, b);
                    assert!(a[[0, 0]] > 0.5 && a[[39, 1]] > 0.5, "{a}");
                }
                (Output::Clusters(a, _), Output::Clusters(b, _)) => {
                    assert_eq!(a, b);
                    assert_ne!(a[0], a[39]);
                }
                _ => panic!("the loaded model predicts another kind of output"),
            }
        }
    }
}
