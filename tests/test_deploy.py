"""Model endpoints through boto3's `sagemaker` and `sagemaker-runtime` clients against
`rustmaker serve`: models, endpoint configurations with two variants and data capture,
InvokeEndpoint in CSV, JSON and JSON Lines, traffic split by weight, TargetVariant, weights
changed live, a new configuration swapped in, bad input, and recovery after the service is
killed."""

from __future__ import annotations

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

    # Weights 3:1 over 2,000 calls.
    counts = {"forest": 0, "boost": 0}
    for _ in range(2000):
        r = svc.rt.invoke_endpoint(EndpointName="iris", ContentType="text/csv", Body=ROWS[0])
        counts[r["InvokedProductionVariant"]] += 1
    assert abs(counts["forest"] / 2000 - 0.75) < 0.04, counts

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
        if len(records) >= 2053 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(records) == 2053, len(records)
    assert {f.parts[-6] for f in files} == {"forest", "boost"}
    first = records[0]
    assert list(first) == ["captureData", "eventMetadata", "eventVersion"]
    assert first["captureData"]["endpointInput"]["encoding"] in ("CSV", "JSON", "BASE64")

    # A new configuration swapped in: only the forest, at full weight.
    svc.sm.create_endpoint_config(EndpointConfigName="iris-forest-only", ProductionVariants=[
        {"VariantName": "forest", "ModelName": "iris-forest", "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large", "InitialVariantWeight": 1}])
    svc.sm.update_endpoint(EndpointName="iris", EndpointConfigName="iris-forest-only")
    served = set()
    while svc.sm.describe_endpoint(EndpointName="iris")["EndpointStatus"] == "Updating":
        served.add(svc.rt.invoke_endpoint(EndpointName="iris", ContentType="text/csv", Body=ROWS[2])[
            "InvokedProductionVariant"])
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
    s = Service(tmp_path / "state")
    try:
        deploy(s.sm, models, "lasting", weights=(1, 0))
        s.kill()
        s.start()
        d = wait(s.sm, "lasting")
        assert d["EndpointStatus"] == "InService", d
        r = s.rt.invoke_endpoint(EndpointName="lasting", ContentType="text/csv", Body=ROWS[0])
        assert r["InvokedProductionVariant"] == "forest" and r["Body"].read().startswith(b"setosa")
    finally:
        s.kill()


def test_captured_traffic_is_what_the_model_monitor_checks(svc, models, tmp_path):
    """The capture files an endpoint writes are read by `rustmaker monitor check --capture`:
    traffic like the training data passes the baseline, drifted traffic violates it."""
    features = [line.rsplit(",", 1)[0] for line in IRIS.read_text().splitlines()[1:]]
    (tmp_path / "train.csv").write_text("\n".join(features) + "\n")
    subprocess.run([BIN, "monitor", "baseline", "--data", str(tmp_path / "train.csv"), "--no-header", "--output",
                    str(tmp_path / "baseline")], check=True, capture_output=True, timeout=120)
    results = {}
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
        svc.sm.delete_endpoint(EndpointName=name)
    assert results["clean"] and set(results["clean"]) == {"Completed"}, results
    assert "CompletedWithViolations" in results["drifted"], results


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
