//! A tuning request in the field names of SageMaker's CreateHyperParameterTuningJob (JSON or
//! YAML), checked as the service checks it: every refusal names the field, before any
//! training job runs.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value as Json;

use super::space::{Domain, Param, Scaling, Space};
use super::strategy::Strategy;
use crate::algorithms::Algorithm;
use crate::definition::TrainingDefinition;
use crate::MlError;

mod ranges;
pub use ranges::parse_ranges;

#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    pub maximize: bool,
    pub metric: String,
}

impl Objective {
    pub fn type_str(&self) -> &'static str {
        if self.maximize {
            "Maximize"
        } else {
            "Minimize"
        }
    }

    /// The value as a loss: lower is better.
    pub fn loss(&self, value: f64) -> f64 {
        if self.maximize {
            -value
        } else {
            value
        }
    }
}

#[derive(Debug, Clone)]
pub struct Definition {
    pub name: String,
    pub objective: Objective,
    pub space: Space,
    pub training: TrainingDefinition,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarmStartType {
    IdenticalDataAndAlgorithm,
    TransferLearning,
}

#[derive(Debug, Clone)]
pub struct WarmStart {
    pub parents: Vec<String>,
    pub kind: WarmStartType,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Completion {
    pub target: Option<f64>,
    pub not_improving: Option<usize>,
    pub convergence: bool,
}

#[derive(Debug, Clone)]
pub struct TuningConfig {
    pub strategy: Strategy,
    /// Hyperband's resource range (epochs, boosting rounds).
    pub hyperband: Option<(u64, u64)>,
    pub max_jobs: usize,
    pub max_parallel: usize,
    pub max_runtime: Option<Duration>,
    pub early_stopping: bool,
    pub completion: Completion,
    pub seed: Option<u64>,
    pub definitions: Vec<Definition>,
    pub multi: bool,
    pub warm_start: Option<WarmStart>,
    /// The request as given, kept with the tuning job.
    pub request: Json,
}

/// Static hyperparameters SageMaker reads Hyperband's MaxResource from (plus the boosting
/// and forest sizes of rustmaker's built-ins).
pub const RESOURCE_HYPERPARAMETERS: &[&str] = &[
    "epochs",
    "numepochs",
    "n-epochs",
    "n_epochs",
    "num_epochs",
    "num_round",
    "num_trees",
];

fn bad(text: impl Into<String>) -> MlError {
    MlError::Input(text.into())
}

/// Reads the request text: JSON, or YAML when it is not JSON.
pub fn parse_text(text: &str) -> Result<Json, MlError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(bad(
            "the cell is empty: give the tuning configuration (HyperParameterTuningJobConfig and TrainingJobDefinition) as JSON or YAML",
        ));
    }
    let value: Json = if trimmed.starts_with('{') {
        serde_json::from_str(trimmed)
            .map_err(|e| bad(format!("the tuning configuration is not valid JSON: {e}")))?
    } else {
        serde_yaml::from_str(trimmed)
            .map_err(|e| bad(format!("the tuning configuration is not valid YAML: {e}")))?
    };
    if !value.is_object() {
        return Err(bad(
            "the tuning configuration must be an object with HyperParameterTuningJobConfig and TrainingJobDefinition",
        ));
    }
    Ok(value)
}

/// A member that is present and not null.
fn field<'a>(v: &'a Json, key: &str) -> Option<&'a Json> {
    v.get(key).filter(|x| !x.is_null())
}

fn string(v: &Json, path: &str) -> Result<String, MlError> {
    match v {
        Json::String(s) => Ok(s.clone()),
        Json::Number(n) => Ok(n.to_string()),
        _ => Err(bad(format!("{path} must be a string"))),
    }
}

fn integer(v: &Json, path: &str, min: i64, max: i64) -> Result<i64, MlError> {
    let n = match v {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| bad(format!("{path} must be an integer")))?;
    if n < min || n > max {
        return Err(bad(format!(
            "{path} is {n}; it must be from {min} to {max}"
        )));
    }
    Ok(n)
}

fn number(v: &Json, path: &str) -> Result<f64, MlError> {
    match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|f: &f64| f.is_finite())
    .ok_or_else(|| bad(format!("{path} must be a number")))
}

fn one_of<'a>(v: &Json, path: &str, allowed: &[&'a str]) -> Result<&'a str, MlError> {
    let s = string(v, path)?;
    allowed
        .iter()
        .find(|a| a.eq_ignore_ascii_case(&s))
        .copied()
        .ok_or_else(|| {
            bad(format!(
                "{path} is `{s}`; use one of {}",
                allowed.join(", ")
            ))
        })
}

fn objective(v: &Json, path: &str) -> Result<Objective, MlError> {
    let kind = field(v, "Type")
        .ok_or_else(|| bad(format!("{path}.Type is missing (Maximize or Minimize)")))?;
    let kind = one_of(kind, &format!("{path}.Type"), &["Maximize", "Minimize"])?;
    let metric =
        field(v, "MetricName").ok_or_else(|| bad(format!("{path}.MetricName is missing")))?;
    let metric = string(metric, &format!("{path}.MetricName"))?;
    if metric.is_empty() {
        return Err(bad(format!("{path}.MetricName is empty")));
    }
    Ok(Objective {
        maximize: kind == "Maximize",
        metric,
    })
}

/// The objective metrics a built-in algorithm can report.
pub fn builtin_metrics(algorithm: Algorithm) -> Vec<String> {
    use crate::prep::ProblemType::*;
    let mut names: Vec<&str> = Vec::new();
    for problem in [Binary, Multiclass, Regression, Clustering] {
        if !algorithm.supports(problem) {
            continue;
        }
        names.extend(match problem {
            Binary => &["accuracy", "f1", "logloss"][..],
            Multiclass => &["accuracy", "f1", "logloss", "mlogloss"][..],
            Regression => &["r2", "rmse", "mse", "mae"][..],
            Clustering => &["msd"][..],
        });
    }
    names.sort_unstable();
    names.dedup();
    ["train", "validation"]
        .iter()
        .flat_map(|p| names.iter().map(move |n| format!("{p}:{n}")))
        .collect()
}

fn check_definition(d: &Definition, path: &str, strategy: Strategy) -> Result<(), MlError> {
    let spec = &d.training.algorithm_specification;
    // The objective must be a metric the job reports.
    let known: Vec<String> = match (&spec.algorithm_name, &spec.training_image) {
        (Some(_), Some(_)) => {
            return Err(bad(format!(
                "{path}.AlgorithmSpecification: give AlgorithmName (a built-in) or TrainingImage (a script), not both"
            )))
        }
        (Some(a), None) => {
            let algorithm = Algorithm::parse(a)
                .map_err(|e| bad(format!("{path}.AlgorithmSpecification.AlgorithmName: {e}")))?;
            // The static values and both ends of every range must be values the algorithm
            // takes. Ranges can complete each other and the statics (max_depth=0 needs a
            // max_leaves, which a range may give), so each is probed with the others at
            // their lowest.
            let ends = |p: &super::space::Param| -> Vec<String> {
                match &p.domain {
                    Domain::Integer { min, max, .. } => vec![min.to_string(), max.to_string()],
                    Domain::Continuous { min, max, .. } => vec![min.to_string(), max.to_string()],
                    Domain::Categorical(values) => values.clone(),
                }
            };
            let statics = &d.training.static_hyper_parameters;
            let mut lowest = statics.clone();
            for p in &d.space.params {
                lowest
                    .entry(p.name.clone())
                    .or_insert_with(|| ends(p).swap_remove(0));
            }
            // Valid alone, or once the ranges complete it; a failure is the first one's.
            let fits = |with: &[(&str, &str)]| -> Result<(), MlError> {
                let alone: BTreeMap<String, String> = statics
                    .clone()
                    .into_iter()
                    .chain(with.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
                    .collect();
                let first = algorithm.resolve(&alone).err();
                let Some(e) = first else { return Ok(()) };
                let mut completed = lowest.clone();
                completed.extend(with.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
                algorithm.resolve(&completed).map(|_| ()).map_err(|_| e)
            };
            fits(&[]).map_err(|e| bad(format!("{path}.StaticHyperParameters: {e}")))?;
            for p in &d.space.params {
                for v in ends(p) {
                    fits(&[(&p.name, &v)]).map_err(|e| {
                        bad(format!("the range of `{}` does not fit {}: {e}", p.name, algorithm.name()))
                    })?;
                }
            }
            builtin_metrics(algorithm)
        }
        (None, Some(_)) => spec.metric_definitions.iter().map(|m| m.name.clone()).collect(),
        (None, None) => {
            return Err(bad(format!(
                "{path}.AlgorithmSpecification needs AlgorithmName (a built-in algorithm) or TrainingImage (a script)"
            )))
        }
    };
    if !known.contains(&d.objective.metric) {
        let what = if spec.algorithm_name.is_some() {
            "the algorithm reports"
        } else {
            "MetricDefinitions defines"
        };
        return Err(bad(format!(
            "the objective metric `{}` is unknown: {what} {}",
            d.objective.metric,
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )));
    }
    for p in &d.space.params {
        if d.training.static_hyper_parameters.contains_key(&p.name) {
            return Err(bad(format!(
                "`{}` is both a static hyperparameter and a tuned range; keep one",
                p.name
            )));
        }
        if strategy == Strategy::Grid && !matches!(p.domain, Domain::Categorical(_)) {
            let kind = if matches!(p.domain, Domain::Integer { .. }) {
                "IntegerParameterRanges"
            } else {
                "ContinuousParameterRanges"
            };
            return Err(bad(format!(
                "the Grid strategy takes only CategoricalParameterRanges, and `{}` is in {kind}: list its values as a categorical range or use Random or Bayesian",
                p.name
            )));
        }
    }
    if d.space.params.is_empty() {
        return Err(bad(format!(
            "{path}: no hyperparameter ranges to tune (IntegerParameterRanges, ContinuousParameterRanges or CategoricalParameterRanges)"
        )));
    }
    Ok(())
}

/// Checks a request and reads it into a [`TuningConfig`].
pub fn parse(request: Json) -> Result<TuningConfig, MlError> {
    const CONFIG: &str = "HyperParameterTuningJobConfig";
    let config = field(&request, CONFIG).ok_or_else(|| bad(format!("{CONFIG} is missing")))?;
    let strategy = field(config, "Strategy").ok_or_else(|| {
        bad(format!(
            "{CONFIG}.Strategy is missing (Bayesian, Random, Hyperband or Grid)"
        ))
    })?;
    let strategy = match one_of(
        strategy,
        &format!("{CONFIG}.Strategy"),
        &["Bayesian", "Random", "Hyperband", "Grid"],
    )? {
        "Bayesian" => Strategy::Bayesian,
        "Random" => Strategy::Random,
        "Hyperband" => Strategy::Hyperband,
        _ => Strategy::Grid,
    };
    let early_stopping = match field(config, "TrainingJobEarlyStoppingType") {
        None => false,
        Some(v) => {
            one_of(
                v,
                &format!("{CONFIG}.TrainingJobEarlyStoppingType"),
                &["Off", "Auto"],
            )? == "Auto"
        }
    };
    let limits_path = format!("{CONFIG}.ResourceLimits");
    let limits = field(config, "ResourceLimits").ok_or_else(|| {
        bad(format!(
            "{limits_path} is missing (MaxParallelTrainingJobs, MaxNumberOfTrainingJobs)"
        ))
    })?;
    let max_parallel = field(limits, "MaxParallelTrainingJobs")
        .ok_or_else(|| bad(format!("{limits_path}.MaxParallelTrainingJobs is missing")))?;
    let max_parallel = integer(
        max_parallel,
        &format!("{limits_path}.MaxParallelTrainingJobs"),
        1,
        100,
    )? as usize;
    let max_jobs = field(limits, "MaxNumberOfTrainingJobs")
        .map(|v| {
            integer(
                v,
                &format!("{limits_path}.MaxNumberOfTrainingJobs"),
                1,
                10_000,
            )
        })
        .transpose()?
        .map(|n| n as usize);
    let max_runtime = field(limits, "MaxRuntimeInSeconds")
        .map(|v| {
            integer(
                v,
                &format!("{limits_path}.MaxRuntimeInSeconds"),
                120,
                15_768_000,
            )
        })
        .transpose()?
        .map(|s| Duration::from_secs(s as u64));
    let seed = field(config, "RandomSeed")
        .map(|v| integer(v, &format!("{CONFIG}.RandomSeed"), 0, i64::MAX))
        .transpose()?
        .map(|s| s as u64);

    let mut completion = Completion::default();
    let cpath = format!("{CONFIG}.TuningJobCompletionCriteria");
    if let Some(c) = field(config, "TuningJobCompletionCriteria") {
        completion.target = field(c, "TargetObjectiveMetricValue")
            .map(|v| number(v, &format!("{cpath}.TargetObjectiveMetricValue")))
            .transpose()?;
        if let Some(b) = field(c, "BestObjectiveNotImproving") {
            let p =
                format!("{cpath}.BestObjectiveNotImproving.MaxNumberOfTrainingJobsNotImproving");
            let n = field(b, "MaxNumberOfTrainingJobsNotImproving")
                .ok_or_else(|| bad(format!("{p} is missing")))?;
            completion.not_improving = Some(integer(n, &p, 3, 10_000)? as usize);
        }
        if let Some(c) = field(c, "ConvergenceDetected") {
            let p = format!("{cpath}.ConvergenceDetected.CompleteOnConvergence");
            completion.convergence = match field(c, "CompleteOnConvergence") {
                Some(v) => one_of(v, &p, &["Disabled", "Enabled"])? == "Enabled",
                None => false,
            };
        }
    }

    // One definition, or several (multi-algorithm).
    let single = field(&request, "TrainingJobDefinition");
    let multiple = field(&request, "TrainingJobDefinitions");
    let top_objective = field(config, "HyperParameterTuningJobObjective");
    let top_ranges = field(config, "ParameterRanges");
    let (definitions, multi) = match (single, multiple) {
        (Some(_), Some(_)) => {
            return Err(bad(
                "give TrainingJobDefinition (one algorithm) or TrainingJobDefinitions (several), not both",
            ))
        }
        (None, None) => {
            return Err(bad(
                "TrainingJobDefinition is missing: say what each trial trains (AlgorithmSpecification, InputDataConfig, StaticHyperParameters)",
            ))
        }
        (Some(d), None) => {
            let objective = objective(
                top_objective
                    .ok_or_else(|| bad(format!("{CONFIG}.HyperParameterTuningJobObjective is missing")))?,
                &format!("{CONFIG}.HyperParameterTuningJobObjective"),
            )?;
            let space = parse_ranges(
                top_ranges.ok_or_else(|| bad(format!("{CONFIG}.ParameterRanges is missing")))?,
                &format!("{CONFIG}.ParameterRanges"),
            )?;
            let training = TrainingDefinition::from_value(d.clone(), "TrainingJobDefinition")?;
            let definition = Definition {
                name: training
                    .definition_name
                    .clone()
                    .unwrap_or_else(|| "training".into()),
                objective,
                space,
                training,
            };
            check_definition(&definition, "TrainingJobDefinition", strategy)?;
            (vec![definition], false)
        }
        (None, Some(list)) => {
            let Json::Array(list) = list else {
                return Err(bad("TrainingJobDefinitions must be a list"));
            };
            if list.is_empty() || list.len() > 10 {
                return Err(bad(format!(
                    "TrainingJobDefinitions has {} entries; give 1 to 10",
                    list.len()
                )));
            }
            if top_ranges.is_some() {
                return Err(bad(format!(
                    "{CONFIG}.ParameterRanges is for one definition; with TrainingJobDefinitions each entry has its own HyperParameterRanges"
                )));
            }
            let mut out: Vec<Definition> = Vec::new();
            for (i, d) in list.iter().enumerate() {
                let path = format!("TrainingJobDefinitions[{i}]");
                let training = TrainingDefinition::from_value(d.clone(), &path)?;
                let name = training
                    .definition_name
                    .clone()
                    .ok_or_else(|| bad(format!("{path}.DefinitionName is missing")))?;
                if out.iter().any(|o| o.name == name) {
                    return Err(bad(format!("{path}.DefinitionName `{name}` is used twice")));
                }
                let objective = match (field(d, "TuningObjective"), top_objective) {
                    (Some(o), _) => objective(o, &format!("{path}.TuningObjective"))?,
                    (None, Some(o)) => {
                        objective(o, &format!("{CONFIG}.HyperParameterTuningJobObjective"))?
                    }
                    (None, None) => return Err(bad(format!("{path}.TuningObjective is missing"))),
                };
                let space = parse_ranges(
                    field(d, "HyperParameterRanges")
                        .ok_or_else(|| bad(format!("{path}.HyperParameterRanges is missing")))?,
                    &format!("{path}.HyperParameterRanges"),
                )?;
                let definition = Definition {
                    name,
                    objective,
                    space,
                    training,
                };
                check_definition(&definition, &path, strategy)?;
                if let Some(first) = out.first() {
                    if first.objective.maximize != definition.objective.maximize {
                        return Err(bad(format!(
                            "{path}.TuningObjective.Type differs from the first definition's: all definitions must Maximize or all Minimize"
                        )));
                    }
                }
                out.push(definition);
            }
            (out, true)
        }
    };

    let grid_size: Option<u128> = if strategy == Strategy::Grid {
        Some(definitions.iter().filter_map(|d| d.space.size()).sum())
    } else {
        None
    };
    let max_jobs = match (max_jobs, grid_size) {
        (Some(n), _) => n,
        (None, Some(g)) => g.min(10_000) as usize,
        (None, None) => {
            return Err(bad(format!(
                "{limits_path}.MaxNumberOfTrainingJobs is missing (only Grid works it out: the number of combinations)"
            )))
        }
    };
    if max_parallel > max_jobs {
        return Err(bad(format!(
            "{limits_path}.MaxParallelTrainingJobs ({max_parallel}) is more than {limits_path}.MaxNumberOfTrainingJobs ({max_jobs})"
        )));
    }

    let hyperband = if strategy == Strategy::Hyperband {
        if early_stopping {
            return Err(bad(format!(
                "{CONFIG}.TrainingJobEarlyStoppingType must be Off with Hyperband, which stops trials itself"
            )));
        }
        let hpath = format!("{CONFIG}.StrategyConfig.HyperbandStrategyConfig");
        let h = field(config, "StrategyConfig").and_then(|s| field(s, "HyperbandStrategyConfig"));
        let min = h
            .and_then(|h| field(h, "MinResource"))
            .map(|v| integer(v, &format!("{hpath}.MinResource"), 1, 20_000))
            .transpose()?
            .unwrap_or(1) as u64;
        let given_max = h
            .and_then(|h| field(h, "MaxResource"))
            .map(|v| integer(v, &format!("{hpath}.MaxResource"), 1, 20_000))
            .transpose()?
            .map(|n| n as u64);
        let max = match given_max {
            Some(m) => m,
            None => definitions
                .iter()
                .filter_map(|d| {
                    RESOURCE_HYPERPARAMETERS
                        .iter()
                        .find_map(|k| d.training.static_hyper_parameters.get(*k))
                        .and_then(|v| v.parse::<u64>().ok())
                })
                .max()
                .ok_or_else(|| {
                    bad(format!(
                        "Hyperband needs {hpath}.MaxResource, or a static hyperparameter it can read it from ({})",
                        RESOURCE_HYPERPARAMETERS.join(", ")
                    ))
                })?,
        };
        if min > max {
            return Err(bad(format!(
                "{hpath}: MinResource {min} is above MaxResource {max}"
            )));
        }
        Some((min, max))
    } else {
        if field(config, "StrategyConfig").is_some() {
            return Err(bad(format!(
                "{CONFIG}.StrategyConfig is for the Hyperband strategy, and Strategy is {}",
                strategy.as_str()
            )));
        }
        None
    };

    let warm_start = match field(&request, "WarmStartConfig") {
        None => None,
        Some(w) => {
            let p = "WarmStartConfig";
            let kind = field(w, "WarmStartType")
                .ok_or_else(|| bad(format!("{p}.WarmStartType is missing")))?;
            let kind = match one_of(
                kind,
                &format!("{p}.WarmStartType"),
                &["IdenticalDataAndAlgorithm", "TransferLearning"],
            )? {
                "TransferLearning" => WarmStartType::TransferLearning,
                _ => WarmStartType::IdenticalDataAndAlgorithm,
            };
            let parents = match field(w, "ParentHyperParameterTuningJobs") {
                Some(Json::Array(list)) if !list.is_empty() && list.len() <= 5 => list
                    .iter()
                    .map(|e| {
                        field(e, "HyperParameterTuningJobName")
                            .ok_or_else(|| {
                                bad(format!(
                                    "{p}.ParentHyperParameterTuningJobs[].HyperParameterTuningJobName is missing"
                                ))
                            })
                            .and_then(|v| string(v, &format!("{p}.ParentHyperParameterTuningJobs")))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                _ => {
                    return Err(bad(format!(
                        "{p}.ParentHyperParameterTuningJobs must list 1 to 5 tuning jobs"
                    )))
                }
            };
            if strategy == Strategy::Grid {
                return Err(bad(format!(
                    "{p}: the Grid strategy does not take a warm start (it tries every combination anyway)"
                )));
            }
            Some(WarmStart { parents, kind })
        }
    };

    Ok(TuningConfig {
        strategy,
        hyperband,
        max_jobs,
        max_parallel,
        max_runtime,
        early_stopping,
        completion,
        seed,
        definitions,
        multi,
        warm_start,
        request,
    })
}

/// A tuning job name as SageMaker allows it: 1 to 32 letters, digits and hyphens.
pub fn check_name(name: &str) -> Result<(), MlError> {
    crate::job::check_name_of(name, rustmaker_sagemaker::Resource::TuningJob)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request() -> Json {
        json!({
            "HyperParameterTuningJobConfig": {
                "Strategy": "Bayesian",
                "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:accuracy"},
                "ResourceLimits": {"MaxNumberOfTrainingJobs": 10, "MaxParallelTrainingJobs": 2},
                "ParameterRanges": {
                    "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "2", "MaxValue": "10", "ScalingType": "Auto"}],
                    "ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.001", "MaxValue": "1", "ScalingType": "Logarithmic"}],
                    "CategoricalParameterRanges": [{"Name": "subsample", "Values": ["0.5", "1"]}]
                }
            },
            "TrainingJobDefinition": {
                "AlgorithmSpecification": {"AlgorithmName": "xgboost"},
                "StaticHyperParameters": {"num_round": 50},
                "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": "s3://b/train.csv"}}}],
                "TargetAttributeName": "label"
            }
        })
    }

    fn refused(edit: impl Fn(&mut Json)) -> String {
        let mut r = request();
        edit(&mut r);
        parse(r).expect_err("refused").to_string()
    }

    #[test]
    fn reads_a_request_with_sagemaker_field_names() {
        let c = parse(request()).unwrap();
        assert_eq!(c.strategy, Strategy::Bayesian);
        assert_eq!((c.max_jobs, c.max_parallel), (10, 2));
        let d = &c.definitions[0];
        assert!(d.objective.maximize);
        assert_eq!(d.space.params.len(), 3);
        assert_eq!(d.training.static_hyper_parameters["num_round"], "50");
        assert_eq!(
            d.space.params[1].domain,
            Domain::Continuous {
                min: 0.001,
                max: 1.0,
                scaling: Scaling::Logarithmic
            }
        );
    }

    #[test]
    fn every_refusal_names_the_field() {
        const CFG: &str = "/HyperParameterTuningJobConfig";
        type Edit = Box<dyn Fn(&mut Json)>;
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|r| r.pointer_mut(&format!("{CFG}/ParameterRanges/IntegerParameterRanges/0/MinValue")).map(|v| *v = json!("12")).unwrap()),
                "IntegerParameterRanges[0] (max_depth): MinValue 12 is above MaxValue 10",
            ),
            (
                Box::new(|r| r.pointer_mut(&format!("{CFG}/ParameterRanges/ContinuousParameterRanges/0/MinValue")).map(|v| *v = json!("0")).unwrap()),
                "ContinuousParameterRanges[0] (eta): Logarithmic scaling needs a range above 0",
            ),
            (
                Box::new(|r| r.pointer_mut(&format!("{CFG}/HyperParameterTuningJobObjective/MetricName")).map(|v| *v = json!("validation:auc")).unwrap()),
                "the objective metric `validation:auc` is unknown",
            ),
            (
                Box::new(|r| r.pointer_mut(&format!("{CFG}/ResourceLimits/MaxParallelTrainingJobs")).map(|v| *v = json!(11)).unwrap()),
                "ResourceLimits.MaxParallelTrainingJobs (11) is more than HyperParameterTuningJobConfig.ResourceLimits.MaxNumberOfTrainingJobs (10)",
            ),
            (
                Box::new(|r| r.pointer_mut(&format!("{CFG}/Strategy")).map(|v| *v = json!("Grid")).unwrap()),
                "the Grid strategy takes only CategoricalParameterRanges",
            ),
            (
                Box::new(|r| {
                    r["HyperParameterTuningJobConfig"]["Strategy"] = json!("Hyperband");
                    r["TrainingJobDefinition"]["StaticHyperParameters"] = json!({});
                }),
                "Hyperband needs HyperParameterTuningJobConfig.StrategyConfig.HyperbandStrategyConfig.MaxResource",
            ),
            (
                Box::new(|r| { r["WarmStartConfig"] = json!({"WarmStartType": "Cold", "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "p"}]}); }),
                "WarmStartConfig.WarmStartType is `Cold`",
            ),
            (
                Box::new(|r| { r["HyperParameterTuningJobConfig"]["TuningJobCompletionCriteria"] = json!({"BestObjectiveNotImproving": {"MaxNumberOfTrainingJobsNotImproving": 2}}); }),
                "MaxNumberOfTrainingJobsNotImproving is 2; it must be from 3",
            ),
            (
                Box::new(|r| r.pointer_mut(&format!("{CFG}/ParameterRanges/CategoricalParameterRanges/0/Name")).map(|v| *v = json!("max_depth")).unwrap()),
                "the hyperparameter `max_depth` has more than one range",
            ),
            (
                Box::new(|r| r.pointer_mut("/TrainingJobDefinition/StaticHyperParameters").map(|v| *v = json!({"eta": "0.1"})).unwrap()),
                "`eta` is both a static hyperparameter and a tuned range",
            ),
            (
                Box::new(|r| { r["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxRuntimeInSeconds"] = json!(5); }),
                "MaxRuntimeInSeconds is 5; it must be from 120",
            ),
        ];
        for (edit, expected) in cases {
            let message = refused(edit);
            assert!(
                message.contains(expected),
                "{message}\n  should contain: {expected}"
            );
        }
    }

    #[test]
    fn hyperband_reads_its_resource_from_the_static_rounds() {
        let mut r = request();
        r["HyperParameterTuningJobConfig"]["Strategy"] = json!("Hyperband");
        let c = parse(r).unwrap();
        assert_eq!(c.hyperband, Some((1, 50)));
    }

    #[test]
    fn yaml_reads_like_json() {
        let yaml = serde_yaml::to_string(&request()).unwrap();
        assert_eq!(parse_text(&yaml).unwrap(), request());
    }
}
