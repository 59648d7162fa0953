//! Autopilot's candidates: each a data-processing pipeline (`dppN`) paired with an algorithm,
//! named as SageMaker names them (`dpp0-xgboost`, `dpp1-lightgbm`, …), and the one
//! multi-algorithm tuning request (CreateHyperParameterTuningJob's `TrainingJobDefinitions`,
//! one definition a candidate) that the training engine's tuner runs.
//!
//! SageMaker's algorithm names map to the built-ins: `xgboost` is gradient boosting grown
//! level by level, `lightgbm` the same learner grown leaf-wise (`grow_policy=lossguide`, as
//! LightGBM grows), `linear-learner` logistic or linear regression, `randomforest` the random
//! forest, `extra-trees` the extremely randomised trees, `mlp` (by default on small tables,
//! else on request) the multilayer perceptron, `gaussian-process` (regression; by default on
//! small tables, else on request) Gaussian process regression. Ranges are those SageMaker's Autopilot tunes
//! for them, within what the built-ins take.

use serde_json::{json, Value};

use crate::analysis::{Analysis, ColumnKind};
use crate::objective::{Objective, Problem};
use crate::request::JobSpec;
use crate::AutopilotError;

/// The algorithms a candidate can use, in the order candidates are numbered.
pub const ALGORITHMS: &[&str] = &[
    "xgboost",
    "lightgbm",
    "linear-learner",
    "randomforest",
    "extra-trees",
];

/// Algorithms a job uses on a large table only when `--algorithms` names them: the network
/// trains far slower than the trees on many rows.
pub const ON_REQUEST: &[&str] = &["mlp", "gaussian-process"];

/// Tables of at most this many rows get the network too by default (as SageMaker's
/// ensembling mode trains neural networks): on them it trains in seconds, and it learns the
/// smooth shapes that trees approximate in steps (in the benchmark: Friedman #1's RMSE 2.4 %
/// and diabetes' 0.6 % lower, digits 1.7 points more accurate).
pub const NETWORK_BY_DEFAULT_ROWS: usize = 5_000;

/// Regression tables of at most this many rows get Gaussian process regression too by
/// default: it conditions on every row (the fit grows as the cube of the rows) and models
/// smooth interactions with a length-scale per feature, which neither trees nor the network
/// match on such tables (in the benchmark: Friedman #1's holdout RMSE 1.03 where the best
/// ensemble without it reached 1.11 and AutoGluon 1.10).
pub const GAUSSIAN_PROCESS_BY_DEFAULT_ROWS: usize = 5_000;

/// Algorithms that fit regression only.
const REGRESSION_ONLY: &[&str] = &["gaussian-process"];

/// SageMaker's other Autopilot algorithms, refused with the reason.
const NOT_HERE: &[&str] = &["catboost", "nn-torch", "fastai", "arima"];

#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// `dpp0-xgboost`.
    pub name: String,
    /// `dpp0`.
    pub processor: String,
    /// SageMaker's name of the algorithm.
    pub algorithm: &'static str,
    /// The built-in that trains it.
    pub training: &'static str,
    pub static_hyperparameters: Vec<(&'static str, String)>,
    /// CreateHyperParameterTuningJob's `HyperParameterRanges`.
    pub ranges: Value,
    /// What the pipeline does to each column, in words.
    pub pipeline: String,
}

fn integer(name: &str, min: i64, max: i64, log: bool) -> Value {
    json!({"Name": name, "MinValue": min.to_string(), "MaxValue": max.to_string(),
           "ScalingType": if log { "Logarithmic" } else { "Linear" }})
}

fn continuous(name: &str, min: f64, max: f64, log: bool) -> Value {
    json!({"Name": name, "MinValue": min.to_string(), "MaxValue": max.to_string(),
           "ScalingType": if log { "Logarithmic" } else { "Linear" }})
}

/// The algorithms a job on a table of `rows` rows may use: the given ones checked, or the
/// defaults.
pub fn algorithms(
    spec: &JobSpec,
    rows: usize,
    problem: Problem,
) -> Result<Vec<&'static str>, AutopilotError> {
    let regression = problem == Problem::Regression;
    if spec.algorithms.is_empty() {
        let mut out = ALGORITHMS.to_vec();
        if rows <= NETWORK_BY_DEFAULT_ROWS {
            out.push("mlp");
        }
        if regression && rows <= GAUSSIAN_PROCESS_BY_DEFAULT_ROWS {
            out.push("gaussian-process");
        }
        return Ok(out);
    }
    let mut out = Vec::new();
    for given in &spec.algorithms {
        let lower = given.trim().to_ascii_lowercase();
        match ALGORITHMS.iter().chain(ON_REQUEST).find(|a| **a == lower) {
            Some(a) if REGRESSION_ONLY.contains(a) && !regression => {
                return Err(AutopilotError::request(
                    "AutoMLAlgorithms",
                    format!(
                        "`{given}` fits regression only and this job is {}: leave it out, or set \
                         the problem type to Regression if the target is a quantity",
                        problem.as_str()
                    ),
                ));
            }
            Some(a) if !out.contains(a) => out.push(*a),
            Some(_) => {}
            None => {
                let why = if NOT_HERE.contains(&lower.as_str()) {
                    "is a SageMaker Autopilot algorithm this project has no built-in for"
                } else {
                    "is not an Autopilot algorithm"
                };
                return Err(AutopilotError::request(
                    "AutoMLAlgorithms",
                    format!(
                        "`{given}` {why}: choose from {}",
                        ALGORITHMS
                            .iter()
                            .chain(ON_REQUEST)
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// The words for what the pipeline does, from what the analysis found.
fn pipeline(analysis: &Analysis, scaled: bool) -> String {
    let names = |kind: ColumnKind| -> Vec<String> {
        analysis
            .usable()
            .filter(|c| c.kind == kind)
            .map(|c| format!("`{}`", c.name))
            .collect()
    };
    let mut steps = Vec::new();
    let numeric = names(ColumnKind::Numeric);
    if !numeric.is_empty() {
        steps.push(format!(
            "fills missing values of the numeric features ({}) with their training mean{}",
            numeric.join(", "),
            if scaled { " and standardises them" } else { "" }
        ));
    }
    let text = names(ColumnKind::Text);
    if !text.is_empty() {
        steps.push(format!(
            "turns the free text of {} into TF-IDF features (the 200 most frequent words in two or more rows, each row scaled to unit length)",
            text.join(", ")
        ));
    }
    let dates = names(ColumnKind::Datetime);
    if !dates.is_empty() {
        steps.push(format!(
            "turns the dates of {} into calendar features, standardised (dates written as text: days since 1970, year, month, day, weekday and hour, a missing one at the mean; a date-typed column: its days since 1970)",
            dates.join(", ")
        ));
    }
    let encoded = names(ColumnKind::Categorical);
    if !encoded.is_empty() {
        steps.push(format!(
            "one-hot encodes the 50 most frequent values of {} (the rest share one feature, a missing value its own)",
            encoded.join(", ")
        ));
    }
    let left_out: Vec<String> = analysis
        .columns
        .iter()
        .filter(|c| c.constant || c.identifier_like)
        .map(|c| format!("`{}`", c.name))
        .collect();
    if !left_out.is_empty() {
        steps.push(format!(
            "leaves out {} (constant or identifier-like)",
            left_out.join(", ")
        ));
    }
    format!(
        "This data transformation strategy {}.",
        steps.join(", then ")
    )
}

/// The candidates for the analysed table, at most `spec.max_candidates` of them.
pub fn generate(analysis: &Analysis, spec: &JobSpec) -> Result<Vec<Candidate>, AutopilotError> {
    let classify = analysis.problem != Problem::Regression;
    let mut out = Vec::new();
    for (i, algorithm) in algorithms(spec, analysis.rows, analysis.problem)?
        .into_iter()
        .enumerate()
    {
        let (training, statics, ranges, scaled): (&str, Vec<(&str, String)>, Value, bool) =
            match algorithm {
                "xgboost" => (
                    "gradient-boosting",
                    vec![("grow_policy", "depthwise".into())],
                    json!({
                        "IntegerParameterRanges": [integer("num_round", 50, 500, true), integer("max_depth", 3, 10, false)],
                        "ContinuousParameterRanges": [continuous("eta", 0.01, 0.3, true), continuous("subsample", 0.5, 1.0, false),
                                                      continuous("min_child_weight", 1e-3, 10.0, true), continuous("lambda", 1e-2, 10.0, true)]
                    }),
                    false,
                ),
                "lightgbm" => (
                    "gradient-boosting",
                    vec![
                        ("grow_policy", "lossguide".into()),
                        // No depth limit: the leaves' range bounds the tree, as LightGBM's.
                        ("max_depth", "0".into()),
                    ],
                    json!({
                        "IntegerParameterRanges": [integer("num_round", 50, 500, true), integer("max_leaves", 8, 128, true),
                                                   integer("min_data_in_leaf", 1, 100, true)],
                        "ContinuousParameterRanges": [continuous("eta", 0.01, 0.3, true), continuous("subsample", 0.5, 1.0, false)]
                    }),
                    false,
                ),
                "mlp" => (
                    "mlp",
                    vec![("early_stopping", "true".into())],
                    json!({
                        "ContinuousParameterRanges": [continuous("learning_rate_init", 1e-4, 1e-2, true), continuous("alpha", 1e-5, 1e-1, true)],
                        "CategoricalParameterRanges": [{"Name": "hidden_layer_sizes", "Values": ["64", "128", "128,64"]}]
                    }),
                    true,
                ),
                // The kernel's own hyperparameters are fitted inside by the marginal
                // likelihood; the tuner chooses the kernel's family.
                "gaussian-process" => (
                    "gaussian-process",
                    vec![],
                    json!({
                        "CategoricalParameterRanges": [{"Name": "kernel", "Values": ["rbf", "matern52"]}]
                    }),
                    true,
                ),
                "linear-learner" if classify => (
                    "logistic-regression",
                    vec![("max_iter", "200".into())],
                    json!({"ContinuousParameterRanges": [continuous("alpha", 1e-4, 100.0, true)]}),
                    true,
                ),
                "linear-learner" => (
                    "linear-regression",
                    vec![("penalty", "l2".into())],
                    json!({"ContinuousParameterRanges": [continuous("alpha", 1e-4, 100.0, true)]}),
                    true,
                ),
                // Splits drawn at random average out noise the searched ones fit (in the
                // benchmark's noisy table: 0.8833 alone, the random forest 0.8767).
                "extra-trees" => (
                    "extra-trees",
                    vec![],
                    json!({
                        "IntegerParameterRanges": [integer("num_trees", 50, 300, true), integer("min_samples_leaf", 1, 10, false)],
                        "CategoricalParameterRanges": [{"Name": "max_features", "Values": ["sqrt", "log2", "all", "0.5"]}]
                    }),
                    false,
                ),
                _ => (
                    "random-forest",
                    vec![],
                    json!({
                        "IntegerParameterRanges": [integer("num_trees", 50, 300, true), integer("min_samples_leaf", 1, 10, false)],
                        "CategoricalParameterRanges": [{"Name": "max_features", "Values": ["sqrt", "log2", "all"]}]
                    }),
                    false,
                ),
            };
        out.push(Candidate {
            name: format!("dpp{i}-{algorithm}"),
            processor: format!("dpp{i}"),
            algorithm,
            training,
            static_hyperparameters: statics,
            ranges,
            pipeline: pipeline(analysis, scaled),
        });
    }
    out.truncate(spec.max_candidates);
    Ok(out)
}

/// The metric the tuner ranks trials by for `objective`: the objective itself where training
/// reports it, else the nearest one it reports (the leaderboard then ranks candidates on the
/// objective itself, from their predictions).
pub fn tuning_metric(objective: Objective) -> (&'static str, bool) {
    use Objective::*;
    match objective {
        Mse => ("validation:mse", false),
        Mae => ("validation:mae", false),
        Rmse => ("validation:rmse", false),
        R2 => ("validation:r2", true),
        Accuracy => ("validation:accuracy", true),
        LogLoss | Auc => ("validation:logloss", false),
        F1 | F1macro | BalancedAccuracy | Precision | Recall | PrecisionMacro | RecallMacro => {
            ("validation:f1", true)
        }
    }
}

/// CreateHyperParameterTuningJob's request for the candidates: one definition each, trained
/// on `train` and validated on `validation` (frames, files or `s3://` objects), `trials`
/// trials in all, one at a time so that a seed gives one sequence of trials.
#[allow(clippy::too_many_arguments)]
pub fn tuning_request(
    candidates: &[Candidate],
    analysis: &Analysis,
    objective: Objective,
    train: &str,
    validation: &str,
    trials: usize,
    per_job_seconds: Option<u64>,
    not_improving: Option<usize>,
    seed: u64,
) -> Value {
    let (metric, maximize) = tuning_metric(objective);
    let definitions: Vec<Value> = candidates
        .iter()
        .map(|c| {
            let statics: serde_json::Map<String, Value> = c
                .static_hyperparameters
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Value::String(v.clone())))
                .collect();
            let mut d = json!({
                "DefinitionName": c.name,
                "TuningObjective": {"Type": if maximize { "Maximize" } else { "Minimize" }, "MetricName": metric},
                "HyperParameterRanges": c.ranges,
                "StaticHyperParameters": statics,
                "AlgorithmSpecification": {"AlgorithmName": c.training},
                "InputDataConfig": [
                    {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": train}}},
                    {"ChannelName": "validation", "DataSource": {"S3DataSource": {"S3Uri": validation}}}
                ],
                "TargetAttributeName": analysis.target.name,
                "ProblemType": analysis.problem.training().as_str(),
                "Seed": seed,
            });
            if let Some(s) = per_job_seconds {
                d["StoppingCondition"] = json!({"MaxRuntimeInSeconds": s});
            }
            d
        })
        .collect();
    let mut request = json!({
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "RandomSeed": seed,
            "ResourceLimits": {"MaxNumberOfTrainingJobs": trials.max(1), "MaxParallelTrainingJobs": 1},
            "TrainingJobEarlyStoppingType": "Off"
        },
        "TrainingJobDefinitions": definitions
    });
    if let Some(n) = not_improving {
        request["HyperParameterTuningJobConfig"]["TuningJobCompletionCriteria"] =
            json!({"BestObjectiveNotImproving": {"MaxNumberOfTrainingJobsNotImproving": n}});
    }
    request
}
