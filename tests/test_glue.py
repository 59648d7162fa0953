"""The Glue magics against moto on 127.0.0.1, with the calls moto lacks answered by
tests/aws_double.py (UpdateJob, BatchStopJobRun, the statement calls of sessions)."""

from __future__ import annotations

import contextlib

import pytest
import requests

from conftest import error_of, html_of, interrupted_reply, ok, run, stream_text

ROLE = "arn:aws:iam::123456789012:role/GlueJobRole"
ASSETS = "aws-glue-assets-123456789012-us-east-1"


@contextlib.contextmanager
def job_runs_take(moto_url, polls):
    """moto's job runs go STARTING → RUNNING → SUCCEEDED, one step per `polls` reads."""
    url = f"{moto_url}/moto-api/state-manager/set-transition"
    requests.post(url, json={"model_name": "glue::job_run",
                             "transition": {"progression": "manual", "times": polls}}, timeout=5)
    try:
        yield
    finally:
        requests.post(url, json={"model_name": "glue::job_run",
                                 "transition": {"progression": "immediate"}}, timeout=5)


def fail_next(moto_url, op, code="AccessDeniedException", message="injected by the test"):
    requests.post(f"{moto_url}/_double/fail", json={"op": op, "code": code, "message": message},
                  timeout=5).raise_for_status()


@pytest.fixture(scope="module", autouse=True)
def fresh_moto(moto_url):
    """moto is shared by every file a test worker runs, and the Glue notebook's test leaves its
    database and job there; these tests count jobs and create databases, so they start from an
    empty moto whatever ran before them."""
    requests.post(f"{moto_url}/moto-api/reset", timeout=10).raise_for_status()


def script_of(boto, key):
    return boto("s3").get_object(Bucket=ASSETS, Key=key)["Body"].read().decode()


def test_job_create_script_start_runs_delete(ak, boto, tmp_path):
    glue = boto("glue")
    script = tmp_path / "etl.py"
    script.write_text("print('version 1')\n")
    out = stream_text(ok(ak, f"%glue job create etl --script {script} --role {ROLE} "
                             "--worker-type G.2X --number-of-workers 4 --arg input=s3://in/ --timeout 30"))
    location = f"s3://{ASSETS}/scripts/etl.py"
    assert f"Created Glue job etl" in out and location in out, out
    job = glue.get_job(JobName="etl")["Job"]
    assert job["Command"]["ScriptLocation"] == location
    assert job["DefaultArguments"] == {"--input": "s3://in/"}
    assert (job["WorkerType"], job["NumberOfWorkers"], job["Timeout"]) == ("G.2X", 4, 30)
    assert script_of(boto, "scripts/etl.py") == "print('version 1')\n"

    assert "already exists" in error_of(ak, f"%glue job create etl --script {script} --role {ROLE}")
    assert "etl" in html_of(ok(ak, "%glue jobs -o jobs"))
    assert "jobs: 1 rows" in stream_text(ok(ak, "%frames"))

    out = stream_text(ok(ak, "%%glue_script etl\nprint('version 2')\n"))
    assert "Updated Glue job etl" in out, out
    assert script_of(boto, "scripts/etl.py") == "print('version 2')\n"
    assert glue.get_job(JobName="etl")["Job"]["LastModifiedOn"] >= job["LastModifiedOn"]

    out = stream_text(ok(ak, "%glue job start etl --arg day=2026-11-25"))
    run_id = out.split("run ")[1].split()[0]
    assert run_id.startswith("jr_"), out
    runs = glue.get_job_runs(JobName="etl")["JobRuns"]
    assert runs[0]["Arguments"]["--day"] == "2026-11-25"
    html = html_of(ok(ak, "%glue job runs etl"))
    assert run_id in html and "SUCCEEDED" in html
    html = html_of(ok(ak, f"%glue job status etl {run_id}"))
    assert "SUCCEEDED" in html and "--day=2026-11-25" in html
    evalue = error_of(ak, f"%glue job stop etl {run_id}")
    assert "did not stop" in evalue and "already SUCCEEDED" in evalue, evalue

    out = stream_text(ok(ak, "%glue job delete etl"))
    assert "Deleted Glue job etl" in out and location in out
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_job(JobName="etl")


def test_job_bad_inputs_leave_nothing_behind(ak, boto, moto_url, tmp_path):
    glue = boto("glue")
    script = tmp_path / "bad.py"
    script.write_text("print('x')\n")
    create = f"%glue job create bad --script {script} --role {ROLE}"
    assert "is not one of" in error_of(ak, create + " --worker-type G.9X")
    assert "Glue version `1.5`" in error_of(ak, create + " --glue-version 1.5")
    assert "at least 2" in error_of(ak, create + " --number-of-workers 1")
    assert "KEY=VALUE" in error_of(ak, create + " --arg novalue")
    assert "--role" in error_of(ak, f"%glue job create bad --script {script}")
    assert "not a valid bucket name" in error_of(ak, f"%glue job create bad --script s3://B/x.py --role {ROLE}")
    assert "cannot read the script /nowhere/x.py" in error_of(
        ak, f"%glue job create bad --script /nowhere/x.py --role {ROLE}")
    # CreateJob refused after the upload: the uploaded script is removed again.
    fail_next(moto_url, "CreateJob")
    evalue = error_of(ak, create)
    assert "AccessDeniedException: injected by the test" in evalue and "%aws whoami" in evalue, evalue
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_job(JobName="bad")
    keys = [o["Key"] for o in boto("s3").list_objects_v2(Bucket=ASSETS).get("Contents", [])]
    assert "scripts/bad.py" not in keys

    # %%glue_script: a missing job, an empty cell, and an update that fails keeps the old script.
    assert "there is no Glue job `ghost`" in error_of(ak, "%%glue_script ghost\nprint(1)\n")
    ok(ak, create)
    assert "the cell is empty" in error_of(ak, "%%glue_script bad\n\n")
    fail_next(moto_url, "UpdateJob", "InvalidInputException", "no")
    assert "InvalidInputException: no" in error_of(ak, "%%glue_script bad\nprint('new')\n")
    assert script_of(boto, "scripts/bad.py") == "print('x')\n"

    # A job whose script object does not exist yet: the first %%glue_script writes it, and a
    # failed update removes it again rather than leave a script the job never accepted.
    ok(ak, f"%glue job create fresh --script s3://{ASSETS}/scripts/fresh.py --role {ROLE}")
    fail_next(moto_url, "UpdateJob", "InvalidInputException", "no")
    assert "InvalidInputException: no" in error_of(ak, "%%glue_script fresh\nprint('first')\n")
    keys = [o["Key"] for o in boto("s3").list_objects_v2(Bucket=ASSETS).get("Contents", [])]
    assert "scripts/fresh.py" not in keys
    ok(ak, "%%glue_script fresh\nprint('first')\n")
    assert script_of(boto, "scripts/fresh.py") == "print('first')\n"
    ok(ak, "%glue job delete fresh")

    assert "EntityNotFoundException" in error_of(ak, "%glue job status bad jr_nope")
    assert "there is no Glue job `ghost`" in error_of(ak, "%glue job start ghost")
    assert "unrecognized subcommand" in error_of(ak, "%glue job frobnicate")
    ok(ak, "%glue job delete bad")
    assert "there is no Glue job `bad`" in error_of(ak, "%glue job delete bad")


def test_job_wait_progress_interrupt_and_stop(ak, boto, moto_url, tmp_path):
    glue = boto("glue")
    script = tmp_path / "slow.py"
    script.write_text("print('slow')\n")
    ok(ak, f"%glue job create slow --script {script} --role {ROLE}")
    with job_runs_take(moto_url, 2):
        reply, outputs = run(ak, "%glue job start slow --wait")
    assert reply["status"] == "ok", outputs
    updates = [m["content"]["data"]["text/plain"] for m in outputs if m["msg_type"] == "update_display_data"]
    assert any("RUNNING" in u for u in updates) and "SUCCEEDED" in stream_text(outputs), updates

    with job_runs_take(moto_url, 100_000):
        out = stream_text(ok(ak, "%glue job start slow"))
        run_id = out.split("run ")[1].split()[0]
        reply, _ = interrupted_reply(ak, ak.km, f"%glue job wait slow {run_id}", 1.5)
        assert "keeps running" in reply["evalue"], reply
        assert glue.get_job_run(JobName="slow", RunId=run_id)["JobRun"]["JobRunState"] == "STARTING"
        reply, _ = interrupted_reply(ak, ak.km, f"%glue job wait slow {run_id} --stop", 1.5)
        assert "asked Glue to stop run" in reply["evalue"], reply
        assert glue.get_job_run(JobName="slow", RunId=run_id)["JobRun"]["JobRunState"] == "STOPPED"
        ok(ak, "%glue job start slow")
    # A run that ends other than SUCCEEDED fails the wait with its state.
    evalue = error_of(ak, f"%glue job wait slow {run_id}")
    assert f"slow {run_id} ended STOPPED" in evalue, evalue
    ok(ak, "%glue job delete slow")


def test_session_settings_statements_interrupt_and_end(ak, boto, moto_url):
    glue = boto("glue")
    assert "no IAM role" in error_of(ak, "%%glue\n1 + 1\n")
    assert "not a role ARN" in error_of(ak, "%iam_role GlueJobRole")
    ok(ak, f"%iam_role {ROLE}")
    assert ROLE in stream_text(ok(ak, "%iam_role"))
    assert "at least 2" in error_of(ak, "%number_of_workers 1")
    assert "not a whole number" in error_of(ak, "%idle_timeout soon")
    assert "is not one of" in error_of(ak, "%worker_type G.9X")
    assert "not an s3:// URL" in error_of(ak, "%extra_py_files lib.py")
    ok(ak, "%worker_type G.2X")
    ok(ak, "%additional_python_modules polars==1.0, requests")
    ok(ak, '%%configure\n{"number_of_workers": 3, "idle_timeout": 30, "--conf": "spark.x=1"}\n')
    assert "mixes Glue session settings (number_of_workers)" in error_of(
        ak, '%%configure\n{"number_of_workers": 3, "driverMemory": "1g"}\n')
    assert "JSON" in error_of(ak, '%%configure\n{"worker_type": \n')
    assert "No Glue session yet" in stream_text(ok(ak, "%session_id"))

    out = stream_text(ok(ak, "%%glue\nx = 6 * 7\nprint('hello from glue')\nx\n"))
    assert "Started Glue session rustmaker-" in out and "hello from glue\n42" in out, out
    session_id = stream_text(ok(ak, "%session_id")).strip()
    session = requests.get(f"{moto_url}/_double/requests/CreateSession", timeout=5).json()[-1]
    assert session["Id"] == session_id and session["Role"] == ROLE
    assert (session["WorkerType"], session["NumberOfWorkers"], session["IdleTimeout"]) == ("G.2X", 3, 30)
    assert session["GlueVersion"] == "5.0" and session["Command"]["Name"] == "glueetl"
    assert session["DefaultArguments"]["--conf"] == "spark.x=1"
    assert session["DefaultArguments"]["--additional-python-modules"] == "polars==1.0,requests"
    assert session["DefaultArguments"]["--enable-glue-datacatalog"] == "true"
    assert "43" in stream_text(ok(ak, "%%glue\nx + 1\n"))

    reply, outputs = run(ak, "%%glue\nimport time\ntime.sleep(1.5)\n'slept'\n")
    assert reply["status"] == "ok" and "'slept'" in stream_text(outputs), outputs
    progress = [m for m in outputs if m["msg_type"] in ("display_data", "update_display_data")]
    assert progress and "Statement" in progress[0]["content"]["data"]["text/plain"], outputs
    assert "done in" in progress[-1]["content"]["data"]["text/plain"], progress

    reply, _ = run(ak, "%%glue\n1 / 0\n")
    assert (reply["status"], reply["ename"]) == ("error", "ZeroDivisionError"), reply
    assert any("<statement>" in line for line in reply["traceback"]), reply
    assert "42" in stream_text(ok(ak, "%%glue\nx\n"))

    out = stream_text(ok(ak, "%worker_type G.1X"))
    assert "apply to the next session" in out and session_id in out
    html = html_of(ok(ak, "%status"))
    assert session_id in html and "READY" in html and "G.1X" in html
    assert session_id in html_of(ok(ak, "%list_sessions -o sessions"))

    reply, after = interrupted_reply(
        ak, ak.km, "%%glue\nimport time\nfor _ in range(400):\n    time.sleep(0.05)\n", 1.5)
    assert reply["ename"] == "KeyboardInterrupt" and after < 10, reply
    states = [s["State"] for s in glue.list_statements(SessionId=session_id)["Statements"]]
    assert states[-1] == "CANCELLED", states
    assert "42" in stream_text(ok(ak, "%%glue\nx\n")), "the session survives a cancel"

    assert f"Stopped Glue session {session_id}" in stream_text(ok(ak, "%stop_session"))
    assert glue.get_session(Id=session_id)["Session"]["Status"] == "STOPPING"
    assert "there is no Glue session" in error_of(ak, "%stop_session")
    out = stream_text(ok(ak, "%%glue\n'new'\n"))
    second = stream_text(ok(ak, "%session_id")).strip()
    assert second != session_id and "'new'" in out
    created = requests.get(f"{moto_url}/_double/requests/CreateSession", timeout=5).json()[-1]
    assert (created["Id"], created["WorkerType"]) == (second, "G.1X")

    # The session disappears behind the kernel's back: the cell says so and the next starts anew.
    glue.delete_session(Id=second)
    evalue = error_of(ak, "%%glue\n1\n")
    assert second in evalue and "start a new session" in evalue, evalue
    ok(ak, "%%glue\n1\n")
    third = stream_text(ok(ak, "%session_id")).strip()
    assert f"Deleted Glue session {third}" in stream_text(ok(ak, "%delete_session"))
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_session(Id=third)


def test_catalog_databases_tables_and_partitions(ak, boto):
    glue = boto("glue")
    glue.create_database(DatabaseInput={"Name": "sales", "Description": "orders and more"})
    glue.create_table(DatabaseName="sales", TableInput={
        "Name": "orders", "TableType": "EXTERNAL_TABLE",
        "StorageDescriptor": {
            "Columns": [{"Name": "id", "Type": "bigint"}, {"Name": "amount", "Type": "double",
                                                            "Comment": "in EUR"}],
            "Location": "s3://lake/orders/",
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "SerdeInfo": {"SerializationLibrary":
                          "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}},
        "PartitionKeys": [{"Name": "day", "Type": "string"}]})
    glue.create_partition(DatabaseName="sales", TableName="orders", PartitionInput={
        "Values": ["2026-11-25"], "StorageDescriptor": {"Location": "s3://lake/orders/day=2026-11-25/"}})

    html = html_of(ok(ak, "%glue databases -o dbs"))
    assert "sales" in html and "orders and more" in html
    html = html_of(ok(ak, "%glue tables sales"))
    assert "orders" in html and "s3://lake/orders/" in html and "day" in html
    reply, outputs = run(ak, "%glue table sales.orders -o orders_schema")
    assert reply["status"] == "ok", outputs
    text = "".join(m["content"]["data"].get("text/plain", "") for m in outputs
                   if m["msg_type"] == "display_data")
    assert "location: s3://lake/orders/" in text and "ParquetHiveSerDe" in text, text
    html = html_of(outputs)
    assert "in EUR" in html and "day=2026-11-25" in html and "s3://lake/orders/day=2026-11-25/" in html
    frames = stream_text(ok(ak, "%frames orders_schema"))
    assert "amount" in frames and "partition_key" in frames

    assert "DATABASE.TABLE" in error_of(ak, "%glue table orders")
    evalue = error_of(ak, "%glue tables nodb")
    assert "database nodb does not exist" in evalue and "%glue databases" in evalue, evalue
    evalue = error_of(ak, "%glue table sales.nope")
    assert "table sales.nope does not exist" in evalue and "%glue tables sales" in evalue, evalue
    assert "takes no options" in error_of(ak, "%%glue --fast\n1\n")

    # %region moves Glue (and only Glue) to another region: moto keeps each region apart.
    assert "not an AWS region name" in error_of(ak, "%region Frankfurt")
    ok(ak, "%region eu-west-1")
    assert "sales" not in html_of(ok(ak, "%glue databases"))
    assert "region: us-east-1 (AWS_REGION)" in stream_text(ok(ak, "%aws config"))
    ok(ak, "%region us-east-1")
    assert "sales" in html_of(ok(ak, "%glue databases"))


def test_session_deleted_when_the_kernel_exits(moto_url, boto, tmp_path):
    import os

    from conftest import AWS, start_kernel_with_env

    env = dict(os.environ, HOME=str(tmp_path), AWS_ENDPOINT_URL=moto_url, RUSTMAKER_HOME=str(tmp_path), **AWS)
    km, kc = start_kernel_with_env(env, tmp_path / "kernel.log")
    try:
        ok(kc, f"%iam_role {ROLE}")
        ok(kc, "%%glue\n1\n")
        session_id = stream_text(ok(kc, "%session_id")).strip()
        assert boto("glue").get_session(Id=session_id)["Session"]["Status"] == "READY"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    with pytest.raises(boto("glue").exceptions.EntityNotFoundException):
        boto("glue").get_session(Id=session_id)
