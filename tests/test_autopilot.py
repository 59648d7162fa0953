"""Autopilot from the notebook: %autopilot and %%autopilot on real tables (binary, multiclass,
regression), the two generated notebooks run by nbclient on this kernel (the candidate notebook
reproducing the job's leaderboard), DescribeAutoMLJob's and ListCandidatesForAutoMLJob's fields
against the store, the limits, stop and interrupt, the best model in %predict, and each bad
input with its message."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import AWS, BIN, error_of, interrupted_reply, ok, reply_to, start_kernel_with_env, stream_text
from conftest import run as run_cell

from test_training import DATA

CANCER = DATA / "breast_cancer.csv"
IRIS = DATA / "iris.csv"
DIABETES = DATA / "diabetes.csv"


@pytest.fixture(scope="module")
def apk(tmp_path_factory, moto_url):
    """A kernel with its own data directory, experiment store and Autopilot jobs."""
    home = tmp_path_factory.mktemp("autopilot-home")
    env = dict(os.environ, HOME=str(home), RUSTMAKER_HOME=str(home), RUSTMAKER_DATA_DIR=str(home / "data"),
               RUSTMAKER_PYTHON=sys.executable, JPY_SESSION_NAME=str(home / "automl-study.ipynb"),
               AWS_ENDPOINT_URL=moto_url, **AWS)
    env.pop("RUSTMAKER_EXPERIMENTS_DB", None)
    env.pop("RUSTMAKER_EXPERIMENT", None)
    km, kc = start_kernel_with_env(env, home / "kernel.log")
    kc.home, kc.km, kc.env = home, km, env
    yield kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def data_of(outs, mime):
    return [m for m in outs if m["msg_type"] == "display_data" and mime in m["content"]["data"]][-1]["content"]["data"][mime]


def describe(kc, name: str) -> dict:
    return data_of(ok(kc, f"%autopilot describe {name}"), "application/json")


def candidates(kc, name: str, *flags: str) -> dict:
    return data_of(ok(kc, f"%autopilot candidates {name} {' '.join(flags)}"), "application/json")


def autopilot(kc, line: str, timeout: float = 300) -> str:
    return stream_text(ok(kc, f"%autopilot {line}", timeout=timeout))


def run_notebook(path: str, kc, cwd: pathlib.Path) -> nbformat.NotebookNode:
    """Runs a generated notebook from the top on this kernel, with the job's data directory."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4 and nb.nbformat_minor == 5
    assert nb.metadata["kernelspec"]["display_name"] == "Rust (rustmaker)"
    saved = dict(os.environ)
    os.environ.update({k: kc.env[k] for k in ("HOME", "RUSTMAKER_HOME", "RUSTMAKER_DATA_DIR", "RUSTMAKER_PYTHON")})
    try:
        NotebookClient(nb, kernel_name="rustmaker", timeout=300, resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return nb


def leaderboard_of(nb, prefix: str) -> list[dict]:
    cell = next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith(prefix))
    table = next(o for o in cell.outputs if "data" in o and "application/vnd.dataresource+json" in o["data"])
    return table["data"]["application/vnd.dataresource+json"]["data"]


@pytest.mark.parametrize("table,target,problem,metric,flags", [
    (CANCER, "target", "BinaryClassification", "F1", "--max-candidates 4"),
    (IRIS, "target", "MulticlassClassification", "Accuracy", "--max-candidates 3 --algorithms xgboost,linear-learner,randomforest"),
    (DIABETES, "target", "Regression", "MSE", "--max-candidates 3 --algorithms lightgbm,linear-learner,gaussian-process"),
])
def test_a_job_end_to_end_and_its_notebooks_reproduce_the_leaderboard(apk, tmp_path, table, target, problem, metric, flags):
    name = f"ap-{problem[:4].lower()}"
    said = autopilot(apk, f"{name} --data {table} --target {target} --seed 5 {flags}")
    assert f"Autopilot job {name}: Completed (MaxCandidatesReached)" in said, said
    assert "most important features:" in said, said
    d = describe(apk, name)
    assert d["AutoMLJobStatus"] == "Completed" and d["AutoMLJobSecondaryStatus"] == "MaxCandidatesReached"
    assert d["ResolvedAttributes"]["ProblemType"] == problem and d["ProblemType"] == problem
    assert d["ResolvedAttributes"]["AutoMLJobObjective"]["MetricName"] == metric
    assert d["InputDataConfig"][0]["TargetAttributeName"] == target
    assert d["EndTime"] >= d["CreationTime"]
    arts = d["AutoMLJobArtifacts"]
    assert arts["DataExplorationNotebookLocation"].endswith(
        f"{name}/sagemaker-automl-candidates/{name}-pr-1/notebooks/SageMakerAutopilotDataExplorationNotebook.ipynb")
    assert arts["CandidateDefinitionNotebookLocation"].endswith("SageMakerAutopilotCandidateDefinitionNotebook.ipynb")
    listed = candidates(apk, name)["Candidates"]
    n = int(flags.split()[1])
    # AUTO ensembles a table under 100 MB: the trials, and their weighted ensemble.
    trials = [c for c in listed if c["CandidateDefinition"] != "weighted-ensemble"]
    ensembles = [c for c in listed if c["CandidateDefinition"] == "weighted-ensemble"]
    assert len(trials) == n and len(ensembles) <= 1
    values = [c["FinalAutoMLJobObjectiveMetric"]["Value"] for c in listed]
    # Ranked best first: F1 and Accuracy are maximised, MSE minimised; these tables are small,
    # so an ensemble is cross-validated, trained again on every row, and ranked first.
    trial_values = [c["FinalAutoMLJobObjectiveMetric"]["Value"] for c in trials]
    assert trial_values == sorted(trial_values, reverse=metric != "MSE")
    assert listed[len(ensembles):] == trials
    for c in listed:
        assert c["CandidateStatus"] == "Completed" and c["ObjectiveStatus"] == "Succeeded"
        assert c["FinalAutoMLJobObjectiveMetric"]["MetricName"] == metric
        assert pathlib.Path(c["InferenceContainers"][0]["ModelDataUrl"]).is_file()
        assert c["CandidateName"].startswith(f"{name}-")
    for c in trials:
        assert [s["CandidateStepType"] for s in c["CandidateSteps"]] == [
            "AWS::SageMaker::ProcessingJob", "AWS::SageMaker::TrainingJob"]
        assert c["CandidateDefinition"].startswith("dpp")
    if metric == "MSE":
        # Gaussian process regression is a candidate like the others (its model, its notebook step).
        assert "dpp2-gaussian-process" in {c["CandidateDefinition"] for c in trials}, trials
    for e in ensembles:
        assert [s["CandidateStepType"] for s in e["CandidateSteps"]] == ["AWS::SageMaker::TrainingJob"]
        assert set(e["TunedHyperParameters"]) <= {c["CandidateName"] for c in trials}
        best_trial = trials[0]["FinalAutoMLJobObjectiveMetric"]["Value"]
        # Its out-of-fold value is no validation score: within reach of the best trial's.
        value = e["FinalAutoMLJobObjectiveMetric"]["Value"]
        assert (value < 1.5 * best_trial) if metric == "MSE" else (value > best_trial - 0.1)
    assert d["BestCandidate"]["CandidateName"] == listed[0]["CandidateName"]
    # What is listed is what is stored.
    stored = json.loads((apk.home / "data" / "autopilot" / f"{name}.json").read_text())
    assert stored["status"] == "Completed" and stored["best"] == listed[0]["CandidateName"]
    assert sorted(c["objective"] for c in stored["candidates"]) == sorted(values)
    assert {c["name"]: c["definition"] for c in stored["candidates"]} == \
        {c["CandidateName"]: c["CandidateDefinition"] for c in listed}
    if metric == "MSE":
        assert 2000 < values[0] < 5000, values
    else:
        assert values[0] > 0.85, values
    # The best candidate is one model %predict takes, by its name or its saved artifact.
    job_dir = pathlib.Path(d["OutputDataConfig"]["S3OutputPath"]) / name
    best_model = job_dir / "best-candidate" / "model.tar.gz"
    assert best_model.is_file()
    ok(apk, f"%predict --model {best_model} --data {table} -o scored_{problem[:4]}")
    ok(apk, f"%predict --model {listed[0]['CandidateName']} --data {table} -o scored2_{problem[:4]}")
    # Every candidate is a trial component the experiment's leaderboard ranks.
    sort = "validation:mse" if metric == "MSE" else "validation:accuracy"
    board = data_of(ok(apk, f"%experiments leaderboard automl-study --sort {sort}"), "application/vnd.dataresource+json")["data"]
    assert {c["CandidateName"] for c in listed} <= {r["TrialComponentName"] for r in board}
    importance = json.loads(pathlib.Path(
        job_dir, "documentation/explainability/output",
        listed[0]["CandidateName"], "analysis.json").read_text())
    assert set(importance["explanations"]["permutation"]["label"]["global_importance"]) == \
        set(open(table).readline().strip().split(",")) - {target}

    run_notebook(arts["DataExplorationNotebookLocation"], apk, tmp_path)
    nb = run_notebook(arts["CandidateDefinitionNotebookLocation"], apk, tmp_path)
    rows = leaderboard_of(nb, "%autopilot rank")
    assert [r["CandidateDefinition"] for r in rows] == [c["CandidateDefinition"] for c in listed]
    assert [r[metric] for r in rows] == pytest.approx(values, rel=1e-9), "the notebook reproduces the leaderboard"
    scored = next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith("%predict"))
    assert scored.outputs == [] or all(o["output_type"] != "error" for o in scored.outputs)


def test_ensembling_averages_the_candidates_and_tuning_mode_does_not(apk, tmp_path):
    autopilot(apk, f"ap-ens --data {DIABETES} --target target --mode ensembling --max-candidates 5 --seed 3 "
                   "--algorithms xgboost,linear-learner,randomforest")
    d = describe(apk, "ap-ens")
    listed = candidates(apk, "ap-ens")["Candidates"]
    [ens] = [c for c in listed if c["CandidateDefinition"] == "weighted-ensemble"]
    trials = [c for c in listed if c is not ens]
    assert len(trials) == 5 and ens["CandidateName"] == "ap-ens-ensemble"
    # A table this small is cross-validated: the ensemble's members are trained again on every
    # row, so it ranks first, valued by its out-of-fold MSE.
    assert d["BestCandidate"]["CandidateName"] == "ap-ens-ensemble"
    assert ens["FinalAutoMLJobObjectiveMetric"]["Value"] > 0
    weights = {k: float(v) for k, v in ens["TunedHyperParameters"].items()}
    assert len(weights) >= 1 and set(weights) <= {c["CandidateName"] for c in trials}
    assert sum(weights.values()) == pytest.approx(1, abs=1e-3)
    # The ensemble is a training job's model; trained on more rows than its members, it scores
    # the table apart from their weighted mean.
    import pandas as pd
    def scores(model):
        out = tmp_path / f"{model}.csv"
        run = subprocess.run([BIN, "predict", "--model", model, "--data", str(DIABETES), "--output", str(out)],
                             env=apk.env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        return pd.read_csv(out)["score"]
    mixed = sum(w * scores(m) for m, w in weights.items())
    assert (scores("ap-ens-ensemble") - mixed).abs().max() > 1e-3
    ok(apk, f"%predict --model ap-ens-ensemble --data {DIABETES} -o ens_scored")
    # HYPERPARAMETER_TUNING tunes and ranks the candidates alone.
    autopilot(apk, f"ap-hpo --data {IRIS} --target target --mode hyperparameter-tuning --max-candidates 2 "
                   "--algorithms xgboost,linear-learner")
    assert describe(apk, "ap-hpo")["AutoMLJobConfig"]["Mode"] == "HYPERPARAMETER_TUNING"
    assert all(c["CandidateDefinition"].startswith("dpp") for c in candidates(apk, "ap-hpo")["Candidates"])


def test_request_form_json_and_yaml_candidates_only_and_fields(apk):
    req = {
        "AutoMLJobName": "ap-json",
        "InputDataConfig": [{"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(IRIS)}},
                             "TargetAttributeName": "target", "ContentType": "text/csv;header=present"}],
        "OutputDataConfig": {"S3OutputPath": str(apk.home / "automl-out")},
        "ProblemType": "MulticlassClassification",
        "AutoMLJobObjective": {"MetricName": "BalancedAccuracy"},
        "AutoMLJobConfig": {"CompletionCriteria": {"MaxCandidates": 2},
                            "DataSplitConfig": {"ValidationFraction": 0.3}},
        "GenerateCandidateDefinitionsOnly": True,
        "RoleArn": "arn:aws:iam::123456789012:role/ignored",
        "Tags": [{"Key": "team", "Value": "ml"}],
    }
    said = stream_text(ok(apk, f"%%autopilot ap-json\n{json.dumps(req)}"))
    assert "Completed (CandidateDefinitionsGenerated)" in said, said
    d = describe(apk, "ap-json")
    assert d["AutoMLJobSecondaryStatus"] == "CandidateDefinitionsGenerated"
    assert d["GenerateCandidateDefinitionsOnly"] is True and "BestCandidate" not in d
    assert d["ResolvedAttributes"]["AutoMLJobObjective"]["MetricName"] == "BalancedAccuracy"
    nb_path = pathlib.Path(d["AutoMLJobArtifacts"]["CandidateDefinitionNotebookLocation"])
    assert nb_path.is_relative_to(apk.home / "automl-out" / "ap-json") and nb_path.is_file()
    assert candidates(apk, "ap-json")["Candidates"] == []
    nb = nbformat.read(nb_path, as_version=4)
    sources = [c.source for c in nb.cells]
    assert any(s.startswith("**dpp0-xgboost**") for s in sources) and any(s.startswith("%%tune ap-json-nb") for s in sources)
    # The validation share is kept: 30 % of each class.
    validation = pathlib.Path(d["OutputDataConfig"]["S3OutputPath"], "ap-json/preprocessed-data/tuning_data/validation.parquet")
    import pandas as pd
    counts = pd.read_parquet(validation)["target"].value_counts().to_dict()
    assert counts == {"setosa": 15, "versicolor": 15, "virginica": 15}, counts

    yaml = f"""
InputDataConfig:
  - DataSource: {{S3DataSource: {{S3Uri: {DIABETES}}}}}
    TargetAttributeName: target
AutoMLJobObjective: {{MetricName: MAE}}
AutoMLJobConfig:
  CompletionCriteria: {{MaxCandidates: 1}}
  CandidateGenerationConfig:
    AlgorithmsConfig: [{{AutoMLAlgorithms: [linear-learner]}}]
"""
    said = stream_text(ok(apk, f"%%autopilot ap-yaml\n{yaml}", timeout=300))
    assert "Completed (MaxCandidatesReached)" in said and "dpp0-linear-learner" in said, said
    [c] = candidates(apk, "ap-yaml")["Candidates"]
    assert c["FinalAutoMLJobObjectiveMetric"]["MetricName"] == "MAE" and 30 < c["FinalAutoMLJobObjectiveMetric"]["Value"] < 70
    listing = json.dumps(ok(apk, "%autopilot list"), default=str)
    assert "ap-json" in listing and "ap-yaml" in listing
    best = data_of(ok(apk, "%autopilot best ap-yaml"), "application/json")
    assert best["CandidateName"] == c["CandidateName"]
    assert "has no best candidate (Completed, CandidateDefinitionsGenerated)" in error_of(apk, "%autopilot best ap-json")


def test_a_seeded_job_reproduces_its_leaderboard_and_the_cli_runs_one(apk):
    line = f"--data {CANCER} --target target --max-candidates 3 --seed 11 --algorithms xgboost,randomforest"
    autopilot(apk, f"seed-a {line}")
    out = subprocess.run([BIN, "autopilot", "seed-b", *line.split()], env=apk.env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Autopilot job seed-b: Completed" in out.stdout
    # An ensemble's tuned values are its members' weights, named after the job.
    pick = lambda name: [(c["CandidateDefinition"], json.dumps(c["TunedHyperParameters"]).replace(name, "JOB"),
                          c["FinalAutoMLJobObjectiveMetric"]["Value"])
                         for c in candidates(apk, name, "--sort-by CreationTime")["Candidates"]]
    assert pick("seed-a") == pick("seed-b")
    # The best model scores rows into a file from a shell too.
    best = describe(apk, "seed-b")["BestCandidate"]["CandidateName"]
    scored = apk.home / "seed-b-scored.csv"
    out = subprocess.run([BIN, "predict", "--model", best, "--data", str(CANCER), "--output", str(scored)],
                         env=apk.env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "569 rows scored into" in out.stdout, out.stderr
    import pandas as pd
    rows = pd.read_csv(scored)
    assert (rows["predicted_label"] == rows["target"]).mean() > 0.9
    assert "say where the scored rows go" in error_of(apk, f"%predict --model {best} --data {CANCER}")
    assert "must end in .csv or .parquet" in error_of(apk, f"%predict --model {best} --data {CANCER} --output x.json")
    frame = ok(apk, "%autopilot candidates seed-a -o board --status Completed")
    assert "board: 4 rows" in stream_text(ok(apk, "%frames board")), "3 trials and their ensemble"
    assert frame


def test_limits_are_honoured(apk):
    # 0: no end on convergence, so the time limit is what ends it.
    said = autopilot(apk, f"ap-time --data {CANCER} --target target --max-runtime 6 --max-candidates 200 --seed 1 "
                          "--max-candidates-not-improving 0")
    d = describe(apk, "ap-time")
    assert d["AutoMLJobStatus"] == "Completed" and d["AutoMLJobSecondaryStatus"] == "MaxAutoMLJobRuntimeReached", said
    assert d["EndTime"] - d["CreationTime"] < 6 + 10, "stopped at the limit, scored the finished ones"
    listed = candidates(apk, "ap-time")["Candidates"]
    assert 1 <= len([c for c in listed if c["CandidateStatus"] == "Completed"]) < 200
    # The default end: five candidates per definition in a row without a 1 % gain.
    said = autopilot(apk, f"ap-conv --data {CANCER} --target target --max-candidates 200 --seed 1 "
                          "--mode hyperparameter-tuning --algorithms xgboost,linear-learner")
    d = describe(apk, "ap-conv")
    assert d["AutoMLJobStatus"] == "Completed" and d["AutoMLJobSecondaryStatus"] == "Completed", said
    scored = sorted((c["CandidateName"], c["FinalAutoMLJobObjectiveMetric"]["Value"])
                    for c in candidates(apk, "ap-conv", "--status Completed")["Candidates"])
    assert 10 <= len(scored) < 200, scored
    best, since = None, 0
    for _, v in scored:  # F1: higher is better
        since = 0 if best is None or v - best >= 0.01 * abs(best) else since + 1
        best = v if best is None else max(best, v)
    assert since == 10, scored
    _, outs = run_cell(apk, "%tune describe ap-conv")
    assert "MaxNumberOfTrainingJobsNotImproving" in json.dumps(outs, default=str)
    # The per-job limit reaches every training job's StoppingCondition.
    autopilot(apk, f"ap-per-job --data {IRIS} --target target --max-candidates 2 --max-runtime-per-job 30 --algorithms xgboost")
    for c in candidates(apk, "ap-per-job")["Candidates"]:
        assert c["EndTime"] - c["CreationTime"] <= 30
    _, outs = run_cell(apk, "%tune describe ap-per-job")
    described = json.dumps(outs, default=str)
    assert '\\"MaxRuntimeInSeconds\\": 30' in described or '"MaxRuntimeInSeconds": 30' in described


def test_stop_and_interrupt_keep_the_finished_candidates(apk):
    reply, took = interrupted_reply(apk, apk.km, f"%autopilot ap-int --data {CANCER} --target target --max-candidates 200 "
                                                 "--max-candidates-not-improving 0", after=6)
    assert reply["status"] == "error" and took < 20, (reply, took)
    d = describe(apk, "ap-int")
    assert d["AutoMLJobStatus"] == "Stopped" and d["AutoMLJobSecondaryStatus"] == "Stopped"
    listed = candidates(apk, "ap-int")["Candidates"]
    assert any(c["CandidateStatus"] == "Completed" and "FinalAutoMLJobObjectiveMetric" in c for c in listed), listed
    # `rustmaker autopilot stop` (or %autopilot stop in another notebook) stops a job running here.
    msg_id = apk.execute(f"%autopilot ap-stop --data {CANCER} --target target --max-candidates 200 "
                         "--max-candidates-not-improving 0")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        out = subprocess.run([BIN, "autopilot", "stop", "ap-stop"], env=apk.env, capture_output=True, text=True)
        if "Stopping" in out.stdout:
            break
        time.sleep(0.5)
    assert reply_to(apk, msg_id, 60)["content"]["status"] == "error"
    assert describe(apk, "ap-stop")["AutoMLJobStatus"] == "Stopped"
    assert "already Stopped" in subprocess.run([BIN, "autopilot", "stop", "ap-stop"], env=apk.env,
                                               capture_output=True, text=True).stdout


def test_bad_inputs_are_refused_with_what_to_do(apk, tmp_path):
    def csv(name: str, text: str) -> pathlib.Path:
        p = tmp_path / name
        p.write_text(text)
        return p

    def refused(line: str) -> str:
        return error_of(apk, f"%autopilot {line}", timeout=120)

    assert "did you mean `target`" in refused(f"bad1 --data {CANCER} --target targte")
    constant = csv("constant.csv", "x,y\n1,a\n2,a\n3,a\n4,a\n")
    assert "choose another target" in refused(f"bad2 --data {constant} --target y")
    single = csv("single.csv", "x,y\n" + "".join(f"{i},{'a' if i % 2 else 'b'}\n" for i in range(20)) + "99,c\n")
    assert "class `c` of the target `y` has a single row" in refused(f"bad3 --data {single} --target y")
    empty = csv("empty.csv", "x,y\n")
    assert "no rows" in refused(f"bad4 --data {empty} --target y")
    only = csv("only.csv", "y\n1\n2\n3\n1\n")
    assert "only the target" in refused(f"bad5 --data {only} --target y")
    text = csv("text.csv", "note,y\n" + "".join(f"free text number {i} with words {i * 7},{i % 2}\n" for i in range(40)))
    assert "free text" in refused(f"bad6 --data {text} --target y")
    assert "does not fit a BinaryClassification problem" in refused(f"bad7 --data {CANCER} --target target --objective MSE")
    assert "more than the whole job's" in refused(f"bad8 --data {CANCER} --target target --max-runtime 10 --max-runtime-per-job 60")
    assert "nowhere.csv` is neither a frame" in refused(f"bad9 --data {tmp_path / 'nowhere.csv'} --target y")
    assert describe(apk, "bad9")["AutoMLJobStatus"] == "Failed" and "nowhere.csv" in describe(apk, "bad9")["FailureReason"]
    assert "no Autopilot job `nope`" in error_of(apk, "%autopilot describe nope")
    # A name in use is refused, and the job stored under it is kept.
    autopilot(apk, f"ap-taken --data {IRIS} --target target --candidates-only")
    assert "exists already" in refused(f"ap-taken --data {CANCER} --target target")
    assert describe(apk, "ap-taken")["ResolvedAttributes"]["ProblemType"] == "MulticlassClassification"
    # Rows without a target are dropped and counted.
    gaps = csv("gaps.csv", "x,z,y\n" + "".join(f"{i},{i % 3},{'' if i % 10 == 0 else ('a' if i % 2 else 'b')}\n" for i in range(60)))
    autopilot(apk, f"ap-gaps --data {gaps} --target y --max-candidates 1 --algorithms randomforest")
    # One candidate makes no ensemble.
    assert [c["CandidateDefinition"] for c in candidates(apk, "ap-gaps")["Candidates"]] == ["dpp0-randomforest"]
    reasons = describe(apk, "ap-gaps")["PartialFailureReasons"]
    assert any("6 rows without a value of the target `y` were left out" in r["PartialFailureMessage"] for r in reasons), reasons
    # The kernel still serves.
    assert "ap-gaps" in json.dumps(ok(apk, "%autopilot list"), default=str)


def test_s3_in_and_out(apk, boto):
    s3 = boto("s3")
    s3.create_bucket(Bucket="automl")
    s3.upload_file(str(IRIS), "automl", "raw/iris.csv")
    said = autopilot(apk, "ap-s3 --data s3://automl/raw/iris.csv --target target --output s3://automl/out "
                          "--max-candidates 2 --algorithms randomforest")
    assert "Completed (MaxCandidatesReached)" in said, said
    d = describe(apk, "ap-s3")
    assert d["OutputDataConfig"]["S3OutputPath"] == "s3://automl/out"
    location = d["AutoMLJobArtifacts"]["CandidateDefinitionNotebookLocation"]
    assert location == "s3://automl/out/ap-s3/sagemaker-automl-candidates/ap-s3-pr-1/notebooks/SageMakerAutopilotCandidateDefinitionNotebook.ipynb"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="automl", Prefix="out/ap-s3/")["Contents"]}
    assert {"out/ap-s3/best-candidate/model.tar.gz",
            "out/ap-s3/preprocessed-data/tuning_data/validation.parquet",
            location.removeprefix("s3://automl/"),
            d["AutoMLJobArtifacts"]["DataExplorationNotebookLocation"].removeprefix("s3://automl/")} <= keys, keys
    body = s3.get_object(Bucket="automl", Key=location.removeprefix("s3://automl/"))["Body"].read()
    nbformat.validate(nbformat.reads(body.decode(), as_version=4))
