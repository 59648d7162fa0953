//! Every built-in algorithm on the classic tables, through the whole job: preparation, the
//! split, the fit, the metrics in the store, and the model artifact, which must reload and
//! predict the same values.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use rustmaker_ml::algorithms::Algorithm;
use rustmaker_ml::job::{self, JobKind, JobSpec, Validation, Watcher};
use rustmaker_ml::store::{Status, Store};

struct Quiet;

impl Watcher for Quiet {
    fn metrics(&mut self, _: u64, _: &[(String, f64)]) {}
    fn log(&mut self, _: &str) {}
    fn should_stop(&mut self) -> bool {
        false
    }
}

fn table(name: &str) -> DataFrame {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../tests/data/ml/{name}.csv"));
    CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(path))
        .unwrap()
        .finish()
        .unwrap()
}

fn train(
    store: &Store,
    dir: &Path,
    name: &str,
    algorithm: &str,
    data: &str,
    hp: &[(&str, &str)],
) -> (PathBuf, BTreeMap<String, f64>) {
    let spec = JobSpec {
        name: name.into(),
        experiment: "classics".into(),
        trial: None,
        hyperparameters: hp
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        dir: dir.join(name),
        seed: 7,
        replace: false,
        definition: None,
    };
    let kind = JobKind::Builtin {
        algorithm: Algorithm::parse(algorithm).unwrap(),
        train: table(data),
        train_uri: data.into(),
        validation: Validation::Fraction(0.25),
        target: Some("target".into()),
        problem: None,
    };
    let result = job::run(spec, kind, store, &mut Quiet).unwrap();
    assert_eq!(
        result.status,
        Status::Completed,
        "{name}: {:?}",
        result.failure_reason
    );
    (result.model.unwrap(), result.metrics.into_iter().collect())
}

/// (algorithm, table, hyperparameters, metric, least acceptable value)
type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
    f64,
);

const CASES: &[Case] = &[
    (
        "logistic-regression",
        "iris",
        &[],
        "validation:accuracy",
        0.89,
    ),
    (
        "logistic-regression",
        "breast_cancer",
        &[],
        "validation:accuracy",
        0.94,
    ),
    ("naive-bayes", "iris", &[], "validation:accuracy", 0.89),
    (
        "naive-bayes",
        "breast_cancer",
        &[],
        "validation:accuracy",
        0.90,
    ),
    (
        "decision-tree",
        "iris",
        &[("max_depth", "5")],
        "validation:accuracy",
        0.86,
    ),
    ("decision-tree", "wine", &[], "validation:accuracy", 0.80),
    (
        "random-forest",
        "wine",
        &[("num_trees", "50")],
        "validation:accuracy",
        0.93,
    ),
    (
        "random-forest",
        "breast_cancer",
        &[("num_trees", "50")],
        "validation:accuracy",
        0.93,
    ),
    (
        "extra-trees",
        "wine",
        &[("num_trees", "50")],
        "validation:accuracy",
        0.93,
    ),
    (
        "extra-trees",
        "breast_cancer",
        &[("num_trees", "50")],
        "validation:accuracy",
        0.93,
    ),
    (
        "gradient-boosting",
        "breast_cancer",
        &[],
        "validation:accuracy",
        0.93,
    ),
    (
        "gradient-boosting",
        "wine",
        &[],
        "validation:accuracy",
        0.88,
    ),
    (
        "gradient-boosting",
        "breast_cancer",
        &[
            ("grow_policy", "lossguide"),
            ("max_leaves", "8"),
            ("max_depth", "0"),
        ],
        "validation:accuracy",
        0.93,
    ),
    (
        "gradient-boosting",
        "iris",
        &[("grow_policy", "lossguide"), ("max_leaves", "4")],
        "validation:accuracy",
        0.89,
    ),
    ("svm", "wine", &[], "validation:accuracy", 0.93),
    (
        "svm",
        "breast_cancer",
        &[("kernel", "linear")],
        "validation:accuracy",
        0.93,
    ),
    ("linear-regression", "diabetes", &[], "validation:r2", 0.35),
    (
        "linear-regression",
        "diabetes",
        &[("penalty", "l2"), ("alpha", "0.1")],
        "validation:r2",
        0.35,
    ),
    (
        "random-forest",
        "diabetes",
        &[("num_trees", "50")],
        "validation:r2",
        0.25,
    ),
    (
        "extra-trees",
        "diabetes",
        &[("num_trees", "50")],
        "validation:r2",
        0.25,
    ),
    (
        "gradient-boosting",
        "diabetes",
        &[("eta", "0.05")],
        "validation:r2",
        0.18,
    ),
    (
        "decision-tree",
        "diabetes",
        &[("max_depth", "3")],
        "validation:r2",
        0.12,
    ),
    (
        "svm",
        "diabetes",
        &[("kernel", "linear")],
        "validation:r2",
        0.30,
    ),
    (
        "mlp",
        "iris",
        &[("hidden_layer_sizes", "32")],
        "validation:accuracy",
        0.85,
    ),
    (
        "mlp",
        "diabetes",
        &[("hidden_layer_sizes", "32"), ("max_iter", "100")],
        "validation:r2",
        0.2,
    ),
    ("gaussian-process", "diabetes", &[], "validation:r2", 0.35),
    (
        "gaussian-process",
        "diabetes",
        &[("kernel", "matern52"), ("hyper_rows", "150")],
        "validation:r2",
        0.35,
    ),
];

#[test]
fn every_algorithm_reaches_its_quality_and_its_artifact_predicts_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("experiments.db")).unwrap();
    for (i, (algorithm, data, hp, metric, least)) in CASES.iter().enumerate() {
        let name = format!("{algorithm}-{}-{i}", data.replace('_', "-"));
        let (model, metrics) = train(&store, dir.path(), &name, algorithm, data, hp);
        let value = metrics[*metric];
        eprintln!("{name}: {metric} = {value:.4}");
        assert!(
            value >= *least,
            "{name}: {metric} = {value}, wanted at least {least}"
        );
        // The store holds the same final value.
        let c = store.component(&name).unwrap().unwrap();
        let stored = c.metrics.iter().find(|m| m.name == *metric).unwrap().last;
        assert!(
            (stored - value).abs() < 1e-12,
            "{name}: store has {stored}, job said {value}"
        );
        // Reloaded from model.tar.gz, the model scores the whole table identically.
        let frame = table(data);
        let first = job::predict(&model, &frame).unwrap();
        let again = job::predict(&model, &frame.clone()).unwrap();
        assert!(first.equals_missing(&again));
        let column = if metric.ends_with("r2") {
            "score"
        } else {
            "predicted_label"
        };
        assert_eq!(first.column(column).unwrap().len(), frame.height());
    }
}

#[test]
fn kmeans_finds_the_iris_species() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("experiments.db")).unwrap();
    let spec = JobSpec {
        name: "iris-kmeans".into(),
        experiment: "classics".into(),
        trial: None,
        hyperparameters: [
            ("k".to_owned(), "3".to_owned()),
            ("n_init".to_owned(), "5".to_owned()),
        ]
        .into(),
        dir: dir.path().join("iris-kmeans"),
        seed: 3,
        replace: false,
        definition: None,
    };
    let kind = JobKind::Builtin {
        algorithm: Algorithm::KMeans,
        train: table("iris"),
        train_uri: "iris".into(),
        validation: Validation::Fraction(0.0),
        target: Some("target".into()),
        problem: None,
    };
    let result = job::run(spec, kind, &store, &mut Quiet).unwrap();
    assert_eq!(result.status, Status::Completed);
    let scored = job::predict(result.model.as_ref().unwrap(), &table("iris")).unwrap();
    // Each species falls mostly into one cluster: purity over 0.8.
    let clusters = scored
        .column("closest_cluster")
        .unwrap()
        .u32()
        .unwrap()
        .clone();
    let species = scored.column("target").unwrap().str().unwrap().clone();
    let mut counts: BTreeMap<(u32, String), usize> = BTreeMap::new();
    for (c, s) in clusters.iter().zip(species.iter()) {
        *counts
            .entry((c.unwrap(), s.unwrap().to_owned()))
            .or_default() += 1;
    }
    let mut best: BTreeMap<u32, usize> = BTreeMap::new();
    for ((c, _), n) in counts {
        let e = best.entry(c).or_default();
        *e = (*e).max(n);
    }
    let purity = best.values().sum::<usize>() as f64 / 150.0;
    assert!(purity > 0.8, "purity {purity}");
    assert!(result.metrics.iter().any(|(k, _)| k == "train:msd"));
}

/// The model read back from model.tar.gz predicts exactly what the fitted model predicted.
#[test]
fn artifacts_reload_to_identical_predictions() {
    use rustmaker_ml::algorithms::{self, FitData, Model, Monitor, Output};
    use rustmaker_ml::artifact::{self, Manifest};
    use rustmaker_ml::prep;
    use std::sync::atomic::AtomicBool;

    fn values(output: &Output) -> Vec<f64> {
        match output {
            Output::Classes(p) => p.iter().copied().collect(),
            Output::Values(v) => v.to_vec(),
            Output::Clusters(c, d) => c
                .iter()
                .map(|x| *x as f64)
                .chain(d.iter().copied())
                .collect(),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    for (algorithm, data) in [
        ("linear-regression", "diabetes"),
        ("logistic-regression", "wine"),
        ("logistic-regression", "breast_cancer"),
        ("decision-tree", "wine"),
        ("random-forest", "diabetes"),
        ("extra-trees", "wine"),
        ("extra-trees", "diabetes"),
        ("gradient-boosting", "iris"),
        ("gradient-boosting", "breast_cancer"),
        ("kmeans", "wine"),
        ("naive-bayes", "iris"),
        ("svm", "iris"),
        ("svm", "diabetes"),
        ("mlp", "wine"),
        ("mlp", "diabetes"),
        ("gaussian-process", "diabetes"),
    ] {
        let algorithm = Algorithm::parse(algorithm).unwrap();
        let mut frame = table(data);
        let target = if algorithm == Algorithm::KMeans {
            frame = frame.drop("target").unwrap();
            None
        } else {
            Some("target")
        };
        let (schema, prepared) = prep::fit(&frame, target, None).unwrap();
        let hp = algorithm.resolve(&BTreeMap::new()).unwrap();
        let stop = AtomicBool::new(false);
        let model = algorithms::fit(
            algorithm,
            &hp,
            &FitData {
                x: &prepared.x,
                y: &prepared.y,
                classes: schema.classes.len(),
                problem: schema.problem_type,
                validation: None,
                seed: 5,
            },
            &mut Monitor {
                stop: &stop,
                report: &mut |_, _| {},
                debug: None,
            },
        )
        .unwrap();
        let path = dir
            .path()
            .join(format!("{}-{data}.tar.gz", algorithm.name()));
        let manifest = Manifest {
            format_version: 1,
            training_job: "t".into(),
            algorithm: algorithm.name().into(),
            hyperparameters: hp.0.clone(),
            schema: Some(schema.clone()),
            created: String::new(),
        };
        artifact::write(&path, &manifest, Some(&model), None).unwrap();
        let (read_manifest, read_model) = artifact::read(&path).unwrap();
        assert_eq!(read_manifest, manifest);
        let read_model: Model = read_model.unwrap();
        let x = prep::transform(&schema, &frame).unwrap();
        assert_eq!(
            values(&model.predict(&x)),
            values(&read_model.predict(&x)),
            "{} on {data}",
            algorithm.name()
        );
    }
}
