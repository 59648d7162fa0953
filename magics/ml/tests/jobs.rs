//! Training jobs end to end without a notebook: script mode in SageMaker's layout, failures,
//! stops, bad input refused before anything is recorded, and the experiment store under two
//! writing processes and across a schema upgrade.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use polars::prelude::*;
use regex::Regex;
use rustmaker_ml::algorithms::Algorithm;
use rustmaker_ml::job::{self, Channel, JobKind, JobSpec, Validation, Watcher};
use rustmaker_ml::prep::ProblemType;
use rustmaker_ml::store::{NewComponent, Status, Store, MIGRATIONS};

#[derive(Default)]
struct Recorder {
    lines: Vec<String>,
    metrics: Vec<(u64, String, f64)>,
    stop_after: Option<Instant>,
    /// Stop once the program has printed this line.
    stop_on: Option<&'static str>,
}

impl Watcher for Recorder {
    fn metrics(&mut self, step: u64, values: &[(String, f64)]) {
        for (k, v) in values {
            self.metrics.push((step, k.clone(), *v));
        }
    }
    fn log(&mut self, line: &str) {
        self.lines.push(line.to_owned());
    }
    fn should_stop(&mut self) -> bool {
        self.stop_after.is_some_and(|t| Instant::now() > t)
            || self
                .stop_on
                .is_some_and(|line| self.lines.iter().any(|l| l == line))
    }
}

fn spec(dir: &Path, name: &str, hp: &[(&str, &str)]) -> JobSpec {
    JobSpec {
        name: name.into(),
        experiment: "jobs".into(),
        trial: None,
        hyperparameters: hp
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        dir: dir.join(name),
        seed: 1,
        replace: false,
        definition: None,
    }
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

const TRAIN_PY: &str = r#"
import json, os, sys
hps = json.load(open(os.path.join(os.environ["SM_INPUT_CONFIG_DIR"], "hyperparameters.json")))
assert json.loads(os.environ["SM_HPS"]) == hps, (os.environ["SM_HPS"], hps)
assert os.environ["SM_HP_EPOCHS"] == hps["epochs"]
assert sys.argv[1:] == sum([["--" + k, v] for k, v in sorted(hps.items())], []), sys.argv
channels = json.loads(os.environ["SM_CHANNELS"])
train_dir = os.environ["SM_CHANNEL_TRAIN"]
rows = sum(len(open(os.path.join(train_dir, f)).read().splitlines()) - 1 for f in os.listdir(train_dir))
print(f"channels={sorted(channels)} rows={rows}")
loss = 1.0
for epoch in range(int(hps["epochs"])):
    loss *= float(hps["decay"])
    print(f"epoch {epoch}: loss={loss:.4f}")
with open(os.path.join(os.environ["SM_MODEL_DIR"], "weights.json"), "w") as f:
    json.dump({"loss": loss}, f)
"#;

#[test]
fn script_mode_runs_in_the_sagemaker_layout_and_its_metrics_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("e.db")).unwrap();
    let entry = script(dir.path(), "train.py", TRAIN_PY);
    let frame = df!("x" => [1.0, 2.0, 3.0], "y" => [0, 1, 0]).unwrap();
    let mut rec = Recorder::default();
    let kind = JobKind::Script {
        entry_point: entry,
        channels: vec![("train".into(), Channel::Frame(frame), "frame:df".into())],
        metric_definitions: vec![("train:loss".into(), Regex::new(r"loss=([0-9.]+)").unwrap())],
        max_runtime: None,
    };
    let result = job::run(
        spec(
            dir.path(),
            "script-job",
            &[("epochs", "4"), ("decay", "0.5")],
        ),
        kind,
        &store,
        &mut rec,
    )
    .unwrap();
    assert_eq!(
        result.status,
        Status::Completed,
        "{:?}\n{}",
        result.failure_reason,
        rec.lines.join("\n")
    );
    assert!(
        rec.lines.iter().any(|l| l == "channels=['train'] rows=3"),
        "{:?}",
        rec.lines
    );
    let losses: Vec<f64> = rec.metrics.iter().map(|m| m.2).collect();
    assert_eq!(losses, vec![0.5, 0.25, 0.125, 0.0625]);
    let c = store.component("script-job").unwrap().unwrap();
    let loss = &c.metrics[0];
    assert_eq!((loss.count, loss.last, loss.min), (4, 0.0625, 0.0625));
    // The model directory went into model.tar.gz with a manifest.
    let (manifest, model) = rustmaker_ml::artifact::read(result.model.as_ref().unwrap()).unwrap();
    assert_eq!(manifest.algorithm, "script:train.py");
    assert!(model.is_none());
    let listing = std::process::Command::new("tar")
        .arg("tzf")
        .arg(result.model.unwrap())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&listing.stdout).contains("weights.json"));
    // The log is kept for `%train logs`.
    let log = std::fs::read_to_string(job::log_path(&dir.path().join("script-job"))).unwrap();
    assert!(log.contains("epoch 3: loss=0.0625"));
}

#[test]
fn a_failing_script_fails_the_job_with_its_last_lines() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("e.db")).unwrap();
    let entry = script(
        dir.path(),
        "bad.py",
        "print('loading data')\nraise ValueError('no column named label')\n",
    );
    let kind = JobKind::Script {
        entry_point: entry,
        channels: vec![],
        metric_definitions: vec![],
        max_runtime: None,
    };
    let result = job::run(
        spec(dir.path(), "bad-job", &[]),
        kind,
        &store,
        &mut Recorder::default(),
    )
    .unwrap();
    assert_eq!(result.status, Status::Failed);
    let reason = result.failure_reason.unwrap();
    assert!(
        reason.contains("exit status 1") && reason.contains("ValueError: no column named label"),
        "{reason}"
    );
    let c = store.component("bad-job").unwrap().unwrap();
    assert_eq!(c.status, Status::Failed);
    assert_eq!(c.failure_reason.as_deref(), Some(reason.as_str()));

    // SageMaker's convention: output/failure says why.
    let entry = script(dir.path(), "explains.py", "import os\nopen(os.path.join(os.environ['SM_OUTPUT_DIR'], 'failure'), 'w').write('out of patience')\nraise SystemExit(3)\n");
    let kind = JobKind::Script {
        entry_point: entry,
        channels: vec![],
        metric_definitions: vec![],
        max_runtime: None,
    };
    let result = job::run(
        spec(dir.path(), "explains", &[]),
        kind,
        &store,
        &mut Recorder::default(),
    )
    .unwrap();
    assert!(result
        .failure_reason
        .unwrap()
        .contains("(exit status 3): out of patience"));
}

#[test]
fn stopping_kills_the_script_and_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("e.db")).unwrap();
    let marker = dir.path().join("child.pid");
    let body = format!(
        "import subprocess, time\np = subprocess.Popen(['sleep', '60'])\nopen({:?}, 'w').write(str(p.pid))\nprint('started', flush=True)\ntime.sleep(60)\n",
        marker.display().to_string()
    );
    let entry = script(dir.path(), "slow.py", &body);
    let kind = JobKind::Script {
        entry_point: entry,
        channels: vec![],
        metric_definitions: vec![],
        max_runtime: None,
    };
    let mut rec = Recorder {
        // The script prints "started" once its child is running and its pid written.
        stop_on: Some("started"),
        ..Default::default()
    };
    let started = Instant::now();
    let result = job::run(spec(dir.path(), "slow", &[]), kind, &store, &mut rec).unwrap();
    assert_eq!(result.status, Status::Stopped);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(
        store.component("slow").unwrap().unwrap().status,
        Status::Stopped
    );
    let child: i32 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // Gone, or a zombie waiting for init to reap it.
    let alive = std::fs::read_to_string(format!("/proc/{child}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    });
    assert!(!alive, "the script's child {child} outlived the stop");

    // A time limit stops the job too.
    let entry = script(dir.path(), "slower.py", "import time\ntime.sleep(60)\n");
    let kind = JobKind::Script {
        entry_point: entry,
        channels: vec![],
        metric_definitions: vec![],
        max_runtime: Some(Duration::from_secs(1)),
    };
    let result = job::run(
        spec(dir.path(), "slower", &[]),
        kind,
        &store,
        &mut Recorder::default(),
    )
    .unwrap();
    assert_eq!(result.status, Status::Stopped);
    assert!(result
        .failure_reason
        .unwrap()
        .contains("MaxRuntimeInSeconds"));
}

#[test]
fn a_stop_request_from_another_store_handle_stops_a_builtin_job() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.db");
    let store = Store::open(&path).unwrap();
    let n = 200_000;
    let frame = df!(
        "a" => (0..n).map(|i| (i % 97) as f64).collect::<Vec<_>>(),
        "b" => (0..n).map(|i| (i % 13) as f64).collect::<Vec<_>>(),
        "y" => (0..n).map(|i| ((i % 97) * (i % 13)) as f64).collect::<Vec<_>>()
    )
    .unwrap();
    // Another handle (as another kernel would have) asks once the job is training.
    let other = std::thread::spawn(move || {
        let store = Store::open(&path).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(c)) = store.component("long-boost") {
                if c.metrics.iter().any(|m| m.count >= 2) {
                    return store.request_stop("long-boost").unwrap();
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the job never started training");
    });
    let kind = JobKind::Builtin {
        algorithm: Algorithm::GradientBoosting,
        train: frame,
        train_uri: "generated".into(),
        validation: Validation::Fraction(0.1),
        target: Some("y".into()),
        problem: None,
    };
    let result = job::run(
        spec(dir.path(), "long-boost", &[("num_round", "10000")]),
        kind,
        &store,
        &mut Recorder::default(),
    )
    .unwrap();
    assert_eq!(other.join().unwrap(), Status::Stopping);
    assert_eq!(result.status, Status::Stopped);
    assert_eq!(
        store.component("long-boost").unwrap().unwrap().status,
        Status::Stopped
    );
}

fn builtin(
    algorithm: &str,
    frame: DataFrame,
    target: &str,
    problem: Option<ProblemType>,
) -> Result<JobKind, String> {
    Ok(JobKind::Builtin {
        algorithm: Algorithm::parse(algorithm).map_err(|e| e.to_string())?,
        train: frame,
        train_uri: "test".into(),
        validation: Validation::Fraction(0.2),
        target: Some(target.into()),
        problem,
    })
}

#[test]
fn bad_input_is_refused_before_anything_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("e.db")).unwrap();
    let iris = df!("x" => [1.0, 2.0, 3.0, 4.0, 5.0], "colour" => ["a", "b", "a", "b", "a"], "kind" => ["p", "q", "p", "q", "r"]).unwrap();
    let run = |kind: JobKind, hp: &[(&str, &str)]| {
        job::run(
            spec(dir.path(), "bad", hp),
            kind,
            &store,
            &mut Recorder::default(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
    };
    let err = builtin("gradient-bosting", iris.clone(), "kind", None)
        .err()
        .unwrap();
    assert!(err.contains("did you mean `gradient-boosting`"), "{err}");
    let err = run(
        builtin("random-forest", iris.clone(), "label", None).unwrap(),
        &[],
    );
    assert!(
        err.contains("no column `label`") && err.contains("x, colour, kind"),
        "{err}"
    );
    let err = run(
        builtin(
            "linear-regression",
            iris.clone(),
            "kind",
            Some(ProblemType::Regression),
        )
        .unwrap(),
        &[],
    );
    assert!(err.contains("not numeric"), "{err}");
    let err = run(
        builtin("linear-regression", iris.clone(), "kind", None).unwrap(),
        &[],
    );
    assert!(
        err.contains("linear-regression does not do multiclass"),
        "{err}"
    );
    let err = run(
        builtin("gaussian-process", iris.clone(), "kind", None).unwrap(),
        &[],
    );
    assert!(
        err.contains("gaussian-process does not do multiclass"),
        "{err}"
    );
    let err = run(
        builtin("decision-tree", iris.clear(), "kind", None).unwrap(),
        &[],
    );
    assert!(err.contains("no rows"), "{err}");
    let err = run(
        builtin("random-forest", iris.clone(), "kind", None).unwrap(),
        &[("num_trees", "0")],
    );
    assert!(
        err.contains("num_trees=0 is out of range") && err.contains("from 1 to 2000"),
        "{err}"
    );
    let err = run(
        builtin("svm", iris.clone(), "kind", None).unwrap(),
        &[("C", "-1")],
    );
    assert!(err.contains("C=-1"), "{err}");
    let err = job::run(
        spec(dir.path(), "bad name!", &[]),
        builtin("svm", iris.clone(), "kind", None).unwrap(),
        &store,
        &mut Recorder::default(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("not a valid training job name"), "{err}");
    let kind = JobKind::Script {
        entry_point: dir.path().join("missing.py"),
        channels: vec![],
        metric_definitions: vec![],
        max_runtime: None,
    };
    assert!(run(kind, &[]).contains("does not exist"));
    assert!(
        store.component("bad").unwrap().is_none(),
        "a refused job is not recorded"
    );
}

#[test]
fn prediction_refuses_data_that_does_not_fit_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("e.db")).unwrap();
    let frame = df!("size" => (0..40).map(f64::from).collect::<Vec<_>>(), "colour" => (0..40).map(|i| if i % 2 == 0 { "red" } else { "blue" }).collect::<Vec<_>>(), "y" => (0..40).map(|i| (i % 2) as f64).collect::<Vec<_>>()).unwrap();
    let result = job::run(
        spec(dir.path(), "fit", &[]),
        builtin("naive-bayes", frame, "y", None).unwrap(),
        &store,
        &mut Recorder::default(),
    )
    .unwrap();
    let model = result.model.unwrap();
    let err = job::predict(&model, &df!("size" => [1.0]).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("`colour`"), "{err}");
    let err = job::predict(
        &model,
        &df!("size" => ["big"], "colour" => ["red"]).unwrap(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("`size` was numeric in training"), "{err}");
    let scored = job::predict(
        &model,
        &df!("size" => [2.0, 3.0], "colour" => ["red", "blue"]).unwrap(),
    )
    .unwrap();
    let labels: Vec<Option<&str>> = scored
        .column("predicted_label")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(labels, vec![Some("0"), Some("1")]);
    let err = rustmaker_ml::artifact::read(&dir.path().join("e.db"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("model.tar.gz"), "{err}");
}

/// Two processes write to one store at once; every row of both arrives.
#[test]
fn numbers_given_row_major_get_the_answers_a_frame_of_them_gets() {
    use rustmaker_magics::services::ModelLoader;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("e.db")).unwrap();
    let n = 300;
    let a: Vec<Option<f64>> = (0..n)
        .map(|i| (i % 7 != 0).then_some(f64::from(i)))
        .collect();
    let b: Vec<f64> = (0..n).map(|i| f64::from((i * 37) % 101)).collect();
    let y: Vec<&str> = (0..n)
        .map(|i| ["low", "mid", "high"][((i + (i * 37) % 101) / 140) as usize % 3])
        .collect();
    for (algorithm, target) in [
        ("gradient-boosting", "y"),
        ("random-forest", "y"),
        ("gradient-boosting", "b"),
    ] {
        let frame = df!("a" => a.clone(), "b" => b.clone(), "y" => y.clone()).unwrap();
        let frame = if target == "b" {
            frame.drop("y").unwrap()
        } else {
            frame
        };
        let name = format!("{algorithm}-{target}");
        let result = job::run(
            spec(dir.path(), &name, &[]),
            builtin(algorithm, frame.clone(), target, None).unwrap(),
            &store,
            &mut Recorder::default(),
        )
        .unwrap();
        let served = rustmaker_ml::serving::Loader
            .load(&result.model.unwrap())
            .unwrap();
        let features = frame.drop(target).unwrap();
        let from_frame = served.predict(&features).unwrap();
        let width = features.width();
        let values: Vec<f64> = (0..n as usize)
            .flat_map(|i| {
                features
                    .columns()
                    .iter()
                    .map(move |c| c.get(i).unwrap().extract::<f64>().unwrap_or(f64::NAN))
            })
            .collect();
        assert_eq!(values.len(), width * n as usize);
        let from_numbers = served.predict_numbers(&values).unwrap().unwrap();
        assert_eq!(from_numbers, from_frame, "{name}");
    }
}

#[test]
fn a_served_model_answers_what_predict_adds() {
    use rustmaker_magics::services::ModelLoader;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("e.db")).unwrap();
    let frame = df!("size" => (0..40).map(f64::from).collect::<Vec<_>>(), "colour" => (0..40).map(|i| if i % 3 == 0 { "red" } else { "blue" }).collect::<Vec<_>>(), "y" => (0..40).map(|i| (i % 3 == 0) as u8 as f64).collect::<Vec<_>>()).unwrap();
    let result = job::run(
        spec(dir.path(), "fit", &[]),
        builtin("random-forest", frame, "y", None).unwrap(),
        &store,
        &mut Recorder::default(),
    )
    .unwrap();
    let artifact = result.model.unwrap();
    let served = rustmaker_ml::serving::Loader.load(&artifact).unwrap();
    assert_eq!(served.features(), ["size", "colour"]);
    let rows = df!("size" => [2.0, 3.0, 39.0], "colour" => ["red", "blue", "red"]).unwrap();
    let answers = served.predict(&rows).unwrap();
    let scored = job::predict(&artifact, &rows).unwrap();
    let names: Vec<&str> = answers
        .columns()
        .iter()
        .map(|c| c.name().as_str())
        .collect();
    assert_eq!(names, ["predicted_label", "probability"]);
    for name in names {
        assert_eq!(answers.column(name).unwrap(), scored.column(name).unwrap());
    }
    // A categorical feature needs its text: numbers alone are not enough for this model.
    assert!(served.predict_numbers(&[2.0, 1.0]).is_none());
    // Rows that do not fit are the caller's to fix; a broken artifact does not load.
    let err = served.predict(&df!("size" => [1.0]).unwrap()).unwrap_err();
    assert!(
        matches!(err, rustmaker_magics::MagicError::Data(_))
            && err.to_string().contains("`colour`"),
        "{err}"
    );
    let err = rustmaker_ml::serving::Loader
        .load(&dir.path().join("e.db"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("model.tar.gz"), "{err}");
}

#[test]
fn two_processes_writing_at_once_lose_nothing() {
    if let Ok(spec) = std::env::var("RUSTMAKER_TEST_WRITER") {
        let (path, who) = spec.split_once('|').unwrap();
        let store = Store::open(Path::new(path)).unwrap();
        for j in 0..20 {
            let name = format!("{who}-{j}");
            store
                .start(&NewComponent {
                    experiment: "shared",
                    trial: &name,
                    name: &name,
                    source: "training-job",
                    job_dir: None,
                    parameters: &[("j".into(), j.to_string())],
                    inputs: &[],
                    replace: false,
                })
                .unwrap();
            for step in 0..25 {
                store
                    .log_metrics(&name, step, &[("loss".into(), step as f64)])
                    .unwrap();
            }
            store.finish(&name, Status::Completed, None).unwrap();
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.db");
    Store::open(&path).unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = ["a", "b"]
        .iter()
        .map(|who| {
            std::process::Command::new(&exe)
                .args([
                    "two_processes_writing_at_once_lose_nothing",
                    "--exact",
                    "--nocapture",
                ])
                .env("RUSTMAKER_TEST_WRITER", format!("{}|{who}", path.display()))
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let store = Store::open(&path).unwrap();
    let names = store.component_names(Some("shared")).unwrap();
    assert_eq!(names.len(), 40);
    for n in names {
        let c = store.component(&n).unwrap().unwrap();
        assert_eq!(c.status, Status::Completed);
        assert_eq!(c.metrics[0].count, 25, "{n}");
    }
}

#[test]
fn a_store_of_the_first_schema_is_migrated_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        // What the first released schema wrote.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute_batch(
            "INSERT INTO experiments VALUES ('old', NULL, 1.0);
             INSERT INTO trials VALUES ('t1', 'old', 1.0);
             INSERT INTO trial_components (name, trial, status, start_time, end_time, created) VALUES ('c1', 't1', 'Completed', 1.0, 5.0, 1.0);
             INSERT INTO parameters VALUES ('c1', 'eta', 0.3, '0.3');
             INSERT INTO metrics VALUES ('c1', 'validation:auc', 0, 0.8, 2.0), ('c1', 'validation:auc', 1, 0.9, 3.0);
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len());
    let c = store.component("c1").unwrap().unwrap();
    assert_eq!(c.source, "training-job");
    assert_eq!(c.parameters, vec![("eta".to_owned(), "0.3".to_owned())]);
    assert_eq!(c.metrics[0].last, 0.9);
    // The new columns work on the old rows.
    store
        .add_output(
            "c1",
            "SageMaker.ModelArtifact",
            "/m.tar.gz",
            "application/x-tar",
        )
        .unwrap();
    assert_eq!(store.request_stop("c1").unwrap(), Status::Completed);

    // A store from a newer rustmaker is refused, not changed.
    let newer = dir.path().join("newer.db");
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99;")
        .unwrap();
    let err = Store::open(&newer).err().unwrap().to_string();
    assert!(err.contains("newer rustmaker"), "{err}");
}
