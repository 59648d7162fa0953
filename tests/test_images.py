"""The managed notebook-instance image: built once per test run from images/ (the session
fixture: mmdebstrap, the pinned Python packages, the host's toolchain, this build's rustmaker),
its formats checked by their own tools (e2fsck, qemu-img, umoci), a rebuild that redoes only the
last step and gives the same digests, bad builds refused naming their step, and instances run
from it by `rustmaker serve --backend image` through boto3: hooks inside the instance, the
persistent volume, JupyterLab running a Rust cell and a magic, isolation between instances."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import pathlib
import shutil
import subprocess
import tarfile
import time
import urllib.request
import uuid

import pytest

from conftest import BIN
from service import Service

ROOT = pathlib.Path(__file__).resolve().parents[1]
ROLE = "arn:aws:iam::000000000000:role/notebook"
EPOCH = "1765000000"
CACHE = ROOT / "images" / "out" / "cache"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="building and running the image needs root")


def build(out: pathlib.Path, *extra: str, rustmaker: str = BIN, check: bool = True,
          recipe: pathlib.Path | None = None, variant: str = "minimal") -> subprocess.CompletedProcess:
    args = [BIN, "image", "build", "--variant", variant, "--out", str(out), "--cache", str(CACHE),
            "--source-date-epoch", EPOCH, "--rustmaker", rustmaker, *extra]
    if recipe:
        args += ["--recipe", str(recipe)]
    # Without a backtrace, the tail of stderr is the error that says which step failed and why.
    env = dict(os.environ, RUST_BACKTRACE="0", RUST_LIB_BACKTRACE="0")
    p = subprocess.run(args, capture_output=True, text=True, timeout=1500, env=env)
    if check:
        assert p.returncode == 0, p.stderr[-3000:]
    return p


@pytest.fixture(scope="session")
def image(tmp_path_factory):
    """The minimal image with every format but squashfs, built once for the run."""
    out = tmp_path_factory.mktemp("image") / "minimal"
    started = time.monotonic()
    p = build(out, "--format", "dir,tar,ext4,qcow2,oci")
    print(f"minimal image built in {time.monotonic() - started:.0f} s\n{p.stdout}")
    yield out
    # Several GB: not left for pytest's kept temporary folders.
    shutil.rmtree(out.parent, ignore_errors=True)


@pytest.fixture
def scratch(tmp_path):
    """A temporary folder removed as soon as the test ends (images are large)."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


def report(out: pathlib.Path) -> dict:
    return json.loads((out / "build.json").read_text())


def digest(out: pathlib.Path, fmt: str) -> str:
    return next(o["digest"] for o in report(out)["outputs"] if o["format"] == fmt)


def test_the_image_holds_a_notebook_instance(image):
    rootfs = image / "rootfs"
    boot = json.loads((rootfs / "etc/rustmaker/boot.json").read_text())
    assert boot["user"] == "ec2-user" and boot["uid"] == 1000 and boot["volume"] == "SageMaker"
    assert boot["command"] == ["/usr/local/bin/rustmaker", "instance", "boot"]
    assert "ec2-user:x:1000:1000::/home/ec2-user:/bin/bash" in (rootfs / "etc/passwd").read_text()
    assert (rootfs / "home/ec2-user/SageMaker").stat().st_uid == 1000
    spec = json.loads((rootfs / "opt/jupyter/share/jupyter/kernels/rustmaker/kernel.json").read_text())
    assert spec["argv"][0] == "/usr/local/bin/rustmaker"
    assert (rootfs / "opt/jupyter/bin/jupyter-lab").exists()
    assert (rootfs / "opt/rust/bin/cargo").exists() and (rootfs / "opt/rust/bin/rustc").exists()
    assert (rootfs / "usr/bin/cc").exists()
    # The image's own Python runs JupyterLab, and its rustc runs (inside the root, with its
    # /proc: the toolchain finds its libraries through /proc/self/exe).
    for command in ("/opt/jupyter/bin/python -c 'import jupyterlab; print(jupyterlab.__version__)'",
                    "/opt/rust/bin/rustc --version"):
        p = subprocess.run(["unshare", "--mount", "--fork", "--", "sh", "-c",
                            'mount -t proc proc "$1/proc" && exec chroot "$1" /bin/sh -c "$2"', "sh",
                            str(rootfs), command], capture_output=True, text=True)
        assert p.returncode == 0 and p.stdout.strip(), (command, p.stderr)
    about = json.loads((rootfs / "etc/rustmaker/image.json").read_text())
    assert about["variant"] == "minimal" and about["source_date_epoch"] == int(EPOCH)
    steps = [s["step"] for s in report(image)["steps"]]
    assert steps[:4] == ["base", "python", "rust", "rustmaker"], steps


def test_each_format_passes_its_own_tool(image, scratch):
    tmp_path = scratch
    formats = {o["format"]: o for o in report(image)["outputs"]}
    assert set(formats) == {"dir", "tar", "ext4", "qcow2", "oci"}, formats
    p = subprocess.run(["e2fsck", "-fn", str(image / "rootfs.ext4")], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    p = subprocess.run(["qemu-img", "check", str(image / "rootfs.qcow2")], capture_output=True, text=True)
    assert p.returncode == 0 and "No errors" in p.stdout, p.stdout + p.stderr
    with tarfile.open(image / "rootfs.tar") as t:
        names = t.getnames()
        member = t.getmember("./usr/local/bin/rustmaker")
        assert member.mtime <= int(EPOCH) and member.mode & 0o111
        assert "./home/ec2-user/SageMaker" in names and t.getmember("./home/ec2-user/SageMaker").uid == 1000
    # umoci, the OCI reference tool, verifies every digest while it unpacks the layout.
    shutil.copytree(image / "oci", tmp_path / "oci")
    p = subprocess.run(["umoci", "unpack", "--image", f"{tmp_path / 'oci'}:minimal", str(tmp_path / "bundle")],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    config = json.loads((tmp_path / "bundle/config.json").read_text())
    assert config["process"]["args"] == ["/usr/local/bin/rustmaker", "instance", "boot"]
    assert (tmp_path / "bundle/rootfs/etc/rustmaker/boot.json").read_text() == \
        (image / "rootfs/etc/rustmaker/boot.json").read_text()
    index = json.loads((image / "oci/index.json").read_text())
    assert index["manifests"][0]["digest"] == formats["oci"]["digest"]
    with tarfile.open(image / "oci.tar") as t:
        assert "./index.json" in t.getnames() and "./oci-layout" in t.getnames()


def test_a_rebuild_redoes_only_rustmaker_and_gives_the_same_digests(image, scratch):
    tmp_path = scratch
    started = time.monotonic()
    again = tmp_path / "again"
    build(again, "--format", "tar,oci")
    seconds = time.monotonic() - started
    steps = {s["step"]: s for s in report(again)["steps"]}
    assert all(steps[s]["cached"] for s in ("base", "python", "rust")), steps
    assert not steps["rustmaker"]["cached"]
    assert digest(again, "tar") == digest(image, "tar")
    assert digest(again, "oci") == digest(image, "oci")
    # Another rustmaker binary: only the last step changes, and so does the digest.
    changed = tmp_path / "rustmaker"
    shutil.copy(BIN, changed)
    with open(changed, "ab") as f:
        f.write(b"another build")
    build(again, "--format", "tar", rustmaker=str(changed))
    assert digest(again, "tar") != digest(image, "tar")
    print(f"rebuild with every step but rustmaker cached: {seconds:.0f} s")
    assert seconds < 180, seconds


def recipe_with(tmp_path: pathlib.Path, edit) -> pathlib.Path:
    recipe = tmp_path / "recipe"
    shutil.copytree(ROOT / "images", recipe, ignore=shutil.ignore_patterns("out", "src", "*.rs"))
    text = (recipe / "recipe.toml").read_text()
    (recipe / "recipe.toml").write_text(edit(text))
    return recipe


def test_bad_builds_name_their_step_and_leave_the_previous_image(image, scratch):
    tmp_path = scratch
    before = digest(image, "tar")
    # A package the archive does not have.
    recipe = recipe_with(tmp_path, lambda t: t.replace('"procps"]', '"procps", "no-such-package-rustmaker"]'))
    p = build(image, "--format", "tar", recipe=recipe, check=False)
    assert p.returncode != 0 and "step base failed" in p.stderr and "no-such-package-rustmaker" in p.stderr, p.stderr
    assert digest(image, "tar") == before and (image / "rootfs/usr/local/bin/rustmaker").exists()
    # A package registry that cannot be reached.
    sources = tmp_path / "unreachable.list"
    sources.write_text("deb http://127.0.0.1:9/debian bookworm main\n")
    p = build(tmp_path / "nowhere", "--sources", str(sources), check=False)
    assert p.returncode != 0 and "step base failed" in p.stderr, p.stderr
    assert not (tmp_path / "nowhere").exists()
    # An output disk too small: the cached steps fit, the image does not; refused before
    # anything is copied, naming the room needed and the room free.
    small = tmp_path / "small"
    small.mkdir()
    p = subprocess.run(["unshare", "--mount", "--", "sh", "-c",
                        f'mount -t tmpfs -o size=64m tmpfs "{small}" || exit 99; "$@"; rc=$?; ls -A "{small}"; exit $rc', "sh",
                        BIN, "image", "build", "--out", str(small / "img"), "--cache", str(CACHE),
                        "--source-date-epoch", EPOCH, "--format", "tar"],
                       capture_output=True, text=True, timeout=900,
                       env=dict(os.environ, RUST_BACKTRACE="0", RUST_LIB_BACKTRACE="0"))
    assert p.returncode != 0 and "step rustmaker: the image needs about" in p.stderr, p.stderr
    assert "GB are free there" in p.stderr and "another --out" in p.stderr, p.stderr
    # Nothing written: the folder on the small disk is as empty as it started.
    assert "==> tar" not in p.stderr and p.stdout.strip() == "", (p.stdout, p.stderr)
    # A recipe that is not one, and a variant it does not have.
    broken = recipe_with(tmp_path / "b", lambda t: t + "\n[variants.minimal]\n")
    p = build(tmp_path / "x", recipe=broken, check=False)
    assert p.returncode != 0 and "recipe" in p.stderr and "minimal" in p.stderr, p.stderr
    p = subprocess.run([BIN, "image", "build", "--variant", "huge"], capture_output=True, text=True)
    assert p.returncode != 0 and "no variant `huge`" in p.stderr, p.stderr


# ---- instances from the image ----

def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def wait(sm, name: str, leaving: str, limit: float = 180) -> dict:
    deadline = time.monotonic() + limit
    while True:
        d = sm.describe_notebook_instance(NotebookInstanceName=name)
        if d["NotebookInstanceStatus"] != leaving or time.monotonic() > deadline:
            return d
        time.sleep(0.3)


def in_service(sm, name: str) -> dict:
    d = wait(sm, name, "Pending")
    assert d["NotebookInstanceStatus"] == "InService", (name, d.get("FailureReason"))
    return d


def jupyter(svc, name: str) -> tuple[str, str]:
    info = json.loads((svc.state / "instances" / name / "run" / "jupyter.json").read_text())
    return info["url"].rstrip("/"), info["token"]


def api(base: str, token: str, path: str, body: dict | None = None):
    req = urllib.request.Request(f"{base}{path}", data=None if body is None else json.dumps(body).encode(),
                                 method="GET" if body is None else "POST",
                                 headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=60))


def execute(base: str, token: str, kernel: str, code: str, timeout: float = 240) -> str:
    """One cell through JupyterLab's websocket, as the notebook sends it; the text it showed."""
    from tornado.websocket import websocket_connect

    async def run() -> str:
        ws = await websocket_connect(f"{base.replace('http', 'ws')}/api/kernels/{kernel}/channels?token={token}")
        msg_id = uuid.uuid4().hex
        await ws.write_message(json.dumps({
            "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}))
        out = []
        deadline = time.monotonic() + timeout
        while True:
            raw = await asyncio.wait_for(ws.read_message(), max(1, deadline - time.monotonic()))
            assert raw is not None, "the websocket closed"
            m = json.loads(raw)
            if m.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = m["msg_type"], m["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind in ("execute_result", "display_data"):
                out.append(content["data"].get("text/plain", ""))
            elif kind == "error":
                out.append(f"ERROR {content['ename']}: {content['evalue']}")
            elif kind == "status" and content["execution_state"] == "idle":
                ws.close()
                return "".join(out)

    return asyncio.run(run())


def instance_service(tmp_path_factory, name: str, *args: str):
    """`rustmaker serve` with `args` for a module's tests; its running instances stopped at the end."""
    s = Service(tmp_path_factory.mktemp(name) / "state", *args)
    yield s
    for i in s.sm.list_notebook_instances()["NotebookInstances"]:
        if i["NotebookInstanceStatus"] == "InService":
            s.sm.stop_notebook_instance(NotebookInstanceName=i["NotebookInstanceName"])
            wait(s.sm, i["NotebookInstanceName"], "Stopping")
    s.stop()


@pytest.fixture(scope="module")
def svc(image, tmp_path_factory):
    yield from instance_service(tmp_path_factory, "image-service", "--backend", "image", "--image", str(image),
                                "--hook-timeout", "8")


ON_CREATE = """echo "created inside" > /etc/oncreate-marker
date +%s.%N >> /home/ec2-user/SageMaker/created.log
"""
ON_START = """date +%s.%N >> /home/ec2-user/SageMaker/started.log
cp /opt/ml/metadata/resource-metadata.json /home/ec2-user/SageMaker/metadata.json
touch /home/ec2-user/outside-the-volume
id -un > /home/ec2-user/SageMaker/hook-user
nohup sleep 600 >/dev/null 2>&1 &
"""


def test_instances_run_from_the_image_with_hooks_inside(svc):
    sm = svc.sm
    sm.create_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName="inside",
                                                 OnCreate=[{"Content": b64(ON_CREATE)}],
                                                 OnStart=[{"Content": b64(ON_START)}])
    for name in ("img-a", "img-b"):
        sm.create_notebook_instance(NotebookInstanceName=name, InstanceType="ml.t3.medium", RoleArn=ROLE,
                                    LifecycleConfigName="inside")
    for name in ("img-a", "img-b"):
        in_service(sm, name)
    home = svc.state / "instances" / "img-a" / "home" / "SageMaker"
    upper = svc.state / "instances" / "img-a" / "run" / "upper"
    # OnCreate ran inside the instance: its marker is in the instance's root, not the host's.
    assert (upper / "etc/oncreate-marker").read_text() == "created inside\n"
    assert not pathlib.Path("/etc/oncreate-marker").exists()
    assert (home / "hook-user").read_text().strip() == "root"
    meta = json.loads((home / "metadata.json").read_text())
    assert meta["ResourceName"] == "img-a" and meta["ResourceArn"].endswith("notebook-instance/img-a")
    log = (svc.state / "logs" / "img-a" / "LifecycleConfigOnStart.log").read_text()
    assert "OnStart starting" in log

    # JupyterLab of the image lists the kernel and runs a Rust cell and a magic.
    base, token = jupyter(svc, "img-a")
    specs = api(base, token, "/api/kernelspecs")
    assert "rustmaker" in specs["kernelspecs"], specs["kernelspecs"].keys()
    kernel = api(base, token, "/api/kernels", {"name": "rustmaker"})["id"]
    out = execute(base, token, kernel, 'let x = 40 + 2;\nstd::fs::write("/home/ec2-user/SageMaker/kept.txt", "kept").unwrap();\n'
                  'std::fs::write("/home/ec2-user/scratch.txt", "gone").unwrap();\nprintln!("x = {x}");')
    assert "x = 42" in out, out
    assert (home / "kept.txt").read_text() == "kept"
    assert "%train" in execute(base, token, kernel, "%lsmagic")
    # No process of the other instance is visible from this one.
    _, token_b = jupyter(svc, "img-b")
    seen = execute(base, token, kernel, '{\n    let mut all = String::new();\n'
                   '    for e in std::fs::read_dir("/proc").unwrap().flatten() {\n'
                   '        if let Ok(c) = std::fs::read(e.path().join("cmdline")) { all.push_str(&String::from_utf8_lossy(&c)); }\n'
                   '    }\n'
                   f'    println!("own={{}} other={{}}", all.contains("{token}"), all.contains("{token_b}"));\n}}')
    assert "own=true other=false" in seen, seen

    # Stop and start: only the volume survives; OnCreate ran once, OnStart at each start.
    sm.stop_notebook_instance(NotebookInstanceName="img-a")
    assert wait(sm, "img-a", "Stopping")["NotebookInstanceStatus"] == "Stopped"
    sm.start_notebook_instance(NotebookInstanceName="img-a")
    in_service(sm, "img-a")
    assert len((home / "created.log").read_text().splitlines()) == 1
    assert len((home / "started.log").read_text().splitlines()) == 2
    assert (home / "kept.txt").read_text() == "kept"
    assert not (upper / "home/ec2-user/scratch.txt").exists()
    assert not (upper / "etc/oncreate-marker").exists()
    assert (upper / "home/ec2-user/outside-the-volume").exists()
    base, token = jupyter(svc, "img-a")
    kernel = api(base, token, "/api/kernels", {"name": "rustmaker"})["id"]
    out = execute(base, token, kernel, 'println!("scratch {} kept {}", std::path::Path::new("/home/ec2-user/scratch.txt").exists(), '
                  'std::fs::read_to_string("/home/ec2-user/SageMaker/kept.txt").unwrap());')
    assert "scratch false kept kept" in out, out
    for name in ("img-a", "img-b"):
        sm.stop_notebook_instance(NotebookInstanceName=name)
    for name in ("img-a", "img-b"):
        assert wait(sm, name, "Stopping")["NotebookInstanceStatus"] == "Stopped"
        sm.delete_notebook_instance(NotebookInstanceName=name)


def test_environments_on_the_volume_become_kernels(svc):
    """A Python environment kept under ~/SageMaker/envs is offered as a kernel at each start."""
    sm = svc.sm
    name = "img-envs"
    sm.create_notebook_instance(NotebookInstanceName=name, InstanceType="ml.t3.medium", RoleArn=ROLE)
    in_service(sm, name)
    # What a user would do in a terminal: a venv on the volume with ipykernel in it (the image's
    # own packages stand in for a download).
    env = svc.state / "instances" / name / "home" / "SageMaker" / "envs" / "mine"
    site = env / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (site / "ipykernel").mkdir()
    (env / "bin").mkdir()
    (env / "bin" / "python").symlink_to("/opt/jupyter/bin/python")
    sm.stop_notebook_instance(NotebookInstanceName=name)
    wait(sm, name, "Stopping")
    sm.start_notebook_instance(NotebookInstanceName=name)
    in_service(sm, name)
    base, token = jupyter(svc, name)
    specs = api(base, token, "/api/kernelspecs")["kernelspecs"]
    assert specs["env-mine"]["spec"]["display_name"] == "Python (mine)", specs.keys()
    sm.stop_notebook_instance(NotebookInstanceName=name)
    wait(sm, name, "Stopping")
    sm.delete_notebook_instance(NotebookInstanceName=name)


def test_a_failing_or_slow_hook_inside_leaves_the_instance_failed(svc):
    sm = svc.sm
    sm.create_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName="inside-slow",
                                                 OnStart=[{"Content": b64("sleep 60\n")}])
    sm.create_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName="inside-broken",
                                                 OnCreate=[{"Content": b64("echo broken inside >&2\nexit 3\n")}])
    for name, config in (("img-slow", "inside-slow"), ("img-broken", "inside-broken")):
        sm.create_notebook_instance(NotebookInstanceName=name, InstanceType="ml.t3.medium", RoleArn=ROLE,
                                    LifecycleConfigName=config)
    d = wait(sm, "img-slow", "Pending")
    assert d["NotebookInstanceStatus"] == "Failed", d
    assert "OnStart script ran longer than its limit of 8 s" in d["FailureReason"], d["FailureReason"]
    assert str(svc.state / "logs" / "img-slow") in d["FailureReason"], d["FailureReason"]
    d = wait(sm, "img-broken", "Pending")
    assert d["NotebookInstanceStatus"] == "Failed" and "OnCreate script failed (exit status 3)" in d["FailureReason"], d
    assert "broken inside" in (svc.state / "logs" / "img-broken" / "LifecycleConfigOnCreate.log").read_text()
    with pytest.raises(Exception) as e:
        sm.create_notebook_instance_lifecycle_config(NotebookInstanceLifecycleConfigName="not-base64",
                                                     OnStart=[{"Content": "this is not base64!"}])
    assert "base64" in str(e.value)
    for name in ("img-slow", "img-broken"):
        sm.delete_notebook_instance(NotebookInstanceName=name)


def test_an_image_that_does_not_exist_is_refused_at_start(tmp_path):
    p = subprocess.run([BIN, "serve", "--port", "0", "--state-dir", str(tmp_path / "state"), "--backend", "image",
                        "--image", str(tmp_path / "no-image")], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "not a notebook-instance image" in p.stderr and "rustmaker image build" in p.stderr, p.stderr
