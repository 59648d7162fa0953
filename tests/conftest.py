"""Shared set-up for the Python tests: a private kernelspec pointing at this build, and helpers
that drive the kernel the way a front end does."""

from __future__ import annotations

import os
import pathlib
import subprocess
import tempfile
import time
from queue import Empty

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = os.environ.get("RUSTMAKER_BIN", str(ROOT / "target" / "debug" / "rustmaker"))
KERNEL = "rustmaker"


def isolate_home():
    """Gives the tests a home of their own when `scripts/test` has not (pytest run by hand), so
    nothing a test or a client library writes (sparkmagic creates ~/.sparkmagic/config.json on
    import) lands in the user's real home. The toolchains keep their real homes."""
    if os.environ.get("RUSTMAKER_TEST_HOME"):
        return
    real = pathlib.Path.home()
    home = pathlib.Path(tempfile.mkdtemp(prefix="rustmaker-test-home-"))
    os.environ.setdefault("CARGO_HOME", str(real / ".cargo"))
    os.environ.setdefault("RUSTUP_HOME", str(real / ".rustup"))
    if (real / ".pyenv").is_dir():
        os.environ.setdefault("PYENV_ROOT", str(real / ".pyenv"))
    (home / ".run").mkdir(mode=0o700)
    os.environ.update(
        HOME=str(home), RUSTMAKER_TEST_HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"), XDG_DATA_HOME=str(home / ".local/share"),
        XDG_CACHE_HOME=str(home / ".cache"), XDG_STATE_HOME=str(home / ".local/state"),
        XDG_RUNTIME_DIR=str(home / ".run"), JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
        JUPYTER_DATA_DIR=str(home / ".local/share/jupyter"),
        JUPYTER_RUNTIME_DIR=str(home / ".local/share/jupyter/runtime"), IPYTHONDIR=str(home / ".ipython"),
        SPARKMAGIC_CONF_DIR=str(home / ".sparkmagic"), RUSTMAKER_HOME=str(home / ".rustmaker"),
        RUSTMAKER_DATA_DIR=str(home / ".rustmaker" / "data"),
    )


def separate_worker_state():
    """Under pytest-xdist (`scripts/test` runs two workers), each worker's kernels and services
    keep their state in a folder of their own, so one worker's jobs, frames and experiments
    never show up in what the other's tests list and count."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return
    for name in ("RUSTMAKER_HOME", "RUSTMAKER_DATA_DIR"):
        if os.environ.get(name):
            os.environ[name] = f"{os.environ[name]}-{worker}"


def pytest_configure(config):
    isolate_home()
    separate_worker_state()
    # Install the kernelspec of *this* build into a private directory that Jupyter searches
    # first, so the tests never pick up another installation.
    prefix = tempfile.mkdtemp(prefix="rustmaker-spec-")
    subprocess.run([BIN, "install", "--prefix", prefix], check=True, capture_output=True)
    data = os.path.join(prefix, "share", "jupyter")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(p for p in (data, os.environ.get("JUPYTER_PATH")) if p)


def start_kernel(log_path: pathlib.Path | None = None):
    """Starts the kernel as Jupyter does; its stderr (the kernel log) goes to `log_path`."""
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name=KERNEL)
    kwargs = {}
    if log_path is not None:
        kwargs["stderr"] = open(log_path, "w")  # noqa: SIM115 - closed with the process
    km.start_kernel(**kwargs)
    kc = km.blocking_client()
    kc.start_channels()
    kc.wait_for_ready(timeout=30)
    return km, kc


def collect(kc, msg_id: str, timeout: float = 120.0) -> list[dict]:
    """The iopub messages of one request, up to its `idle` status."""
    outputs = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no idle status for {msg_id} within {timeout}s")
        try:
            msg = kc.get_iopub_msg(timeout=remaining)
        except Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return outputs
        outputs.append(msg)


def wait_for_iopub(kc, timeout: float = 30.0) -> None:
    """Until the kernel's iopub reaches this client. After a restart, jupyter_client's
    `wait_for_ready` takes any iopub message as proof of the subscription, and one left over
    from the old kernel (its shutdown's status) passes it while the new kernel's first
    messages go out before the client's subscription joins (ZeroMQ drops them): a cell's
    `idle` could then be lost. A kernel_info request's own `idle` proves the subscription."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg_id = kc.kernel_info()
        try:
            collect(kc, msg_id, timeout=1.0)
            return
        except TimeoutError:
            continue
    raise TimeoutError(f"the kernel's iopub did not reach the client within {timeout}s")


def reply_to(kc, msg_id: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        msg = kc.get_shell_msg(timeout=max(0.01, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg


def run(kc, code: str, timeout: float = 120.0, **kwargs) -> tuple[dict, list[dict]]:
    """Executes `code`; returns the execute_reply content and the cell's iopub messages."""
    msg_id = kc.execute(code, **kwargs)
    reply = reply_to(kc, msg_id, timeout)
    return reply["content"], collect(kc, msg_id, timeout)


def interrupted_reply(kc, km, code: str, after: float) -> tuple[dict, float]:
    """Runs `code`, interrupts the kernel `after` seconds later; returns the execute_reply
    content and the seconds from the interrupt to the reply."""
    msg_id = kc.execute(code)
    time.sleep(after)
    started = time.monotonic()
    km.interrupt_kernel()
    return reply_to(kc, msg_id, 60)["content"], time.monotonic() - started


def error_of(kc, code: str, timeout: float = 120.0) -> str:
    """Runs `code`, which must fail; returns the error's evalue."""
    reply, _ = run(kc, code, timeout=timeout)
    assert reply["status"] == "error", reply
    return reply["evalue"]


def stream_text(outputs: list[dict], name: str = "stdout") -> str:
    return "".join(m["content"]["text"] for m in outputs if m["msg_type"] == "stream" and m["content"]["name"] == name)


def results(outputs: list[dict]) -> list[str]:
    """The text/plain of each execute_result among a cell's messages."""
    return [m["content"]["data"]["text/plain"] for m in outputs if m["msg_type"] == "execute_result"]


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """One kernel for a test module (starting evcxr costs seconds); its log path is kept."""
    log = tmp_path_factory.mktemp("kernel") / "kernel.log"
    km, kc = start_kernel(log)
    kc.log_path = log
    yield kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


class LivyServer:
    """A `rustmaker livy serve` on a free loopback port, with Basic credentials."""

    def __init__(self, home: pathlib.Path, extra_args: tuple[str, ...] = ()):
        import json
        import sys
        import uuid

        self.user, self.password = "tester", uuid.uuid4().hex
        self.home = home
        state = home / "livy-server.json"
        env = dict(os.environ, RUSTMAKER_HOME=str(home), RUSTMAKER_PYTHON=sys.executable,
                   RUSTMAKER_LIVY_CREDENTIALS=f"{self.user}:{self.password}")
        self.log = open(home / "livy-server.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [BIN, "livy", "serve", "--port", "0", "--state-file", str(state), *extra_args],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while not state.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Livy server did not start; see {home / 'livy-server.log'}")
            time.sleep(0.05)
        self.url = json.loads(state.read_text())["url"]

    def kernel_env(self, **extra: str) -> dict:
        """Environment for a kernel whose default Spark endpoint is this server."""
        env = dict(os.environ, RUSTMAKER_HOME=str(self.home), RUSTMAKER_LIVY_URL=self.url,
                   RUSTMAKER_LIVY_USER=self.user, RUSTMAKER_LIVY_PASSWORD=self.password,
                   RUSTMAKER_LIVY_AUTH="Basic_Access", SPARKMAGIC_CONF_DIR=str(self.home))
        env.update(extra)
        return env

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture(scope="session")
def livy_server(tmp_path_factory):
    """One local Livy server for the whole run (its PySpark sessions take seconds to start)."""
    server = LivyServer(tmp_path_factory.mktemp("livy"))
    yield server
    server.stop()


def start_kernel_with_env(env: dict, log_path: pathlib.Path):
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name=KERNEL)
    km.start_kernel(env=env, stderr=open(log_path, "w"))  # noqa: SIM115 - closed with the process
    kc = km.blocking_client()
    kc.start_channels()
    kc.wait_for_ready(timeout=30)
    return km, kc


AWS = {"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory):
    """moto's server on a free loopback port, with the Glue calls moto lacks
    (tests/aws_double.py): the AWS endpoint of the tests."""
    import socket
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "aws_double.py"), str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("moto did not start") from None
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.fixture(scope="module")
def ak(moto_url, tmp_path_factory):
    """A kernel whose AWS endpoint is the moto server (one per test module)."""
    home = tmp_path_factory.mktemp("aws-home")
    env = dict(os.environ, HOME=str(home), AWS_ENDPOINT_URL=moto_url, RUSTMAKER_HOME=str(home), **AWS)
    km, kc = start_kernel_with_env(env, home / "kernel.log")
    kc.home, kc.km = home, km
    yield kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def boto(moto_url):
    """boto3 clients on the moto server, to check what the magics did."""
    import boto3

    def client(service):
        return boto3.client(service, endpoint_url=moto_url, region_name=AWS["AWS_REGION"],
                            aws_access_key_id="testing", aws_secret_access_key="testing")
    return client


def ok(kc, code, timeout=120):
    reply, outputs = run(kc, code, timeout=timeout)
    assert reply["status"] == "ok", (reply, outputs)
    return outputs


def html_of(outputs):
    return "".join(m["content"]["data"].get("text/html", "") for m in outputs
                   if m["msg_type"] in ("display_data", "update_display_data"))


def emr_cluster(emr, name: str) -> tuple[str, str]:
    """A cluster with Spark and Livy in moto's EMR (through the boto3 client `emr`); returns
    its id and the master node's DNS name moto gave it."""
    cluster = emr.run_job_flow(
        Name=name, ReleaseLabel="emr-7.1.0", Applications=[{"Name": "Spark"}, {"Name": "Livy"}],
        Instances={"MasterInstanceType": "m5.xlarge", "SlaveInstanceType": "m5.xlarge", "InstanceCount": 1,
                   "KeepJobFlowAliveWhenNoSteps": True},
        JobFlowRole="EMR_EC2_DefaultRole", ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]
    return cluster, emr.describe_cluster(ClusterId=cluster)["Cluster"]["MasterPublicDnsName"]
