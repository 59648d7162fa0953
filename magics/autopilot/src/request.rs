//! An Autopilot job's settings: from `%autopilot`'s flags, or from CreateAutoMLJob's request
//! (JSON or YAML, SageMaker's field names; fields that only mean something on AWS, such as
//! `RoleArn`, `Tags` or `SecurityConfig`, are accepted and ignored, as `%tune` does).

use serde_json::Value;

use crate::objective::Problem;
use crate::AutopilotError;

/// `AutoMLJobConfig.Mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Ensembling for small tables, tuning for large ones, as SageMaker picks.
    #[default]
    Auto,
    Ensembling,
    HyperparameterTuning,
}

impl Mode {
    pub fn parse(text: &str) -> Result<Mode, AutopilotError> {
        match text.trim().to_ascii_uppercase().replace('-', "_").as_str() {
            "AUTO" => Ok(Mode::Auto),
            "ENSEMBLING" => Ok(Mode::Ensembling),
            "HYPERPARAMETER_TUNING" => Ok(Mode::HyperparameterTuning),
            _ => Err(AutopilotError::request(
                "AutoMLJobConfig.Mode",
                format!("`{text}` is not a mode: use AUTO, ENSEMBLING or HYPERPARAMETER_TUNING"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Auto => "AUTO",
            Mode::Ensembling => "ENSEMBLING",
            Mode::HyperparameterTuning => "HYPERPARAMETER_TUNING",
        }
    }
}

/// SageMaker's default `MaxCandidates`.
pub const DEFAULT_MAX_CANDIDATES: usize = 250;

/// The default patience of the tuning, per candidate definition: a small table's leaderboard
/// stops moving long before SageMaker's 250 candidates or the job's time limit (on the
/// benchmark's tables, after about 40 candidates of six definitions), and what comes after
/// only costs time.
pub const NOT_IMPROVING_PER_DEFINITION: usize = 5;

/// What one Autopilot job is asked to do.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    pub name: String,
    /// The training table: a frame's name, a CSV or Parquet file, or an `s3://` object.
    pub data: String,
    /// A validation table of its own (`ChannelType: validation`).
    pub validation: Option<String>,
    pub target: String,
    /// `CompressionType: Gzip` for the input.
    pub gzip: bool,
    pub output: Option<String>,
    pub problem: Option<Problem>,
    /// `AutoMLJobObjective.MetricName`, checked once the problem type is known.
    pub objective: Option<String>,
    pub max_candidates: usize,
    pub max_runtime_per_job: Option<u64>,
    pub max_runtime: Option<u64>,
    pub mode: Mode,
    /// `CandidateGenerationConfig.AlgorithmsConfig[].AutoMLAlgorithms`; empty is every one.
    pub algorithms: Vec<String>,
    pub validation_fraction: Option<f64>,
    pub candidates_only: bool,
    pub seed: Option<u64>,
    /// Ends the tuning after this many candidates in a row that did not improve the best
    /// objective by 1 % (the tuning job's `BestObjectiveNotImproving`); `None` is five per
    /// candidate definition, `Some(0)` tunes to the limits as SageMaker does.
    pub max_candidates_not_improving: Option<usize>,
}

impl JobSpec {
    pub fn new(name: &str, data: &str, target: &str) -> JobSpec {
        JobSpec {
            name: name.to_owned(),
            data: data.to_owned(),
            validation: None,
            target: target.to_owned(),
            gzip: false,
            output: None,
            problem: None,
            objective: None,
            max_candidates: DEFAULT_MAX_CANDIDATES,
            max_runtime_per_job: None,
            max_runtime: None,
            mode: Mode::Auto,
            algorithms: Vec::new(),
            validation_fraction: None,
            candidates_only: false,
            seed: None,
            max_candidates_not_improving: None,
        }
    }

    /// How many candidates in a row without a 1 % gain end the tuning, for `definitions`
    /// candidate definitions; `None` when it runs to its limits.
    pub fn not_improving_limit(&self, definitions: usize) -> Option<usize> {
        match self.max_candidates_not_improving {
            Some(0) => None,
            Some(n) => Some(n),
            None => Some(NOT_IMPROVING_PER_DEFINITION * definitions.max(1)),
        }
    }

    /// The request of CreateAutoMLJob, as `%%autopilot NAME`'s cell gives it.
    pub fn from_request(name: &str, text: &str) -> Result<JobSpec, AutopilotError> {
        let request: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(json) => serde_yaml::from_str(text).map_err(|yaml| {
                AutopilotError::request(
                    "the request",
                    format!("is neither JSON ({json}) nor YAML ({yaml})"),
                )
            })?,
        };
        let Value::Object(_) = request else {
            return Err(AutopilotError::request(
                "the request",
                "must be an object with CreateAutoMLJob's fields (InputDataConfig, OutputDataConfig, …)",
            ));
        };
        if let Some(given) = request.get("AutoMLJobName").and_then(Value::as_str) {
            if given != name {
                return Err(AutopilotError::request(
                    "AutoMLJobName",
                    format!("is `{given}` but the cell names the job `{name}`: give one name"),
                ));
            }
        }
        let channels = match request.get("InputDataConfig") {
            Some(Value::Array(c)) if !c.is_empty() => c,
            _ => {
                return Err(AutopilotError::request(
                    "InputDataConfig",
                    "is required: a list of channels, each with DataSource.S3DataSource.S3Uri and TargetAttributeName",
                ))
            }
        };
        let mut training: Option<(String, String, bool)> = None;
        let mut validation: Option<String> = None;
        for (i, channel) in channels.iter().enumerate() {
            let field = |f: &str| format!("InputDataConfig[{i}].{f}");
            let uri = channel
                .pointer("/DataSource/S3DataSource/S3Uri")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    AutopilotError::request(&field("DataSource.S3DataSource.S3Uri"), "is required")
                })?;
            let target = text_field(
                channel,
                "TargetAttributeName",
                &field("TargetAttributeName"),
            )?;
            let gzip = match channel.get("CompressionType").and_then(Value::as_str) {
                None | Some("None") => false,
                Some("Gzip") => true,
                Some(other) => {
                    return Err(AutopilotError::request(
                        &field("CompressionType"),
                        format!("`{other}` is not one: use None or Gzip"),
                    ))
                }
            };
            if let Some(ct) = channel.get("ContentType").and_then(Value::as_str) {
                let media = ct.split(';').next().unwrap_or("").trim();
                if !matches!(media, "text/csv" | "x-application/vnd.amazon+parquet") {
                    return Err(AutopilotError::request(
                        &field("ContentType"),
                        format!("`{ct}` is not one: use text/csv;header=present or x-application/vnd.amazon+parquet"),
                    ));
                }
            }
            match channel
                .get("ChannelType")
                .and_then(Value::as_str)
                .unwrap_or("training")
            {
                "training" if training.is_none() => {
                    training = Some((uri.to_owned(), target.to_owned(), gzip))
                }
                "validation" if validation.is_none() => validation = Some(uri.to_owned()),
                "training" | "validation" => {
                    return Err(AutopilotError::request(
                        &field("ChannelType"),
                        "repeats a channel: give one training and at most one validation channel",
                    ))
                }
                other => {
                    return Err(AutopilotError::request(
                        &field("ChannelType"),
                        format!("`{other}` is not one: use training or validation"),
                    ))
                }
            }
            if let Some((_, first, _)) = &training {
                if first != target {
                    return Err(AutopilotError::request(
                        &field("TargetAttributeName"),
                        format!("is `{target}` but the training channel's is `{first}`: the channels share one target"),
                    ));
                }
            }
        }
        let Some((data, target, gzip)) = training else {
            return Err(AutopilotError::request(
                "InputDataConfig",
                "has no training channel (ChannelType training, or none)",
            ));
        };
        let mut spec = JobSpec::new(name, &data, &target);
        spec.validation = validation;
        spec.gzip = gzip;
        spec.output = request
            .pointer("/OutputDataConfig/S3OutputPath")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(p) = request.get("ProblemType") {
            spec.problem = Some(Problem::parse(p.as_str().unwrap_or_default())?);
        }
        spec.objective = request
            .pointer("/AutoMLJobObjective/MetricName")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let config = request
            .get("AutoMLJobConfig")
            .cloned()
            .unwrap_or(Value::Null);
        let criteria = config
            .get("CompletionCriteria")
            .cloned()
            .unwrap_or(Value::Null);
        let limit = |key: &str| -> Result<Option<u64>, AutopilotError> {
            match criteria.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v.as_u64().filter(|n| *n > 0).map(Some).ok_or_else(|| {
                    AutopilotError::request(
                        &format!("AutoMLJobConfig.CompletionCriteria.{key}"),
                        format!("{v} is not a whole number of at least 1"),
                    )
                }),
            }
        };
        if let Some(n) = limit("MaxCandidates")? {
            spec.max_candidates = n as usize;
        }
        spec.max_runtime_per_job = limit("MaxRuntimePerTrainingJobInSeconds")?;
        spec.max_runtime = limit("MaxAutoMLJobRuntimeInSeconds")?;
        // This project's own criterion, beside SageMaker's three (0 turns it off).
        match criteria.get("MaxCandidatesNotImproving") {
            None | Some(Value::Null) => {}
            Some(v) => {
                spec.max_candidates_not_improving =
                    Some(v.as_u64().map(|n| n as usize).ok_or_else(|| {
                        AutopilotError::request(
                            "AutoMLJobConfig.CompletionCriteria.MaxCandidatesNotImproving",
                            format!("{v} is not a whole number (0 tunes to the limits)"),
                        )
                    })?)
            }
        }
        if let Some(mode) = config.get("Mode").and_then(Value::as_str) {
            spec.mode = Mode::parse(mode)?;
        }
        if let Some(list) = config.pointer("/CandidateGenerationConfig/AlgorithmsConfig") {
            let bad = || {
                AutopilotError::request(
                    "AutoMLJobConfig.CandidateGenerationConfig.AlgorithmsConfig",
                    "must be a list of {\"AutoMLAlgorithms\": [names]}",
                )
            };
            for entry in list.as_array().ok_or_else(bad)? {
                for a in entry
                    .get("AutoMLAlgorithms")
                    .and_then(Value::as_array)
                    .ok_or_else(bad)?
                {
                    spec.algorithms.push(a.as_str().ok_or_else(bad)?.to_owned());
                }
            }
        }
        if let Some(f) = config.pointer("/DataSplitConfig/ValidationFraction") {
            spec.validation_fraction = Some(f.as_f64().ok_or_else(|| {
                AutopilotError::request(
                    "AutoMLJobConfig.DataSplitConfig.ValidationFraction",
                    format!("{f} is not a number"),
                )
            })?);
        }
        if let Some(v) = request.get("GenerateCandidateDefinitionsOnly") {
            spec.candidates_only = v.as_bool().ok_or_else(|| {
                AutopilotError::request("GenerateCandidateDefinitionsOnly", "must be true or false")
            })?;
        }
        spec.check()?;
        Ok(spec)
    }

    /// CreateAutoMLJob's request for these settings: what `describe` echoes, whichever form
    /// gave them.
    pub fn to_request(&self) -> Value {
        let channel = |uri: &str, kind: &str| {
            serde_json::json!({
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}},
                "TargetAttributeName": self.target,
                "ChannelType": kind,
                "CompressionType": if self.gzip { "Gzip" } else { "None" },
            })
        };
        let mut channels = vec![channel(&self.data, "training")];
        if let Some(v) = &self.validation {
            channels.push(channel(v, "validation"));
        }
        let mut criteria = serde_json::json!({"MaxCandidates": self.max_candidates});
        if let Some(s) = self.max_runtime_per_job {
            criteria["MaxRuntimePerTrainingJobInSeconds"] = s.into();
        }
        if let Some(s) = self.max_runtime {
            criteria["MaxAutoMLJobRuntimeInSeconds"] = s.into();
        }
        if let Some(n) = self.max_candidates_not_improving {
            criteria["MaxCandidatesNotImproving"] = n.into();
        }
        let mut config =
            serde_json::json!({"CompletionCriteria": criteria, "Mode": self.mode.as_str()});
        if !self.algorithms.is_empty() {
            config["CandidateGenerationConfig"] =
                serde_json::json!({"AlgorithmsConfig": [{"AutoMLAlgorithms": self.algorithms}]});
        }
        if let Some(f) = self.validation_fraction {
            config["DataSplitConfig"] = serde_json::json!({"ValidationFraction": f});
        }
        let mut request = serde_json::json!({
            "AutoMLJobName": self.name,
            "InputDataConfig": channels,
            "AutoMLJobConfig": config,
            "GenerateCandidateDefinitionsOnly": self.candidates_only,
        });
        if let Some(o) = &self.output {
            request["OutputDataConfig"] = serde_json::json!({"S3OutputPath": o});
        }
        if let Some(p) = self.problem {
            request["ProblemType"] = p.as_str().into();
        }
        if let Some(o) = &self.objective {
            request["AutoMLJobObjective"] = serde_json::json!({"MetricName": o});
        }
        if let Some(s) = self.seed {
            request["Seed"] = s.into();
        }
        request
    }

    /// The settings that cannot work together, whichever form gave them.
    pub fn check(&self) -> Result<(), AutopilotError> {
        if self.target.trim().is_empty() {
            return Err(AutopilotError::request(
                "--target",
                "name the column to predict",
            ));
        }
        if let Some(f) = self.validation_fraction {
            if !(f > 0.0 && f < 1.0) {
                return Err(AutopilotError::request(
                    "ValidationFraction",
                    format!("{f} is not between 0 and 1 (SageMaker's default is 0.2)"),
                ));
            }
            if self.validation.is_some() {
                return Err(AutopilotError::request(
                    "ValidationFraction",
                    "cannot be given with a validation channel: the validation rows are either split off or given",
                ));
            }
        }
        if self.max_candidates == 0 {
            return Err(AutopilotError::request(
                "MaxCandidates",
                "must be at least 1",
            ));
        }
        if let (Some(per_job), Some(total)) = (self.max_runtime_per_job, self.max_runtime) {
            if per_job > total {
                return Err(AutopilotError::request(
                    "MaxRuntimePerTrainingJobInSeconds",
                    format!("{per_job} s is more than the whole job's MaxAutoMLJobRuntimeInSeconds ({total} s): raise the job's limit or lower the candidate's"),
                ));
            }
        }
        Ok(())
    }
}

fn text_field<'a>(v: &'a Value, key: &str, field: &str) -> Result<&'a str, AutopilotError> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| AutopilotError::request(field, "is required"))
}
