"""Every notebook in notebooks/ runs from start to finish on this kernel, as a user would run it."""

from __future__ import annotations

import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def _check_quickstart(nb):
    by_source = {c.source: c.outputs for c in nb.cells if c.cell_type == "code"}
    assert by_source["total"][0]["data"]["text/plain"] == "17.75"
    loop = 'for (i, p) in prices.iter().enumerate() {\n    println!("item {i}: {p:>6.2}");\n}'
    assert "item 2:  10.00" in by_source[loop][0]["text"]
    assert [o["output_type"] for o in by_source[loop]] == ["stream"], "a loop's () is not shown"
    lsmagic = by_source["%lsmagic"][0]["data"]
    assert "%lsmagic" in lsmagic["text/plain"] and "<table>" in lsmagic["text/html"]


def _check_spark(nb):
    by_source = {c.source: c.outputs for c in nb.cells if c.cell_type == "code"}
    first = next(outs for src, outs in by_source.items() if "createOrReplaceTempView" in src)
    assert any(o.get("text") == "10000 rows\n" for o in first)
    sql = next(outs for src, outs in by_source.items() if src.startswith("%%sql -o monthly"))
    assert any("<table" in o.get("data", {}).get("text/html", "") for o in sql)
    assert "monthly: 12 rows × 3 columns" in by_source["%frames monthly"][0]["text"]
    plot = next(outs for src, outs in by_source.items() if "%matplot plt" in src)
    assert any("image/png" in o.get("data", {}) for o in plot)


def _check_aws(nb):
    by_source = {c.source: c.outputs for c in nb.cells if c.cell_type == "code"}
    assert "sales: 4 rows × 3 columns" in by_source["%frames sales"][0]["text"]
    listing = by_source["%s3 ls s3://rustmaker-demo/ --recursive"][0]["data"]["text/html"]
    assert "raw/sales.csv" in listing and "curated/sales.parquet" in listing
    runs = next(outs for src, outs in by_source.items() if src == "%glue job runs nightly-etl")
    assert "SUCCEEDED" in runs[0]["data"]["text/html"]
    first = next(outs for src, outs in by_source.items() if src.startswith("%%glue\nsales"))
    assert "total: 29.75\n" in "".join(o.get("text", "") for o in first)
    assert "59.5" in "".join(o.get("text", "") for o in by_source["%%glue\ntotal * 2"])
    assert "partition_key" in by_source["%frames orders_schema"][0]["text"]


def _check_monitor(nb):
    by_source = {c.source: c.outputs for c in nb.cells if c.cell_type == "code"}
    check = next(outs for src, outs in by_source.items() if src.startswith("%monitor check"))
    assert "CompletedWithViolations" in check[0]["data"]["text/plain"]
    html = "".join(o.get("data", {}).get("text/html", "") for o in check)
    assert "categorical_values_check" in html and "baseline_drift_check" in html
    assert '"name": "price"' in by_source[next(s for s in by_source if "constraints.json" in s)][0]["text"]
    baseline = by_source["%monitor baseline --data train.csv --output baseline"]
    said = "".join(o.get("text", "") for o in baseline if o["output_type"] == "stream")
    assert "the first line is read as the header" in said and "5000 rows" in said, said
    report = by_source["%monitor report reports/today"][0]["data"]["text/html"]
    assert report.count("<svg") == 4 and "purple" in report


def _check_training(nb):
    by_source = {c.source: c.outputs for c in nb.cells if c.cell_type == "code"}
    board = by_source["%experiments leaderboard churn --sort validation:accuracy"]
    rows = board[0]["data"]["application/vnd.dataresource+json"]["data"]
    assert [r["TrialComponentName"] for r in rows][-1] == "churn-baseline", "the baseline ranks last"
    assert len(rows) == 5 and all(r["Status"] == "Completed" for r in rows)
    assert "churn-leafwise" in [r["TrialComponentName"] for r in rows]
    assert rows[0]["validation:accuracy"] > rows[-1]["validation:accuracy"] + 0.05
    assert "predicted_label" in by_source["%frames scored"][0]["text"]
    script = next(outs for src, outs in by_source.items() if src.startswith("%train churn-baseline"))
    assert "epoch 2: accuracy=" in "".join(o.get("text", "") for o in script)
    assert "<svg" in by_source["%experiments compare churn-logistic churn-boost"][0]["data"]["text/html"]
    curve = by_source["%experiments leaderboard curve --sort validation:rmse"]
    rows = curve[0]["data"]["application/vnd.dataresource+json"]["data"]
    assert [r["TrialComponentName"] for r in rows] == ["curve-gp", "curve-boost"], "the process fits the smooth target best"
    # The noise's deviation is 0.5: the process comes close to it, boosting stays well above.
    assert rows[0]["validation:rmse"] < 0.7 < rows[1]["validation:rmse"], rows


def _check_tuning(nb):
    by_source = {c.source.split("\n")[0]: c.outputs for c in nb.cells if c.cell_type == "code"}
    table = lambda outs: next(o for o in outs if "data" in o)["data"]["application/vnd.dataresource+json"]
    bayes = table(by_source["%tune analytics churn-bayes -o trials"])
    fields = [f["name"] for f in bayes["schema"]["fields"] if f["name"] != "index"]
    assert fields[:2] == ["eta", "max_depth"] and fields[2:5] == ["TrainingJobName", "TrainingJobStatus",
                                                                 "FinalObjectiveValue"]
    assert all(r["TrainingJobName"].startswith("churn-bayes-") for r in bayes["data"])
    described = by_source["%tune describe churn-bayes"][0]["data"]["application/json"]
    assert described["HyperParameterTuningJobStatus"] == "Completed" and "OverallBestTrainingJob" in described
    hyperband = "".join(o.get("data", {}).get("text/html", "") for o in by_source["%%tune churn-hyperband --experiment churn-tuning"])
    assert "Hyperband: at resource" in hyperband, "Hyperband stopped trials at a rung"
    multi = table(by_source["%tune analytics churn-multi"])
    assert {r["TrainingJobDefinitionName"] for r in multi["data"]} == {"forest", "boost"}
    quick = "".join(o.get("text", "") for o in by_source[next(s for s in by_source if s.startswith("%tune churn-quick"))])
    assert "best training job churn-quick-" in quick


def _check_deploy(nb):
    by_source = {c.source.split("\n")[0]: c.outputs for c in nb.cells if c.cell_type == "code"}
    text = lambda outs: "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outs)
    assert "endpoint churn: InService" in text(by_source["%deploy churn --model churn-boost --capture 100 --capture-to capture"])
    answers = next(o for o in by_source["%%invoke churn -o answers"] if "data" in o)["data"]
    rows = answers["application/vnd.dataresource+json"]["data"]
    assert len(rows) == 3 and {r["predicted_label"] for r in rows} <= {"yes", "no"}, rows
    assert "answered by variant AllTraffic" in text(by_source["%%invoke churn -o answers"])
    csv = text(by_source["%%invoke churn --accept text/csv"])
    assert "_c0" in csv and "_c1" in csv, csv
    assert '"CaptureStatus": "Started"' in text(by_source["%endpoint describe churn"])
    now = by_source["%monitor schedule churn --baseline baseline --every now --output reports"]
    assert "CompletedWithViolations" in text(now), text(now)
    assert "baseline_drift_check" in "".join(o.get("data", {}).get("text/html", "") for o in now)
    assert "Scheduled (cron(0 * ? * * *))" in text(by_source["%monitor schedule churn --baseline baseline --every hour --name churn-hourly --output reports"])
    runs = next(o for o in by_source["%monitor executions churn"] if "data" in o)["data"]
    [run] = runs["application/vnd.dataresource+json"]["data"]
    assert run["MonitoringExecutionStatus"] == "CompletedWithViolations" and int(run["Records"]) == 605, run
    assert "scored: 300 rows" in text(by_source["%frames scored"])


def _check_autopilot(nb):
    by_source = {c.source.split("\n")[0]: c.outputs for c in nb.cells if c.cell_type == "code"}
    text = lambda outs: "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outs)
    ran = text(by_source[next(s for s in by_source if s.startswith("%autopilot churn --data"))])
    assert "Autopilot job churn: Completed" in ran and "best candidate churn-" in ran, ran
    described = next(o for o in by_source["%autopilot describe churn"] if "data" in o)["data"]["application/json"]
    assert described["ResolvedAttributes"]["ProblemType"] == "BinaryClassification"
    assert described["ResolvedAttributes"]["AutoMLJobObjective"]["MetricName"] == "F1"
    assert any("without a value of the target" in r["PartialFailureMessage"] for r in described["PartialFailureReasons"])
    board = next(o for o in by_source["%autopilot candidates churn -o board"] if "data" in o)["data"]
    rows = board["application/vnd.dataresource+json"]["data"]
    trials = [r for r in rows if r["CandidateDefinition"] != "weighted-ensemble"]
    assert 1 <= len(trials) <= 8 and len(rows) - len(trials) <= 1, "the trials and at most one ensemble"
    assert rows[0]["CandidateName"] == described["BestCandidate"]["CandidateName"]
    assert rows[0]["F1"] > 0.6, rows[0]
    assert "scored: 3 rows" in text(by_source["%frames scored"])
    assert "CandidateDefinitionsGenerated" in text(by_source["%%autopilot churn-defs"])


def _check_debugger(nb):
    by_source = {c.source.split(" --")[0]: c.outputs for c in nb.cells if c.cell_type == "code"}
    text = lambda outs: "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outs)
    healthy = text(by_source["%train patients-mlp"])
    assert "status=Completed" in healthy or "Completed" in healthy, healthy
    assert "dense0.weight" in text(by_source["%debugger tensors patients-mlp"])
    assert "<polyline" in by_source["%debugger plot patients-mlp"][0]["data"]["image/svg+xml"]
    boom = text(by_source["%train patients-boom"])
    assert "stopped by rule ExplodingTensor" in boom, boom
    rules = next(o for o in by_source["%debugger rules patients-boom"] if "data" in o)["data"]["application/json"]
    status = {r["RuleConfigurationName"]: r["RuleEvaluationStatus"] for r in rules["DebugRuleEvaluationStatuses"]}
    assert status["ExplodingTensor"] == "IssuesFound" and status["LossNotDecreasing"] in ("Stopped", "IssuesFound")
    described = next(o for o in by_source["%train describe patients-boom"] if "data" in o)["data"]["application/json"]
    assert described["TrainingJobStatus"] == "Stopped" and "ExplodingTensor" in described["FailureReason"]


def _check_rust_frames(nb):
    by_source = {c.source.split("\n")[0]: c.outputs for c in nb.cells if c.cell_type == "code"}
    text = lambda outs: "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outs)
    assert "sales: 500 rows × 3 columns" in text(by_source["%frames sales"])
    read = text(by_source['let violations = frames::columns("violations")?;'])
    assert "price violates" in read, read
    listed = text(by_source[next(s for s in by_source if s.startswith("frames::list()"))])
    assert "sales: 500 × 3" in listed and "today: 500 × 3" in listed and "violations:" in listed, listed
    assert "no frame named `no_such_frame`" in text(by_source['match frames::columns("no_such_frame") {'])


# What each notebook must show besides running without errors.
CHECKS = {"quickstart.ipynb": _check_quickstart, "spark.ipynb": _check_spark, "aws.ipynb": _check_aws,
          "monitor.ipynb": _check_monitor, "training.ipynb": _check_training,
          "tuning.ipynb": _check_tuning, "deploy.ipynb": _check_deploy,
          "autopilot.ipynb": _check_autopilot, "debugger.ipynb": _check_debugger,
          "rust-frames.ipynb": _check_rust_frames}


@pytest.fixture(autouse=True)
def aws_is_moto(request, monkeypatch):
    """The AWS notebooks talk to moto's server, whose Data Catalog holds a table, as an
    account's would."""
    if "aws.ipynb" in request.node.name:
        import boto3

        from conftest import AWS

        url = request.getfixturevalue("moto_url")
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        for k, v in AWS.items():
            monkeypatch.setenv(k, v)
        glue = boto3.client("glue", endpoint_url=url, region_name=AWS["AWS_REGION"],
                            aws_access_key_id="testing", aws_secret_access_key="testing")
        if "sales" not in [d["Name"] for d in glue.get_databases()["DatabaseList"]]:
            glue.create_database(DatabaseInput={"Name": "sales"})
            glue.create_table(DatabaseName="sales", TableInput={
                "Name": "orders",
                "StorageDescriptor": {"Columns": [{"Name": "region", "Type": "string"},
                                                  {"Name": "amount", "Type": "double"}],
                                      "Location": "s3://rustmaker-demo/curated/orders/"},
                "PartitionKeys": [{"Name": "day", "Type": "string"}]})


@pytest.fixture(autouse=True)
def private_local_livy(tmp_path, monkeypatch):
    """Notebooks use the embedded default: the kernel starts its own local Livy server, here
    in a private RUSTMAKER_HOME, stopped after the notebook."""
    import json
    import os
    import signal
    import sys

    home = tmp_path / "rustmaker-home"
    monkeypatch.setenv("RUSTMAKER_HOME", str(home))
    monkeypatch.setenv("RUSTMAKER_PYTHON", sys.executable)
    monkeypatch.setenv("SPARKMAGIC_CONF_DIR", str(tmp_path))
    monkeypatch.delenv("RUSTMAKER_LIVY_URL", raising=False)
    # Training jobs and the experiment store of each run are its own.
    monkeypatch.setenv("RUSTMAKER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("RUSTMAKER_EXPERIMENTS_DB", raising=False)
    yield
    state = home / "livy-server.json"
    if state.exists():
        os.kill(json.loads(state.read_text())["pid"], signal.SIGTERM)
    # The local service the deployment magics started.
    service = tmp_path / "data" / "instances" / "service.json"
    if service.exists():
        try:
            os.kill(json.loads(service.read_text())["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_end_to_end(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name="rustmaker", timeout=300, resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    nbformat.validate(nb)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code_cells), "every code cell ran"
    errors = [o for c in code_cells for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    CHECKS.get(path.name, lambda nb: None)(nb)


def test_every_notebook_is_checked():
    assert {p.name for p in NOTEBOOKS} == set(CHECKS)
