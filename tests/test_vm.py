"""Notebook instances as virtual machines (`rustmaker serve --backend vm`): the image's `vm`
variant (Debian's cloud kernel and an init) built into a qcow2, booted by qemu under full
emulation, through boto3: OnCreate and OnStart inside the machine with their log streams read
back by the host, JupyterLab answering through the forwarded port with the rustmaker kernel,
the volume's disk surviving a stop/start while the root does not, and a failing hook leaving
the instance Failed with its reason.

Each boot under full emulation takes a minute or more, so this runs only with
RUSTMAKER_TEST_VM=1 (README, "The notebook-instance image"): `RUSTMAKER_TEST_VM=1 scripts/test`
with the rest, or `RUSTMAKER_TEST_VM=1 .venv/bin/python -m pytest tests/test_vm.py` alone. It
needs root (the image build) and qemu-system-x86 (scripts/setup installs it when the flag is
set)."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import time
import urllib.request

import pytest

from test_images import ROLE, b64, build, execute, instance_service, jupyter, report, wait

pytestmark = [
    pytest.mark.skipif(os.environ.get("RUSTMAKER_TEST_VM") != "1",
                       reason="virtual machines boot in minutes under emulation: set RUSTMAKER_TEST_VM=1"),
    pytest.mark.skipif(os.geteuid() != 0, reason="building the image needs root"),
]

BOOT = 900  # seconds from a start to InService under full emulation, at most


@pytest.fixture(scope="module")
def vm_image(tmp_path_factory):
    out = tmp_path_factory.mktemp("vm-image") / "vm"
    started = time.monotonic()
    p = build(out, "--format", "dir,qcow2", variant="vm")
    print(f"vm image built in {time.monotonic() - started:.0f} s\n{p.stdout}")
    yield out
    shutil.rmtree(out.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def svc(vm_image, tmp_path_factory):
    yield from instance_service(tmp_path_factory, "vm-service", "--backend", "vm", "--image", str(vm_image),
                                "--hook-timeout", "60")


def call(base: str, token: str, path: str, method: str = "GET", body: dict | None = None):
    req = urllib.request.Request(f"{base}{path}", data=None if body is None else json.dumps(body).encode(),
                                 method=method,
                                 headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=120))


def text(base: str, token: str, path: str) -> str:
    return call(base, token, f"/api/contents/{path}?content=1&type=file&format=text")["content"]


ON_CREATE = """echo "created inside the machine" > /etc/oncreate-marker
uname -r >> /home/ec2-user/SageMaker/created.log
"""
ON_START = """date +%s.%N >> /home/ec2-user/SageMaker/started.log
cp /opt/ml/metadata/resource-metadata.json /home/ec2-user/SageMaker/metadata.json
test -e /etc/oncreate-marker && echo marker >> /home/ec2-user/SageMaker/markers.log
echo "OnStart ran on $(hostname) as $(id -un)"
"""


def test_an_instance_boots_as_a_machine_with_its_hooks_inside(svc, vm_image):
    sm = svc.sm
    assert any(s["step"] == "qcow2" for s in report(vm_image)["steps"])
    sm.create_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName="machine",
                                                 OnCreate=[{"Content": b64(ON_CREATE)}],
                                                 OnStart=[{"Content": b64(ON_START)}])
    sm.create_notebook_instance(NotebookInstanceName="vm-a", InstanceType="ml.t3.medium", RoleArn=ROLE,
                                LifecycleConfigName="machine", VolumeSizeInGB=5)
    started = time.monotonic()
    d = wait(sm, "vm-a", "Pending", BOOT)
    first_boot = time.monotonic() - started
    assert d["NotebookInstanceStatus"] == "InService", d.get("FailureReason")
    print(f"first boot to InService: {first_boot:.0f} s")

    base, token = jupyter(svc, "vm-a")
    assert "rustmaker" in call(base, token, "/api/kernelspecs")["kernelspecs"]
    # The hooks ran inside the machine: its own kernel (Debian's cloud kernel), its name.
    assert "cloud-amd64" in text(base, token, "created.log")
    meta = json.loads(text(base, token, "metadata.json"))
    assert meta["ResourceName"] == "vm-a" and meta["ResourceArn"].endswith("notebook-instance/vm-a")
    assert not pathlib.Path("/etc/oncreate-marker").exists()
    # Their log streams came back to the host.
    logs = svc.state / "logs" / "vm-a"
    on_start = (logs / "LifecycleConfigOnStart.log").read_text()
    assert "OnStart ran on vm-a as root" in on_start, on_start
    assert (logs / "LifecycleConfigOnCreate.log").exists()

    # The kernel answers a magic inside the machine.
    kernel = call(base, token, "/api/kernels", "POST", {"name": "rustmaker"})["id"]
    assert "%train" in execute(base, token, kernel, "%lsmagic", timeout=600)
    call(base, token, "/api/contents/kept.txt", "PUT", {"type": "file", "format": "text", "content": "kept"})

    # Stop and start: a new root from the image, the same volume disk.
    stopping = time.monotonic()
    sm.stop_notebook_instance(NotebookInstanceName="vm-a")
    assert wait(sm, "vm-a", "Stopping", 120)["NotebookInstanceStatus"] == "Stopped"
    # Ctrl-Alt-Del ended the machine: it powered itself off well before it would be killed.
    stopped = time.monotonic() - stopping
    print(f"stop: {stopped:.0f} s")
    assert stopped < 25, stopped
    sm.start_notebook_instance(NotebookInstanceName="vm-a")
    started = time.monotonic()
    d = wait(sm, "vm-a", "Pending", BOOT)
    assert d["NotebookInstanceStatus"] == "InService", d.get("FailureReason")
    print(f"second boot to InService: {time.monotonic() - started:.0f} s")
    base, token = jupyter(svc, "vm-a")
    assert text(base, token, "kept.txt") == "kept"
    assert len(text(base, token, "created.log").splitlines()) == 1
    assert len(text(base, token, "started.log").splitlines()) == 2
    # OnCreate's marker was in the first run's root only.
    assert len(text(base, token, "markers.log").splitlines()) == 1
    assert (logs / "LifecycleConfigOnStart.log").read_text().count("OnStart ran on vm-a") == 2
    sm.stop_notebook_instance(NotebookInstanceName="vm-a")
    assert wait(sm, "vm-a", "Stopping", 120)["NotebookInstanceStatus"] == "Stopped"
    # The volume is a disk of its own, VolumeSizeInGB large.
    disk = svc.state / "instances" / "vm-a" / "volume.ext4"
    assert disk.stat().st_size == 5 << 30


def test_a_failing_hook_inside_the_machine_fails_the_instance(svc):
    sm = svc.sm
    sm.create_notebook_instance_lifecycle_config(
        NotebookInstanceLifecycleConfigName="failing",
        OnStart=[{"Content": b64("echo 'about to fail inside'\nexit 3\n")}])
    sm.create_notebook_instance(NotebookInstanceName="vm-bad", InstanceType="ml.t3.medium", RoleArn=ROLE,
                                LifecycleConfigName="failing")
    d = wait(sm, "vm-bad", "Pending", BOOT)
    assert d["NotebookInstanceStatus"] == "Failed", d
    assert "OnStart" in d["FailureReason"] and "3" in d["FailureReason"], d["FailureReason"]
    log = (svc.state / "logs" / "vm-bad" / "LifecycleConfigOnStart.log").read_text()
    assert "about to fail inside" in log, log
