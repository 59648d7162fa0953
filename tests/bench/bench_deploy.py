"""Serving benchmark: a gradient-boosting model on a 20-feature table served by `rustmaker
serve` against the equivalent scikit-learn model (HistGradientBoostingClassifier, same rounds
and depth) served by MLServer, with the same load generator on both in one run; then batch
transform of 1,000,000 rows against pandas + scikit-learn's `predict` over the same file; then
the router's own overhead (variant choice, worker slot, capture record) against a direct call
of the model, measured in process.

    python3 -m venv .venv-bench && .venv-bench/bin/pip install -r tests/bench/requirements-deploy.txt
    cargo build --release -p rustmaker-kernel --example router_overhead
    .venv-bench/bin/python tests/bench/bench_deploy.py [--seconds 5] [--rows 1000000]

The load generator: one process per client, each with one keep-alive HTTP connection, sending
one-row requests for a fixed time and timing each answer. rustmaker gets `text/csv` requests
signed with Signature Version 4 (signed once per client: the same body and date replay within
AWS's 15-minute window, so signing costs the client nothing per request); MLServer gets its
own V2 inference protocol's JSON (it has no CSV). Memory is the resident set of the server's
whole process tree after the load. Machines are shared and noisy: read the ratios, measured
side by side, not the absolute figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

try:
    import joblib
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier
except ImportError as e:  # the benchmark's own environment has them; CI's does not
    sys.exit(f"{e.name} is missing: .venv-bench/bin/pip install -r tests/bench/requirements-deploy.txt")

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("RUSTMAKER_BIN", ROOT / "target" / "release" / "rustmaker"))
OVERHEAD = ROOT / "target" / "release" / "examples" / "router_overhead"
KEY, SECRET = "AKIDBENCH", "bench-secret"
ROUNDS, DEPTH = 100, 6
CLIENTS = (1, 8, 64)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_rss_mib(pid: int) -> float:
    """The resident memory of `pid` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            for line in pathlib.Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def client(args) -> list[float]:
    host, port, path, headers, body, seconds = args
    conn = http.client.HTTPConnection(host, port, timeout=30)
    latencies, failures = [], 0
    end = time.perf_counter() + seconds
    while True:
        t = time.perf_counter()
        if t >= end:
            break
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            failures += 1
        latencies.append(time.perf_counter() - t)
    conn.close()
    return latencies if not failures else [float("nan")]


def load(host: str, port: int, path: str, headers: dict, body: bytes, clients: int, seconds: float) -> dict:
    client((host, port, path, headers, body, 0.5))  # warm
    with multiprocessing.get_context("fork").Pool(clients) as pool:
        results = pool.map(client, [(host, port, path, headers, body, seconds)] * clients)
    all_latencies = np.array([x for r in results for x in r])
    if np.isnan(all_latencies).any():
        raise SystemExit(f"requests to {path} failed under load")
    return {"rps": len(all_latencies) / seconds, "p50_ms": float(np.percentile(all_latencies, 50)) * 1e3,
            "p99_ms": float(np.percentile(all_latencies, 99)) * 1e3}


def signed_headers(url: str, path: str, body: bytes) -> dict:
    request = AWSRequest(method="POST", url=url + path, data=body,
                         headers={"Content-Type": "text/csv", "Accept": "text/csv"})
    SigV4Auth(Credentials(KEY, SECRET), "sagemaker", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def wait_for(what: str, ready, limit: float = 120):
    deadline = time.monotonic() + limit
    while not ready():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not become ready in {limit:.0f} s")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0, help="load time per client count")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the batch transform")
    parser.add_argument("--only", default="serving,batch,router", help="which parts to run")
    opts = parser.parse_args()
    parts = set(opts.only.split(","))
    if not BIN.exists():
        sys.exit(f"{BIN} is missing: cargo build --release -p rustmaker-kernel")
    import boto3

    work = pathlib.Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    x, y = make_classification(n_samples=20_000, n_features=20, n_informative=12, random_state=7)
    names = [f"f{i}" for i in range(20)]
    table = pd.DataFrame(x, columns=names)
    table["target"] = np.where(y == 1, "yes", "no")
    table.to_csv(work / "train.csv", index=False, float_format="%.6g")
    env = dict(os.environ, RUSTMAKER_DATA_DIR=str(work / "data"), RUSTMAKER_API_KEYS=f"{KEY}:{SECRET}")
    subprocess.run([BIN, "train", "gb", "--algorithm", "gradient-boosting", "--data", str(work / "train.csv"),
                    "--target", "target", "--hp", f"num_round={ROUNDS}",
                    "--hp", f"max_depth={DEPTH}"], env=env, check=True, capture_output=True)
    artifact = work / "data" / "training-jobs" / "gb" / "output" / "model.tar.gz"
    peer = HistGradientBoostingClassifier(max_iter=ROUNDS, max_depth=DEPTH, early_stopping=False,
                                          random_state=7).fit(table[names].to_numpy(), table["target"])
    peer_dir = work / "mlserver" / "gb"
    peer_dir.mkdir(parents=True)
    joblib.dump(peer, peer_dir / "model.joblib")
    (peer_dir / "model-settings.json").write_text(json.dumps(
        {"name": "gb", "implementation": "mlserver_sklearn.SKLearnModel", "parameters": {"uri": "./model.joblib"}}))
    row = ",".join(f"{v:.6g}" for v in x[0])

    # rustmaker serve, with the model as an endpoint of one variant on both cores.
    ready = work / "ready.json"
    ours = subprocess.Popen([BIN, "serve", "--port", "0", "--state-dir", str(work / "state"), "--ready-file", str(ready)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for("rustmaker serve", ready.exists, 30)
    url = json.loads(ready.read_text())["url"]
    sm = boto3.client("sagemaker", endpoint_url=url, region_name="us-east-1", aws_access_key_id=KEY,
                      aws_secret_access_key=SECRET)
    sm.create_model(ModelName="gb", PrimaryContainer={"ModelDataUrl": str(artifact)},
                    ExecutionRoleArn="arn:aws:iam::000000000000:role/bench")
    sm.create_endpoint_config(EndpointConfigName="gb", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "gb", "InitialInstanceCount": 2, "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName="gb", EndpointConfigName="gb")
    wait_for("the endpoint", lambda: sm.describe_endpoint(EndpointName="gb")["EndpointStatus"] == "InService", 60)

    try:
        if "serving" in parts:
            serving(work, url, row, peer_dir, opts.seconds, ours)
        if "batch" in parts:
            batch(work, sm, peer, names, opts.rows)
    finally:
        ours.kill()
    if "router" in parts:
        router(artifact, row)


def serving(work: pathlib.Path, url: str, row: str, peer_dir: pathlib.Path, seconds: float, ours) -> None:
    # MLServer with its defaults, on another port.
    http_port = free_port()
    (work / "mlserver" / "settings.json").write_text(json.dumps(
        {"http_port": http_port, "grpc_port": free_port(), "metrics_port": free_port(), "host": "127.0.0.1"}))
    mlserver = pathlib.Path(sys.executable).parent / "mlserver"
    theirs = subprocess.Popen([str(mlserver), "start", str(work / "mlserver")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)

    def mlserver_ready() -> bool:
        try:
            c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=2)
            c.request("GET", "/v2/models/gb/ready")
            return c.getresponse().status == 200
        except OSError:
            return False

    try:
        wait_for("MLServer", mlserver_ready, 120)
        measure(url, row, http_port, seconds, ours, theirs)
    finally:
        os.killpg(theirs.pid, signal.SIGTERM)


def measure(url: str, row: str, http_port: int, seconds: float, ours, theirs) -> None:
    v2 = json.dumps({"inputs": [{"name": "input-0", "shape": [1, 20], "datatype": "FP64",
                                 "data": [float(v) for v in row.split(",")]}]}).encode()
    host, port = url.removeprefix("http://").split(":")
    path = "/endpoints/gb/invocations"
    print(f"Serving one-row requests for {seconds:.0f} s per client count (gradient boosting, {ROUNDS} rounds, depth {DEPTH}, 20 features)\n")
    print(f"{'clients':>7} | {'rustmaker rps':>13} {'p50 ms':>7} {'p99 ms':>7} | {'MLServer rps':>12} {'p50 ms':>7} {'p99 ms':>7} | {'rps ratio':>9}")
    for n in CLIENTS:
        a = load(host, int(port), path, signed_headers(url, path, row.encode()), row.encode(), n, seconds)
        b = load("127.0.0.1", http_port, "/v2/models/gb/infer", {"Content-Type": "application/json"}, v2, n, seconds)
        print(f"{n:>7} | {a['rps']:>13.0f} {a['p50_ms']:>7.2f} {a['p99_ms']:>7.2f} | "
              f"{b['rps']:>12.0f} {b['p50_ms']:>7.2f} {b['p99_ms']:>7.2f} | {a['rps'] / b['rps']:>8.1f}x")
    ours_mib, theirs_mib = tree_rss_mib(ours.pid), tree_rss_mib(theirs.pid)
    print(f"\nserver memory after the load: rustmaker {ours_mib:.0f} MiB, MLServer {theirs_mib:.0f} MiB "
          f"({theirs_mib / ours_mib:.1f}x)")


def batch(work: pathlib.Path, sm, peer, names: list[str], rows: int) -> None:
    """Batch transform of the same model over one CSV file."""
    big = pd.DataFrame(np.random.default_rng(3).normal(size=(rows, 20)), columns=names)
    (work / "batch").mkdir()
    big.to_csv(work / "batch" / "rows.csv", index=False, header=False, float_format="%.6g")
    t = time.perf_counter()
    sm.create_transform_job(TransformJobName="batch", ModelName="gb", BatchStrategy="MultiRecord", MaxPayloadInMB=6,
                            TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                                            "S3Uri": str(work / "batch" / "rows.csv")}},
                                            "ContentType": "text/csv", "SplitType": "Line"},
                            TransformOutput={"S3OutputPath": str(work / "out"), "AssembleWith": "Line"},
                            TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
    wait_for("the transform job", lambda: sm.describe_transform_job(TransformJobName="batch")["TransformJobStatus"]
             in ("Completed", "Failed", "Stopped"), 1800)
    ours_s = time.perf_counter() - t
    status = sm.describe_transform_job(TransformJobName="batch")
    if status["TransformJobStatus"] != "Completed":
        raise SystemExit(f"the transform job failed: {status.get('FailureReason')}")
    out_lines = sum(1 for _ in open(work / "out" / "rows.csv.out"))
    t = time.perf_counter()
    frame = pd.read_csv(work / "batch" / "rows.csv", header=None)
    # The answer rustmaker writes, a label and its probability, from one pass of the model.
    proba = peer.predict_proba(frame.to_numpy())
    pd.DataFrame({"label": peer.classes_[proba.argmax(axis=1)], "probability": proba.max(axis=1)}).to_csv(
        work / "peer.out", index=False, header=False)
    theirs_s = time.perf_counter() - t
    print(f"\nbatch transform of {rows:,} rows ({out_lines:,} answers): rustmaker {ours_s:.1f} s, "
          f"pandas read_csv + scikit-learn predict_proba + to_csv {theirs_s:.1f} s ({theirs_s / ours_s:.1f}x)")


def router(artifact: pathlib.Path, row: str) -> None:
    """The router's overhead, in process."""
    if OVERHEAD.exists():
        out = subprocess.run([OVERHEAD, str(artifact), row, "20000"], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout)
        print(f"\nrouter overhead (variant by weight 3:1, worker slot, capture record written), {r['iterations']:,} calls: "
              f"p50 {r['overhead_p50_us']:.1f} µs, p99 {r['overhead_p99_us']:.1f} µs "
              f"(invoke p50 {r['invoke_p50_us']:.1f} µs against the model alone {r['direct_p50_us']:.1f} µs)")
    else:
        print(f"\n{OVERHEAD} is missing: cargo build --release -p rustmaker-kernel --example router_overhead")


if __name__ == "__main__":
    main()
