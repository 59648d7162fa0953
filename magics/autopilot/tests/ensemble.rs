//! The ensemble's build from stored candidates: what it refuses and how a broken candidate is
//! told (the job keeps its candidates and reports the reason).

use polars::prelude::*;
use rustmaker_autopilot::ensemble;
use rustmaker_autopilot::objective::Objective;
use rustmaker_autopilot::record::CandidateRecord;
use rustmaker_ml::store::Store;

fn candidate(name: &str, model: &str, objective: Option<f64>) -> CandidateRecord {
    CandidateRecord {
        name: name.into(),
        definition: "dpp0-xgboost".into(),
        status: "Completed".into(),
        objective,
        tuned: Default::default(),
        model: Some(model.into()),
        failure_reason: None,
        created: 1.0,
        ended: Some(2.0),
    }
}

#[test]
fn fewer_than_two_scored_candidates_make_no_ensemble_and_a_broken_one_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("experiments.db")).unwrap();
    let validation = df!("x" => [1.0, 2.0], "y" => [0.0, 1.0]).unwrap();
    let missing = dir.path().join("gone/model.tar.gz");
    let missing = missing.to_str().unwrap();
    // One scored candidate (the other has no value): nothing to mix, nothing read.
    let one = [
        candidate("a", missing, Some(0.9)),
        candidate("b", missing, None),
    ];
    let built = ensemble::build(
        &store,
        "j-ensemble",
        &one,
        &validation,
        Objective::F1,
        false,
    );
    assert!(built.unwrap().is_none());

    // Two candidates whose models cannot be read: the reason goes to the failures, the
    // candidates stay as they were, and no training job is recorded.
    let mut two = vec![
        candidate("a", missing, Some(0.9)),
        candidate("b", missing, Some(0.8)),
    ];
    let before = two.clone();
    let mut failures = Vec::new();
    ensemble::add_to(
        &store,
        "j",
        &mut two,
        &mut failures,
        &validation,
        Objective::F1,
        false,
    );
    assert_eq!(two, before);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].starts_with("j-ensemble: ") && failures[0].contains("gone/model.tar.gz"),
        "{failures:?}"
    );
    assert!(store.component("j-ensemble").unwrap().is_none());
}
