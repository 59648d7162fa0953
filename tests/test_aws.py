"""The AWS magics (%aws, %s3, %emr) against moto's server on 127.0.0.1."""

from __future__ import annotations

import io
import os

import pytest

from conftest import AWS, emr_cluster, error_of, html_of, interrupted_reply, ok, run, start_kernel_with_env, stream_text


def test_whoami_and_config(ak):
    out = ok(ak, "%aws whoami")
    data = [m["content"]["data"] for m in out if m["msg_type"] == "display_data"][0]
    assert data["application/json"]["Account"] == "123456789012"
    text = stream_text(ok(ak, "%aws config"))
    assert "region: us-east-1 (AWS_REGION)" in text and "endpoint: http://127.0.0.1" in text
    assert "give an http(s):// URL" in error_of(ak, "%aws config --endpoint-url localhost:1")
    assert "unrecognized subcommand" in error_of(ak, "%aws frobnicate")


def test_unreachable_endpoint_then_back(ak):
    ok(ak, "%aws config --endpoint-url http://127.0.0.1:9")
    evalue = error_of(ak, "%aws whoami", timeout=180)
    assert "cannot reach http://127.0.0.1:9" in evalue and "%aws config --endpoint-url" in evalue
    ok(ak, "%aws config --reset")
    ok(ak, "%aws whoami")


def test_no_credentials_and_no_region(moto_url, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(tmp_path), AWS_ENDPOINT_URL=moto_url, AWS_EC2_METADATA_DISABLED="true")
    km, kc = start_kernel_with_env(env, tmp_path / "k.log")
    try:
        assert "no AWS region is set" in error_of(kc, "%aws whoami")
        ok(kc, "%aws config --region us-east-1")
        evalue = error_of(kc, "%aws whoami", timeout=180)
        assert "no AWS credentials" in evalue and "AWS_ACCESS_KEY_ID" in evalue, evalue
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_s3_listing_copy_frames_and_removal(ak, boto, tmp_path):
    s3 = boto("s3")
    assert "Made bucket s3://rm-data" in stream_text(ok(ak, "%s3 mb s3://rm-data"))
    assert "rm-data" in html_of(ok(ak, "%s3 ls"))
    csv = tmp_path / "people.csv"
    csv.write_text("name,age,score\nada,36,1.5\nbob,41,\n")
    assert "Uploaded" in stream_text(ok(ak, f"%s3 cp {csv} s3://rm-data/in/people.csv"))
    listing = ok(ak, "%s3 ls s3://rm-data/ -o listing")
    assert "in/" in html_of(listing)
    assert "in/people.csv" in html_of(ok(ak, "%s3 ls s3://rm-data/ --recursive"))
    out = stream_text(ok(ak, "%s3 read s3://rm-data/in/people.csv -o people"))
    assert "2 rows × 3 columns" in out
    frames = stream_text(ok(ak, "%frames people"))
    assert "age: i64" in frames and "score: f64" in frames
    ok(ak, "%s3 write people s3://rm-data/out/people.parquet")
    import pandas as pd

    body = s3.get_object(Bucket="rm-data", Key="out/people.parquet")["Body"].read()
    df = pd.read_parquet(io.BytesIO(body))
    assert df["name"].tolist() == ["ada", "bob"] and df["age"].tolist() == [36, 41]
    assert pd.isna(df["score"][1])
    ok(ak, f"%s3 cp s3://rm-data/in/people.csv {tmp_path}/back.csv")
    assert (tmp_path / "back.csv").read_text() == csv.read_text()
    ok(ak, "%s3 cp s3://rm-data/in/people.csv s3://rm-data/copy.csv")
    assert s3.head_object(Bucket="rm-data", Key="copy.csv")["ContentLength"] == csv.stat().st_size
    assert "that is a prefix" in error_of(ak, "%s3 rm s3://rm-data/in/")
    ok(ak, "%s3 rm s3://rm-data/copy.csv")
    assert "Removed 2 object(s)" in stream_text(ok(ak, "%s3 rm s3://rm-data/ --recursive"))
    assert s3.list_objects_v2(Bucket="rm-data").get("KeyCount", 0) == 0


def test_s3_multipart_upload_shows_progress(ak, boto, tmp_path):
    boto("s3").create_bucket(Bucket="rm-big")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(20 * 1024 * 1024))
    outputs = ok(ak, f"%s3 cp {big} s3://rm-big/big.bin", timeout=300)
    updates = [m for m in outputs if m["msg_type"] == "update_display_data"]
    assert updates and "3 of 3 parts" in updates[-1]["content"]["data"]["text/plain"]
    head = boto("s3").head_object(Bucket="rm-big", Key="big.bin")
    assert head["ContentLength"] == big.stat().st_size


def test_s3_bad_input(ak, tmp_path):
    assert "not an S3 URL" in error_of(ak, "%s3 ls /tmp")
    assert "not a valid bucket name" in error_of(ak, "%s3 ls s3://Bad_Name/")
    assert "NoSuchBucket" in error_of(ak, "%s3 ls s3://no-such-bucket/")
    assert "cannot read" in error_of(ak, f"%s3 cp {tmp_path}/missing.csv s3://rm-data/x.csv")
    assert "add --format" in error_of(ak, "%s3 read s3://rm-data/x.json -o j")
    assert "no frame named `ghost`" in error_of(ak, "%s3 write ghost s3://rm-data/g.csv")
    assert "one side of `cp` must be an s3:// URL" in error_of(ak, "%s3 cp a b")


def ename_of(kc, code: str, timeout: float = 180.0) -> str:
    reply, _ = run(kc, code, timeout=timeout)
    assert reply["status"] == "error", reply
    return reply["ename"]


def test_failures_are_named_by_their_kind(ak):
    """A magic's failure reaches the front end with an ename that says what kind it is."""
    assert ename_of(ak, "%s3 frobnicate") == "UsageError"
    assert ename_of(ak, "%s3 write ghost s3://rm-data/g.csv") == "DataError"
    assert ename_of(ak, "%s3 ls s3://no-such-bucket/") == "ServiceError"
    ok(ak, "%aws config --endpoint-url http://127.0.0.1:9")
    try:
        assert ename_of(ak, "%s3 ls s3://rm-data/") == "ServiceError"
    finally:
        ok(ak, "%aws config --reset")


def test_emr_clusters_steps_connect_and_terminate(ak):
    out = stream_text(ok(ak, "%emr create analytics --count 1 --applications Spark,Livy"))
    cluster = out.split(": ")[1].split(" ")[0]
    assert cluster.startswith("j-"), out
    assert cluster in html_of(ok(ak, "%emr clusters --active -o clusters"))
    frames = stream_text(ok(ak, "%frames clusters"))
    assert "clusters:" in frames and "state: str" in frames, frames
    described = html_of(ok(ak, f"%emr describe {cluster}"))
    assert "WAITING" in described and "Spark" in described
    added = stream_text(ok(ak, f"%emr add-step {cluster} --name count --spark-submit --deploy-mode cluster s3://rm-data/job.py"))
    step = added.split("Added step ")[1].split(" ")[0]
    assert step in html_of(ok(ak, f"%emr steps {cluster}"))
    # moto's steps stay RUNNING: waiting shows the state until the user interrupts, and
    # the interrupt stops the waiting, not the step.
    reply, _ = interrupted_reply(
        ak, ak.km, f"%emr add-step {cluster} --name long --wait --spark-submit s3://rm-data/long.py", after=3)
    assert reply["status"] == "error" and "stopped waiting for step" in reply["evalue"], reply
    assert "it keeps running" in reply["evalue"]
    assert "RUNNING" in html_of(ok(ak, f"%emr steps {cluster}"))
    assert "now use EMR cluster" in stream_text(ok(ak, f"%emr connect {cluster}"))
    ok(ak, f"%emr terminate {cluster}")
    assert "TERMINAT" in html_of(ok(ak, f"%emr describe {cluster}"))
    assert "not an EMR cluster id" in error_of(ak, "%emr describe cluster-1")
    assert "j-NOSUCH" in error_of(ak, "%emr describe j-NOSUCH")
    assert "--count must be at least 1" in error_of(ak, "%emr create x --count 0")


def test_emr_lookup_of_the_spark_magics_uses_aws_config(boto, moto_url, tmp_path):
    # No AWS_ENDPOINT_URL in the kernel's environment: only `%aws config` points at moto, and
    # the Spark magics' EMR lookup must go there too.
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    env.update(HOME=str(tmp_path), RUSTMAKER_HOME=str(tmp_path), AWS_EC2_METADATA_DISABLED="true", **AWS)
    env.pop("RUSTMAKER_LIVY_URL", None)
    emr = boto("emr")
    cluster, master = emr_cluster(emr, "configured")
    km, kc = start_kernel_with_env(env, tmp_path / "k.log")
    try:
        ok(kc, f"%aws config --endpoint-url {moto_url}")
        assert "now use EMR cluster" in stream_text(ok(kc, f"%emr connect {cluster}"))
        # moto's master name does not resolve here: the error shows the address found in moto.
        evalue = error_of(kc, "%%spark\n1", timeout=180)
        assert f"cannot reach Livy at http://{master}:8998" in evalue, evalue
        evalue = error_of(kc, "%spark add -s nope -l python -u j-NOSUCHCLUSTER")
        assert "EMR DescribeCluster for j-NOSUCHCLUSTER failed" in evalue and "NOSUCHCLUSTER" in evalue, evalue
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
