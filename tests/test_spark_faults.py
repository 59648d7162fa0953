"""Spark faults: each gives a clear message and the kernel keeps serving."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import AWS, emr_cluster, error_of, run, start_kernel_with_env, stream_text


class FakeLivy(BaseHTTPRequestHandler):
    """A misbehaving Livy; `mode` picks how."""

    mode = "ok"
    gone = False
    flaky_gets = 0
    deleted: list[str] = []

    def log_message(self, *args):
        pass

    def _send(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.mode == "500":
            self._send(500, {"msg": "java.lang.NullPointerException"})
        elif self.mode == "malformed":
            self._send(201, b"<html>this is not Livy</html>", "text/html")
        elif self.path == "/sessions":
            self._send(201, {"id": 7, "state": "starting", "kind": "pyspark", "log": []})
        else:  # statements: the session is gone
            type(self).gone = True
            self._send(404, {"msg": "Session '7' not found."})

    def do_GET(self):
        if self.mode == "flaky" and self.path.startswith("/sessions?"):
            FakeLivy.flaky_gets += 1
            if FakeLivy.flaky_gets <= 2:
                return self._send(503, {"msg": "warming up"})
        if self.mode == "404" and self.path == "/sessions/7" and not self.gone:
            self._send(200, {"id": 7, "state": "idle", "kind": "pyspark", "log": []})
        elif self.path.startswith("/sessions/7"):
            state = "starting" if self.mode == "starting" else "dead"
            self._send(404 if self.mode == "404" else 200, {"id": 7, "state": state, "kind": "pyspark", "log": []})
        else:
            self._send(200, {"from": 0, "total": 0, "sessions": []})

    def do_DELETE(self):
        FakeLivy.deleted.append(self.path)
        self._send(200, {"msg": "deleted"})


def fake_livy(mode):
    handler = type(f"FakeLivy_{mode}", (FakeLivy,), {"mode": mode})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"




@pytest.fixture(scope="module")
def fk(livy_server, moto_url, tmp_path_factory):
    """A kernel with a sparkmagic config folder the tests rewrite, and AWS pointed at moto."""
    conf_dir = tmp_path_factory.mktemp("sparkmagic")
    log = conf_dir / "kernel.log"
    env = livy_server.kernel_env(AWS_ENDPOINT_URL=moto_url, **AWS)
    env["SPARKMAGIC_CONF_DIR"] = str(conf_dir)
    km, kc = start_kernel_with_env(env, log)
    kc.conf_dir = conf_dir
    yield kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def still_serving(kc):
    reply, outputs = run(kc, "%lsmagic")
    assert reply["status"] == "ok"


def test_a_broken_sparkmagic_config_names_the_file(fk):
    (fk.conf_dir / "config.json").write_text("{not json")
    evalue = error_of(fk, "%%spark\n1")
    assert "config.json is not valid JSON" in evalue and "SPARKMAGIC_CONF_DIR" in evalue
    still_serving(fk)
    # Fixed, it is read on the next use.
    (fk.conf_dir / "config.json").write_text(json.dumps({"livy_session_startup_timeout_seconds": 120}))


def test_an_empty_sparkmagic_config_is_no_overrides(livy_server, tmp_path):
    # sparkmagic creates an empty config.json the first time it is imported; it means "no
    # overrides" there, and must here too.
    (tmp_path / "config.json").write_text("")
    km, kc = start_kernel_with_env(livy_server.kernel_env(SPARKMAGIC_CONF_DIR=str(tmp_path)), tmp_path / "k.log")
    try:
        reply, outputs = run(kc, "%spark info")
        assert reply["status"] == "ok", reply
        assert livy_server.url in stream_text(outputs) + str(outputs), outputs
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_connection_refused(fk):
    evalue = error_of(fk, "%spark add -s r -l python -u http://127.0.0.1:9")
    assert "cannot reach Livy at http://127.0.0.1:9" in evalue and "POST /sessions" in evalue
    still_serving(fk)


def test_livy_500_names_endpoint_and_status(fk):
    server, url = fake_livy("500")
    evalue = error_of(fk, f"%spark add -s five -l python -u {url}")
    assert f"Livy at {url} answered POST /sessions with HTTP 500" in evalue
    assert "NullPointerException" in evalue
    server.shutdown()
    still_serving(fk)


def test_transient_503_is_retried(fk):
    server, url = fake_livy("flaky")
    reply, outputs = run(fk, f"%spark info -u {url}")
    assert reply["status"] == "ok", reply
    assert f"No active sessions at {url}" in stream_text(outputs)
    assert FakeLivy.flaky_gets == 3
    server.shutdown()


def test_malformed_json(fk):
    server, url = fake_livy("malformed")
    evalue = error_of(fk, f"%spark add -s bad -l python -u {url}")
    assert "is not the JSON Livy sends" in evalue and "this is not Livy" in evalue
    server.shutdown()
    still_serving(fk)


def test_session_that_never_leaves_starting_times_out_and_is_deleted(livy_server, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"livy_session_startup_timeout_seconds": 2}))
    km, kc = start_kernel_with_env(livy_server.kernel_env(SPARKMAGIC_CONF_DIR=str(tmp_path)), tmp_path / "k.log")
    server, url = fake_livy("starting")
    started = time.monotonic()
    try:
        evalue = error_of(kc, f"%spark add -s slow -l python -u {url}")
        still_serving(kc)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert "still `starting` after 2 s" in evalue and "livy_session_startup_timeout_seconds" in evalue
    assert time.monotonic() - started < 15
    assert "/sessions/7" in FakeLivy.deleted
    server.shutdown()


def test_session_gone_404(fk):
    server, url = fake_livy("404")
    run(fk, f"%spark add -s gone -l python -u {url}")
    evalue = error_of(fk, "%%spark -s gone\n1")
    assert "Spark session `gone`" in evalue and "is deleted" in evalue and "%spark add -s gone" in evalue
    server.shutdown()
    still_serving(fk)


def test_kerberos_is_refused_clearly(fk):
    evalue = error_of(fk, "%spark add -s k -l python -u http://127.0.0.1:9 -t Kerberos")
    assert "Kerberos authentication is not available" in evalue and "Basic_Access" in evalue


def test_local_server_refuses_scala_sessions_clearly(fk, livy_server):
    auth = f"-a {livy_server.user} -p {livy_server.password} -t Basic_Access"
    evalue = error_of(fk, f"%spark add -s sc -l scala -u {livy_server.url} {auth}")
    assert "HTTP 400" in evalue and "runs PySpark sessions" in evalue and "EMR" in evalue
    evalue = error_of(fk, f"%spark add -s pw -l python -u {livy_server.url} -a {livy_server.user} -p wrong -t Basic_Access")
    assert "HTTP 401" in evalue


def test_pyspark_process_killed_mid_statement(fk, livy_server):
    auth = f"-a {livy_server.user} -p {livy_server.password} -t Basic_Access"
    run(fk, f"%spark add -s victim -l python -u {livy_server.url} {auth}", timeout=180)
    evalue = error_of(fk, "%%spark -s victim\nimport os, signal, time\ntime.sleep(0.5)\nos.kill(os.getpid(), signal.SIGKILL)")
    assert "Spark session `victim`" in evalue and "is dead" in evalue
    assert "driver process exited" in evalue and "%spark add -s victim" in evalue
    assert "no Spark session named `victim`" in error_of(fk, "%%spark -s victim\n1")
    still_serving(fk)


def test_emr_cluster_id_resolves_to_the_master_node(fk, moto_url):
    import boto3

    emr = boto3.client("emr", endpoint_url=moto_url, **{k.lower(): v for k, v in AWS.items() if k != "AWS_REGION"},
                       region_name=AWS["AWS_REGION"])
    cluster, master = emr_cluster(emr, "livy")
    evalue = error_of(fk, f"%spark add -s emr -l python -u {cluster}", timeout=180)
    # moto's master name does not resolve here: the error shows the address found.
    assert f"cannot reach Livy at http://{master}:8998" in evalue, evalue
    evalue = error_of(fk, "%spark add -s nope -l python -u j-NOSUCHCLUSTER")
    assert "EMR DescribeCluster for j-NOSUCHCLUSTER failed" in evalue
    still_serving(fk)


def _server_session_ids(livy_server):
    import requests

    r = requests.get(f"{livy_server.url}/sessions", auth=(livy_server.user, livy_server.password), timeout=10)
    return {s["id"]: s["state"] for s in r.json()["sessions"]}


def test_heartbeat_keeps_an_idle_session_and_exit_deletes_it(livy_server, tmp_path):
    km, kc = start_kernel_with_env(livy_server.kernel_env(), tmp_path / "k.log")
    try:
        # Livy kills a session nobody asks about for heartbeatTimeoutInSecond.
        reply, _ = run(kc, '%%configure\n{"heartbeatTimeoutInSecond": 3}', timeout=180)
        assert reply["status"] == "ok", reply
        reply, outputs = run(kc, "%%spark\nimport os\nprint(os.getpid())")
        time.sleep(8)
        reply, outputs = run(kc, "%%spark\nprint(os.getpid())")
        assert reply["status"] == "ok", reply
        before = _server_session_ids(livy_server)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    after = _server_session_ids(livy_server)
    assert set(before) - set(after), (before, after)


def test_local_server_limits_sessions_times_out_starts_and_exits_when_idle(tmp_path):
    import requests

    from conftest import LivyServer

    # A "Python" that never becomes a Spark session: it only sleeps.
    fake_python = tmp_path / "python"
    fake_python.write_text("#!/bin/sh\nexec sleep 60\n")
    fake_python.chmod(0o755)
    server = LivyServer(tmp_path, ("--python", str(fake_python), "--max-sessions", "1",
                                   "--session-startup-timeout", "2", "--exit-when-idle", "3"))
    auth = (server.user, server.password)
    try:
        assert requests.get(f"{server.url}/sessions", timeout=5).status_code == 401
        first = requests.post(f"{server.url}/sessions", json={"kind": "pyspark"}, auth=auth, timeout=5)
        assert first.status_code == 201 and first.json()["state"] == "starting"
        second = requests.post(f"{server.url}/sessions", json={"kind": "pyspark"}, auth=auth, timeout=5)
        assert second.status_code == 400 and "too many sessions" in second.json()["msg"]
        bad = requests.post(f"{server.url}/sessions", data="{oops", auth=auth, timeout=5)
        assert bad.status_code == 400 and "not valid JSON" in bad.json()["msg"]
        unknown = requests.post(f"{server.url}/sessions", json={"kind": "pyspark", "colour": "red"}, auth=auth, timeout=5)
        assert unknown.status_code == 400 and "colour" in unknown.json()["msg"]
        sid = first.json()["id"]
        # A session that is still starting takes no statement, and has none to cancel.
        early = requests.post(f"{server.url}/sessions/{sid}/statements", json={"code": "1"}, auth=auth, timeout=5)
        assert early.status_code == 400 and "statements can run once it is idle" in early.json()["msg"], early.text
        cancel = requests.post(f"{server.url}/sessions/{sid}/statements/0/cancel", auth=auth, timeout=5)
        assert cancel.status_code == 404 and "Statement 0 not found" in cancel.json()["msg"], cancel.text
        time.sleep(3.5)
        state = requests.get(f"{server.url}/sessions/{sid}", auth=auth, timeout=5).json()
        assert state["state"] == "error", state
        log = requests.get(f"{server.url}/sessions/{sid}/log", auth=auth, timeout=5).json()["log"]
        assert any("did not start within 2 s" in line for line in log), log
        missing = requests.get(f"{server.url}/sessions/999", auth=auth, timeout=5)
        assert missing.status_code == 404 and missing.json()["msg"] == "Session '999' not found."
        assert requests.delete(f"{server.url}/sessions/{sid}", auth=auth, timeout=5).json() == {"msg": "deleted"}
        # No sessions and no requests for 3 s: the server stops by itself.
        server.proc.wait(timeout=15)
    finally:
        server.stop()
