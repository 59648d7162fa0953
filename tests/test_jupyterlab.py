"""JupyterLab, as `scripts/lab` starts it, offers the kernel and runs cells on it through the
same REST and websocket API the browser uses."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest
from tornado.websocket import websocket_connect

TOKEN = uuid.uuid4().hex


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str | None = TOKEN):
    req = urllib.request.Request(url, headers={"Authorization": f"token {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.read()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    port = _free_port()
    root = tmp_path_factory.mktemp("lab")
    jupyter = os.path.join(os.path.dirname(sys.executable), "jupyter")
    argv = [jupyter, "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}",
            f"--notebook-dir={root}", "--allow-root"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(root / "lab.log", "w"))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if _get(f"{base}/api/status")[0] == 200:
                break
        except (urllib.error.URLError, ConnectionError):
            pass
        assert proc.poll() is None, (root / "lab.log").read_text()
        assert time.monotonic() < deadline, "JupyterLab did not start"
        time.sleep(0.2)
    yield base
    proc.terminate()
    proc.wait(10)


def test_kernelspec_and_logos_are_served(lab):
    status, body = _get(f"{lab}/api/kernelspecs")
    spec = json.loads(body)["kernelspecs"]["rustmaker"]
    assert spec["spec"]["display_name"] == "Rust (rustmaker)"
    status, png = _get(f"{lab}/kernelspecs/rustmaker/logo-64x64.png")
    assert status == 200 and png[:4] == b"\x89PNG"
    with pytest.raises(urllib.error.HTTPError) as denied:
        _get(f"{lab}/api/kernelspecs", token=None)
    assert denied.value.code == 403


async def _execute(ws, code: str) -> tuple[dict, list[dict]]:
    msg_id = uuid.uuid4().hex
    await ws.write_message(json.dumps({
        "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex, "msg_type": "execute_request",
                   "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell",
        "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
    }))
    reply, outputs, idle = None, [], False
    while reply is None or not idle:
        msg = json.loads(await asyncio.wait_for(ws.read_message(), 180))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["channel"] == "shell":
            reply = msg["content"]
        elif msg["msg_type"] == "status":
            idle = msg["content"]["execution_state"] == "idle"
        else:
            outputs.append(msg)
    return reply, outputs


def test_cells_run_through_jupyterlab(lab):
    req = urllib.request.Request(f"{lab}/api/kernels", data=json.dumps({"name": "rustmaker"}).encode(), method="POST",
                                 headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        kernel_id = json.loads(r.read())["id"]

    async def session():
        ws = await websocket_connect(f"{lab.replace('http', 'ws')}/api/kernels/{kernel_id}/channels?token={TOKEN}")
        try:
            reply, outputs = await _execute(ws, "%lsmagic")
            assert reply["status"] == "ok"
            assert any(o["msg_type"] == "display_data" for o in outputs)
            reply, outputs = await _execute(ws, "let xs = vec![1, 2, 3];\nxs.iter().sum::<i32>()")
            assert reply["status"] == "ok"
            results = [o["content"]["data"]["text/plain"] for o in outputs if o["msg_type"] == "execute_result"]
            assert results == ["6"]
        finally:
            ws.close()

    asyncio.run(session())
