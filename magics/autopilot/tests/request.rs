use rustmaker_autopilot::objective::Problem;
use rustmaker_autopilot::request::{JobSpec, Mode, DEFAULT_MAX_CANDIDATES};

const REQUEST: &str = r#"{
  "AutoMLJobName": "churn",
  "InputDataConfig": [
    {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/train.csv"}},
     "TargetAttributeName": "churned", "ChannelType": "training", "ContentType": "text/csv;header=present",
     "CompressionType": "Gzip"},
    {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "valid.csv"}},
     "TargetAttributeName": "churned", "ChannelType": "validation"}
  ],
  "OutputDataConfig": {"S3OutputPath": "s3://bucket/out", "KmsKeyId": "ignored"},
  "ProblemType": "BinaryClassification",
  "AutoMLJobObjective": {"MetricName": "AUC"},
  "AutoMLJobConfig": {
    "CompletionCriteria": {"MaxCandidates": 12, "MaxRuntimePerTrainingJobInSeconds": 60,
                           "MaxAutoMLJobRuntimeInSeconds": 600, "MaxCandidatesNotImproving": 0},
    "Mode": "HYPERPARAMETER_TUNING",
    "CandidateGenerationConfig": {"AlgorithmsConfig": [{"AutoMLAlgorithms": ["xgboost", "linear-learner"]}]},
    "SecurityConfig": {"EnableInterContainerTrafficEncryption": true}
  },
  "GenerateCandidateDefinitionsOnly": false,
  "RoleArn": "arn:aws:iam::111122223333:role/ignored",
  "Tags": [{"Key": "team", "Value": "ml"}]
}"#;

#[test]
fn create_automl_jobs_request_is_read_in_json_and_yaml_alike() {
    let json = JobSpec::from_request("churn", REQUEST).unwrap();
    assert_eq!(json.data, "s3://bucket/train.csv");
    assert_eq!(json.validation.as_deref(), Some("valid.csv"));
    assert_eq!(json.target, "churned");
    assert!(json.gzip);
    assert_eq!(json.output.as_deref(), Some("s3://bucket/out"));
    assert_eq!(json.problem, Some(Problem::BinaryClassification));
    assert_eq!(json.objective.as_deref(), Some("AUC"));
    assert_eq!(
        (
            json.max_candidates,
            json.max_runtime_per_job,
            json.max_runtime
        ),
        (12, Some(60), Some(600))
    );
    // 0: tune to the limits, as SageMaker does; left out: five per definition.
    assert_eq!(json.max_candidates_not_improving, Some(0));
    assert_eq!(json.not_improving_limit(2), None);
    assert_eq!(
        JobSpec::new("j", "t.csv", "y").not_improving_limit(2),
        Some(10)
    );
    assert_eq!(json.mode, Mode::HyperparameterTuning);
    assert_eq!(json.algorithms, ["xgboost", "linear-learner"]);
    assert!(!json.candidates_only);
    let value: serde_json::Value = serde_json::from_str(REQUEST).unwrap();
    let yaml = serde_yaml::to_string(&value).unwrap();
    assert_eq!(JobSpec::from_request("churn", &yaml).unwrap(), json);
    // The least a request can be.
    let least = JobSpec::from_request(
        "small",
        "InputDataConfig:\n  - DataSource: {S3DataSource: {S3Uri: data.csv}}\n    TargetAttributeName: y\n",
    )
    .unwrap();
    assert_eq!(least, JobSpec::new("small", "data.csv", "y"));
    assert_eq!(least.max_candidates, DEFAULT_MAX_CANDIDATES);
    assert_eq!(least.mode, Mode::Auto);
}

/// A change to the good request.
type Edit = dyn Fn(&mut serde_json::Value);

#[test]
fn bad_requests_name_the_field_and_what_to_do() {
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_str(REQUEST).unwrap();
        edit(&mut v);
        JobSpec::from_request("churn", &v.to_string())
            .unwrap_err()
            .to_string()
    };
    let cases: Vec<(Box<Edit>, &str)> = vec![
        (
            Box::new(|v| v["AutoMLJobName"] = "other".into()),
            "AutoMLJobName: is `other` but the cell names the job `churn`",
        ),
        (
            Box::new(|v| v["InputDataConfig"] = serde_json::json!([])),
            "InputDataConfig: is required",
        ),
        (
            Box::new(|v| v["InputDataConfig"][0]["TargetAttributeName"] = "".into()),
            "InputDataConfig[0].TargetAttributeName: is required",
        ),
        (
            Box::new(|v| v["InputDataConfig"][1]["TargetAttributeName"] = "other".into()),
            "the channels share one target",
        ),
        (
            Box::new(|v| v["InputDataConfig"][0]["DataSource"] = serde_json::json!({})),
            "InputDataConfig[0].DataSource.S3DataSource.S3Uri: is required",
        ),
        (
            Box::new(|v| v["InputDataConfig"][0]["CompressionType"] = "Zip".into()),
            "`Zip` is not one: use None or Gzip",
        ),
        (
            Box::new(|v| v["InputDataConfig"][0]["ContentType"] = "application/json".into()),
            "use text/csv;header=present",
        ),
        (
            Box::new(|v| v["InputDataConfig"][1]["ChannelType"] = "training".into()),
            "repeats a channel",
        ),
        (
            Box::new(|v| v["InputDataConfig"][1]["ChannelType"] = "test".into()),
            "`test` is not one: use training or validation",
        ),
        (
            Box::new(|v| v["InputDataConfig"][0]["ChannelType"] = "validation".into()),
            "repeats a channel",
        ),
        (
            Box::new(|v| v["ProblemType"] = "Ranking".into()),
            "ProblemType: `Ranking` is not one",
        ),
        (
            Box::new(|v| v["AutoMLJobConfig"]["CompletionCriteria"]["MaxCandidates"] = 0.into()),
            "MaxCandidates: 0 is not a whole number of at least 1",
        ),
        (
            Box::new(|v| {
                v["AutoMLJobConfig"]["CompletionCriteria"]["MaxAutoMLJobRuntimeInSeconds"] =
                    30.into()
            }),
            "60 s is more than the whole job's MaxAutoMLJobRuntimeInSeconds (30 s)",
        ),
        (
            Box::new(|v| {
                v["AutoMLJobConfig"]["CompletionCriteria"]["MaxCandidatesNotImproving"] =
                    (-3).into()
            }),
            "MaxCandidatesNotImproving: -3 is not a whole number (0 tunes to the limits)",
        ),
        (
            Box::new(|v| v["AutoMLJobConfig"]["Mode"] = "FAST".into()),
            "`FAST` is not a mode",
        ),
        (
            Box::new(|v| {
                v["AutoMLJobConfig"]["CandidateGenerationConfig"]["AlgorithmsConfig"] =
                    "xgboost".into()
            }),
            "must be a list of",
        ),
        (
            Box::new(|v| {
                v["AutoMLJobConfig"]["DataSplitConfig"] =
                    serde_json::json!({"ValidationFraction": 0.3})
            }),
            "cannot be given with a validation channel",
        ),
        (
            Box::new(|v| v["GenerateCandidateDefinitionsOnly"] = "yes".into()),
            "must be true or false",
        ),
    ];
    for (edit, want) in cases {
        let err = with(&*edit);
        assert!(err.contains(want), "{err}\n  wanted: {want}");
    }
    let err = JobSpec::from_request("churn", "[1, 2")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("is neither JSON") && err.contains("nor YAML"),
        "{err}"
    );
    let err = JobSpec::from_request("churn", "- a\n- b\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("must be an object"), "{err}");
    let mut spec = JobSpec::new("j", "d.csv", "y");
    spec.validation_fraction = Some(1.0);
    assert!(spec
        .check()
        .unwrap_err()
        .to_string()
        .contains("1 is not between 0 and 1"));
}
