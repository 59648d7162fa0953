//! The algorithms linfa provides: least squares and elastic net, logistic regression (binary
//! and multinomial), Gaussian naive Bayes, support vector machines and k-means.

use linfa::prelude::*;
use linfa_bayes::{GaussianNb, NaiveBayes};
use linfa_clustering::KMeans;
use linfa_elasticnet::ElasticNet;
use linfa_linear::{FittedLinearRegression, LinearRegression};
use linfa_logistic::{
    FittedLogisticRegression, LogisticRegression, MultiFittedLogisticRegression,
    MultiLogisticRegression,
};
use linfa_svm::Svm;
use ndarray::{Array1, Array2, Axis};
use rand_xoshiro::rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256Plus;
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
        Algorithm::LogisticRegression => {
            let dataset = Dataset::new(x.clone(), class_targets(data.y));
            // linfa's alpha multiplies ‖w‖²/2 against the summed loss, as 1/C in scikit-learn.
            if data.classes == 2 {
                LogisticRegression::default()
                    .alpha(hp.float("alpha"))
                    .max_iterations(hp.int("max_iter") as u64)
                    .gradient_tolerance(hp.float("tol"))
                    .fit(&dataset)
                    .map(LinfaModel::Logistic)
                    .map_err(|e| failed("logistic regression", e))
            } else {
                MultiLogisticRegression::default()
                    .alpha(hp.float("alpha"))
                    .max_iterations(hp.int("max_iter") as u64)
                    .gradient_tolerance(hp.float("tol"))
                    .fit(&dataset)
                    .map(LinfaModel::MultiLogistic)
                    .map_err(|e| failed("logistic regression", e))
            }
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
        Algorithm::KMeans => {
            let k = hp.int("k");
            if k > x.nrows() {
                return Err(MlError::Input(format!(
                    "k = {k} is more clusters than the {} training rows",
                    x.nrows()
                )));
            }
            let dataset = DatasetBase::from(x.clone());
            KMeans::params_with_rng(k, Xoshiro256Plus::seed_from_u64(data.seed))
                .max_n_iterations(hp.int("max_iter") as u64)
                .tolerance(hp.float("tol"))
                .n_runs(hp.int("n_init"))
                .fit(&dataset)
                .map(LinfaModel::KMeans)
                .map_err(|e| failed("k-means", e))
        }
        _ => unreachable!("tree algorithms are fitted in ensembles.rs"),
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
