use polars::prelude::*;
use rustmaker_autopilot::analysis::analyse;
use rustmaker_autopilot::candidates::{self, generate, tuning_request};
use rustmaker_autopilot::objective::{Objective, Problem};
use rustmaker_autopilot::request::JobSpec;

fn frame(regression: bool) -> DataFrame {
    let n = 60;
    let x: Vec<f64> = (0..n).map(|i| f64::from(i % 13)).collect();
    let id: Vec<i64> = (0..n as i64).collect();
    let colour: Vec<&str> = (0..n)
        .map(|i| ["red", "blue", "green"][i as usize % 3])
        .collect();
    let y: Column = if regression {
        Column::new(
            "y".into(),
            x.iter()
                .map(|v| v * 1.5 + 0.25 + f64::from(v.to_bits() as u32 % 7))
                .collect::<Vec<_>>(),
        )
    } else {
        Column::new(
            "y".into(),
            (0..n)
                .map(|i| if i % 3 == 0 { "a" } else { "b" })
                .collect::<Vec<_>>(),
        )
    };
    DataFrame::new(
        n as usize,
        vec![
            Column::new("x".into(), x),
            Column::new("id".into(), id),
            Column::new("colour".into(), colour),
            y,
        ],
    )
    .unwrap()
}

#[test]
fn candidates_are_named_as_sagemaker_names_them_and_their_tuning_request_is_valid() {
    for regression in [false, true] {
        let table = frame(regression);
        let a = analyse(&table, "y", None).unwrap();
        let spec = JobSpec::new("job", "train.csv", "y");
        let found = generate(&a, &spec).unwrap();
        let names: Vec<&str> = found.iter().map(|c| c.name.as_str()).collect();
        let mut expected = vec![
            "dpp0-xgboost",
            "dpp1-lightgbm",
            "dpp2-linear-learner",
            "dpp3-randomforest",
            "dpp4-extra-trees",
            "dpp5-mlp",
        ];
        // Gaussian process regression on small regression tables only.
        if regression {
            expected.push("dpp6-gaussian-process");
            assert_eq!(found[6].training, "gaussian-process");
            assert!(found[6].ranges.to_string().contains("matern52"));
        }
        assert_eq!(names, expected);
        assert_eq!(found[4].training, "extra-trees");
        assert_eq!(found[5].training, "mlp");
        // A table of more rows than NETWORK_BY_DEFAULT_ROWS leaves the network out.
        let large = rustmaker_autopilot::analysis::Analysis {
            rows: candidates::NETWORK_BY_DEFAULT_ROWS + 1,
            ..a.clone()
        };
        let names: Vec<String> = generate(&large, &spec)
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names.last().map(String::as_str), Some("dpp4-extra-trees"));
        let linear = &found[2];
        assert_eq!(
            linear.training,
            if regression {
                "linear-regression"
            } else {
                "logistic-regression"
            }
        );
        assert!(
            linear.pipeline.contains("`x`") && linear.pipeline.contains("standardises"),
            "{}",
            linear.pipeline
        );
        assert!(found[0]
            .pipeline
            .contains("one-hot encodes the 50 most frequent values of `colour`"));
        assert!(
            found[0].pipeline.contains("leaves out `id`"),
            "{}",
            found[0].pipeline
        );
        let objective = a.problem.default_objective();
        let request = tuning_request(
            &found,
            &a,
            objective,
            "train.csv",
            "validation.csv",
            12,
            Some(60),
            JobSpec::new("j", "t.csv", "y").not_improving_limit(found.len()),
            7,
        );
        // The training engine's own tuner accepts it: every range fits its algorithm.
        let config = rustmaker_ml::tune::config::parse(request.clone()).unwrap();
        assert_eq!(config.definitions.len(), found.len());
        assert_eq!(config.seed, Some(7));
        // Five candidates per definition without a 1 % gain end the tuning by default.
        assert_eq!(config.completion.not_improving, Some(5 * found.len()));
        let metric = &config.definitions[0].objective;
        match a.problem {
            Problem::Regression => assert_eq!(
                (metric.metric.as_str(), metric.maximize),
                ("validation:mse", false)
            ),
            _ => assert_eq!(
                (metric.metric.as_str(), metric.maximize),
                ("validation:f1", true)
            ),
        }
        assert_eq!(
            request["TrainingJobDefinitions"][1]["StaticHyperParameters"]["grow_policy"],
            "lossguide"
        );
    }
}

#[test]
fn the_algorithms_asked_for_are_checked_and_the_limit_kept() {
    let table = frame(false);
    let a = analyse(&table, "y", None).unwrap();
    let mut spec = JobSpec::new("job", "train.csv", "y");
    spec.algorithms = vec!["RandomForest".into(), "xgboost".into(), "xgboost".into()];
    let found = generate(&a, &spec).unwrap();
    let names: Vec<&str> = found.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["dpp0-randomforest", "dpp1-xgboost"]);
    spec.max_candidates = 1;
    assert_eq!(generate(&a, &spec).unwrap().len(), 1);
    spec.algorithms = vec!["catboost".into()];
    let err = generate(&a, &spec).unwrap_err().to_string();
    assert!(err.contains("`catboost` is a SageMaker Autopilot algorithm this project has no built-in for: choose from xgboost, lightgbm, linear-learner, randomforest, extra-trees, mlp, gaussian-process"), "{err}");
    // Gaussian process regression is refused on a classification table, with the reason.
    spec.algorithms = vec!["gaussian-process".into()];
    let err = generate(&a, &spec).unwrap_err().to_string();
    assert!(
        err.contains(
            "`gaussian-process` fits regression only and this job is BinaryClassification"
        ),
        "{err}"
    );
    // The network alone when asked for, on standardised features, tuned on its step size.
    spec.algorithms = vec!["mlp".into()];
    let found = generate(&a, &spec).unwrap();
    assert_eq!(
        (found[0].name.as_str(), found[0].training),
        ("dpp0-mlp", "mlp")
    );
    assert!(found[0].ranges.to_string().contains("learning_rate_init"));
    assert!(found[0].pipeline.contains("standardises"));
    spec.algorithms = vec!["svm9".into()];
    assert!(generate(&a, &spec)
        .unwrap_err()
        .to_string()
        .contains("`svm9` is not an Autopilot algorithm"));
    // Objectives training does not report are tuned on the nearest one it does.
    assert_eq!(
        candidates::tuning_metric(Objective::Auc),
        ("validation:logloss", false)
    );
    assert_eq!(
        candidates::tuning_metric(Objective::BalancedAccuracy),
        ("validation:f1", true)
    );
}

#[test]
fn the_candidate_notebook_defines_each_candidate_and_runs_the_jobs_own_request() {
    use rustmaker_autopilot::definition_notebook::{notebook, Definition};
    let table = frame(false);
    let a = analyse(&table, "y", None).unwrap();
    let found = generate(&a, &JobSpec::new("churn", "t.csv", "y")).unwrap();
    let objective = a.problem.default_objective();
    let request = tuning_request(
        &found,
        &a,
        objective,
        "/d/train.parquet",
        "/d/validation.parquet",
        8,
        None,
        None,
        3,
    );
    let definition = Definition {
        job: "churn",
        analysis: &a,
        objective,
        candidates: &found,
        tuning_request: &request,
        notebook_tuning_job: "churn-nb",
        train_data: "/d/train.parquet",
        validation_data: "/d/validation.parquet",
        best_dir: "/d/best",
        ensemble: false,
    };
    let nb = notebook(&definition);
    let parsed = match nbformat::parse_notebook(&nb.to_json()).unwrap() {
        nbformat::Notebook::V4(nb) => nb,
        _ => panic!("not a strict nbformat 4.5 notebook"),
    };
    let text: Vec<String> = parsed.cells.iter().map(|c| c.source().concat()).collect();
    assert!(text[0].starts_with("# rustmaker Autopilot Candidate Definition Notebook"));
    assert!(
        text[0].contains("**maximizes** the \"**F1**\" quality metric"),
        "{}",
        text[0]
    );
    for c in &found {
        assert!(
            text.iter().any(|t| t.starts_with(&format!(
                "**{}**: This data transformation strategy",
                c.name
            ))),
            "{} is explained",
            c.name
        );
    }
    // The tuning cell is the job's own request, which the tuner accepts as it is.
    let tune = text
        .iter()
        .find(|t| t.starts_with("%%tune churn-nb --replace\n"))
        .unwrap();
    let body = tune.split_once('\n').unwrap().1;
    let given: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(given, request);
    rustmaker_ml::tune::config::parse(given).unwrap();
    assert!(text.contains(&"%tune analytics churn-nb".to_owned()));
    assert!(text.contains(
        &"%autopilot rank churn --tuning-job churn-nb --save-best /d/best -o leaderboard"
            .to_owned()
    ));
    assert!(text.contains(
        &"%predict --model /d/best/model.tar.gz --data /d/validation.parquet -o scored".to_owned()
    ));
    assert_eq!(
        nb.to_json(),
        notebook(&definition).to_json(),
        "the same job writes the same file"
    );
    // An ensembling job's notebook rebuilds the ensemble in its leaderboard.
    let ensembling = notebook(&Definition {
        ensemble: true,
        ..definition
    });
    let text: Vec<String> = match nbformat::parse_notebook(&ensembling.to_json()).unwrap() {
        nbformat::Notebook::V4(nb) => nb.cells.iter().map(|c| c.source().concat()).collect(),
        _ => panic!("not a strict nbformat 4.5 notebook"),
    };
    assert!(text.contains(
        &"%autopilot rank churn --tuning-job churn-nb --save-best /d/best --ensemble -o leaderboard"
            .to_owned()
    ));
}
