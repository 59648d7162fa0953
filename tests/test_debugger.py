"""Debugger: tensors saved while a built-in job trains, read back by smdebug's own
`create_trial`; the built-in rules firing on jobs made to trigger them, quiet on healthy
ones, stopping a job with the StopTraining action; refusals of misconfigurations; S3 output
on moto; and the notebook side (%train --debugger, %debugger, %train describe)."""

from __future__ import annotations

import csv
import json
import math
import os
import pathlib
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import AWS, BIN, error_of, ok, start_kernel_with_env

DATA = pathlib.Path(__file__).resolve().parent / "data" / "ml"
smdebug = pytest.importorskip("smdebug")
from smdebug.core.modes import ModeKeys  # noqa: E402
from smdebug.trials import create_trial  # noqa: E402


@pytest.fixture(scope="module")
def home(tmp_path_factory, moto_url):
    h = tmp_path_factory.mktemp("debugger-home")
    env = dict(os.environ, HOME=str(h), RUSTMAKER_HOME=str(h), RUSTMAKER_DATA_DIR=str(h / "data"),
               RUSTMAKER_EXPERIMENT="debugging", AWS_ENDPOINT_URL=moto_url, RUST_BACKTRACE="0",
               RUSTMAKER_PYTHON=sys.executable, **AWS)
    env.pop("RUSTMAKER_EXPERIMENTS_DB", None)
    return h, env


def train(home, *args, check=True) -> subprocess.CompletedProcess:
    _, env = home
    out = subprocess.run([BIN, "train", *args], env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert out.returncode == 0, out.stdout + out.stderr
    return out


def data_of(outs, mime):
    """The first display of the cell that has this MIME type."""
    for m in outs:
        if m["msg_type"] in ("display_data", "execute_result") and mime in m["content"]["data"]:
            return m["content"]["data"][mime]
    raise AssertionError(f"no {mime} among {[m['msg_type'] for m in outs]}")


def job_dir(home, name: str) -> pathlib.Path:
    return home[0] / "data" / "training-jobs" / name


def statuses(home, name: str) -> dict:
    rules = json.loads((job_dir(home, name) / "debug-rules.json").read_text())
    return {r["RuleConfigurationName"]: r for r in rules}


def series(home, job: str, metric: str) -> dict[int, float]:
    db = sqlite3.connect(home[0] / "data" / "experiments.db")
    rows = db.execute("SELECT step, value FROM metrics WHERE component = ? AND name = ?", (job, metric)).fetchall()
    return dict(rows)


def trial_of(home, job: str):
    return create_trial(str(job_dir(home, job) / "debug-output"))


def test_smdebug_reads_a_boosting_job(home):
    train(home, "gb", "--algorithm", "gradient-boosting", "--data", str(DATA / "breast_cancer.csv"),
          "--target", "target", "--hp", "num_round=25", "--debugger", "--save-interval", "5",
          "--collections", "losses,metrics,feature_importance,trees,predictions,labels")
    t = trial_of(home, "gb")
    # Rounds 0, 5, …, 20 in TRAIN, and the job's last step in EVAL.
    assert t.steps(mode=ModeKeys.TRAIN) == [0, 5, 10, 15, 20]
    assert t.steps(mode=ModeKeys.EVAL) == [0] and t.steps() == [0, 5, 10, 15, 20, 25]
    assert {"losses", "metrics", "feature_importance", "trees", "predictions", "labels",
            "hyperparameters"} <= set(t.collections())
    assert t.tensor_names(collection="losses") == ["train-logloss", "validation-logloss"]
    # Each saved round's loss is the number the job reported for that round (its step is round + 1).
    reported = series(home, "gb", "train:logloss")
    saved = t.tensor("train-logloss").values(mode=ModeKeys.TRAIN)
    for step, value in saved.items():
        assert math.isclose(float(value), reported[step + 1], rel_tol=1e-12), (step, value)
    assert float(t.tensor("hyperparameters/num_round").value(0)) == 25.0
    # XGBoost's importances by feature name; the most used feature has the most splits.
    weights = {n.split("/")[-1]: float(t.tensor(n).value(20)) for n in t.tensor_names(regex="feature_importance/weight/")}
    assert weights and all(w >= 1 for w in weights.values())
    # Trees as trees_to_dataframe's columns: 21 rounds of trees by step 20.
    assert int(max(t.tensor("trees/Tree").value(20))) == 20
    # Predictions and labels of the 20 % validation rows at the EVAL step.
    labels = t.tensor("labels").value(0, mode=ModeKeys.EVAL)
    predictions = t.tensor("predictions").value(0, mode=ModeKeys.EVAL)
    assert len(labels) == len(predictions) == round(569 * 0.2)
    accuracy = sum((p > 0.5) == (y == 1) for p, y in zip(predictions, labels)) / len(labels)
    assert math.isclose(accuracy, series(home, "gb", "validation:accuracy")[25], rel_tol=1e-9)


def test_tensorboard_reads_the_scalars(home):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    train(home, "gb-tb", "--algorithm", "gradient-boosting", "--data", str(DATA / "breast_cancer.csv"),
          "--target", "target", "--hp", "num_round=12", "--save-interval", "4", "--tensorboard")
    board = EventAccumulator(str(job_dir(home, "gb-tb") / "tensorboard" / "TRAIN"))
    board.Reload()
    assert {"train-logloss", "validation-logloss", "validation-accuracy"} <= set(board.Tags()["scalars"])
    events = board.Scalars("train-logloss")
    assert [e.step for e in events] == [0, 4, 8]
    reported = series(home, "gb-tb", "train:logloss")
    for e in events:
        assert math.isclose(e.value, reported[e.step + 1], rel_tol=1e-6)


def test_smdebug_reads_a_linear_job(home):
    train(home, "lr", "--algorithm", "logistic-regression", "--data", str(DATA / "breast_cancer.csv"),
          "--target", "target", "--save-interval", "1", "--collections", "losses,weights,biases,gradients")
    t = trial_of(home, "lr")
    steps = t.steps(mode=ModeKeys.TRAIN)
    assert steps[:3] == [0, 1, 2] and len(steps) > 5
    # The solver starts from zero weights, where the mean log-loss is ln 2.
    assert math.isclose(float(t.tensor("train-loss").value(0)), math.log(2), rel_tol=1e-12)
    w0 = t.tensor("weights/coefficients").value(0)
    assert w0.shape == (30, 1) and not w0.any()
    assert t.tensor("gradients/coefficients").value(3).shape == (30, 1)
    losses = [float(v) for v in t.tensor("train-loss").values(mode=ModeKeys.TRAIN).values()]
    assert losses[-1] < losses[0] * 0.5 and losses == sorted(losses, reverse=True)


def test_rules_fire_on_jobs_made_to_trigger_them_and_stay_quiet_on_healthy_ones(home):
    cancer = str(DATA / "breast_cancer.csv")
    train(home, "healthy", "--algorithm", "gradient-boosting", "--data", cancer, "--target", "target",
          "--hp", "num_round=40", "--save-interval", "1",
          "--rule", "LossNotDecreasing", "--rule", "ExplodingTensor", "--rule", "Overtraining(patience_validation=50,patience_train=50)",
          "--rule", "TreeDepth(depth=2)", "--rule", "AllZero(tensor_regex=nothing-saved.*)")
    s = statuses(home, "healthy")
    for rule in ("LossNotDecreasing", "ExplodingTensor", "Overtraining", "TreeDepth"):
        assert s[rule]["RuleEvaluationStatus"] == "NoIssuesFound", s[rule]
    # A rule that finds none of its tensors is an Error, with why.
    assert s["AllZero"]["RuleEvaluationStatus"] == "Error"
    assert "nothing-saved" in s["AllZero"]["StatusDetails"]

    train(home, "shallow", "--algorithm", "gradient-boosting", "--data", cancer, "--target", "target",
          "--hp", "num_round=30", "--hp", "max_depth=1", "--hp", "eta=0.5", "--save-interval", "1",
          "--rule", "TreeDepth(depth=3)", "--rule", "Overfit(patience=3,ratio_threshold=0.1)",
          "--rule", "FeatureImportanceOverweight(nfeatures=2,threshold=0.3)")
    s = statuses(home, "shallow")
    assert s["TreeDepth"]["RuleEvaluationStatus"] == "IssuesFound" and s["TreeDepth"]["FiredAtStep"] == 0
    assert "depth 1" in s["TreeDepth"]["StatusDetails"]
    assert s["FeatureImportanceOverweight"]["RuleEvaluationStatus"] == "IssuesFound"
    assert s["Overfit"]["RuleEvaluationStatus"] == "IssuesFound", s["Overfit"]

    # 95 rows of one class for every 5 of the other.
    skewed = home[0] / "skewed.csv"
    with open(DATA / "breast_cancer.csv") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    ones = [r for r in body if r[-1] == "1"][:19 * 10]
    zeros = [r for r in body if r[-1] == "0"][:10]
    with open(skewed, "w", newline="") as f:
        csv.writer(f).writerows([header, *ones, *zeros])
    train(home, "skewed", "--algorithm", "gradient-boosting", "--data", str(skewed), "--target", "target",
          "--hp", "num_round=5", "--rule", "ClassImbalance")
    s = statuses(home, "skewed")
    assert s["ClassImbalance"]["RuleEvaluationStatus"] == "IssuesFound", s
    assert "times the rows of class" in s["ClassImbalance"]["StatusDetails"]


def test_stop_training_stops_the_job_within_one_step(home):
    # A learning rate so small that the loss cannot fall by 0.1 % in ten rounds.
    out = train(home, "stalling", "--algorithm", "gradient-boosting", "--data", str(DATA / "breast_cancer.csv"),
                "--target", "target", "--hp", "num_round=200", "--hp", "eta=0.00001", "--save-interval", "1",
                "--rule", "LossNotDecreasing(num_steps=10):stop")
    # As SageMaker's fit(): a job a rule stopped ends Stopped, and the command does not fail.
    assert "was stopped by rule LossNotDecreasing at step 10" in out.stdout, out.stdout
    s = statuses(home, "stalling")["LossNotDecreasing"]
    assert s["RuleEvaluationStatus"] == "IssuesFound" and s["FiredAtStep"] == 10, s
    log = (job_dir(home, "stalling") / "logs" / "train.log").read_text()
    assert "Stopped: stopped by rule LossNotDecreasing at step 10" in log, log
    # The learner ended at the next round: round 11 (step 12) is the last it reported.
    assert max(series(home, "stalling", "train:logloss")) <= 12
    t = trial_of(home, "stalling")
    assert max(t.steps(mode=ModeKeys.TRAIN)) <= 11
    # Without the action the same rule only reports.
    train(home, "stalling-on", "--algorithm", "gradient-boosting", "--data", str(DATA / "breast_cancer.csv"),
          "--target", "target", "--hp", "num_round=15", "--hp", "eta=0.00001", "--save-interval", "1",
          "--rule", "LossNotDecreasing(num_steps=10)")
    assert statuses(home, "stalling-on")["LossNotDecreasing"]["RuleEvaluationStatus"] == "IssuesFound"


@pytest.mark.parametrize("flags, words", [
    (["--rule", "LossNotDecreasin"], ["rule_to_invoke", "LossNotDecreasing"]),
    (["--rule", "Overfit(patiense=3)"], ["RuleParameters.patiense", "patience"]),
    (["--rule", "VanishingGradient"], ["VanishingGradient reads the collection `gradients`"]),
    (["--collections", "relu_output"], ["saves no collection `relu_output`"]),
    (["--save-interval", "0"], ["save_interval", "at least 1"]),
])
def test_misconfigurations_are_refused_before_training(home, flags, words):
    out = train(home, "refused", "--algorithm", "gradient-boosting", "--data", str(DATA / "iris.csv"),
                "--target", "target", *flags, check=False)
    assert out.returncode != 0
    for w in words:
        assert w in out.stderr, out.stderr
    assert not job_dir(home, "refused").exists()


def test_debugger_output_goes_to_s3(home, boto):
    s3 = boto("s3")
    s3.create_bucket(Bucket="debug-bucket")
    hook = {"S3OutputPath": "s3://debug-bucket/jobs", "HookParameters": {"save_interval": "2"},
            "CollectionConfigurations": [{"CollectionName": "losses"}]}
    cell = json.dumps({"num_round": 6, "DebugHookConfig": hook})
    kc_env = home[1]
    # %%train's cell takes the hook beside the hyperparameters; the CLI runs the same magic.
    km, kc = start_kernel_with_env(kc_env, home[0] / "kernel.log")
    try:
        ok(kc, f"%%train s3-gb --algorithm gradient-boosting --data {DATA / 'iris.csv'} --target target\n{cell}", timeout=300)
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="debug-bucket")["Contents"])
        assert "jobs/s3-gb/debug-output/collections/000000000/worker_0_collections.json" in keys
        assert "jobs/s3-gb/debug-output/index/000000000/000000000004_worker_0.json" in keys
        assert "jobs/s3-gb/debug-output/training_job_end.ts" in keys
        outs = ok(kc, "%train describe s3-gb")
        described = data_of(outs, "application/json")
        assert described["DebugHookConfig"]["S3OutputPath"] == "s3://debug-bucket/jobs"
        outs = ok(kc, f"%train rule-gb --algorithm gradient-boosting --data {DATA / 'iris.csv'} --target target "
                      "--hp num_round=20 --hp max_depth=1 --save-interval 1 --collections losses --rule TreeDepth(depth=2)",
                  timeout=300)
        outs = ok(kc, "%train describe rule-gb")
        described = data_of(outs, "application/json")
        (status,) = described["DebugRuleEvaluationStatuses"]
        assert status["RuleConfigurationName"] == "TreeDepth" and status["RuleEvaluationStatus"] == "IssuesFound"
        outs = ok(kc, "%debugger tensors rule-gb --collection losses -o tensors")
        assert "train-mlogloss" in data_of(outs, "text/plain")
        outs = ok(kc, "%debugger plot rule-gb --tensor validation-mlogloss --mode train")
        assert "<polyline" in data_of(outs, "image/svg+xml")
        outs = ok(kc, "%debugger rules rule-gb")
        assert "IssuesFound" in data_of(outs, "text/plain")
        # What was not saved is named, with what was.
        err = error_of(kc, "%debugger tensors rule-gb --collection gradients")
        assert "saved no collection `gradients`" in err and "losses" in err, err
        err = error_of(kc, "%debugger plot rule-gb --tensor validation-logloss")
        assert "did you mean `validation-mlogloss`" in err, err
        err = error_of(kc, "%debugger rules s3-gb")
        assert "ran no rules" in err, err
        err = error_of(kc, "%debugger plot rule-gb --tensor train-mlogloss --reduction median")
        assert "`median` is not one of min, max" in err, err
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def split(home, table: str) -> tuple[pathlib.Path, pathlib.Path, "object"]:
    """The table split as scikit-learn splits it (25 % held out, random_state=0), as files."""
    import pandas as pd
    from sklearn.model_selection import train_test_split
    frame = pd.read_csv(DATA / f"{table}.csv")
    stratify = frame["target"] if table != "diabetes" else None
    train_rows, valid_rows = train_test_split(frame, test_size=0.25, random_state=0, stratify=stratify)
    paths = home[0] / f"{table}-train.csv", home[0] / f"{table}-valid.csv"
    train_rows.to_csv(paths[0], index=False)
    valid_rows.to_csv(paths[1], index=False)
    return paths[0], paths[1], (train_rows, valid_rows)


@pytest.mark.parametrize("table", ["iris", "wine", "breast_cancer", "diabetes"])
def test_the_mlp_matches_scikit_learn_on_the_classic_tables(home, table):
    import warnings
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.preprocessing import StandardScaler
    train_path, valid_path, (train_rows, valid_rows) = split(home, table)
    name = f"mlp-{table.replace('_', '-')}"
    train(home, name, "--algorithm", "mlp", "--data", str(train_path), "--validation", str(valid_path),
          "--target", "target", "--hp", "hidden_layer_sizes=64", "--hp", "max_iter=300")
    x_train, x_valid = train_rows.drop(columns="target"), valid_rows.drop(columns="target")
    scaler = StandardScaler().fit(x_train)
    peer_class = MLPRegressor if table == "diabetes" else MLPClassifier
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        peer = peer_class(hidden_layer_sizes=(64,), max_iter=300, random_state=0).fit(
            scaler.transform(x_train), train_rows["target"])
    score = peer.score(scaler.transform(x_valid), valid_rows["target"])
    if table == "diabetes":
        # scikit-learn's regressor learns the raw target; ours standardises it first.
        ours = series(home, name, "validation:r2")
        assert list(ours.values())[-1] >= max(score, 0.2), (ours, score)
    else:
        ours = list(series(home, name, "validation:accuracy").values())[-1]
        assert ours >= score - 1 / len(valid_rows) - 1e-9, (ours, score)


def test_a_network_that_goes_wrong_is_caught(home):
    cancer = str(DATA / "breast_cancer.csv")
    # A learning rate that makes the loss explode: ExplodingTensor stops the job.
    out = train(home, "exploding", "--algorithm", "mlp", "--data", cancer, "--target", "target",
                "--hp", "solver=sgd", "--hp", "learning_rate_init=100", "--hp", "momentum=0.99",
                "--hp", "n_iter_no_change=1000", "--save-interval", "1",
                "--collections", "losses,weights", "--rule", "ExplodingTensor:stop")
    s = statuses(home, "exploding")["ExplodingTensor"]
    assert s["RuleEvaluationStatus"] == "IssuesFound", s
    assert "stopped by rule ExplodingTensor" in out.stdout and "status=Stopped" in out.stdout, out.stdout
    # Dead ReLUs from biases started far below zero; their gradients vanish with them.
    train(home, "dead", "--algorithm", "mlp", "--data", cancer, "--target", "target",
          "--hp", "bias_shift=-50", "--hp", "max_iter=5", "--save-interval", "1",
          "--rule", "DeadRelu", "--rule", "VanishingGradient(threshold=1e-12)")
    s = statuses(home, "dead")
    assert s["DeadRelu"]["RuleEvaluationStatus"] == "IssuesFound" and s["DeadRelu"]["FiredAtStep"] == 0, s
    assert "100.0 % of dense0/relu_output" in s["DeadRelu"]["StatusDetails"]
    assert s["VanishingGradient"]["RuleEvaluationStatus"] == "IssuesFound", s
    # A wide network on 40 rows overfits: validation loss well above training loss.
    import pandas as pd
    tiny = home[0] / "tiny.csv"
    pd.read_csv(cancer).sample(n=50, random_state=3).to_csv(tiny, index=False)
    train(home, "overfit", "--algorithm", "mlp", "--data", str(tiny), "--target", "target",
          "--hp", "hidden_layer_sizes=256", "--hp", "alpha=0", "--hp", "max_iter=300",
          "--hp", "learning_rate_init=0.01", "--save-interval", "1", "--rule", "Overfit(patience=5)")
    s = statuses(home, "overfit")["Overfit"]
    assert s["RuleEvaluationStatus"] == "IssuesFound", s
    # The same rules stay quiet on a healthy network.
    train(home, "healthy-net", "--algorithm", "mlp", "--data", cancer, "--target", "target",
          "--hp", "max_iter=30", "--save-interval", "1", "--rule", "DeadRelu", "--rule", "ExplodingTensor",
          "--rule", "VanishingGradient", "--rule", "PoorWeightInitialization")
    s = statuses(home, "healthy-net")
    for rule in ("DeadRelu", "ExplodingTensor", "VanishingGradient", "PoorWeightInitialization"):
        assert s[rule]["RuleEvaluationStatus"] == "NoIssuesFound", s[rule]


def test_smdebug_reads_a_network_job(home):
    train(home, "net", "--algorithm", "mlp", "--data", str(DATA / "iris.csv"), "--target", "target",
          "--hp", "hidden_layer_sizes=16,8", "--hp", "max_iter=12", "--save-interval", "3",
          "--collections", "losses,weights,biases,gradients,relu_input,relu_output")
    t = trial_of(home, "net")
    # Each epoch is a TRAIN step then an EVAL step; both modes count their own steps.
    # smdebug lists a mode's own steps; the global ones interleave.
    assert t.steps(mode=ModeKeys.TRAIN) == [0, 3, 6, 9]
    assert t.steps(mode=ModeKeys.EVAL) == [0, 3, 6, 9]
    assert t.steps() == [0, 1, 6, 7, 12, 13, 18, 19]
    assert t.mode_modestep(6) == (ModeKeys.TRAIN, 3)
    assert t.tensor("dense0.weight").value(3, mode=ModeKeys.TRAIN).shape == (4, 16)
    assert t.tensor("dense1.weight").value(3, mode=ModeKeys.TRAIN).shape == (16, 8)
    assert t.tensor("dense2.bias").value(0, mode=ModeKeys.TRAIN).shape == (3,)
    assert t.tensor("gradient/dense0.weight").value(9, mode=ModeKeys.TRAIN).shape == (4, 16)
    relu_out = t.tensor("dense1/relu_output").value(0, mode=ModeKeys.TRAIN)
    assert relu_out.shape[1] == 8 and (relu_out >= 0).all()
    assert set(t.tensor_names(collection="relu_input")) == {"dense0/relu_input", "dense1/relu_input"}
    # The losses are the ones the job reported for those epochs.
    reported = series(home, "net", "train:loss")
    for mode_step, value in enumerate(t.tensor("loss").values(mode=ModeKeys.TRAIN).values()):
        assert math.isclose(float(value), reported[mode_step * 3 + 1], rel_tol=1e-12)
    validation = series(home, "net", "validation:loss")
    assert math.isclose(float(t.tensor("loss").value(3, mode=ModeKeys.EVAL)), validation[4], rel_tol=1e-12)


def test_a_script_using_smdebugs_own_writer_is_evaluated_by_the_rules(home):
    script = str(DATA / "smdebug_train.py")
    train(home, "script-ok", "--entry-point", script, "--hp", "epochs=8",
          "--metric-definition", "loss=loss=([0-9.]+)", "--rule", "LossNotDecreasing(tensor_regex=loss,num_steps=3)")
    t = trial_of(home, "script-ok")
    assert t.steps(mode=ModeKeys.TRAIN) == list(range(8))
    assert float(t.tensor("loss").value(7)) == pytest.approx(1 / 8)
    assert statuses(home, "script-ok")["LossNotDecreasing"]["RuleEvaluationStatus"] == "NoIssuesFound"
    # A loss that stops falling: the rule reads the program's steps as they come and stops it.
    out = train(home, "script-stalls", "--entry-point", script, "--hp", "epochs=40", "--hp", "stall=1",
                "--rule", "LossNotDecreasing(tensor_regex=loss,num_steps=3):stop")
    s = statuses(home, "script-stalls")["LossNotDecreasing"]
    assert s["RuleEvaluationStatus"] == "IssuesFound" and s["FiredAtStep"] == 9, s
    assert "stopped by rule LossNotDecreasing at step 9" in out.stdout, out.stdout
    assert max(t2 for t2 in trial_of(home, "script-stalls").steps()) < 15, "stopped long before epoch 40"
    # A program that stops saving: StalledTrainingRule ends it after its threshold.
    started = time.monotonic()
    out = train(home, "script-hangs", "--entry-point", script, "--hp", "epochs=10", "--hp", "hang=60",
                "--rule", "StalledTrainingRule(threshold=2,stop_training_on_fire=True)")
    assert time.monotonic() - started < 30, "stopped long before the hang ends"
    s = statuses(home, "script-hangs")["StalledTrainingRule"]
    assert s["RuleEvaluationStatus"] == "IssuesFound" and "no tensor saved for" in s["StatusDetails"], s
    assert "stopped by rule StalledTrainingRule" in out.stdout, out.stdout
    # The job's hook configuration is in smdebug's shape, where smdebug looks.
    config = json.loads((job_dir(home, "script-stalls") / "input" / "config" / "debughookconfig.json").read_text())
    assert config["LocalPath"] == str(job_dir(home, "script-stalls") / "debug-output")
    assert {c["CollectionName"] for c in config["CollectionConfigurations"]} >= {"losses"}


def test_reductions_are_saved_instead_of_the_tensors(home):
    train(home, "reduced", "--algorithm", "mlp", "--data", str(DATA / "iris.csv"), "--target", "target",
          "--hp", "hidden_layer_sizes=8", "--hp", "max_iter=4", "--save-interval", "1", "--collections", "weights")
    whole = trial_of(home, "reduced").tensor("dense0.weight").value(2, mode=ModeKeys.TRAIN)
    hook = {"HookParameters": {"save_interval": "1"},
            "CollectionConfigurations": [{"CollectionName": "weights",
                                          "CollectionParameters": {"reductions": "mean,l2_norm,abs_max"}}]}
    cell = home[0] / "reduced.json"
    cell.write_text(json.dumps({"hidden_layer_sizes": "8", "max_iter": 4, "DebugHookConfig": hook}))
    _, env = home
    km, kc = start_kernel_with_env(env, home[0] / "kernel-reductions.log")
    try:
        ok(kc, f"%%train reduced-k --algorithm mlp --data {DATA / 'iris.csv'} --target target\n{cell.read_text()}")
        err = error_of(kc, f"%%train reduced-bad --algorithm mlp --data {DATA / 'iris.csv'} --target target\n"
                           + json.dumps({"DebugHookConfig": {"HookParameters": {"reductions": "median"}}}))
        assert "`median` is not one of smdebug's reductions" in err, err
        # A LocalPath that cannot be made fails the job with the path named; the store keeps it.
        blocked = home[0] / "reduced.json" / "tensors"
        err = error_of(kc, f"%%train blocked --algorithm mlp --data {DATA / 'iris.csv'} --target target\n"
                           + json.dumps({"max_iter": 2, "DebugHookConfig": {"LocalPath": str(blocked)}}))
        assert "training job blocked failed" in err and str(blocked) in err, err
        described = data_of(ok(kc, "%train describe blocked"), "application/json")
        assert described["TrainingJobStatus"] == "Failed" and "debugger" in described["FailureReason"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    t = trial_of(home, "reduced-k")
    # smdebug's reader finds the reductions under the tensor's own name; the whole tensor is not saved.
    assert "dense0.weight" in t.tensor_names(collection="weights")
    tensor = t.tensor("dense0.weight")
    assert math.isclose(float(tensor.reduction_value(2, "mean", mode=ModeKeys.TRAIN)), float(whole.mean()), rel_tol=1e-12)
    assert math.isclose(float(tensor.reduction_value(2, "l2", mode=ModeKeys.TRAIN)),
                        float((whole ** 2).sum() ** 0.5), rel_tol=1e-12)
    assert math.isclose(float(tensor.reduction_value(2, "max", abs=True, mode=ModeKeys.TRAIN)),
                        float(abs(whole).max()), rel_tol=1e-12)
    with pytest.raises(Exception):
        tensor.value(2, mode=ModeKeys.TRAIN)
