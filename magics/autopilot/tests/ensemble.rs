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
        refit: false,
    }
}

#[test]
fn fewer_than_two_scored_candidates_make_no_ensemble_and_a_broken_one_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("experiments.db")).unwrap();
    let validation = df!("x" => [1.0, 2.0], "y" => [0.0, 1.0]).unwrap();
    let rows = ensemble::Rows {
        train: &validation,
        validation: &validation,
        target: "y",
        seed: 0,
        deadline: None,
    };
    let missing = dir.path().join("gone/model.tar.gz");
    let missing = missing.to_str().unwrap();
    // One scored candidate (the other has no value): nothing to mix, nothing read.
    let one = [
        candidate("a", missing, Some(0.9)),
        candidate("b", missing, None),
    ];
    let built = ensemble::build(&store, "j-ensemble", &one, &rows, Objective::F1, false);
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
        &rows,
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

/// A candidate trained by `algorithm` on `train`, recorded in `store` as a training job is.
fn trained(
    store: &Store,
    dir: &std::path::Path,
    name: &str,
    algorithm: &str,
    train: &DataFrame,
    validation: &DataFrame,
) -> CandidateRecord {
    use rustmaker_ml::algorithms::{self, Algorithm, FitData, Monitor};
    use rustmaker_ml::job::{record_composed, ComposedJob};
    let a = Algorithm::parse(algorithm).unwrap();
    let hp = a.resolve(&Default::default()).unwrap();
    let (schema, prepared) = rustmaker_ml::prep::fit(train, Some("y"), None).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let model = algorithms::fit(
        a,
        &hp,
        &FitData {
            x: &prepared.x,
            y: &prepared.y,
            classes: schema.classes.len(),
            problem: schema.problem_type,
            validation: None,
            seed: 0,
        },
        &mut Monitor {
            stop: &stop,
            report: &mut |_, _| {},
            debug: None,
        },
    )
    .unwrap();
    let served = rustmaker_ml::serving::Served::new(schema.clone(), model.clone());
    let (output, y) = served.evaluate(validation).unwrap();
    let value = rustmaker_autopilot::job::score_output(output, &y, Objective::Mse).unwrap();
    let path = record_composed(
        store,
        ComposedJob {
            name,
            experiment: "e",
            trial: name,
            dir: &dir.join(name),
            algorithm: a.name(),
            hyperparameters: hp.0.clone(),
            schema,
            model: &model,
            inputs: &[],
            metrics: &[],
            replace: false,
        },
    )
    .unwrap();
    CandidateRecord {
        definition: format!("dpp-{algorithm}"),
        objective: Some(value),
        ..candidate(name, path.to_str().unwrap(), Some(value))
    }
}

/// y = 3x + a little noise, with a useless column.
fn linear_table(rows: usize, from: usize) -> DataFrame {
    let x: Vec<f64> = (from..from + rows)
        .map(|i| (i % 97) as f64 / 10.0)
        .collect();
    let z: Vec<f64> = (from..from + rows)
        .map(|i| ((i * 7919) % 13) as f64)
        .collect();
    let y: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(i, v)| 3.0 * v + if i % 2 == 0 { 0.1 } else { -0.1 })
        .collect();
    df!("x" => x, "z" => z, "y" => y).unwrap()
}

#[test]
fn a_small_table_is_ensembled_on_folds_and_refit_on_every_row() {
    use rustmaker_ml::algorithms::Model;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("experiments.db")).unwrap();
    let (train, validation) = (linear_table(160, 0), linear_table(40, 160));
    let candidates = vec![
        trained(
            &store,
            dir.path(),
            "lin",
            "linear-regression",
            &train,
            &validation,
        ),
        trained(
            &store,
            dir.path(),
            "tree",
            "decision-tree",
            &train,
            &validation,
        ),
    ];
    let rows = ensemble::Rows {
        train: &train,
        validation: &validation,
        target: "y",
        seed: 0,
        deadline: None,
    };
    assert!(rows.cross_validated());
    let built = ensemble::build(
        &store,
        "j-ensemble",
        &candidates,
        &rows,
        Objective::Mse,
        false,
    )
    .unwrap()
    .expect("an ensemble");
    assert!(built.refit);
    let weights: f64 = built
        .tuned
        .values()
        .map(|w| w.parse::<f64>().unwrap())
        .sum();
    assert!((weights - 1.0).abs() < 1e-9, "{:?}", built.tuned);
    let lin: f64 = built.tuned["lin"].parse().unwrap();
    assert!(lin > 0.5, "the exact model weighs most: {:?}", built.tuned);
    // Its members were trained again on all 200 rows: the linear one is the fit on them.
    let served =
        rustmaker_ml::serving::Served::load(std::path::Path::new(built.model.as_deref().unwrap()))
            .unwrap();
    let Model::Ensemble(e) = served.model() else {
        panic!("not an ensemble")
    };
    let all = train.vstack(&validation).unwrap();
    let refit = trained(
        &store,
        dir.path(),
        "lin-all",
        "linear-regression",
        &all,
        &all,
    );
    let refit =
        rustmaker_ml::serving::Served::load(std::path::Path::new(refit.model.as_deref().unwrap()))
            .unwrap();
    let probe = linear_table(5, 1000);
    let x = rustmaker_ml::prep::transform(served.schema(), &probe).unwrap();
    let member = e
        .members
        .iter()
        .find(|m| matches!(m, Model::Linfa(_)))
        .expect("the linear member");
    let (ours, theirs) = (member.predict(&x), refit.model().predict(&x));
    let (rustmaker_ml::algorithms::Output::Values(a), rustmaker_ml::algorithms::Output::Values(b)) =
        (ours, theirs)
    else {
        panic!("values expected")
    };
    assert!((a - b).iter().all(|d| d.abs() < 1e-9));
    // Its value is the out-of-fold one: the noise's square, about, not the validation rows'.
    let value = built.objective.unwrap();
    assert!(value > 0.0 && value < 0.05, "{value}");

    // Ranked first, whatever the others' values on the validation rows.
    let mut job_candidates = candidates.clone();
    job_candidates.push(built);
    let job = rustmaker_autopilot::record::JobRecord {
        candidates: job_candidates,
        maximize: false,
        ..serde_json::from_value(serde_json::json!({
            "name": "j", "status": "Completed", "secondary": "Completed", "created": 0.0,
            "modified": 0.0, "ended": null, "request": {}, "output_dir": "/o",
            "output_uri": null, "problem": null, "problem_reason": null, "objective": null,
            "maximize": false, "target": "y", "train_data": null, "validation_data": null,
            "tuning_job": null, "exploration_notebook": null, "candidate_notebook": null,
            "feature_importance": null, "candidates": [], "best": null,
            "failure_reason": null, "partial_failures": [], "stop_requested": false,
            "mode": null
        }))
        .unwrap()
    };
    assert_eq!(
        rustmaker_autopilot::record::ranked(&job)[0].name,
        "j-ensemble"
    );

    // Out of time before a fold: the weights are chosen on the validation rows instead.
    let late = ensemble::Rows {
        deadline: Some(std::time::Instant::now()),
        ..rows
    };
    let built = ensemble::build(
        &store,
        "j2-ensemble",
        &candidates,
        &late,
        Objective::Mse,
        false,
    )
    .unwrap();
    assert!(built.is_none_or(|b| !b.refit));
    // A larger table is ensembled on its validation rows alone.
    let big = linear_table(ensemble::CROSS_VALIDATION_ROWS - 39, 0);
    assert!(!ensemble::Rows {
        train: &big,
        ..late
    }
    .cross_validated());
}
