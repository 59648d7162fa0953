"""`rustmaker serve` started for a test: on a free loopback port, with the test's access key,
and boto3's `sagemaker` (`sm`) and `sagemaker-runtime` (`rt`) clients pointed at it."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time

import boto3

from conftest import BIN

KEY, SECRET = "AKIDRUSTMAKERTEST", "rustmaker-test-secret"


def clients(url: str, secret: str = SECRET, service: str = "sagemaker"):
    return boto3.client(service, endpoint_url=url, region_name="us-east-1", aws_access_key_id=KEY,
                        aws_secret_access_key=secret)


class Service:
    def __init__(self, state: pathlib.Path, *extra: str, env: dict | None = None):
        self.state, self.extra, self.env = state, extra, env or {}
        self.start()

    def start(self):
        ready = self.state.parent / f"{self.state.name}-ready.json"
        ready.unlink(missing_ok=True)
        env = dict(os.environ, RUSTMAKER_API_KEYS=f"{KEY}:{SECRET}", **self.env)
        self.log = open(self.state.parent / f"{self.state.name}.log", "a")
        self.proc = subprocess.Popen([BIN, "serve", "--port", "0", "--state-dir", str(self.state), "--ready-file",
                                      str(ready), "--python", sys.executable, *self.extra],
                                     env=env, stdout=self.log, stderr=self.log, start_new_session=True)
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert time.monotonic() < deadline and self.proc.poll() is None, "the service did not start"
            time.sleep(0.05)
        self.url = json.loads(ready.read_text())["url"]
        self.sm = clients(self.url)
        self.rt = clients(self.url, service="sagemaker-runtime")

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)
