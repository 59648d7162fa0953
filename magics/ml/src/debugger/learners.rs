//! What each built-in learner saves at a step, in smdebug's collections and with the
//! tensor names its hooks use (XGBoost's `train-logloss`, `feature_importance/gain/NAME`,
//! the `trees/` columns of `trees_to_dataframe`).

use super::trial::Tensor;
use super::Saving;
use crate::algorithms::trees::{Tree, LEAF};

/// XGBoost's metric names: `train:logloss` is saved as `train-logloss`.
pub fn metric_tensor(name: &str) -> String {
    name.replacen(':', "-", 1)
}

/// A boosting round: every metric, the objective's losses, the importances so far and
/// the trees so far.
pub fn boosting_round(
    s: &mut Saving,
    metrics: &[(String, f64)],
    losses: &[&str],
    importance: Option<&Importance>,
    rounds: &[Vec<Tree>],
) {
    for (name, value) in metrics {
        let tensor = metric_tensor(name);
        s.add("metrics", tensor.clone(), Tensor::scalar(*value));
        if losses.contains(&name.as_str()) {
            s.add("losses", tensor, Tensor::scalar(*value));
        }
    }
    if let Some(importance) = importance.filter(|_| s.wants("feature_importance")) {
        let features = s.features().to_vec();
        for (kind, values) in importance.kinds() {
            for (f, v) in values.iter().enumerate() {
                if importance.weight[f] > 0.0 {
                    let name = features.get(f).cloned().unwrap_or_else(|| format!("f{f}"));
                    s.add(
                        "feature_importance",
                        format!("feature_importance/{kind}/{name}"),
                        Tensor::scalar(*v),
                    );
                }
            }
        }
    }
    if s.wants("trees") {
        let mut columns: [Vec<f64>; 6] = Default::default();
        for (i, tree) in rounds.iter().flatten().enumerate() {
            for (id, node) in tree.nodes.iter().enumerate() {
                let split = node.feature != LEAF;
                let or_nan = |v: f64| if split { v } else { f64::NAN };
                columns[0].push(i as f64);
                columns[1].push(id as f64);
                columns[2].push(or_nan(node.feature as f64));
                columns[3].push(or_nan(node.threshold));
                columns[4].push(or_nan(node.left as f64));
                columns[5].push(or_nan(node.right as f64));
            }
        }
        for (name, values) in ["Tree", "Node", "Feature", "Split", "Yes", "No"]
            .into_iter()
            .zip(columns)
        {
            s.add("trees", format!("trees/{name}"), Tensor::vector(values));
        }
    }
}

/// XGBoost's importances: splits on a feature (`weight`), their mean and summed gain, their
/// mean and summed cover (hessian).
#[derive(Debug, Clone)]
pub struct Importance {
    weight: Vec<f64>,
    total_gain: Vec<f64>,
    total_cover: Vec<f64>,
}

impl Importance {
    pub fn new(features: usize) -> Importance {
        Importance {
            weight: vec![0.0; features],
            total_gain: vec![0.0; features],
            total_cover: vec![0.0; features],
        }
    }

    pub fn add(&mut self, splits: &[(u32, f64, f64)]) {
        for &(f, gain, cover) in splits {
            let f = f as usize;
            if f < self.weight.len() {
                self.weight[f] += 1.0;
                self.total_gain[f] += gain;
                self.total_cover[f] += cover;
            }
        }
    }

    fn kinds(&self) -> Vec<(&'static str, Vec<f64>)> {
        let mean = |total: &[f64]| -> Vec<f64> {
            total
                .iter()
                .zip(&self.weight)
                .map(|(t, w)| if *w > 0.0 { t / w } else { 0.0 })
                .collect()
        };
        vec![
            ("weight", self.weight.clone()),
            ("gain", mean(&self.total_gain)),
            ("cover", mean(&self.total_cover)),
            ("total_gain", self.total_gain.clone()),
            ("total_cover", self.total_cover.clone()),
        ]
    }
}

/// A linear model's solver iteration: `theta` is `d × m` weights then `m` intercepts.
pub fn linear_step(s: &mut Saving, loss: f64, theta: &[f64], grad: &[f64], d: usize, m: usize) {
    s.add("losses", "train-loss", Tensor::scalar(loss));
    s.add(
        "weights",
        "weights/coefficients",
        Tensor::matrix(d, m, theta[..d * m].to_vec()),
    );
    s.add(
        "biases",
        "biases/intercept",
        Tensor::vector(theta[d * m..].to_vec()),
    );
    s.add(
        "gradients",
        "gradients/coefficients",
        Tensor::matrix(d, m, grad[..d * m].to_vec()),
    );
    s.add(
        "gradients",
        "gradients/intercept",
        Tensor::vector(grad[d * m..].to_vec()),
    );
}

/// The job's last step (EVAL): its final metrics, and the validation rows' predictions
/// (class probabilities, values or clusters) and labels.
pub fn final_step(
    s: &mut Saving,
    metrics: &[(String, f64)],
    validation: Option<(&crate::algorithms::Output, &ndarray::Array1<f64>)>,
) {
    use crate::algorithms::Output;
    for (name, value) in metrics {
        s.add("metrics", metric_tensor(name), Tensor::scalar(*value));
    }
    let Some((output, labels)) = validation else {
        return;
    };
    let predictions = match output {
        // As XGBoost's binary:logistic predicts: the probability of class 1.
        Output::Classes(p) if p.ncols() == 2 => Tensor::vector(p.column(1).to_vec()),
        Output::Classes(p) => Tensor::matrix(p.nrows(), p.ncols(), p.iter().copied().collect()),
        Output::Values(v) => Tensor::vector(v.to_vec()),
        Output::Clusters(c, _) => Tensor::vector(c.iter().map(|&c| c as f64).collect()),
    };
    s.add("predictions", "predictions", predictions);
    if !labels.is_empty() {
        s.add("labels", "labels", Tensor::vector(labels.to_vec()));
    }
}
