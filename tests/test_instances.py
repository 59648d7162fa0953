"""The notebook-instance service through boto3's SageMaker client (endpoint_url pointing at
`rustmaker serve`): the whole instance cycle with lifecycle configurations, the persistent
home, pre-signed URLs into JupyterLab, failures and time-outs, authentication, the samples,
recovery after a crash, and load."""

from __future__ import annotations

import base64
import json
import os
import pathlib
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import botocore
import pytest

from conftest import BIN
from service import KEY, SECRET, Service, clients

ROOT = pathlib.Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "lifecycle" / "samples"
ROLE = "arn:aws:iam::000000000000:role/notebook"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def client(url: str, secret: str = SECRET):
    return clients(url, secret)


def wait(sm, name: str, leaving: str, limit: float = 90) -> dict:
    deadline = time.monotonic() + limit
    while True:
        d = sm.describe_notebook_instance(NotebookInstanceName=name)
        if d["NotebookInstanceStatus"] != leaving or time.monotonic() > deadline:
            return d
        time.sleep(0.2)


def assert_in_service(sm, name: str, limit: float = 90) -> dict:
    """Waits out Pending; a failed start shows its FailureReason."""
    d = wait(sm, name, "Pending", limit)
    assert d["NotebookInstanceStatus"] == "InService", (name, d.get("FailureReason"), d["NotebookInstanceStatus"])
    return d


def code(e: botocore.exceptions.ClientError) -> str:
    return e.response["Error"]["Code"]


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    """One service with JupyterLab instances; hooks limited to 8 s (room for a loaded 2-core
    machine starting two instances at once), URLs valid 3 s."""
    s = Service(tmp_path_factory.mktemp("service") / "state", "--hook-timeout", "8",
                "--presigned-url-seconds", "3")
    yield s
    for i in s.sm.list_notebook_instances()["NotebookInstances"]:
        if i["NotebookInstanceStatus"] == "InService":
            s.sm.stop_notebook_instance(NotebookInstanceName=i["NotebookInstanceName"])
            wait(s.sm, i["NotebookInstanceName"], "Stopping")
    s.stop()


COUNT = 'echo "{hook} $(date +%s.%N)" >> "$HOME/SageMaker/hooks.log"\n'


def test_full_cycle_with_lifecycle_hooks_home_and_presigned_url(svc):
    sm = svc.sm
    arn = sm.create_notebook_instance_lifecycle_config(
        NotebookInstanceLifecycleConfigName="counting",
        OnCreate=[{"Content": b64(COUNT.format(hook="OnCreate"))}],
        OnStart=[{"Content": b64(COUNT.format(hook="OnStart") + 'echo "outside" > "$HOME/scratch.txt"\n')}],
    )["NotebookInstanceLifecycleConfigArn"]
    assert arn.endswith(":notebook-instance-lifecycle-config/counting")
    d = sm.describe_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName="counting")
    assert base64.b64decode(d["OnCreate"][0]["Content"]).decode().startswith('echo "OnCreate')
    arn = sm.create_notebook_instance(NotebookInstanceName="nb-cycle", InstanceType="ml.t3.medium", RoleArn=ROLE,
                                      LifecycleConfigName="counting", VolumeSizeInGB=10)["NotebookInstanceArn"]
    assert arn.endswith(":notebook-instance/nb-cycle")
    assert sm.describe_notebook_instance(NotebookInstanceName="nb-cycle")["NotebookInstanceStatus"] == "Pending"
    d = wait(sm, "nb-cycle", "Pending")
    assert d["NotebookInstanceStatus"] == "InService", d
    assert d["NotebookInstanceLifecycleConfigName"] == "counting" and d["VolumeSizeInGB"] == 10
    home = svc.state / "instances" / "nb-cycle" / "home"
    hooks = [l.split()[0] for l in (home / "SageMaker" / "hooks.log").read_text().splitlines()]
    assert hooks == ["OnCreate", "OnStart"]
    (home / "SageMaker" / "kept.txt").write_text("mine")
    assert (home / "scratch.txt").exists()

    # The server runs in a PID namespace of its own: it sees only the instance's processes.
    if os.geteuid() == 0 and shutil.which("unshare"):
        server = _server_pid(svc, "nb-cycle")
        children = pathlib.Path(f"/proc/{server}/task/{server}/children").read_text().split()
        assert children and os.readlink(f"/proc/{children[0]}/ns/pid") != os.readlink("/proc/self/ns/pid")
    # The instance's JupyterLab offers the rustmaker kernel and wants its token.
    info = json.loads((svc.state / "instances" / "nb-cycle" / "run" / "jupyter.json").read_text())
    specs = json.load(urllib.request.urlopen(urllib.request.Request(
        info["url"] + "api/kernelspecs", headers={"Authorization": f"token {info['token']}"}), timeout=30))
    assert "rustmaker" in specs["kernelspecs"], specs["kernelspecs"].keys()
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(info["url"] + "api/kernelspecs", timeout=30)
    assert e.value.code == 403
    # The pre-signed URL logs into JupyterLab; a tampered one does not open it.
    url = sm.create_presigned_notebook_instance_url(NotebookInstanceName="nb-cycle")["AuthorizedUrl"]
    page = urllib.request.urlopen(url, timeout=30)
    assert page.status == 200 and "JupyterLab" in page.read().decode()
    assert "/lab" in page.url
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url[:-4] + "0000", timeout=10)
    assert e.value.code == 403
    # ... and expires.
    time.sleep(4)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url, timeout=10)
    assert e.value.code == 403 and "expired" in e.value.read().decode()

    # Only the stopped states take updates and deletes.
    for call in (lambda: sm.update_notebook_instance(NotebookInstanceName="nb-cycle", VolumeSizeInGB=20),
                 lambda: sm.delete_notebook_instance(NotebookInstanceName="nb-cycle"),
                 lambda: sm.start_notebook_instance(NotebookInstanceName="nb-cycle")):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert code(e.value) == "ValidationException" and "Status (InService)" in str(e.value)

    sm.stop_notebook_instance(NotebookInstanceName="nb-cycle")
    assert wait(sm, "nb-cycle", "Stopping")["NotebookInstanceStatus"] == "Stopped"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.create_presigned_notebook_instance_url(NotebookInstanceName="nb-cycle")
    assert code(e.value) == "ValidationException"
    sm.update_notebook_instance(NotebookInstanceName="nb-cycle", VolumeSizeInGB=20, InstanceType="ml.m5.xlarge")
    d = sm.describe_notebook_instance(NotebookInstanceName="nb-cycle")
    assert d["NotebookInstanceStatus"] == "Stopped" and d["VolumeSizeInGB"] == 20 and d["InstanceType"] == "ml.m5.xlarge"

    sm.start_notebook_instance(NotebookInstanceName="nb-cycle")
    assert_in_service(sm, "nb-cycle")
    hooks = [l.split()[0] for l in (home / "SageMaker" / "hooks.log").read_text().splitlines()]
    assert hooks == ["OnCreate", "OnStart", "OnStart"], "OnCreate once, OnStart at every start"
    assert (home / "SageMaker" / "kept.txt").read_text() == "mine", "the SageMaker folder persists"
    assert (home / "scratch.txt").read_text().strip() == "outside"  # written again by this start's OnStart

    # The log streams keep every run, stamped.
    out = subprocess.run([BIN, "instance", "logs", "nb-cycle", "--hook", "OnStart", "--state-dir", str(svc.state)],
                         capture_output=True, text=True, check=True).stdout
    assert out.count("OnStart exited with status 0") == 2 and out[:4].isdigit() and "T" in out[:12]

    listed = sm.list_notebook_instances(NameContains="cycle", StatusEquals="InService")["NotebookInstances"]
    assert [i["NotebookInstanceName"] for i in listed] == ["nb-cycle"]
    sm.stop_notebook_instance(NotebookInstanceName="nb-cycle")
    wait(sm, "nb-cycle", "Stopping")
    sm.delete_notebook_instance(NotebookInstanceName="nb-cycle")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            sm.describe_notebook_instance(NotebookInstanceName="nb-cycle")
            time.sleep(0.2)
        except botocore.exceptions.ClientError as e:
            assert code(e) == "ResourceNotFound"
            break
    else:
        pytest.fail("the instance was not deleted")
    assert not (svc.state / "instances" / "nb-cycle").exists()
    sm.update_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName="counting",
                                                 OnStart=[{"Content": b64("echo changed\n")}])
    d = sm.describe_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName="counting")
    assert d["OnCreate"] == [] and base64.b64decode(d["OnStart"][0]["Content"]) == b"echo changed\n"
    sm.delete_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName="counting")
    assert sm.list_notebook_instance_lifecycle_configs()["NotebookInstanceLifecycleConfigs"] == []


def test_failing_and_slow_hooks_leave_the_instance_failed_with_the_reason(svc):
    sm = svc.sm
    sm.create_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName="broken",
                                                 OnStart=[{"Content": b64("echo trying\nexit 2\n")}])
    sm.create_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName="slow",
                                                 OnCreate=[{"Content": b64("sleep 30 &\nsleep 30\n")}])
    for name, config in (("nb-broken", "broken"), ("nb-slow", "slow")):
        sm.create_notebook_instance(NotebookInstanceName=name, InstanceType="ml.t3.medium", RoleArn=ROLE,
                                    LifecycleConfigName=config)
    d = wait(sm, "nb-broken", "Pending")
    assert d["NotebookInstanceStatus"] == "Failed"
    assert "OnStart script failed (exit status 2)" in d["FailureReason"]
    assert "nb-broken/LifecycleConfigOnStart" in d["FailureReason"]
    d = wait(sm, "nb-slow", "Pending")
    assert d["NotebookInstanceStatus"] == "Failed" and "OnCreate script ran longer than its limit of 8 s" in d["FailureReason"]
    # A failed instance can be fixed and started again.
    sm.update_notebook_instance(NotebookInstanceName="nb-broken", DisassociateLifecycleConfig=True)
    sm.start_notebook_instance(NotebookInstanceName="nb-broken")
    assert_in_service(sm, "nb-broken")
    sm.stop_notebook_instance(NotebookInstanceName="nb-broken")
    wait(sm, "nb-broken", "Stopping")
    for name in ("nb-broken", "nb-slow"):
        sm.delete_notebook_instance(NotebookInstanceName=name)


def test_bad_requests_and_authentication(svc):
    sm = svc.sm
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.create_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName="huge",
                                                     OnStart=[{"Content": "A" * 16388}])
    assert code(e.value) == "ValidationException" and "16388 characters; the limit is 16384" in str(e.value)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.create_notebook_instance(NotebookInstanceName="nb-x", InstanceType="ml.t3.medium", RoleArn=ROLE,
                                    LifecycleConfigName="missing")
    assert code(e.value) == "ValidationException" and "missing" in str(e.value)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.describe_notebook_instance(NotebookInstanceName="ghost")
    assert code(e.value) == "ResourceNotFound"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.create_notebook_instance(NotebookInstanceName="bad_name", InstanceType="ml.t3.medium", RoleArn=ROLE)
    assert code(e.value) == "ValidationException"
    # A wrong secret and a body changed after signing are refused, and change nothing.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client(svc.url, "not-the-secret").create_notebook_instance(
            NotebookInstanceName="nb-intruder", InstanceType="ml.t3.medium", RoleArn=ROLE)
    assert code(e.value) == "InvalidSignatureException"
    tamper = client(svc.url)

    def change_body(request, **_):
        request.body = request.body.replace(b"nb-signed", b"nb-tampered")

    tamper.meta.events.register("before-send.sagemaker.CreateNotebookInstance", change_body)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        tamper.create_notebook_instance(NotebookInstanceName="nb-signed", InstanceType="ml.t3.medium", RoleArn=ROLE)
    assert code(e.value) == "InvalidSignatureException"
    names = [i["NotebookInstanceName"] for i in sm.list_notebook_instances()["NotebookInstances"]]
    assert "nb-intruder" not in names and "nb-tampered" not in names and "nb-signed" not in names
    unsigned = urllib.request.Request(svc.url + "/", data=b"{}", headers={
        "X-Amz-Target": "SageMaker.ListNotebookInstances", "Content-Type": "application/x-amz-json-1.1"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(unsigned, timeout=10)
    assert e.value.code == 403 and b"MissingAuthenticationTokenException" in e.value.read()


def test_samples_install_set_env_clone_and_stop_when_idle(svc, tmp_path):
    sm = svc.sm
    # A local package and a local repository (the network is not ours in tests).
    import zipfile
    pkg = tmp_path / "hello_pkg-0.1-py3-none-any.whl"
    with zipfile.ZipFile(pkg, "w") as whl:
        whl.writestr("hello_pkg/__init__.py", "GREETING = 'hi'\n")
        whl.writestr("hello_pkg-0.1.dist-info/METADATA", "Metadata-Version: 2.1\nName: hello-pkg\nVersion: 0.1\n")
        whl.writestr("hello_pkg-0.1.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        whl.writestr("hello_pkg-0.1.dist-info/RECORD", "")
    repo = tmp_path / "team-notebooks"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "README.md").write_text("team notebooks\n")
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "first"], check=True)
    shared = tmp_path / "shared-utils.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(shared)], check=True)
    install = (SAMPLES / "install-python-package" / "on-start.sh").read_text().replace(
        '${PACKAGES:-"pandas"}', f'"--no-index {pkg}"')
    env = (SAMPLES / "set-environment" / "on-start.sh").read_text()
    clone = (SAMPLES / "clone-git-repository" / "on-create.sh").read_text().replace(
        '${REPOSITORY:-"https://github.com/aws/amazon-sagemaker-examples.git"}', str(repo))
    idle = (SAMPLES / "auto-stop-idle" / "on-start.sh").read_text().replace("${IDLE_TIME:-3600}", "6") \
        .replace("${CHECK_EVERY:-60}", "1")
    # Hooks run as one script each: the samples are joined as a user would.
    sm.create_notebook_instance_lifecycle_config(
        NotebookInstanceLifecycleConfigName="samples",
        OnCreate=[{"Content": b64(clone)}],
        OnStart=[{"Content": b64(install + "\n" + env.replace("#!/bin/bash", ""))}])
    sm.create_notebook_instance(NotebookInstanceName="nb-samples", InstanceType="ml.t3.medium", RoleArn=ROLE,
                                LifecycleConfigName="samples", DefaultCodeRepository=str(shared))
    d = wait(sm, "nb-samples", "Pending", 180)
    assert d["NotebookInstanceStatus"] == "InService", d
    home = svc.state / "instances" / "nb-samples" / "home"
    assert (home / "SageMaker" / "team-notebooks" / "README.md").read_text() == "team notebooks\n"
    # DefaultCodeRepository is cloned into the home as SageMaker does.
    assert (home / "SageMaker" / "shared-utils" / "README.md").exists()
    python = svc.state / "instances" / "nb-samples" / "run" / "python" / "bin" / "python"
    out = subprocess.run([python, "-c", "import hello_pkg; print(hello_pkg.GREETING)"], capture_output=True, text=True)
    assert out.stdout.strip() == "hi", out.stderr
    server_env = (pathlib.Path("/proc") / str(_server_pid(svc, "nb-samples")) / "environ").read_bytes().split(b"\0")
    assert b"TEAM_BUCKET=s3://team-bucket/notebooks" in server_env
    sm.stop_notebook_instance(NotebookInstanceName="nb-samples")
    wait(sm, "nb-samples", "Stopping")

    # The idle sample: an instance nobody uses stops itself; one with a kernel connection stays.
    sm.create_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName="idle",
                                                 OnStart=[{"Content": b64(idle)}])
    for name in ("nb-idle", "nb-busy"):
        sm.create_notebook_instance(NotebookInstanceName=name, InstanceType="ml.t3.medium", RoleArn=ROLE,
                                    LifecycleConfigName="idle")
    for name in ("nb-idle", "nb-busy"):
        assert_in_service(sm, name, 120)
    busy = _connect_a_kernel(svc, "nb-busy")
    try:
        d = wait(sm, "nb-idle", "InService", 60)
        d = wait(sm, "nb-idle", "Stopping", 30)
        assert d["NotebookInstanceStatus"] == "Stopped", d
        log = svc.state / "instances" / "nb-busy" / "home" / ".autostop.log"
        deadline = time.monotonic() + 30
        while "connected=True" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.5)
        # Longer than IDLE_TIME with the connection open: still serving.
        time.sleep(7)
        assert sm.describe_notebook_instance(NotebookInstanceName="nb-busy")["NotebookInstanceStatus"] == "InService"
        assert "connected=True" in log.read_text() and "stopping" not in log.read_text()
    finally:
        busy.set()
    sm.stop_notebook_instance(NotebookInstanceName="nb-busy")
    wait(sm, "nb-busy", "Stopping")


def _server_pid(svc, name: str) -> int:
    import sqlite3
    body = sqlite3.connect(svc.state / "state.db").execute("select body from instances where name=?", (name,)).fetchone()[0]
    return json.loads(body)["pid"]


def _connect_a_kernel(svc, name: str) -> threading.Event:
    """Starts a kernel on the instance and holds a websocket to it open (a notebook tab)."""
    info = json.loads((svc.state / "instances" / name / "run" / "jupyter.json").read_text())
    base, token = info["url"].rstrip("/"), info["token"]
    req = urllib.request.Request(f"{base}/api/kernels", data=b'{"name": "python3"}', method="POST",
                                 headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    kernel = json.load(urllib.request.urlopen(req, timeout=30))
    done = threading.Event()

    def hold():
        import asyncio

        from tornado.websocket import websocket_connect

        async def run():
            ws = await websocket_connect(f"{base.replace('http', 'ws')}/api/kernels/{kernel['id']}/channels?token={token}")
            while not done.is_set():
                await asyncio.sleep(0.2)
            ws.close()
        asyncio.run(run())

    threading.Thread(target=hold, daemon=True).start()
    return done


def test_the_command_line_client(svc, tmp_path):
    env = dict(os.environ, RUSTMAKER_ENDPOINT_URL=svc.url, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET)
    script = tmp_path / "on-start.sh"
    script.write_text("echo from the cli\n")
    run = lambda *a: subprocess.run([BIN, "instance", *a], env=env, capture_output=True, text=True)
    out = run("create-lifecycle-config", "cli-config", "--on-start", str(script))
    assert out.returncode == 0 and "cli-config" in out.stdout, out.stderr
    out = run("create", "nb-cli", "--lifecycle-config", "cli-config")
    assert out.returncode == 0 and "notebook-instance/nb-cli" in out.stdout, out.stderr
    assert_in_service(svc.sm, "nb-cli")
    assert '"NotebookInstanceStatus": "InService"' in run("describe", "nb-cli").stdout
    url = run("url", "nb-cli").stdout.strip()
    assert url.startswith(svc.url + "/notebook-instances/nb-cli/open?")
    out = run("delete", "nb-cli")
    assert out.returncode != 0 and "ValidationException: Status (InService)" in out.stderr, out.stderr
    bad = subprocess.run([BIN, "instance", "list"], env=dict(env, AWS_SECRET_ACCESS_KEY="wrong"),
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "InvalidSignatureException" in bad.stderr
    assert run("stop", "nb-cli").returncode == 0
    wait(svc.sm, "nb-cli", "Stopping")
    # An unreachable service, an unknown hook and a broken keys file each say what to do.
    away = subprocess.run([BIN, "instance", "list"], env=dict(env, RUSTMAKER_ENDPOINT_URL="http://127.0.0.1:9"),
                          capture_output=True, text=True)
    assert away.returncode != 0 and "is `rustmaker serve` running?" in away.stderr, away.stderr
    hook = run("logs", "nb-cli", "--hook", "OnBoot", "--state-dir", str(svc.state))
    assert hook.returncode != 0 and "use OnCreate or OnStart" in hook.stderr
    keys = tmp_path / "keys.json"
    keys.write_text("[1, 2]")
    bad = subprocess.run([BIN, "serve", "--port", "0", "--state-dir", str(tmp_path / "other"), "--keys-file", str(keys)],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "must be a JSON object of access key id" in bad.stderr, bad.stderr


def test_the_service_recovers_after_a_crash(tmp_path):
    s = Service(tmp_path / "state", "--instance-server", sys.executable, "-m", "http.server", "{port}",
                "--bind", "127.0.0.1")
    sm = s.sm
    sm.create_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName="slowstart",
                                                 OnStart=[{"Content": b64("sleep 2\n")}])
    sm.create_notebook_instance(NotebookInstanceName="nb-kept", InstanceType="ml.t3.medium", RoleArn=ROLE)
    assert_in_service(sm, "nb-kept")
    (s.state / "instances" / "nb-kept" / "home" / "SageMaker" / "work.ipynb").write_text("{}")
    sm.create_notebook_instance(NotebookInstanceName="nb-midway", InstanceType="ml.t3.medium", RoleArn=ROLE,
                                LifecycleConfigName="slowstart")
    time.sleep(0.5)
    s.kill()  # mid-operation: nb-midway is still Pending
    s.start()
    sm = s.sm
    assert_in_service(sm, "nb-midway", 60)
    assert sm.describe_notebook_instance(NotebookInstanceName="nb-kept")["NotebookInstanceStatus"] == "InService"
    assert (s.state / "instances" / "nb-kept" / "home" / "SageMaker" / "work.ipynb").exists()
    assert sm.describe_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName="slowstart")
    for name in ("nb-kept", "nb-midway"):
        sm.stop_notebook_instance(NotebookInstanceName=name)
        assert wait(sm, name, "Stopping")["NotebookInstanceStatus"] == "Stopped"
    s.stop()


def test_load_twenty_instances_and_a_thousand_describes(tmp_path):
    s = Service(tmp_path / "state", "--max-instances", "20", "--instance-server", sys.executable, "-m",
                "http.server", "{port}", "--bind", "127.0.0.1")
    names = [f"load-{i:02}" for i in range(20)]
    errors: list = []

    def create(name):
        try:
            client(s.url).create_notebook_instance(NotebookInstanceName=name, InstanceType="ml.t3.medium", RoleArn=ROLE)
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    started = time.monotonic()
    threads = [threading.Thread(target=create, args=(n,)) for n in names]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors, errors
    for n in names:
        assert_in_service(s.sm, n, 120)
    in_service = time.monotonic() - started
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s.sm.create_notebook_instance(NotebookInstanceName="load-20", InstanceType="ml.t3.medium", RoleArn=ROLE)
    assert code(e.value) == "ResourceLimitExceeded"

    failures: list = []

    def describe(k):
        c = client(s.url)
        for i in range(250):
            try:
                c.describe_notebook_instance(NotebookInstanceName=names[(k * 250 + i) % 20])
            except Exception as e:  # noqa: BLE001
                failures.append(e)

    started = time.monotonic()
    threads = [threading.Thread(target=describe, args=(k,)) for k in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    took = time.monotonic() - started
    assert not failures, failures[:3]
    print(f"\n20 instances InService in {in_service:.1f} s; 1000 describes in {took:.2f} s "
          f"({1000 / took:.0f}/s over 4 clients)")
    for n in names:
        s.sm.stop_notebook_instance(NotebookInstanceName=n)
    for n in names:
        wait(s.sm, n, "Stopping")
    s.stop()
