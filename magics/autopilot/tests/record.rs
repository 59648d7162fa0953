use std::collections::BTreeMap;

use rustmaker_autopilot::record::{self, CandidateRecord, JobRecord, JobStatus, Secondary};
use rustmaker_autopilot::AutopilotError;
use serde_json::json;

fn candidate(
    name: &str,
    definition: &str,
    status: &str,
    objective: Option<f64>,
) -> CandidateRecord {
    CandidateRecord {
        name: name.into(),
        definition: definition.into(),
        status: status.into(),
        objective,
        tuned: BTreeMap::from([("eta".to_owned(), "0.1".to_owned())]),
        model: objective.map(|_| format!("/jobs/{name}/model.tar.gz")),
        failure_reason: (status == "Failed").then(|| "it broke".to_owned()),
        created: 10.0,
        ended: Some(12.0),
        refit: false,
    }
}

fn job(name: &str, maximize: bool) -> JobRecord {
    JobRecord {
        name: name.into(),
        status: JobStatus::InProgress,
        secondary: Secondary::ModelTuning,
        created: 1.0,
        modified: 2.0,
        ended: None,
        request: json!({"InputDataConfig": [{"TargetAttributeName": "y"}],
                        "AutoMLJobConfig": {"CompletionCriteria": {"MaxCandidates": 3}}}),
        output_dir: "/out/job".into(),
        output_uri: None,
        problem: Some("BinaryClassification".into()),
        problem_reason: Some("two labels".into()),
        objective: Some(if maximize { "F1" } else { "LogLoss" }.into()),
        maximize,
        target: "y".into(),
        train_data: None,
        validation_data: None,
        tuning_job: Some(name.into()),
        exploration_notebook: Some("/out/e.ipynb".into()),
        candidate_notebook: Some("/out/c.ipynb".into()),
        feature_importance: None,
        candidates: vec![
            candidate(
                &format!("{name}-001"),
                "dpp0-xgboost",
                "Completed",
                Some(0.8),
            ),
            candidate(&format!("{name}-002"), "dpp1-lightgbm", "Failed", None),
            candidate(
                &format!("{name}-003"),
                "dpp0-xgboost",
                "Completed",
                Some(0.9),
            ),
        ],
        best: Some(format!("{name}-003")),
        failure_reason: None,
        partial_failures: vec!["3 rows without a value of the target `y` were left out".into()],
        stop_requested: false,
        mode: Some("ENSEMBLING".into()),
    }
}

#[test]
fn a_job_is_stored_whole_listed_and_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("autopilot");
    assert!(
        record::list(&root).unwrap().is_empty(),
        "no folder yet is no jobs"
    );
    let mut a = job("a", true);
    record::save(&root, &a).unwrap();
    a.created = 5.0;
    let b = JobRecord {
        name: "b".into(),
        created: 9.0,
        ..job("b", true)
    };
    record::save(&root, &b).unwrap();
    assert_eq!(record::load(&root, "b").unwrap().unwrap(), b);
    // Nothing half-written is left beside the records.
    let files: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    let names: Vec<String> = record::list(&root)
        .unwrap()
        .into_iter()
        .map(|j| j.name)
        .collect();
    assert_eq!(names, ["b", "a"], "newest first");

    assert_eq!(
        record::request_stop(&root, "a").unwrap(),
        JobStatus::Stopping
    );
    let stored = record::get(&root, "a").unwrap();
    assert!(stored.stop_requested && stored.status == JobStatus::Stopping);
    let mut done = stored;
    done.status = JobStatus::Completed;
    record::save(&root, &done).unwrap();
    assert_eq!(
        record::request_stop(&root, "a").unwrap(),
        JobStatus::Completed
    );

    let err = record::get(&root, "nope").unwrap_err().to_string();
    assert_eq!(
        err,
        "there is no Autopilot job `nope` (`%autopilot list` lists them)"
    );
    std::fs::write(root.join("broken.json"), "{not json").unwrap();
    assert!(matches!(
        record::load(&root, "broken"),
        Err(AutopilotError::Corrupt { .. })
    ));
    assert_eq!(
        record::list(&root).unwrap().len(),
        2,
        "a broken record does not hide the others"
    );
}

#[test]
fn describe_and_list_candidates_answer_in_sagemakers_shapes() {
    let j = job("churn", true);
    let d = record::describe(&j);
    assert_eq!(d["AutoMLJobName"], "churn");
    assert_eq!(d["AutoMLJobStatus"], "InProgress");
    assert_eq!(d["AutoMLJobSecondaryStatus"], "ModelTuning");
    assert_eq!(
        d["ResolvedAttributes"]["ProblemType"],
        "BinaryClassification"
    );
    assert_eq!(
        d["ResolvedAttributes"]["AutoMLJobObjective"]["MetricName"],
        "F1"
    );
    assert_eq!(
        d["ResolvedAttributes"]["CompletionCriteria"]["MaxCandidates"],
        3
    );
    assert_eq!(
        d["AutoMLJobArtifacts"]["CandidateDefinitionNotebookLocation"],
        "/out/c.ipynb"
    );
    assert_eq!(d["BestCandidate"]["CandidateName"], "churn-003");
    assert_eq!(
        d["BestCandidate"]["FinalAutoMLJobObjectiveMetric"],
        json!({"Type": "Maximize", "MetricName": "F1", "Value": 0.9})
    );
    assert_eq!(
        d["PartialFailureReasons"][0]["PartialFailureMessage"],
        "3 rows without a value of the target `y` were left out"
    );
    assert!(d.get("EndTime").is_none() && d.get("FailureReason").is_none());

    let listed = record::list_candidates(&j, None, true);
    let names: Vec<&str> = listed["Candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["CandidateName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["churn-003", "churn-001", "churn-002"],
        "best first, no value last"
    );
    let failed = &listed["Candidates"][2];
    assert_eq!(failed["ObjectiveStatus"], "Failed");
    assert_eq!(failed["FailureReason"], "it broke");
    assert!(failed.get("InferenceContainers").is_none());
    let first = &listed["Candidates"][0];
    assert_eq!(
        first["InferenceContainers"][0]["ModelDataUrl"],
        "/jobs/churn-003/model.tar.gz"
    );
    assert_eq!(
        first["CandidateSteps"][0]["CandidateStepType"],
        "AWS::SageMaker::ProcessingJob"
    );
    assert_eq!(first["CandidateSteps"][1]["CandidateStepName"], "churn-003");
    // An ensemble is one training job, as SageMaker lists an ensembling candidate.
    let mut e = j.clone();
    e.candidates.push(candidate(
        "churn-ensemble",
        rustmaker_autopilot::ensemble::DEFINITION,
        "Completed",
        Some(0.95),
    ));
    let top = &record::list_candidates(&e, None, true)["Candidates"][0];
    assert_eq!(top["CandidateName"], "churn-ensemble");
    assert_eq!(
        top["CandidateSteps"],
        json!([{"CandidateStepType": "AWS::SageMaker::TrainingJob",
                "CandidateStepArn": "arn:aws:sagemaker:local:000000000000:training-job/churn-ensemble",
                "CandidateStepName": "churn-ensemble"}])
    );
    let only_failed = record::list_candidates(&j, Some("failed"), true);
    assert_eq!(only_failed["Candidates"].as_array().unwrap().len(), 1);
    let by_time = record::list_candidates(&j, None, false);
    assert_eq!(by_time["Candidates"][0]["CandidateName"], "churn-001");

    // A minimised objective ranks the smallest first.
    let m = job("loss", false);
    assert_eq!(record::ranked(&m)[0].name, "loss-001");
}
