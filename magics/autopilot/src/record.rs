//! Where Autopilot jobs are kept: one JSON file a job, `<data dir>/autopilot/<name>.json`,
//! rewritten whole (`write_atomic`: a temporary file, then renamed) so a reader never sees half a job and
//! a crash leaves the last good state. [`describe`] and [`list_candidates`] give a record as
//! DescribeAutoMLJob and ListCandidatesForAutoMLJob answer.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::AutopilotError;

/// `AutoMLJobStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobStatus {
    InProgress,
    Completed,
    Failed,
    Stopping,
    Stopped,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::InProgress => "InProgress",
            JobStatus::Completed => "Completed",
            JobStatus::Failed => "Failed",
            JobStatus::Stopping => "Stopping",
            JobStatus::Stopped => "Stopped",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Stopped
        )
    }
}

/// `AutoMLJobSecondaryStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Secondary {
    Starting,
    AnalyzingData,
    FeatureEngineering,
    ModelTuning,
    MaxCandidatesReached,
    MaxAutoMLJobRuntimeReached,
    CandidateDefinitionsGenerated,
    Completed,
    Stopped,
    Failed,
}

impl Secondary {
    pub fn as_str(self) -> &'static str {
        match self {
            Secondary::Starting => "Starting",
            Secondary::AnalyzingData => "AnalyzingData",
            Secondary::FeatureEngineering => "FeatureEngineering",
            Secondary::ModelTuning => "ModelTuning",
            Secondary::MaxCandidatesReached => "MaxCandidatesReached",
            Secondary::MaxAutoMLJobRuntimeReached => "MaxAutoMLJobRuntimeReached",
            Secondary::CandidateDefinitionsGenerated => "CandidateDefinitionsGenerated",
            Secondary::Completed => "Completed",
            Secondary::Stopped => "Stopped",
            Secondary::Failed => "Failed",
        }
    }
}

/// One candidate: a tuning trial (a training job) of one candidate definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateRecord {
    /// The trial's training job, which is the candidate's name.
    pub name: String,
    /// The candidate definition it was trained from (`dpp0-xgboost`).
    pub definition: String,
    /// `CandidateStatus`: a training job's status.
    pub status: String,
    /// The objective on the validation rows, computed from the candidate's predictions.
    pub objective: Option<f64>,
    pub tuned: std::collections::BTreeMap<String, String>,
    /// The model.tar.gz: processing, algorithm and label decoding in one artifact.
    pub model: Option<String>,
    pub failure_reason: Option<String>,
    pub created: f64,
    pub ended: Option<f64>,
    /// Trained again on every row (training and validation) once chosen, as a small table's
    /// cross-validated ensemble is: its objective is an out-of-fold estimate, and it ranks
    /// first, since the rows the others are scored on taught it too.
    #[serde(default)]
    pub refit: bool,
}

/// Everything stored about a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub name: String,
    pub status: JobStatus,
    pub secondary: Secondary,
    pub created: f64,
    pub modified: f64,
    pub ended: Option<f64>,
    /// CreateAutoMLJob's request as the job understood it (flags are turned into one).
    pub request: Value,
    /// The job's folder: `<output>/<name>` (local; an `s3://` output is uploaded from it).
    pub output_dir: String,
    /// Where the output goes when it is not the local folder (`s3://…/<name>`).
    pub output_uri: Option<String>,
    pub problem: Option<String>,
    pub problem_reason: Option<String>,
    pub objective: Option<String>,
    pub maximize: bool,
    pub target: String,
    /// The split the candidates trained and were scored on.
    pub train_data: Option<String>,
    pub validation_data: Option<String>,
    pub tuning_job: Option<String>,
    pub exploration_notebook: Option<String>,
    pub candidate_notebook: Option<String>,
    pub feature_importance: Option<String>,
    pub candidates: Vec<CandidateRecord>,
    pub best: Option<String>,
    pub failure_reason: Option<String>,
    pub partial_failures: Vec<String>,
    /// `stop NAME` from any notebook asks the kernel running the job to stop it.
    pub stop_requested: bool,
    /// The mode the job ran in, `AUTO` resolved (`ENSEMBLING` or `HYPERPARAMETER_TUNING`).
    #[serde(default)]
    pub mode: Option<String>,
}

/// The jobs' folder.
pub fn root() -> PathBuf {
    rustmaker_ml::store::data_dir().join("autopilot")
}

fn path_of(root: &Path, name: &str) -> PathBuf {
    root.join(format!("{name}.json"))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AutopilotError + '_ {
    move |source| AutopilotError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes `record` whole: a temporary file renamed over the old one.
pub fn save(root: &Path, record: &JobRecord) -> Result<(), AutopilotError> {
    std::fs::create_dir_all(root).map_err(io(root))?;
    let path = path_of(root, &record.name);
    let text = serde_json::to_string_pretty(record).expect("a record serialises");
    rustmaker_process::write_atomic(&path, text.as_bytes(), None).map_err(io(&path))
}

/// The job `name`, if there is one.
pub fn load(root: &Path, name: &str) -> Result<Option<JobRecord>, AutopilotError> {
    let path = path_of(root, name);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&path)(e)),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| AutopilotError::Corrupt {
            path,
            message: e.to_string(),
        })
}

/// The job `name`, or an error that says how to find the jobs.
pub fn get(root: &Path, name: &str) -> Result<JobRecord, AutopilotError> {
    load(root, name)?.ok_or_else(|| AutopilotError::NoJob(name.to_owned()))
}

/// Every job, the newest first; a file that cannot be read is skipped, not fatal.
pub fn list(root: &Path) -> Result<Vec<JobRecord>, AutopilotError> {
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(root)(e)),
    };
    let mut jobs = Vec::new();
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(name) = file.strip_suffix(".json").filter(|n| !n.starts_with('.')) else {
            continue;
        };
        if let Ok(Some(job)) = load(root, name) {
            jobs.push(job);
        }
    }
    jobs.sort_by(|a, b| b.created.total_cmp(&a.created));
    Ok(jobs)
}

/// Asks the kernel running `name` to stop it; a job that has ended is left as it is.
pub fn request_stop(root: &Path, name: &str) -> Result<JobStatus, AutopilotError> {
    let mut job = get(root, name)?;
    if job.status.is_final() {
        return Ok(job.status);
    }
    job.stop_requested = true;
    job.status = JobStatus::Stopping;
    job.modified = rustmaker_ml::store::now();
    save(root, &job)?;
    Ok(job.status)
}

fn candidate_steps(job: &JobRecord, c: &CandidateRecord) -> Value {
    // An ensemble is one training job over the candidates' processed data, as SageMaker
    // lists an ensembling candidate.
    if c.definition == crate::ensemble::DEFINITION {
        return json!([
            {"CandidateStepType": "AWS::SageMaker::TrainingJob",
             "CandidateStepArn": format!("arn:aws:sagemaker:local:000000000000:training-job/{}", c.name.to_ascii_lowercase()),
             "CandidateStepName": c.name}
        ]);
    }
    let processor = c.definition.split('-').next().unwrap_or_default();
    json!([
        {"CandidateStepType": "AWS::SageMaker::ProcessingJob",
         "CandidateStepArn": format!("arn:aws:sagemaker:local:000000000000:processing-job/{}-{processor}", job.name),
         "CandidateStepName": format!("{}-{processor}", job.name)},
        {"CandidateStepType": "AWS::SageMaker::TrainingJob",
         "CandidateStepArn": format!("arn:aws:sagemaker:local:000000000000:training-job/{}", c.name.to_ascii_lowercase()),
         "CandidateStepName": c.name}
    ])
}

/// One entry of ListCandidatesForAutoMLJob's `Candidates`.
pub fn candidate_json(job: &JobRecord, c: &CandidateRecord) -> Value {
    let mut v = json!({
        "CandidateName": c.name,
        "ObjectiveStatus": match (c.objective, c.status.as_str()) {
            (Some(_), _) => "Succeeded",
            (None, "InProgress" | "Stopping") => "Pending",
            _ => "Failed",
        },
        "CandidateSteps": candidate_steps(job, c),
        "CandidateStatus": c.status,
        "CreationTime": c.created,
        "LastModifiedTime": c.ended.unwrap_or(c.created),
        "CandidateProperties": {"CandidateArtifactLocations": {}},
        "CandidateDefinition": c.definition,
        "TunedHyperParameters": c.tuned,
    });
    if let Some(t) = c.ended {
        v["EndTime"] = json!(t);
    }
    if let (Some(value), Some(metric)) = (c.objective, &job.objective) {
        v["FinalAutoMLJobObjectiveMetric"] = json!({
            "Type": if job.maximize { "Maximize" } else { "Minimize" },
            "MetricName": metric,
            "Value": value,
        });
    }
    if let Some(model) = &c.model {
        v["InferenceContainers"] = json!([{
            "Image": "rustmaker-builtin",
            "ModelDataUrl": model,
            "Environment": {"SAGEMAKER_INFERENCE_OUTPUT": "predicted_label"},
        }]);
    }
    if let Some(r) = &c.failure_reason {
        v["FailureReason"] = json!(r);
    }
    v
}

/// The candidates ranked: by the objective, best first, candidates without a value last.
pub fn ranked(job: &JobRecord) -> Vec<&CandidateRecord> {
    let mut out: Vec<&CandidateRecord> = job.candidates.iter().collect();
    let key = |c: &CandidateRecord| {
        c.objective
            .map(|v| if job.maximize { -v } else { v })
            .unwrap_or(f64::INFINITY)
    };
    out.sort_by(|a, b| {
        (b.refit && b.objective.is_some())
            .cmp(&(a.refit && a.objective.is_some()))
            .then_with(|| key(a).total_cmp(&key(b)))
            .then_with(|| a.name.cmp(&b.name))
    });
    out
}

/// ListCandidatesForAutoMLJob's answer, ranked as asked.
pub fn list_candidates(job: &JobRecord, status: Option<&str>, by_objective: bool) -> Value {
    let mut candidates: Vec<&CandidateRecord> = if by_objective {
        ranked(job)
    } else {
        job.candidates.iter().collect()
    };
    if let Some(s) = status {
        candidates.retain(|c| c.status.eq_ignore_ascii_case(s));
    }
    json!({"Candidates": candidates.iter().map(|c| candidate_json(job, c)).collect::<Vec<_>>()})
}

/// `OutputDataConfig.S3OutputPath`: where the job's folder `<path>/<name>` is.
pub fn output_path(job: &JobRecord) -> String {
    let dir = job.output_uri.as_deref().unwrap_or(&job.output_dir);
    dir.strip_suffix(&format!("/{}", job.name))
        .unwrap_or(dir)
        .to_owned()
}

/// DescribeAutoMLJob's answer.
pub fn describe(job: &JobRecord) -> Value {
    let mut v = json!({
        "AutoMLJobName": job.name,
        "AutoMLJobArn": format!("arn:aws:sagemaker:local:000000000000:automl-job/{}", job.name.to_ascii_lowercase()),
        "InputDataConfig": job.request.get("InputDataConfig"),
        "OutputDataConfig": {"S3OutputPath": output_path(job)},
        "AutoMLJobConfig": job.request.get("AutoMLJobConfig"),
        "CreationTime": job.created,
        "LastModifiedTime": job.modified,
        "AutoMLJobStatus": job.status.as_str(),
        "AutoMLJobSecondaryStatus": job.secondary.as_str(),
        "GenerateCandidateDefinitionsOnly": job.request.get("GenerateCandidateDefinitionsOnly").cloned().unwrap_or(json!(false)),
        "AutoMLJobArtifacts": {
            "CandidateDefinitionNotebookLocation": job.candidate_notebook,
            "DataExplorationNotebookLocation": job.exploration_notebook,
        },
        "PartialFailureReasons": job.partial_failures.iter().map(|r| json!({"PartialFailureMessage": r})).collect::<Vec<_>>(),
    });
    if let Some(p) = &job.problem {
        v["ProblemType"] = json!(p);
        v["ResolvedAttributes"] = json!({
            "AutoMLJobObjective": {"MetricName": job.objective},
            "ProblemType": p,
            "CompletionCriteria": job.request.pointer("/AutoMLJobConfig/CompletionCriteria"),
        });
    }
    if let Some(o) = &job.objective {
        v["AutoMLJobObjective"] = json!({"MetricName": o});
    }
    if let Some(t) = job.ended {
        v["EndTime"] = json!(t);
    }
    if let Some(r) = &job.failure_reason {
        v["FailureReason"] = json!(r);
    }
    if let Some(best) = job
        .best
        .as_ref()
        .and_then(|b| job.candidates.iter().find(|c| &c.name == b))
    {
        v["BestCandidate"] = candidate_json(job, best);
    }
    v
}
