"""Automatic model tuning from the notebook: %%tune with SageMaker's request fields and the
%tune short form, every strategy end to end on real training jobs, early stopping, completion
criteria, warm start, several algorithms, parallel trials, interrupt and stop, and each refused
configuration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import BIN, error_of, html_of, interrupted_reply, ok, run, start_kernel_with_env, stream_text

from test_training import DATA

CANCER = DATA / "breast_cancer.csv"


@pytest.fixture(scope="module")
def tk(tmp_path_factory):
    """A kernel with its own data directory and experiment store."""
    home = tmp_path_factory.mktemp("tune-home")
    env = dict(os.environ, HOME=str(home), RUSTMAKER_HOME=str(home), RUSTMAKER_DATA_DIR=str(home / "data"),
               RUSTMAKER_PYTHON=sys.executable, JPY_SESSION_NAME=str(home / "tuning-study.ipynb"))
    env.pop("RUSTMAKER_EXPERIMENTS_DB", None)
    env.pop("RUSTMAKER_EXPERIMENT", None)
    km, kc = start_kernel_with_env(env, home / "kernel.log")
    kc.home, kc.km, kc.env = home, km, env
    yield kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def gbt_definition(**extra) -> dict:
    d = {
        "AlgorithmSpecification": {"AlgorithmName": "gradient-boosting", "TrainingInputMode": "File"},
        "StaticHyperParameters": {"num_round": "20"},
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": str(CANCER)}}}],
        "TargetAttributeName": "target",
        "RoleArn": "arn:aws:iam::123456789012:role/ignored",
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }
    d.update(extra)
    return d


def request(strategy="Bayesian", max_jobs=6, parallel=1, ranges=None, objective=("Maximize", "validation:accuracy"),
            definition=None, **config) -> dict:
    c = {
        "Strategy": strategy,
        "HyperParameterTuningJobObjective": {"Type": objective[0], "MetricName": objective[1]},
        "ResourceLimits": {"MaxNumberOfTrainingJobs": max_jobs, "MaxParallelTrainingJobs": parallel},
        "ParameterRanges": ranges if ranges is not None else {
            "ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.01", "MaxValue": "0.5",
                                           "ScalingType": "Logarithmic"}],
            "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "2", "MaxValue": "6"}],
        },
        "RandomSeed": 7,
    }
    c.update(config)
    return {"HyperParameterTuningJobConfig": c, "TrainingJobDefinition": definition or gbt_definition()}


def tune(kc, name: str, req: dict, *flags: str):
    return ok(kc, f"%%tune {name} {' '.join(flags)}\n{json.dumps(req)}", timeout=300)


def analytics(kc, name: str, columns: bool = False):
    outs = ok(kc, f"%tune analytics {name} -o {name.replace('-', '_')}_frame")
    table = [m for m in outs if m["msg_type"] == "display_data"][0]["content"]["data"]["application/vnd.dataresource+json"]
    if columns:
        return [f["name"] for f in table["schema"]["fields"]]
    return table["data"]


def describe(kc, name: str) -> dict:
    outs = ok(kc, f"%tune describe {name}")
    return [m for m in outs if m["msg_type"] == "display_data"][0]["content"]["data"]["application/json"]


def test_bayesian_end_to_end_with_live_progress_and_analytics(tk):
    outs = tune(tk, "bayes", request("Bayesian", max_jobs=8))
    updates = [m for m in outs if m["msg_type"] == "update_display_data"]
    assert updates, "the display is updated in place"
    html = html_of(outs)
    assert "tuning job bayes" in html and "best so far" in html and "<svg" in html
    rows = analytics(tk, "bayes")
    assert [r["TrainingJobName"] for r in rows] == [f"bayes-{i:03}" for i in range(1, 9)]
    # SageMaker's analytics columns, in its order.
    assert [c for c in analytics(tk, "bayes", columns=True) if c != "index"] == [
        "eta", "max_depth", "TrainingJobName", "TrainingJobStatus", "FinalObjectiveValue",
        "TrainingStartTime", "TrainingEndTime", "TrainingElapsedTimeSeconds"]
    for r in rows:
        assert r["TrainingJobStatus"] == "Completed"
        assert 0.01 <= r["eta"] <= 0.5 and 2 <= r["max_depth"] <= 6 and float(r["max_depth"]).is_integer()
        assert 0.8 < r["FinalObjectiveValue"] <= 1.0 and r["TrainingElapsedTimeSeconds"] >= 0
    d = describe(tk, "bayes")
    assert d["HyperParameterTuningJobStatus"] == "Completed"
    assert d["TrainingJobStatusCounters"]["Completed"] == 8
    assert d["ObjectiveStatusCounters"]["Succeeded"] == 8
    best = max(r["FinalObjectiveValue"] for r in rows)
    assert d["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == pytest.approx(best)
    # Each trial is a training job on the experiment's leaderboard.
    outs = ok(tk, "%experiments leaderboard tuning-study --sort validation:accuracy")
    board = [m for m in outs if m["msg_type"] == "display_data"][0]["content"]["data"]["application/vnd.dataresource+json"]["data"]
    assert {r["TrialComponentName"] for r in board} >= {f"bayes-{i:03}" for i in range(1, 9)}
    assert "bayes" in json.dumps(ok(tk, "%tune list"), default=str)


def test_random_is_reproducible_with_its_seed_and_grid_walks_every_combination(tk):
    tune(tk, "rand-a", request("Random", max_jobs=5))
    tune(tk, "rand-b", request("Random", max_jobs=5))
    tune(tk, "rand-c", request("Random", max_jobs=5, RandomSeed=8))
    a, b, c = (analytics(tk, n) for n in ("rand-a", "rand-b", "rand-c"))
    pick = lambda rows: [(r["eta"], r["max_depth"]) for r in rows]
    assert pick(a) == pick(b) and pick(a) != pick(c)
    grid = {"CategoricalParameterRanges": [{"Name": "max_depth", "Values": ["2", "4"]},
                                           {"Name": "eta", "Values": ["0.1", "0.3", "0.5"]}]}
    req = request("Grid", ranges=grid)
    del req["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"]
    tune(tk, "grid", req)
    rows = analytics(tk, "grid")
    assert [(r["max_depth"], r["eta"]) for r in rows] == [(d, e) for d in (2, 4) for e in (0.1, 0.3, 0.5)]
    assert "every combination" in json.dumps(describe(tk, "grid"), default=str)


def test_hyperband_stops_trials_at_its_rungs(tk):
    req = request("Hyperband", max_jobs=9, objective=("Minimize", "validation:logloss"),
                  ranges={"ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.001", "MaxValue": "0.5",
                                                         "ScalingType": "Logarithmic"}]},
                  StrategyConfig={"HyperbandStrategyConfig": {"MinResource": 1}},
                  definition=gbt_definition(StaticHyperParameters={"num_round": "27"}))
    tune(tk, "hband", req)
    rows = analytics(tk, "hband")
    statuses = [r["TrainingJobStatus"] for r in rows]
    assert "Stopped" in statuses and "Completed" in statuses, statuses
    d = describe(tk, "hband")
    assert d["HyperParameterTuningJobStatus"] == "Completed"
    trials = d["TrainingJobStatusCounters"]
    assert trials["Stopped"] + trials["Completed"] == 9
    outs = ok(tk, "%train describe " + next(r["TrainingJobName"] for r in rows if r["TrainingJobStatus"] == "Stopped"))
    assert "Hyperband: at resource" in json.dumps(outs, default=str)


EPOCHS_PY = r'''
import json, os, sys, time
hps = json.loads(os.environ["SM_HPS"])
bad = hps["quality"] == "bad"
for epoch in range(int(hps.get("epochs", 4))):
    loss = 5.0 + epoch if bad else 1.0 / (epoch + 1)
    print(f"epoch={epoch} val_loss={loss:.4f}", flush=True)
    time.sleep(float(hps.get("pause", 0.05)))
'''


def script_definition(script, **extra) -> dict:
    d = {
        "AlgorithmSpecification": {"TrainingImage": str(script), "TrainingInputMode": "File",
                                   "MetricDefinitions": [{"Name": "validation:loss", "Regex": "val_loss=([0-9.]+)"}]},
        "StaticHyperParameters": {"epochs": 4},
    }
    d.update(extra)
    return d


def test_early_stopping_stops_a_clearly_worse_trial(tk, tmp_path):
    # Good trials run 3 short epochs; the bad one would run 20 epochs of 0.3 s.
    script = tmp_path / "epochs.py"
    script.write_text(EPOCHS_PY.replace('int(hps.get("epochs", 4))', '(20 if bad else 3)')
                               .replace('float(hps.get("pause", 0.05))', '(0.3 if bad else 0.05)'))
    req = request("Grid", objective=("Minimize", "validation:loss"),
                  ranges={"CategoricalParameterRanges": [{"Name": "quality", "Values": ["a", "b", "c", "bad"]}]},
                  definition=script_definition(script, StaticHyperParameters={}),
                  TrainingJobEarlyStoppingType="Auto")
    del req["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"]
    tune(tk, "early", req)
    rows = analytics(tk, "early")
    by = {r["quality"]: r for r in rows}
    assert [by[q]["TrainingJobStatus"] for q in "abc"] == ["Completed"] * 3
    assert by["bad"]["TrainingJobStatus"] == "Stopped"
    assert by["bad"]["TrainingElapsedTimeSeconds"] < 4, by["bad"]
    outs = ok(tk, "%train describe early-004")
    assert "early stopping" in json.dumps(outs, default=str) and "median" in json.dumps(outs, default=str)


def test_completion_criteria_end_the_job_early(tk):
    tune(tk, "target", request("Random", max_jobs=10,
                               TuningJobCompletionCriteria={"TargetObjectiveMetricValue": 0.5}))
    d = describe(tk, "target")
    assert d["HyperParameterTuningJobStatus"] == "Completed"
    assert d["TrainingJobStatusCounters"]["Completed"] == 1
    assert "TargetObjectiveMetricValue" in d["TuningJobCompletionDetails"]["Reason"]
    tune(tk, "flat", request("Random", max_jobs=15,
                             TuningJobCompletionCriteria={"BestObjectiveNotImproving": {
                                 "MaxNumberOfTrainingJobsNotImproving": 3}}))
    d = describe(tk, "flat")
    assert "BestObjectiveNotImproving" in d["TuningJobCompletionDetails"]["Reason"]
    assert d["TrainingJobStatusCounters"]["Completed"] < 15


def test_warm_start_and_the_short_form(tk):
    ok(tk, f"%train base-gbt --algorithm gradient-boosting --data {CANCER} --target target --hp num_round=20")
    outs = ok(tk, "%tune short --job base-gbt --objective validation:accuracy --max 4 --parallel 2 "
                  "--range eta=0.01:0.5:log --range max_depth=2:6 --seed 3", timeout=300)
    assert "best training job short-" in stream_text(outs)
    rows = analytics(tk, "short")
    assert len(rows) == 4 and all(r["TrainingJobStatus"] == "Completed" for r in rows)
    # The parent's trials are prior observations: with enough of them the first child trial is
    # already chosen by the model (its display says so through the expected improvement).
    child = request("Bayesian", max_jobs=3, definition=gbt_definition())
    child["WarmStartConfig"] = {"WarmStartType": "IdenticalDataAndAlgorithm",
                                "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "bayes"}]}
    tune(tk, "child", child)
    d = describe(tk, "child")
    assert d["HyperParameterTuningJobStatus"] == "Completed"
    parent_best = describe(tk, "bayes")["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    overall = d["OverallBestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    assert overall >= parent_best
    # TransferLearning may change the data; IdenticalDataAndAlgorithm may not.
    other = gbt_definition(InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
        "S3Uri": str(DATA / "wine.csv")}}}])
    child["TrainingJobDefinition"] = other
    evalue = error_of(tk, f"%%tune child2\n{json.dumps(child)}")
    assert "IdenticalDataAndAlgorithm" in evalue and "InputDataConfig" in evalue, evalue
    child["WarmStartConfig"]["WarmStartType"] = "TransferLearning"
    child["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"] = 2
    tune(tk, "child3", child)


def test_several_algorithms_in_one_job_and_parallel_trials(tk, tmp_path):
    forest = {
        "DefinitionName": "forest",
        "TuningObjective": {"Type": "Maximize", "MetricName": "validation:accuracy"},
        "HyperParameterRanges": {"IntegerParameterRanges": [{"Name": "num_trees", "MinValue": "5", "MaxValue": "30"}]},
        **{k: v for k, v in gbt_definition().items() if k != "StaticHyperParameters"},
    }
    forest["AlgorithmSpecification"] = {"AlgorithmName": "random-forest"}
    boost = {
        "DefinitionName": "boost",
        "TuningObjective": {"Type": "Maximize", "MetricName": "validation:accuracy"},
        "HyperParameterRanges": {"ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.05", "MaxValue": "0.5"}]},
        **gbt_definition(),
    }
    req = {"HyperParameterTuningJobConfig": {"Strategy": "Bayesian", "RandomSeed": 1,
                                             "ResourceLimits": {"MaxNumberOfTrainingJobs": 8,
                                                                "MaxParallelTrainingJobs": 2}},
           "TrainingJobDefinitions": [forest, boost]}
    tune(tk, "multi", req)
    rows = analytics(tk, "multi")
    assert {r["TrainingJobDefinitionName"] for r in rows} == {"forest", "boost"}
    for r in rows:
        assert (r["num_trees"] is None) == (r["TrainingJobDefinitionName"] == "boost")
    # Parallel trials: slow script jobs overlap, never more than MaxParallelTrainingJobs at once.
    script = tmp_path / "slow_epochs.py"
    script.write_text(EPOCHS_PY)
    req = request("Random", max_jobs=6, parallel=3, objective=("Minimize", "validation:loss"),
                  ranges={"CategoricalParameterRanges": [{"Name": "quality", "Values": ["a", "b"]}],
                          "ContinuousParameterRanges": [{"Name": "lr", "MinValue": "0", "MaxValue": "1"}]},
                  definition=script_definition(script, StaticHyperParameters={"epochs": 4, "pause": 0.25}))
    started = time.monotonic()
    tune(tk, "par", req)
    took = time.monotonic() - started
    d = describe(tk, "par")
    trials = d["TrainingJobStatusCounters"]
    assert trials["Completed"] == 6
    db = __import__("sqlite3").connect(tk.home / "data" / "experiments.db")
    spans = db.execute("SELECT start_time, end_time FROM tuning_trials WHERE tuning_job = 'par'").fetchall()
    most = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert 2 <= most <= 3, spans
    assert took < 6 * 1.0 + 10, took


def test_invalid_configurations_are_refused_before_any_trial(tk):
    cases = {
        "MinValue 0.5 is above MaxValue 0.1": request(ranges={"ContinuousParameterRanges": [
            {"Name": "eta", "MinValue": "0.5", "MaxValue": "0.1"}]}),
        "Logarithmic scaling needs a range above 0": request(ranges={"ContinuousParameterRanges": [
            {"Name": "lambda", "MinValue": "0", "MaxValue": "10", "ScalingType": "Logarithmic"}]}),
        "the objective metric `validation:auc` is unknown": request(objective=("Maximize", "validation:auc")),
        "MaxParallelTrainingJobs (5) is more than": request(max_jobs=3, parallel=5),
        "Grid strategy takes only CategoricalParameterRanges": request("Grid"),
        "there is no tuning job `ghost`": dict(request(), WarmStartConfig={
            "WarmStartType": "TransferLearning",
            "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "ghost"}]}),
        "HyperParameterTuningJobConfig.Strategy is `Simplex`": request("Simplex"),
        "does not fit gradient-boosting": request(ranges={"ContinuousParameterRanges": [
            {"Name": "eta", "MinValue": "0.1", "MaxValue": "3"}]}),
    }
    for expected, req in cases.items():
        evalue = error_of(tk, f"%%tune refused\n{json.dumps(req)}")
        assert expected in evalue, (expected, evalue)
    assert "not valid YAML" in error_of(tk, "%%tune refused\nStrategy: [unclosed")
    assert "not a valid tuning job name" in error_of(tk, f"%%tune bad_name\n{json.dumps(request())}")
    assert "there is no tuning job `nope`" in error_of(tk, "%tune describe nope")
    assert "there is no training job `ghost-job`" in error_of(
        tk, "%tune short-bad --job ghost-job --objective validation:accuracy --max 2 --range eta=0.1:0.3")
    assert "--job needs --objective" in error_of(tk, "%tune short-bad --job bayes-001 --max 2 --range eta=0.1:0.3")
    assert "the scaling `cubic`" in error_of(
        tk, "%tune short-bad --job bayes-001 --objective validation:accuracy --max 2 --range eta=0.1:0.3:cubic")
    # Nothing ran for any of them.
    db = __import__("sqlite3").connect(tk.home / "data" / "experiments.db")
    assert db.execute("SELECT count(*) FROM tuning_jobs WHERE name = 'refused'").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM trial_components WHERE name LIKE 'refused-%'").fetchone()[0] == 0
    # The YAML form works as well as JSON.
    yaml_body = f"""HyperParameterTuningJobConfig:
  Strategy: Random
  RandomSeed: 2
  HyperParameterTuningJobObjective: {{Type: Maximize, MetricName: validation:accuracy}}
  ResourceLimits: {{MaxNumberOfTrainingJobs: 2, MaxParallelTrainingJobs: 1}}
  ParameterRanges:
    IntegerParameterRanges:
      - {{Name: max_depth, MinValue: 2, MaxValue: 4}}
TrainingJobDefinition:
  AlgorithmSpecification: {{AlgorithmName: gradient-boosting}}
  StaticHyperParameters: {{num_round: 10}}
  InputDataConfig:
    - ChannelName: train
      DataSource: {{S3DataSource: {{S3Uri: {CANCER}}}}}
  TargetAttributeName: target
"""
    ok(tk, f"%%tune from-yaml\n{yaml_body}", timeout=120)
    assert len(analytics(tk, "from-yaml")) == 2


SLEEP_PY = """
import os, time
print("val_loss=1.0", flush=True)
time.sleep(60)
"""


def test_interrupt_and_stop_end_the_job_and_its_trials(tk, tmp_path):
    script = tmp_path / "sleep.py"
    script.write_text(SLEEP_PY)
    req = request("Random", max_jobs=4, parallel=2, objective=("Minimize", "validation:loss"),
                  ranges={"ContinuousParameterRanges": [{"Name": "lr", "MinValue": "0", "MaxValue": "1"}]},
                  definition=script_definition(script, StaticHyperParameters={}))
    reply, took = interrupted_reply(tk, tk.km, f"%%tune sleepy\n{json.dumps(req)}", after=3)
    assert reply["status"] == "error" and took < 15, (reply, took)
    d = describe(tk, "sleepy")
    assert d["HyperParameterTuningJobStatus"] == "Stopped"
    assert d["TrainingJobStatusCounters"]["Stopped"] == 2 and d["TrainingJobStatusCounters"]["InProgress"] == 0
    # `rustmaker tune stop` (or %tune stop in another notebook) stops a job running in this kernel.
    msg_id = tk.execute(f"%%tune sleepy2\n{json.dumps(req)}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out = subprocess.run([BIN, "tune", "stop", "sleepy2"], env=tk.env, capture_output=True, text=True)
        if "Stopping" in out.stdout:
            break
        time.sleep(0.3)
    from conftest import reply_to
    assert reply_to(tk, msg_id, 30)["content"]["status"] == "error"
    assert describe(tk, "sleepy2")["HyperParameterTuningJobStatus"] == "Stopped"
    ok(tk, "%tune list")


def test_a_debugger_rule_stops_a_trial_and_the_tuner_counts_it_stopped(tk):
    stop = json.dumps([{"name": "stoptraining"}])
    definition = gbt_definition(
        StaticHyperParameters={"num_round": "30"},
        DebugHookConfig={"HookParameters": {"save_interval": "1"}},
        DebugRuleConfigurations=[{"RuleConfigurationName": "stalling", "RuleParameters": {
            "rule_to_invoke": "LossNotDecreasing", "num_steps": "5", "tensor_regex": "train-logloss",
            "use_losses_collection": "False", "action_json": stop}}])
    ranges = {"CategoricalParameterRanges": [{"Name": "eta", "Values": ["0.000001", "0.3"]}]}
    tune(tk, "ruled", request(strategy="Grid", max_jobs=2, ranges=ranges, definition=definition))
    rows = {r["eta"]: r for r in analytics(tk, "ruled")}
    assert rows[1e-06]["TrainingJobStatus"] == "Stopped", rows
    assert rows[0.3]["TrainingJobStatus"] == "Completed", rows
    assert describe(tk, "ruled")["OverallBestTrainingJob"]["TunedHyperParameters"]["eta"] == "0.3"
