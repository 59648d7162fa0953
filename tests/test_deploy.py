"""Model endpoints through boto3's `sagemaker` and `sagemaker-runtime` clients against
`rustmaker serve`: models, endpoint configurations with two variants and data capture,
InvokeEndpoint in CSV, JSON and JSON Lines, traffic split by weight, TargetVariant, weights
changed live, a new configuration swapped in, bad input, and recovery after the service is
killed."""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import subprocess
import time

import boto3
import botocore
import pytest

from conftest import BIN
from service import KEY, Service

ROOT = pathlib.Path(__file__).resolve().parents[1]
IRIS = ROOT / "tests" / "data" / "ml" / "iris.csv"
ROWS = ["5.1,3.5,1.4,0.2", "6.7,3.0,5.2,2.3", "5.9,3.0,4.2,1.5"]
LABELS = ["setosa", "virginica", "versicolor"]


def code(e: botocore.exceptions.ClientError) -> str:
    return e.response["Error"]["Code"]


def wait(sm, name: str, limit: float = 60) -> dict:
    deadline = time.monotonic() + limit
    while True:
        d = sm.describe_endpoint(EndpointName=name)
        if d["EndpointStatus"] not in ("Creating", "Updating") or time.monotonic() > deadline:
            return d
        time.sleep(0.1)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    """Two iris models trained once with `rustmaker train`: their model.tar.gz paths."""
    home = tmp_path_factory.mktemp("deploy-train")
    env = dict(os.environ, HOME=str(home), RUSTMAKER_HOME=str(home), RUSTMAKER_DATA_DIR=str(home / "data"))
    out = {}
    for name, algorithm in (("iris-forest", "random-forest"), ("iris-boost", "gradient-boosting")):
        subprocess.run([BIN, "train", name, "--algorithm", algorithm, "--data", str(IRIS), "--target", "target"],
                       env=env, check=True, capture_output=True, timeout=300)
        out[name] = home / "data" / "training-jobs" / name / "output" / "model.tar.gz"
        assert out[name].is_file()
    return out


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    s = Service(tmp_path_factory.mktemp("deploy") / "state")
    yield s
    s.kill()


def deploy(sm, models: dict, name: str, capture: pathlib.Path | None = None, weights=(3, 1)) -> None:
    for m, path in models.items():
        try:
            sm.create_model(ModelName=m, PrimaryContainer={"Image": "rustmaker", "ModelDataUrl": str(path)},
                            ExecutionRoleArn="arn:aws:iam::000000000000:role/model")
        except botocore.exceptions.ClientError as e:
            assert "already existing" in str(e)
    config = dict(EndpointConfigName=f"{name}-config", ProductionVariants=[
        {"VariantName": "forest", "ModelName": "iris-forest", "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large", "InitialVariantWeight": weights[0]},
        {"VariantName": "boost", "ModelName": "iris-boost", "InitialInstanceCount": 2,
         "InstanceType": "ml.m5.large", "InitialVariantWeight": weights[1]}])
    if capture:
        config["DataCaptureConfig"] = {"EnableCapture": True, "InitialSamplingPercentage": 100,
                                       "DestinationS3Uri": str(capture),
                                       "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]}
    sm.create_endpoint_config(**config)
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
    d = wait(sm, name)
    assert d["EndpointStatus"] == "InService", d


def test_an_endpoint_serves_routes_captures_and_updates(svc, models, tmp_path):
    capture = tmp_path / "capture"
    deploy(svc.sm, models, "iris", capture)
    d = svc.sm.describe_endpoint(EndpointName="iris")
    variants = {v["VariantName"]: v for v in d["ProductionVariants"]}
    assert variants["forest"]["CurrentWeight"] == 3 and variants["boost"]["CurrentInstanceCount"] == 2
    assert d["DataCaptureConfig"]["CaptureStatus"] == "Started"
    assert [e["EndpointName"] for e in svc.sm.list_endpoints()["Endpoints"]] == ["iris"]

    # The same rows in every content type give the same labels, and the right ones.
    csv = svc.rt.invoke_endpoint(EndpointName="iris", ContentType="text/csv", Body="\n".join(ROWS),
                                 TargetVariant="forest")
    assert csv["ContentType"] == "text/csv" and csv["InvokedProductionVariant"] == "forest"
    labels = [line.split(",")[0] for line in csv["Body"].read().decode().splitlines()]
    assert labels == LABELS
    rows = [[float(v) for v in r.split(",")] for r in ROWS]
    js = svc.rt.invoke_endpoint(EndpointName="iris", ContentType="application/json", Accept="application/json",
                                Body=json.dumps({"instances": rows}), TargetVariant="forest")
    assert [p["predicted_label"] for p in json.loads(js["Body"].read())["predictions"]] == LABELS
    jl = svc.rt.invoke_endpoint(EndpointName="iris", ContentType="application/jsonlines",
                                Body="\n".join(json.dumps(r) for r in rows), TargetVariant="boost")
    assert jl["InvokedProductionVariant"] == "boost"
    answers = [json.loads(line) for line in jl["Body"].read().decode().splitlines()]
    assert [a["predicted_label"] for a in answers] == LABELS and all(0 < a["probability"] <= 1 for a in answers)

    # Weights 3:1 over 10,000 calls: each variant's share within 1.5 % of its weight.
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        variants_hit = list(pool.map(lambda _: svc.rt.invoke_endpoint(
            EndpointName="iris", ContentType="text/csv", Body=ROWS[0])["InvokedProductionVariant"], range(10_000)))
    counts = {v: variants_hit.count(v) for v in ("forest", "boost")}
    assert sum(counts.values()) == 10_000 and abs(counts["forest"] / 10_000 - 0.75) < 0.015, counts

    # Weights changed live: everything to boost.
    svc.sm.update_endpoint_weights_and_capacities(EndpointName="iris", DesiredWeightsAndCapacities=[
        {"VariantName": "forest", "DesiredWeight": 0}, {"VariantName": "boost", "DesiredWeight": 1}])
    assert {svc.rt.invoke_endpoint(EndpointName="iris", ContentType="text/csv", Body=ROWS[1])[
        "InvokedProductionVariant"] for _ in range(50)} == {"boost"}

    # Capture: every request above, in SageMaker's layout, once its file rolls (at most 10 s).
    deadline = time.monotonic() + 20
    while True:
        files = sorted(capture.glob("iris/*/*/*/*/*/*.jsonl"))
        records = [json.loads(line) for f in files for line in f.read_text().splitlines()]
        if len(records) >= 10_053 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(records) == 10_053, len(records)
    assert {f.parts[-6] for f in files} == {"forest", "boost"}
    first = records[0]
    assert list(first) == ["captureData", "eventMetadata", "eventVersion"]
    assert first["captureData"]["endpointInput"]["encoding"] in ("CSV", "JSON", "BASE64")

    # A new configuration swapped in: only the forest, at full weight.
    svc.sm.create_endpoint_config(EndpointConfigName="iris-forest-only", ProductionVariants=[
        {"VariantName": "forest", "ModelName": "iris-forest", "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large", "InitialVariantWeight": 1}])
    # Under a steady load of four callers, from before the update until after it: no call fails.
    import threading
    done, served, failures = threading.Event(), [], []

    def caller():
        while not done.is_set():
            try:
                served.append(svc.rt.invoke_endpoint(EndpointName="iris", ContentType="text/csv", Body=ROWS[2])[
                    "InvokedProductionVariant"])
            except Exception as e:  # noqa: BLE001 - every failure is counted
                failures.append(e)

    callers = [threading.Thread(target=caller) for _ in range(4)]
    for c in callers:
        c.start()
    time.sleep(0.3)
    svc.sm.update_endpoint(EndpointName="iris", EndpointConfigName="iris-forest-only")
    while svc.sm.describe_endpoint(EndpointName="iris")["EndpointStatus"] == "Updating":
        time.sleep(0.05)
    time.sleep(0.3)
    after = len(served)
    time.sleep(0.3)
    done.set()
    for c in callers:
        c.join(timeout=30)
    assert not failures, failures[:3]
    assert len(served) > 100 and set(served[after:]) == {"forest"}, (len(served), set(served[after:]))
    d = svc.sm.describe_endpoint(EndpointName="iris")
    assert d["EndpointStatus"] == "InService" and d["EndpointConfigName"] == "iris-forest-only"
    assert [v["VariantName"] for v in d["ProductionVariants"]] == ["forest"]

    svc.sm.delete_endpoint(EndpointName="iris")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        svc.rt.invoke_endpoint(EndpointName="iris", ContentType="text/csv", Body=ROWS[0])
    assert code(e.value) == "ValidationError"


def test_bad_input_gets_sagemakers_errors_and_the_endpoint_keeps_serving(svc, models, tmp_path):
    deploy(svc.sm, models, "bad")
    call = dict(EndpointName="bad", ContentType="text/csv")
    for kwargs, want, text in [
        (dict(Body="1,2,3\n"), "ModelError", "row 1: has 3 values; the model takes 4"),
        (dict(Body="5.1,3.5,1.4,0.2\n5.1,x,1.4,0.2"), "ModelError", "sepal_width_cm"),
        (dict(Body=ROWS[0], TargetVariant="nope"), "ValidationError", "no variant `nope`"),
        (dict(Body="1" * (6 * 1024 * 1024 + 1)), "ValidationError", "at most 6291456"),
        (dict(Body=ROWS[0], ContentType="image/png"), "ModelError", "unsupported content type"),
    ]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            svc.rt.invoke_endpoint(**{**call, **kwargs})
        assert code(e.value) == want and text in str(e.value), str(e.value)
    assert svc.rt.invoke_endpoint(**call, Body=ROWS[0])["Body"].read().startswith(b"setosa")

    # A wrong signature is refused before anything runs.
    wrong = boto3.client("sagemaker-runtime", endpoint_url=svc.url, region_name="us-east-1",
                         aws_access_key_id=KEY, aws_secret_access_key="wrong")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        wrong.invoke_endpoint(**call, Body=ROWS[0])
    assert "signature" in str(e.value).lower()

    # Control-plane refusals.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        svc.sm.create_endpoint_config(EndpointConfigName="zero", ProductionVariants=[
            {"VariantName": "a", "ModelName": "iris-forest", "InitialInstanceCount": 1,
             "InstanceType": "ml.m5.large", "InitialVariantWeight": 0}])
    assert code(e.value) == "ValidationException" and "weight is 0" in str(e.value)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        svc.sm.create_endpoint_config(EndpointConfigName="nomodel", ProductionVariants=[
            {"VariantName": "a", "ModelName": "missing", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    assert "Could not find model" in str(e.value)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        svc.sm.describe_endpoint(EndpointName="never-made")
    assert code(e.value) == "ValidationException" and "Could not find endpoint" in str(e.value)

    # A model whose artifact is broken: the endpoint ends Failed with the reason.
    broken = tmp_path / "model.tar.gz"
    broken.write_bytes(b"not a tarball")
    svc.sm.create_model(ModelName="broken", PrimaryContainer={"Image": "x", "ModelDataUrl": str(broken)},
                        ExecutionRoleArn="arn:aws:iam::000000000000:role/model")
    svc.sm.create_endpoint_config(EndpointConfigName="broken-config", ProductionVariants=[
        {"VariantName": "a", "ModelName": "broken", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    svc.sm.create_endpoint(EndpointName="broken", EndpointConfigName="broken-config")
    d = wait(svc.sm, "broken")
    assert d["EndpointStatus"] == "Failed" and "cannot be served" in d["FailureReason"], d
    assert svc.rt.invoke_endpoint(**call, Body=ROWS[1])["Body"].read().startswith(b"virginica")


def test_endpoints_come_back_after_the_service_is_killed(models, tmp_path):
    """SIGKILL under a steady load with capture on: after a restart the endpoint is back
    InService with its weights and capture settings, and the capture files the killed
    service left unfinished (hidden) are mended: whole records kept, none half-written."""
    import threading
    s = Service(tmp_path / "state")
    try:
        deploy(s.sm, models, "lasting", tmp_path / "capture", weights=(1, 0))
        stop, answered = threading.Event(), []

        def caller():
            while not stop.is_set():
                try:
                    answered.append(s.rt.invoke_endpoint(EndpointName="lasting", ContentType="text/csv", Body=ROWS[0]))
                except Exception:  # noqa: BLE001 - the service is killed under these calls
                    pass

        callers = [threading.Thread(target=caller) for _ in range(4)]
        for c in callers:
            c.start()
        time.sleep(1.5)
        s.kill()
        stop.set()
        for c in callers:
            c.join(timeout=30)
        assert len(answered) > 50, len(answered)
        s.start()
        d = wait(s.sm, "lasting")
        assert d["EndpointStatus"] == "InService", d
        assert {v["VariantName"]: v["CurrentWeight"] for v in d["ProductionVariants"]} == {"forest": 1, "boost": 0}
        assert d["DataCaptureConfig"]["CurrentSamplingPercentage"] == 100
        r = s.rt.invoke_endpoint(EndpointName="lasting", ContentType="text/csv", Body=ROWS[0])
        assert r["InvokedProductionVariant"] == "forest" and r["Body"].read().startswith(b"setosa")
        # The files the killed service was writing are mended at start: every answered
        # request's record is there, and every visible line is a whole record.
        lines = [line for f in (tmp_path / "capture").glob("**/*.jsonl") for line in f.read_text().splitlines()]
        assert len(lines) >= len(answered), (len(lines), len(answered))
        assert all(json.loads(line)["captureData"]["endpointInput"]["data"] == ROWS[0] for line in lines)
    finally:
        s.kill()


def test_captured_traffic_is_what_the_model_monitor_checks(svc, models, tmp_path):
    """The capture files an endpoint writes are read by `rustmaker monitor check --capture`:
    traffic like the training data passes the baseline, drifted traffic violates it."""
    features = [line.rsplit(",", 1)[0] for line in IRIS.read_text().splitlines()[1:]]
    (tmp_path / "train.csv").write_text("\n".join(features) + "\n")
    subprocess.run([BIN, "monitor", "baseline", "--data", str(tmp_path / "train.csv"), "--no-header", "--output",
                    str(tmp_path / "baseline")], check=True, capture_output=True, timeout=120)
    results, scheduled = {}, {}
    for name, scale in (("clean", 1.0), ("drifted", 3.0)):
        capture = tmp_path / f"capture-{name}"
        deploy(svc.sm, models, name, capture, weights=(1, 1))
        for row in features:
            body = ",".join(f"{float(v) * scale:g}" for v in row.split(","))
            svc.rt.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=body)
        deadline = time.monotonic() + 20
        while sum(len(f.read_text().splitlines()) for f in capture.glob("**/*.jsonl")) < len(features):
            assert time.monotonic() < deadline, "the capture files did not roll"
            time.sleep(0.5)
        out = subprocess.run([BIN, "monitor", "check", "--capture", str(capture / name), "--baseline",
                              str(tmp_path / "baseline"), "--output", str(tmp_path / f"reports-{name}")],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        results[name] = [line.split()[1] for line in out.stdout.splitlines() if line.strip()]
        scheduled[name] = run_schedule_now(svc.sm, name, tmp_path / "baseline", tmp_path / "schedule-reports",
                                           via_definition=name == "clean")
        svc.sm.delete_endpoint(EndpointName=name)
    assert results["clean"] and set(results["clean"]) == {"Completed"}, results
    assert "CompletedWithViolations" in results["drifted"], results
    # The same traffic, checked by a monitoring schedule in the service.
    assert scheduled["clean"]["MonitoringExecutionStatus"] == "Completed", scheduled
    assert scheduled["drifted"]["MonitoringExecutionStatus"] == "CompletedWithViolations", scheduled
    report = pathlib.Path(scheduled["drifted"]["ReportUri"])
    assert report.parent.parent.parent.parent == tmp_path / "schedule-reports" / "drifted" / "drifted-now"
    kinds = {v["constraint_check_type"] for v in json.loads((report / "constraint_violations.json").read_text())["violations"]}
    assert "baseline_drift_check" in kinds, kinds
    assert (report / "statistics.json").is_file()


def schedule_request(name: str, endpoint: str, baseline: pathlib.Path, reports: pathlib.Path,
                     expression: str = "NOW") -> dict:
    """CreateMonitoringSchedule's request as the SageMaker SDK's DefaultModelMonitor sends it."""
    config = {"ScheduleExpression": expression}
    if expression == "NOW":
        config.update(DataAnalysisStartTime="-PT1H", DataAnalysisEndTime="-PT0H")
    return dict(MonitoringScheduleName=name, MonitoringScheduleConfig={
        "ScheduleConfig": config,
        "MonitoringJobDefinition": {
            "BaselineConfig": {"ConstraintsResource": {"S3Uri": str(baseline / "constraints.json")},
                               "StatisticsResource": {"S3Uri": str(baseline / "statistics.json")}},
            "MonitoringInputs": [{"EndpointInput": {"EndpointName": endpoint,
                                                    "LocalPath": "/opt/ml/processing/input/endpoint"}}],
            "MonitoringOutputConfig": {"MonitoringOutputs": [{"S3Output": {
                "S3Uri": str(reports), "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}}]},
            "MonitoringResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                                      "VolumeSizeInGB": 20}},
            "MonitoringAppSpecification": {"ImageUri": "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer"},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            "RoleArn": "arn:aws:iam::000000000000:role/monitor"},
        "MonitoringType": "DataQuality"})


def run_schedule_now(sm, endpoint: str, baseline: pathlib.Path, reports: pathlib.Path,
                     via_definition: bool = False) -> dict:
    """A NOW schedule, given inline or, as the SageMaker SDK's DefaultModelMonitor makes it,
    through a data-quality job definition named in the schedule."""
    name = f"{endpoint}-now"
    request = schedule_request(name, endpoint, baseline, reports)
    if via_definition:
        job = request["MonitoringScheduleConfig"].pop("MonitoringJobDefinition")
        sm.create_data_quality_job_definition(
            JobDefinitionName=f"{endpoint}-dq", DataQualityBaselineConfig=job["BaselineConfig"],
            DataQualityAppSpecification={"ImageUri": job["MonitoringAppSpecification"]["ImageUri"]},
            DataQualityJobInput={"EndpointInput": job["MonitoringInputs"][0]["EndpointInput"]},
            DataQualityJobOutputConfig=job["MonitoringOutputConfig"],
            JobResources=job["MonitoringResources"], RoleArn=job["RoleArn"])
        assert sm.describe_data_quality_job_definition(JobDefinitionName=f"{endpoint}-dq")["JobDefinitionName"] == f"{endpoint}-dq"
        request["MonitoringScheduleConfig"]["MonitoringJobDefinitionName"] = f"{endpoint}-dq"
    sm.create_monitoring_schedule(**request)
    deadline = time.monotonic() + 60
    while True:
        runs = sm.list_monitoring_executions(MonitoringScheduleName=name)["MonitoringExecutionSummaries"]
        if runs and runs[0]["MonitoringExecutionStatus"] != "InProgress":
            break
        assert time.monotonic() < deadline, runs
        time.sleep(0.2)
    [run] = runs
    assert run["EndpointName"] == endpoint and run["ProcessingJobArn"].startswith("arn:aws:sagemaker:")
    described = sm.describe_monitoring_schedule(MonitoringScheduleName=name)
    assert described["MonitoringScheduleStatus"] == "Scheduled"
    assert described["LastMonitoringExecutionSummary"]["MonitoringExecutionStatus"] == run["MonitoringExecutionStatus"]
    return dict(run, ReportUri=_report_uri(reports, endpoint, name, run))


def _report_uri(reports: pathlib.Path, endpoint: str, schedule: str, run: dict) -> str:
    """Where SageMaker puts an execution's reports: {output}/{endpoint}/{schedule}/yyyy/mm/dd/hh."""
    return str(reports / endpoint / schedule / run["ScheduledTime"].astimezone(datetime.timezone.utc).strftime("%Y/%m/%d/%H"))


def test_monitoring_schedules_refuse_what_cannot_run(svc, models, tmp_path):
    """A missing baseline, an endpoint that captures nothing, an expression SageMaker would
    refuse and an unknown schedule each get a ValidationException that says what to fix; a
    stopped schedule stays stopped; a deleted one is gone."""
    deploy(svc.sm, models, "uncaptured")
    (tmp_path / "baseline").mkdir()
    e = _refused(svc.sm, schedule_request("s", "uncaptured", tmp_path / "baseline", tmp_path / "r"))
    assert "StatisticsResource" in e and "%monitor baseline" in e, e
    for f in ("statistics.json", "constraints.json"):
        (tmp_path / "baseline" / f).write_text("{}")
    e = _refused(svc.sm, schedule_request("s", "uncaptured", tmp_path / "baseline", tmp_path / "r"))
    assert "captures no data" in e, e
    deploy(svc.sm, models, "captured", tmp_path / "capture")
    e = _refused(svc.sm, schedule_request("s", "captured", tmp_path / "baseline", tmp_path / "r", "rate(1 hour)"))
    assert "cron(0 * ? * * *)" in e, e
    e = _refused(svc.sm, schedule_request("s", "nowhere", tmp_path / "baseline", tmp_path / "r"))
    assert "nowhere" in e, e
    named = schedule_request("s", "captured", tmp_path / "baseline", tmp_path / "r")
    named["MonitoringScheduleConfig"].pop("MonitoringJobDefinition")
    named["MonitoringScheduleConfig"]["MonitoringJobDefinitionName"] = "no-such-definition"
    e = _refused(svc.sm, named)
    assert "data quality job definition" in e and "no-such-definition" in e, e
    svc.sm.create_monitoring_schedule(**schedule_request("hourly", "captured", tmp_path / "baseline",
                                                         tmp_path / "r", "cron(0 * ? * * *)"))
    e = _refused(svc.sm, schedule_request("hourly", "captured", tmp_path / "baseline", tmp_path / "r",
                                          "cron(0 * ? * * *)"))
    assert "already existing" in e, e
    assert svc.sm.list_monitoring_executions(MonitoringScheduleName="hourly")["MonitoringExecutionSummaries"] == []
    svc.sm.stop_monitoring_schedule(MonitoringScheduleName="hourly")
    assert svc.sm.describe_monitoring_schedule(MonitoringScheduleName="hourly")["MonitoringScheduleStatus"] == "Stopped"
    names = [s["MonitoringScheduleName"] for s in svc.sm.list_monitoring_schedules(EndpointName="captured")["MonitoringScheduleSummaries"]]
    assert names == ["hourly"], names
    svc.sm.delete_monitoring_schedule(MonitoringScheduleName="hourly")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        svc.sm.describe_monitoring_schedule(MonitoringScheduleName="hourly")
    assert code(e.value) == "ValidationException"
    # The endpoint served on through all of it.
    answer = svc.rt.invoke_endpoint(EndpointName="captured", ContentType="text/csv", Body=ROWS[0])
    assert answer["Body"].read().decode().split(",")[0] in LABELS
    for name in ("uncaptured", "captured"):
        svc.sm.delete_endpoint(EndpointName=name)


def _refused(sm, request: dict) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.create_monitoring_schedule(**request)
    assert code(e.value) == "ValidationException", e.value.response
    return str(e.value)


def test_a_transform_job_scores_files_as_the_endpoint_does(svc, models, tmp_path):
    deploy(svc.sm, models, "batch", weights=(1, 0))
    data = tmp_path / "in"
    (data / "part").mkdir(parents=True)
    (data / "a.csv").write_text("\n".join(ROWS) + "\n")
    (data / "part" / "b.csv").write_text("id-9," + ROWS[1] + "\n")

    def run(name: str, source: pathlib.Path, **extra) -> dict:
        svc.sm.create_transform_job(
            TransformJobName=name, ModelName="iris-forest",
            TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(source)}},
                            "ContentType": "text/csv", "SplitType": "Line"},
            TransformOutput={"S3OutputPath": str(tmp_path / name), "AssembleWith": "Line"},
            TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1}, **extra)
        deadline = time.monotonic() + 60
        while (d := svc.sm.describe_transform_job(TransformJobName=name))["TransformJobStatus"] == "InProgress":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        return d

    d = run("plain", data / "a.csv")
    assert d["TransformJobStatus"] == "Completed", d
    invoked = svc.rt.invoke_endpoint(EndpointName="batch", ContentType="text/csv", Body="\n".join(ROWS),
                                     TargetVariant="forest")["Body"].read().decode()
    assert (tmp_path / "plain" / "a.csv.out").read_text() == invoked
    # A folder, with the id column filtered out of the input and joined back to the answer.
    d = run("joined", data / "part", BatchStrategy="SingleRecord",
            DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-2]"})
    assert d["TransformJobStatus"] == "Completed", d
    assert (tmp_path / "joined" / "b.csv.out").read_text() == "id-9,virginica\n"
    d = run("missing", tmp_path / "nothing-here")
    assert d["TransformJobStatus"] == "Failed" and "nothing-here" in d["FailureReason"], d
    assert {j["TransformJobName"] for j in svc.sm.list_transform_jobs()["TransformJobSummaries"]} >= {
        "plain", "joined", "missing"}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        run("bad", data, BatchStrategy="Everything")
    assert code(e.value) == "ValidationException" and "BatchStrategy `Everything`" in str(e.value)


def test_the_magics_start_the_local_service_and_say_what_is_wrong(models, tmp_path):
    """`rustmaker deploy|invoke|endpoint|transform|monitor schedule` (the magics' own code, on a
    console) start the local service on first use, reuse it afterwards, and refuse bad input
    with a message that says what to change, while the endpoint keeps serving."""
    env = dict(os.environ, RUSTMAKER_DATA_DIR=str(tmp_path / "data"), RUST_BACKTRACE="0", RUST_LIB_BACKTRACE="0")
    env.pop("RUSTMAKER_ENDPOINT_URL", None)
    env.pop("AWS_ENDPOINT_URL_SAGEMAKER", None)
    (tmp_path / "rows.csv").write_text("\n".join(ROWS) + "\n")
    (tmp_path / "corrupt.tar.gz").write_bytes(b"not a tarball")

    def run(*args, ok=True):
        out = subprocess.run([BIN, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert (out.returncode == 0) == ok, (args, out.stdout, out.stderr)
        return out.stdout + out.stderr

    state = tmp_path / "data" / "instances" / "service.json"
    try:
        said = run("deploy", "iris", "--model", str(models["iris-forest"]), "--capture", "50")
        assert "endpoint iris: InService" in said and "capture: 50%" in said, said
        pid = json.loads(state.read_text())["pid"]
        said = run("invoke", "iris", "--data", "rows.csv", "--accept", "text/csv")
        assert "answered by variant AllTraffic" in said and all(label in said for label in LABELS), said
        assert "iris" in run("endpoint", "list")
        assert json.loads(state.read_text())["pid"] == pid, "the running service is reused"
        assert "there is no model at" in run("deploy", "gone", "--model", "/nowhere/model.tar.gz", ok=False)
        said = run("deploy", "broken", "--model", str(tmp_path / "corrupt.tar.gz"), ok=False)
        assert "endpoint broken failed" in said and "cannot be served" in said, said
        assert "NAME=MODEL:WEIGHT" in run("deploy", "twice", "--model", "a", "--variant", "b=c:1", ok=False)
        assert "--capture 150" in run("deploy", "much", "--model", "a", "--capture", "150", ok=False)
        assert "not found" in run("invoke", "nope", "--data", "rows.csv", ok=False)
        assert "neither a frame" in run("invoke", "iris", "--data", "missing.csv", ok=False)
        said = run("invoke", "iris", "--data", "rows.csv", "--content-type", "text/plain", ok=False)
        assert "unsupported content type" in said, said
        assert "has no statistics.json" in run("monitor", "schedule", "iris", "--baseline", "nowhere", ok=False)
        assert "--every week" in run("monitor", "schedule", "iris", "--baseline", ".", "--every", "week", ok=False)
        assert "neither a frame" in run("transform", "t1", "--model", str(models["iris-forest"]),
                                        "--data", "missing.csv", ok=False)
        said = run("transform", "t2", "--model", str(models["iris-forest"]), "--data", "rows.csv", "--output", "out")
        assert "Completed" in said, said
        assert [line.split(",")[0] for line in (tmp_path / "out" / "rows.csv.out").read_text().split()] == LABELS
        assert "already existing" in run("transform", "t2", "--model", str(models["iris-forest"]),
                                         "--data", "rows.csv", ok=False)
        assert "iris" in run("endpoint", "describe", "iris")
        run("endpoint", "delete", "iris")
        listed = run("endpoint", "list")
        assert "broken" in listed and "Failed" in listed and "iris" not in listed, listed
    finally:
        if state.exists():
            os.kill(json.loads(state.read_text())["pid"], 15)


INFERENCE = '''
import json, os, time

def model_fn(model_dir):
    with open(os.path.join(model_dir, "weights.json")) as f:
        weights = json.load(f)
    if weights.get("broken"):
        raise ValueError("the weights are broken")
    return weights

def input_fn(body, content_type):
    text = body.decode()
    if "die" in text:
        os._exit(3)
    return [[float(v) for v in line.split(",")] for line in text.splitlines() if line]

def predict_fn(rows, model):
    time.sleep(0.01)
    return [sum(w * v for w, v in zip(model["w"], row)) for row in rows]

def output_fn(prediction, accept):
    if accept == "application/json":
        return json.dumps({"predictions": prediction}), "application/json"
    return "".join(f"{p:g}\\n" for p in prediction), "text/csv"
'''


def script_model(path: pathlib.Path, weights: dict) -> pathlib.Path:
    """A model.tar.gz as the SageMaker SDK repacks a script-mode model: code/inference.py
    beside the model's own files."""
    import io
    import tarfile
    with tarfile.open(path, "w:gz") as tar:
        for name, text in (("code/inference.py", INFERENCE), ("weights.json", json.dumps(weights))):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_script_mode_models_are_served_by_inference_py_workers(svc, tmp_path):
    """A model.tar.gz with code/inference.py is served by Python workers through model_fn,
    input_fn, predict_fn and output_fn; a worker that dies mid-request fails that request
    alone (ModelError) while the others are answered; a model_fn that raises leaves the
    endpoint Failed with its error."""
    import concurrent.futures
    sm, rt = svc.sm, svc.rt
    sm.create_model(ModelName="script-good", ExecutionRoleArn="arn:aws:iam::000000000000:role/m",
                    PrimaryContainer={"ModelDataUrl": str(script_model(tmp_path / "good.tar.gz", {"w": [1, 10]}))})
    sm.create_model(ModelName="script-broken", ExecutionRoleArn="arn:aws:iam::000000000000:role/m",
                    PrimaryContainer={"ModelDataUrl": str(script_model(tmp_path / "broken.tar.gz", {"broken": True}))})
    for name in ("good", "broken"):
        sm.create_endpoint_config(EndpointConfigName=f"script-{name}", ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": f"script-{name}", "InitialInstanceCount": 2,
             "InstanceType": "ml.m5.large"}])
        sm.create_endpoint(EndpointName=f"script-{name}", EndpointConfigName=f"script-{name}")
    broken = wait(sm, "script-broken")
    assert broken["EndpointStatus"] == "Failed", broken
    assert "model_fn failed: ValueError: the weights are broken" in broken["FailureReason"], broken
    assert wait(sm, "script-good")["EndpointStatus"] == "InService"
    answer = rt.invoke_endpoint(EndpointName="script-good", ContentType="text/csv", Body="1,2\n3,4")
    assert answer["Body"].read() == b"21\n43\n" and answer["ContentType"] == "text/csv"
    answer = rt.invoke_endpoint(EndpointName="script-good", ContentType="text/csv", Accept="application/json",
                                Body="0,1")
    assert json.loads(answer["Body"].read()) == {"predictions": [10.0]}

    def call(body: str):
        try:
            return rt.invoke_endpoint(EndpointName="script-good", ContentType="text/csv", Body=body)["Body"].read()
        except botocore.exceptions.ClientError as e:
            return e

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        bodies = [f"{i},0" for i in range(12)] + ["die"]
        results = list(pool.map(call, bodies))
    died = results[-1]
    assert isinstance(died, botocore.exceptions.ClientError) and code(died) == "ModelError", died
    assert "worker died" in str(died)
    assert results[:-1] == [f"{i}\n".encode() for i in range(12)], results
    assert call("2,1") == b"12\n", "a new worker serves after one died"
    for name in ("good", "broken"):
        sm.delete_endpoint(EndpointName=f"script-{name}")


def test_capture_to_s3_at_a_sampling_percentage_is_what_a_schedule_checks(models, moto_url, tmp_path):
    """DestinationS3Uri s3://…: half the requests sampled (within bounds), every record
    uploaded whole under {prefix}/{endpoint}/{variant}/yyyy/mm/dd/hh/ in moto's S3, and a
    monitoring schedule reading them back from there; then a transform job from an S3 prefix
    into S3, and one from a prefix that holds nothing."""
    from conftest import AWS
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="captures")
    svc = Service(tmp_path / "state", env=dict(AWS, AWS_ENDPOINT_URL=moto_url))
    try:
        # The model itself from S3, as SageMaker reads ModelDataUrl.
        s3.upload_file(str(models["iris-forest"]), "captures", "models/iris-forest/model.tar.gz")
        svc.sm.create_model(ModelName="iris-forest", ExecutionRoleArn="arn:aws:iam::000000000000:role/m",
                            PrimaryContainer={"ModelDataUrl": "s3://captures/models/iris-forest/model.tar.gz"})
        svc.sm.create_model(ModelName="missing", ExecutionRoleArn="arn:aws:iam::000000000000:role/m",
                            PrimaryContainer={"ModelDataUrl": "s3://captures/models/none/model.tar.gz"})
        svc.sm.create_endpoint_config(EndpointConfigName="missing", ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "missing", "InitialInstanceCount": 1,
             "InstanceType": "ml.m5.large"}])
        svc.sm.create_endpoint(EndpointName="missing", EndpointConfigName="missing")
        failed = wait(svc.sm, "missing")
        assert failed["EndpointStatus"] == "Failed" and "cannot download s3://captures/models/none" in failed["FailureReason"], failed
        svc.sm.create_endpoint_config(EndpointConfigName="sampled", ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "iris-forest", "InitialInstanceCount": 1,
             "InstanceType": "ml.m5.large"}],
            DataCaptureConfig={"EnableCapture": True, "InitialSamplingPercentage": 50,
                               "DestinationS3Uri": "s3://captures/datacapture",
                               "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]})
        svc.sm.create_endpoint(EndpointName="sampled", EndpointConfigName="sampled")
        assert wait(svc.sm, "sampled")["EndpointStatus"] == "InService"
        for i in range(400):
            svc.rt.invoke_endpoint(EndpointName="sampled", ContentType="text/csv", Body=ROWS[i % 3])

        def captured() -> list[dict]:
            listed = s3.list_objects_v2(Bucket="captures", Prefix="datacapture/sampled/AllTraffic/").get("Contents", [])
            return [(o["Key"], json.loads(line)) for o in listed
                    for line in s3.get_object(Bucket="captures", Key=o["Key"])["Body"].read().decode().splitlines()]

        # Every file rolls within 10 s and is uploaded at the next 2-s tick, leaving the spool.
        spool = tmp_path / "state" / "capture-spool"
        deadline = time.monotonic() + 30
        while [p for p in spool.glob("**/*") if p.is_file()]:
            assert time.monotonic() < deadline, list(spool.glob("**/*"))
            time.sleep(0.5)
        records = captured()
        assert 140 <= len(records) <= 260, f"{len(records)} of 400 sampled at 50 %"
        key, first = records[0]
        parts = key.split("/")
        assert parts[:3] == ["datacapture", "sampled", "AllTraffic"] and len(parts) == 8 and parts[-1].endswith(".jsonl")
        assert first["captureData"]["endpointInput"]["data"] in ROWS
        # The same traffic, read back from S3 by a schedule.
        features = [line.rsplit(",", 1)[0] for line in IRIS.read_text().splitlines()[1:]]
        (tmp_path / "train.csv").write_text("\n".join(features) + "\n")
        subprocess.run([BIN, "monitor", "baseline", "--data", str(tmp_path / "train.csv"), "--no-header", "--output",
                        str(tmp_path / "baseline")], check=True, capture_output=True, timeout=120)
        run = run_schedule_now(svc.sm, "sampled", tmp_path / "baseline", tmp_path / "reports")
        assert run["MonitoringExecutionStatus"] in ("Completed", "CompletedWithViolations"), run
        stats = json.loads((pathlib.Path(run["ReportUri"]) / "statistics.json").read_text())
        assert stats["dataset"]["item_count"] >= len(records), stats["dataset"]

        # A transform job over an S3 prefix into S3: each object's answers, as the endpoint gives them.
        s3.put_object(Bucket="captures", Key="batch/in/a.csv", Body="\n".join(ROWS) + "\n")
        s3.put_object(Bucket="captures", Key="batch/in/more/b.csv", Body="\n".join(reversed(ROWS)) + "\n")
        expected = svc.rt.invoke_endpoint(EndpointName="sampled", ContentType="text/csv",
                                          Body="\n".join(ROWS))["Body"].read().decode().splitlines()
        for job, uri in (("from-s3", "s3://captures/batch/in/"), ("from-nowhere", "s3://captures/batch/none/")):
            svc.sm.create_transform_job(
                TransformJobName=job, ModelName="iris-forest", BatchStrategy="MultiRecord",
                TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}},
                                "ContentType": "text/csv", "SplitType": "Line"},
                TransformOutput={"S3OutputPath": f"s3://captures/batch/{job}", "AssembleWith": "Line"},
                TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
        for job in ("from-s3", "from-nowhere"):
            deadline = time.monotonic() + 60
            while (d := svc.sm.describe_transform_job(TransformJobName=job))["TransformJobStatus"] == "InProgress":
                assert time.monotonic() < deadline
                time.sleep(0.2)
            if job == "from-s3":
                assert d["TransformJobStatus"] == "Completed", d
            else:
                assert d["TransformJobStatus"] == "Failed" and "batch/none" in d["FailureReason"], d
        read = lambda key: s3.get_object(Bucket="captures", Key=key)["Body"].read().decode().splitlines()
        assert read("batch/from-s3/a.csv.out") == expected
        assert read("batch/from-s3/more/b.csv.out") == list(reversed(expected))
    finally:
        svc.kill()
