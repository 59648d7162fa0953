//! The built-in algorithms: their names, their hyperparameters (with defaults and valid
//! ranges, checked before training), fitting, and the fitted [`Model`] that predicts and
//! serialises into a model artifact.

mod blocks;
mod booster;
mod classical;
mod ensembles;
pub mod gaussian_process;
pub mod kmeans;
mod lbfgs;
pub mod logistic;
pub mod mlp;
mod scoring;
pub mod trees;
mod weighted;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use crate::prep::ProblemType;
use crate::MlError;

pub use classical::LinfaModel;
pub use ensembles::TreeModel;
pub use weighted::WeightedEnsemble;

/// A small seeded generator (SplitMix64): splits, bootstraps and feature sampling repeat
/// exactly for a seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `k` distinct numbers below `n`, in increasing order.
    pub fn choose(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut all: Vec<usize> = (0..n).collect();
        for i in 0..k.min(n) {
            let j = i + self.below(n - i);
            all.swap(i, j);
        }
        let mut picked = all[..k.min(n)].to_vec();
        picked.sort_unstable();
        picked
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// What values a hyperparameter takes.
#[derive(Debug, Clone, Copy)]
pub enum Range {
    Int(i64, i64),
    /// Inclusive bounds; `open_min` excludes the minimum.
    Float {
        min: f64,
        max: f64,
        open_min: bool,
    },
    Choice(&'static [&'static str]),
    /// One of the words, or a fraction in (0, 1].
    ChoiceOrFraction(&'static [&'static str]),
    /// Comma-separated layer widths (scikit-learn's `hidden_layer_sizes`).
    Layers,
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Range::Int(a, b) => write!(f, "an integer from {a} to {b}"),
            Range::Float { min, max, open_min } => write!(
                f,
                "a number {} {min} and at most {max}",
                if *open_min { "above" } else { "at least" }
            ),
            Range::Choice(words) => write!(f, "one of {}", words.join(", ")),
            Range::Layers => write!(
                f,
                "layer widths such as 100 or 64,32 (1 to 8 layers of 1 to 4096 units)"
            ),
            Range::ChoiceOrFraction(words) => {
                write!(
                    f,
                    "one of {}, or a fraction above 0 and at most 1",
                    words.join(", ")
                )
            }
        }
    }
}

pub struct HpSpec {
    pub name: &'static str,
    pub default: &'static str,
    pub range: Range,
    pub doc: &'static str,
}

const fn int(
    name: &'static str,
    default: &'static str,
    min: i64,
    max: i64,
    doc: &'static str,
) -> HpSpec {
    HpSpec {
        name,
        default,
        range: Range::Int(min, max),
        doc,
    }
}

const fn float(
    name: &'static str,
    default: &'static str,
    min: f64,
    max: f64,
    open_min: bool,
    doc: &'static str,
) -> HpSpec {
    HpSpec {
        name,
        default,
        range: Range::Float { min, max, open_min },
        doc,
    }
}

const fn choice(
    name: &'static str,
    default: &'static str,
    words: &'static [&'static str],
    doc: &'static str,
) -> HpSpec {
    HpSpec {
        name,
        default,
        range: Range::Choice(words),
        doc,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    LinearRegression,
    LogisticRegression,
    DecisionTree,
    RandomForest,
    ExtraTrees,
    GradientBoosting,
    KMeans,
    NaiveBayes,
    Svm,
    Mlp,
    GaussianProcess,
}

pub const ALGORITHMS: &[(Algorithm, &str)] = &[
    (Algorithm::LinearRegression, "linear-regression"),
    (Algorithm::LogisticRegression, "logistic-regression"),
    (Algorithm::DecisionTree, "decision-tree"),
    (Algorithm::RandomForest, "random-forest"),
    (Algorithm::ExtraTrees, "extra-trees"),
    (Algorithm::GradientBoosting, "gradient-boosting"),
    (Algorithm::KMeans, "kmeans"),
    (Algorithm::NaiveBayes, "naive-bayes"),
    (Algorithm::Svm, "svm"),
    (Algorithm::Mlp, "mlp"),
    (Algorithm::GaussianProcess, "gaussian-process"),
];

/// Other names users reach for.
const ALIASES: &[(&str, Algorithm)] = &[
    ("xgboost", Algorithm::GradientBoosting),
    ("k-means", Algorithm::KMeans),
    ("linear-learner", Algorithm::LinearRegression),
    ("multilayer-perceptron", Algorithm::Mlp),
    ("neural-network", Algorithm::Mlp),
    ("extremely-randomized-trees", Algorithm::ExtraTrees),
    ("gp", Algorithm::GaussianProcess),
    ("gaussian-process-regression", Algorithm::GaussianProcess),
];

const TREE_HPS: [HpSpec; 4] = [
    int("max_depth", "30", 1, 64, "deepest level a tree grows to"),
    int(
        "min_samples_leaf",
        "1",
        1,
        1_000_000,
        "fewest training rows in a leaf",
    ),
    int(
        "min_samples_split",
        "2",
        2,
        1_000_000,
        "fewest rows a node needs to be split",
    ),
    int("max_bins", "255", 2, 255, "histogram bins per feature"),
];

impl Algorithm {
    pub fn parse(name: &str) -> Result<Algorithm, MlError> {
        let lower = name.to_ascii_lowercase().replace('_', "-");
        if let Some((a, _)) = ALGORITHMS.iter().find(|(_, n)| *n == lower) {
            return Ok(*a);
        }
        if let Some((_, a)) = ALIASES.iter().find(|(n, _)| *n == lower) {
            return Ok(*a);
        }
        let closest = ALGORITHMS
            .iter()
            .map(|(_, n)| *n)
            .chain(ALIASES.iter().map(|(n, _)| *n))
            .min_by_key(|n| strsim::damerau_levenshtein(&lower, n))
            .unwrap_or("linear-regression");
        Err(MlError::Input(format!(
            "unknown algorithm `{name}`; did you mean `{closest}`? The built-in algorithms are: {}",
            ALGORITHMS
                .iter()
                .map(|(_, n)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }

    pub fn name(self) -> &'static str {
        ALGORITHMS
            .iter()
            .find(|(a, _)| *a == self)
            .map(|(_, n)| *n)
            .unwrap_or("?")
    }

    pub fn hyperparameters(self) -> Vec<HpSpec> {
        match self {
            Algorithm::LinearRegression => vec![
                choice("penalty", "none", &["none", "l2", "l1", "elasticnet"], "regularisation: none (least squares), l2 (ridge), l1 (lasso), elasticnet"),
                float("alpha", "1.0", 0.0, 1e6, false, "strength of the penalty"),
                float("l1_ratio", "0.5", 0.0, 1.0, false, "elasticnet: share of L1 in the penalty"),
                int("max_iter", "1000", 1, 100_000, "coordinate-descent iterations (penalised fits)"),
                float("tol", "1e-4", 0.0, 1.0, true, "convergence tolerance (penalised fits)"),
            ],
            Algorithm::LogisticRegression => vec![
                float("alpha", "1.0", 0.0, 1e6, false, "L2 penalty (scikit-learn's 1/C)"),
                int("max_iter", "100", 1, 100_000, "L-BFGS iterations"),
                float("tol", "1e-4", 0.0, 1.0, true, "gradient tolerance"),
            ],
            Algorithm::DecisionTree => {
                let mut hps = vec![choice("criterion", "gini", &["gini", "entropy"], "classification: split quality")];
                hps.extend(TREE_HPS);
                hps
            }
            // ExtraTrees take scikit-learn's defaults: every row for every tree.
            Algorithm::RandomForest | Algorithm::ExtraTrees => {
                let extra = self == Algorithm::ExtraTrees;
                let mut hps = vec![
                    int("num_trees", "100", 1, 2000, "trees in the forest"),
                    choice("criterion", "gini", &["gini", "entropy"], "classification: split quality"),
                    HpSpec { name: "max_features", default: "auto", range: Range::ChoiceOrFraction(&["auto", "sqrt", "log2", "all"]), doc: if extra {
                        "features tried at each split, each at one random threshold (auto: sqrt for classification, all for regression, as scikit-learn)"
                    } else {
                        "features tried at each split (auto: sqrt for classification, all for regression, as scikit-learn)"
                    } },
                    choice("bootstrap", if extra { "false" } else { "true" }, &["true", "false"], "sample rows with replacement for each tree"),
                ];
                hps.extend(TREE_HPS);
                hps
            }
            Algorithm::GradientBoosting => vec![
                int("num_round", "100", 1, 10_000, "boosting rounds"),
                float("eta", "0.1", 0.0, 1.0, true, "learning rate"),
                int("max_depth", "6", 0, 64, "deepest level of a tree (0: no limit, with grow_policy=lossguide or max_leaves)"),
                int("max_leaves", "0", 0, 131_072, "most leaves of a tree (0: no limit, or 1 is refused); with lossguide, LightGBM's num_leaves"),
                choice("grow_policy", "depthwise", &["depthwise", "lossguide"], "depthwise: level by level (XGBoost's default); lossguide: always the leaf that gains most (LightGBM's way)"),
                float("min_child_weight", "1", 0.0, 1e6, false, "least hessian in a child"),
                int("min_data_in_leaf", "1", 1, 1_000_000, "fewest training rows in a leaf (LightGBM's name)"),
                float("gamma", "0", 0.0, 1e6, false, "least loss reduction a split must make (min_split_loss)"),
                float("lambda", "1", 0.0, 1e6, false, "L2 penalty on leaf weights"),
                float("subsample", "1", 0.0, 1.0, true, "share of rows each round sees"),
                int("max_bins", "255", 2, 255, "histogram bins per feature"),
                int("early_stopping_rounds", "0", 0, 10_000, "stop when the validation loss has not improved for this many rounds (0: off)"),
            ],
            Algorithm::KMeans => vec![
                int("k", "8", 1, 10_000, "number of clusters"),
                int("max_iter", "300", 1, 100_000, "Lloyd iterations per run"),
                float("tol", "1e-4", 0.0, 1.0, true, "convergence tolerance"),
                int("n_init", "1", 1, 100, "runs from different k-means++ starts; the best is kept"),
            ],
            Algorithm::Mlp => vec![
                HpSpec { name: "hidden_layer_sizes", default: "100", range: Range::Layers, doc: "units of each hidden layer" },
                choice("activation", "relu", &["relu", "tanh", "sigmoid", "logistic"], "hidden units' function (logistic: sigmoid)"),
                choice("solver", "adam", &["adam", "sgd"], "optimiser: Adam, or SGD with momentum"),
                float("learning_rate_init", "0.001", 0.0, 100.0, true, "step size"),
                int("batch_size", "200", 1, 1_000_000, "rows a mini-batch"),
                int("max_iter", "200", 1, 100_000, "epochs at most"),
                float("alpha", "0.0001", 0.0, 1e6, false, "L2 penalty"),
                float("tol", "1e-4", 0.0, 1.0, false, "least improvement of the loss that counts"),
                int("n_iter_no_change", "10", 1, 100_000, "epochs without improvement before stopping"),
                choice("early_stopping", "false", &["true", "false"], "watch the validation loss (and keep the best epoch) instead of the training loss"),
                float("momentum", "0.9", 0.0, 1.0, false, "sgd: momentum"),
                float("init_scale", "1", 0.0, 1e6, false, "multiplies the Glorot bound of the hidden layers' weights"),
                float("bias_shift", "0", -1e6, 1e6, false, "added to the hidden biases at the start"),
            ],
            Algorithm::GaussianProcess => vec![
                choice("kernel", "rbf", &["rbf", "matern52"], "covariance: rbf (squared exponential) or matern52 (Matérn, ν = 5/2), one length-scale per feature"),
                int("hyper_rows", "300", 2, 5000, "rows (a seeded sample) the kernel's hyperparameters are fitted on by maximising the marginal likelihood"),
                int("max_rows", "5000", 2, 20_000, "most rows the model conditions on (a seeded sample beyond; memory grows as the square, time as the cube)"),
                int("max_iter", "100", 1, 10_000, "L-BFGS iterations of the hyperparameter fit"),
            ],
            Algorithm::NaiveBayes => vec![float("var_smoothing", "1e-9", 0.0, 1.0, false, "share of the largest variance added to every variance")],
            Algorithm::Svm => vec![
                choice("kernel", "rbf", &["rbf", "linear", "poly"], "kernel function"),
                float("C", "1.0", 0.0, 1e6, true, "penalty of margin violations"),
                float("gamma", "0", 0.0, 1e6, false, "rbf: kernel width 1/eps (0: 1/features, scikit-learn's `scale` on standardised data)"),
                int("degree", "3", 1, 10, "poly: degree"),
                float("epsilon", "0.1", 0.0, 1e6, false, "regression: width of the insensitive tube"),
                float("tol", "1e-3", 0.0, 1.0, true, "solver tolerance"),
            ],
        }
    }

    /// The debugger collections its learner fills (every job also saves its final metrics,
    /// and the validation predictions and labels, at one last EVAL step).
    pub fn debug_collections(self) -> &'static [&'static str] {
        match self {
            Algorithm::GradientBoosting => &[
                "losses",
                "metrics",
                "hyperparameters",
                "feature_importance",
                "trees",
                "predictions",
                "labels",
            ],
            Algorithm::LogisticRegression => &[
                "losses",
                "metrics",
                "hyperparameters",
                "weights",
                "biases",
                "gradients",
                "predictions",
                "labels",
            ],
            Algorithm::Mlp => &[
                "losses",
                "metrics",
                "hyperparameters",
                "weights",
                "biases",
                "gradients",
                "relu_input",
                "relu_output",
                "outputs",
                "predictions",
                "labels",
            ],
            _ => &["metrics", "hyperparameters", "predictions", "labels"],
        }
    }

    pub fn supports(self, problem: ProblemType) -> bool {
        use ProblemType::*;
        match self {
            Algorithm::LinearRegression => problem == Regression,
            Algorithm::LogisticRegression | Algorithm::NaiveBayes => problem.is_classification(),
            Algorithm::KMeans => problem == Clustering,
            Algorithm::GaussianProcess => problem == Regression,
            _ => problem != Clustering,
        }
    }

    /// Validates the given hyperparameters and fills in the defaults.
    pub fn resolve(self, given: &BTreeMap<String, String>) -> Result<Hyperparameters, MlError> {
        let specs = self.hyperparameters();
        let mut out = BTreeMap::new();
        for (key, value) in given {
            let Some(spec) = specs.iter().find(|s| s.name == key) else {
                return Err(MlError::Input(format!(
                    "{} has no hyperparameter `{key}`; its hyperparameters are: {}",
                    self.name(),
                    specs.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
                )));
            };
            check(self, spec, value)?;
            out.insert(key.clone(), value.trim().to_owned());
        }
        for spec in &specs {
            out.entry(spec.name.to_owned())
                .or_insert_with(|| spec.default.to_owned());
        }
        let hp = Hyperparameters(out);
        self.check_together(&hp)?;
        Ok(hp)
    }

    /// What each value allows alone but not with the others.
    fn check_together(self, hp: &Hyperparameters) -> Result<(), MlError> {
        if self != Algorithm::GradientBoosting {
            return Ok(());
        }
        if hp.int("max_leaves") == 1 {
            return Err(MlError::Input(
                "gradient-boosting hyperparameter max_leaves=1 leaves a tree a single leaf: \
                 give 0 (no limit) or at least 2"
                    .into(),
            ));
        }
        if hp.int("max_depth") == 0 && hp.int("max_leaves") == 0 {
            return Err(MlError::Input(
                "gradient-boosting hyperparameter max_depth=0 (no depth limit) needs a leaf \
                 limit: give max_leaves (for example max_leaves=31 grow_policy=lossguide) or a \
                 max_depth of 1 or more"
                    .into(),
            ));
        }
        Ok(())
    }
}

fn check(algorithm: Algorithm, spec: &HpSpec, value: &str) -> Result<(), MlError> {
    let v = value.trim();
    let ok = match spec.range {
        Range::Int(min, max) => v.parse::<i64>().is_ok_and(|n| n >= min && n <= max),
        Range::Float { min, max, open_min } => v.parse::<f64>().is_ok_and(|x| {
            x.is_finite() && (if open_min { x > min } else { x >= min }) && x <= max
        }),
        Range::Choice(words) => words.contains(&v),
        Range::ChoiceOrFraction(words) => {
            words.contains(&v) || v.parse::<f64>().is_ok_and(|x| x > 0.0 && x <= 1.0)
        }
        Range::Layers => {
            mlp::layer_sizes(v).is_some_and(|l| l.len() <= 8 && l.iter().all(|&n| n <= 4096))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(MlError::Input(format!(
            "{} hyperparameter {}={value} is out of range: it must be {}",
            algorithm.name(),
            spec.name,
            spec.range
        )))
    }
}

/// Every hyperparameter of a job, as text (as SageMaker keeps them), defaults filled in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Hyperparameters(pub BTreeMap<String, String>);

impl Hyperparameters {
    fn text(&self, name: &str) -> &str {
        self.0.get(name).map(String::as_str).unwrap_or_default()
    }
    fn int(&self, name: &str) -> usize {
        self.text(name).parse::<usize>().unwrap_or(0)
    }
    fn float(&self, name: &str) -> f64 {
        self.text(name).parse::<f64>().unwrap_or(0.0)
    }
}

/// Progress of a fit: the metrics at a step; the learner stops early when `stop` is set.
pub struct Monitor<'a> {
    pub stop: &'a AtomicBool,
    pub report: &'a mut dyn FnMut(u64, Vec<(String, f64)>),
    /// The job's debugger hook, when it has one.
    pub debug: Option<&'a mut crate::debugger::Hook>,
}

impl Monitor<'_> {
    /// A debugger step: `fill` adds what the step saves. A rule with the StopTraining action
    /// that fires sets `stop`, so the learner ends before its next step.
    pub fn debug_step(
        &mut self,
        mode: crate::debugger::Mode,
        fill: impl FnOnce(&mut crate::debugger::Saving),
    ) {
        if let Some(hook) = self.debug.as_deref_mut() {
            if hook.step(mode, fill).is_some() {
                self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

/// Training (and optionally validation) rows.
pub struct FitData<'a> {
    pub x: &'a Array2<f64>,
    pub y: &'a Array1<f64>,
    pub classes: usize,
    pub problem: ProblemType,
    pub validation: Option<(&'a Array2<f64>, &'a Array1<f64>)>,
    pub seed: u64,
}

/// A fitted model. Externally tagged: serde's untagged and internally tagged enums buffer
/// their content, which loses integer map keys (naive Bayes keeps its classes in a map).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    Trees(TreeModel),
    /// linfa's models; k-means and logistic regression fitted before their own solvers
    /// still load from here.
    Linfa(LinfaModel),
    KMeans(kmeans::KMeansModel),
    Logistic(logistic::LogisticModel),
    /// Autopilot's ENSEMBLING: fitted models averaged with weights.
    Ensemble(WeightedEnsemble),
    Mlp(mlp::MlpModel),
    GaussianProcess(gaussian_process::GpModel),
}

/// What a model says about rows.
pub enum Output {
    /// One row of class probabilities per input row.
    Classes(Array2<f64>),
    Values(Array1<f64>),
    /// Closest cluster and the distance to its centre.
    Clusters(Vec<usize>, Vec<f64>),
}

impl Model {
    /// The outputs for the rows the model was just fitted on (training, then validation),
    /// where the learner kept them; else None and the caller predicts.
    pub fn take_fitted(&mut self) -> Option<(Output, Option<Output>)> {
        match self {
            Model::Trees(m) => m.take_fitted(),
            _ => None,
        }
    }

    pub fn predict(&self, x: &Array2<f64>) -> Output {
        match self {
            Model::Trees(m) => m.predict(x),
            Model::Linfa(m) => m.predict(x),
            Model::KMeans(m) => m.predict(x),
            Model::Logistic(m) => m.predict(x),
            Model::Ensemble(m) => m.predict(x),
            Model::Mlp(m) => m.predict(x),
            Model::GaussianProcess(m) => m.predict(x),
        }
    }
}

pub fn fit(
    algorithm: Algorithm,
    hp: &Hyperparameters,
    data: &FitData,
    monitor: &mut Monitor,
) -> Result<Model, MlError> {
    if data.x.nrows() == 0 {
        return Err(MlError::Input(
            "no training rows are left after the split".into(),
        ));
    }
    match algorithm {
        Algorithm::DecisionTree
        | Algorithm::RandomForest
        | Algorithm::ExtraTrees
        | Algorithm::GradientBoosting => {
            ensembles::fit(algorithm, hp, data, monitor).map(Model::Trees)
        }
        Algorithm::KMeans => kmeans::fit(
            data.x,
            &kmeans::KMeansParams {
                k: hp.int("k"),
                max_iter: hp.int("max_iter"),
                tol: hp.float("tol"),
                n_init: hp.int("n_init"),
                seed: data.seed,
            },
            monitor.stop,
        )
        .map(Model::KMeans),
        Algorithm::LogisticRegression => logistic::fit(
            data.x,
            data.y,
            data.classes,
            &logistic::LogisticParams {
                alpha: hp.float("alpha"),
                max_iter: hp.int("max_iter"),
                tol: hp.float("tol"),
            },
            monitor,
        )
        .map(Model::Logistic),
        Algorithm::Mlp => mlp::fit(
            data,
            &mlp::MlpParams {
                hidden: mlp::layer_sizes(hp.text("hidden_layer_sizes")).unwrap_or(vec![100]),
                activation: mlp::Activation::parse(hp.text("activation")),
                adam: hp.text("solver") == "adam",
                learning_rate: hp.float("learning_rate_init"),
                batch_size: hp.int("batch_size"),
                max_iter: hp.int("max_iter"),
                alpha: hp.float("alpha"),
                tol: hp.float("tol"),
                n_iter_no_change: hp.int("n_iter_no_change"),
                early_stopping: hp.text("early_stopping") == "true",
                momentum: hp.float("momentum"),
                init_scale: hp.float("init_scale"),
                bias_shift: hp.float("bias_shift"),
            },
            monitor,
        )
        .map(Model::Mlp),
        Algorithm::GaussianProcess => gaussian_process::fit(
            data,
            &gaussian_process::GpParams {
                kernel: gaussian_process::Kernel::parse(hp.text("kernel")),
                hyper_rows: hp.int("hyper_rows"),
                max_rows: hp.int("max_rows"),
                max_iter: hp.int("max_iter"),
            },
            monitor,
        )
        .map(Model::GaussianProcess),
        _ => classical::fit(algorithm, hp, data, monitor).map(Model::Linfa),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_get_the_closest() {
        let err = Algorithm::parse("random-forrest").unwrap_err().to_string();
        assert!(err.contains("did you mean `random-forest`"), "{err}");
        assert_eq!(
            Algorithm::parse("XGBoost").unwrap(),
            Algorithm::GradientBoosting
        );
    }

    #[test]
    fn hyperparameters_are_checked_before_training() {
        let given = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        let refused =
            |a: Algorithm, k: &str, v: &str| a.resolve(&given(k, v)).unwrap_err().to_string();
        let boosting = Algorithm::GradientBoosting;
        let err = refused(boosting, "eta", "1.5");
        assert!(
            err.contains("eta=1.5") && err.contains("at most 1"),
            "{err}"
        );
        let err = refused(Algorithm::RandomForest, "max_features", "0");
        assert!(err.contains("auto, sqrt, log2, all"), "{err}");
        let err = refused(Algorithm::Svm, "depth", "3");
        assert!(err.contains("no hyperparameter `depth`"), "{err}");
        let err = refused(boosting, "max_leaves", "1");
        assert!(
            err.contains("max_leaves=1") && err.contains("at least 2"),
            "{err}"
        );
        let err = refused(boosting, "max_depth", "0");
        assert!(err.contains("needs a leaf limit"), "{err}");
        let both = BTreeMap::from([
            ("max_depth".to_owned(), "0".to_owned()),
            ("max_leaves".to_owned(), "31".to_owned()),
        ]);
        assert!(boosting.resolve(&both).is_ok());
        let err = refused(boosting, "grow_policy", "leafwise");
        assert!(err.contains("depthwise, lossguide"), "{err}");
        let err = refused(boosting, "min_data_in_leaf", "0");
        assert!(err.contains("from 1 to"), "{err}");
        let err = refused(Algorithm::Mlp, "hidden_layer_sizes", "64,0");
        assert!(err.contains("layer widths such as 100 or 64,32"), "{err}");
        let err = refused(Algorithm::Mlp, "activation", "softplus");
        assert!(err.contains("relu, tanh, sigmoid"), "{err}");
        assert!(Algorithm::Mlp
            .resolve(&given("hidden_layer_sizes", "128,64"))
            .is_ok());
        let hp = Algorithm::KMeans.resolve(&given("k", "3")).unwrap();
        assert_eq!(hp.int("k"), 3);
        assert_eq!(hp.int("max_iter"), 300);
    }

    #[test]
    fn the_generator_repeats_for_a_seed() {
        let draw = |seed| {
            let mut r = Rng::new(seed);
            (0..5).map(|_| r.below(1000)).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        assert_eq!(Rng::new(1).choose(10, 3).len(), 3);
    }
}
