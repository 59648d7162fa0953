"""The `rustmaker` command line: kernelspec installation and bad connection files."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

from conftest import BIN

JUPYTER = os.path.join(os.path.dirname(sys.executable), "jupyter")


def test_install_is_listed_by_jupyter(tmp_path):
    out = subprocess.run([BIN, "install", "--prefix", str(tmp_path), "--name", "rm-test",
                          "--interrupt-mode", "signal"], check=True, capture_output=True, text=True)
    assert "rm-test" in out.stdout
    env = dict(os.environ, JUPYTER_PATH=str(tmp_path / "share" / "jupyter"))
    listed = json.loads(subprocess.run([JUPYTER, "kernelspec", "list", "--json"], env=env, check=True,
                                       capture_output=True, text=True).stdout)["kernelspecs"]
    spec = listed["rm-test"]["spec"]
    assert spec["display_name"] == "Rust (rustmaker)"
    assert spec["language"] == "rust"
    assert spec["interrupt_mode"] == "signal"
    assert spec["argv"][1:] == ["kernel", "--connection-file", "{connection_file}"]
    assert os.path.samefile(spec["argv"][0], BIN)
    files = set(os.listdir(listed["rm-test"]["resource_dir"]))
    assert {"kernel.json", "logo-32x32.png", "logo-64x64.png", "logo-svg.svg"} <= files


def test_user_install_honours_jupyter_data_dir(tmp_path):
    env = dict(os.environ, JUPYTER_DATA_DIR=str(tmp_path))
    subprocess.run([BIN, "install", "--user"], env=env, check=True, capture_output=True)
    assert (tmp_path / "kernels" / "rustmaker" / "kernel.json").exists()


def test_bad_install_options_are_explained(tmp_path):
    out = subprocess.run([BIN, "install", "--prefix", str(tmp_path), "--interrupt-mode", "never"],
                         capture_output=True, text=True)
    assert out.returncode != 0
    assert "interrupt mode must be `message` or `signal`" in out.stderr
    out = subprocess.run([BIN, "install", "--user", "--prefix", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode != 0 and "cannot be used with" in out.stderr


def test_bad_connection_files_are_explained(tmp_path):
    missing = tmp_path / "missing.json"
    out = subprocess.run([BIN, "kernel", "-f", str(missing)], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert f"cannot read the connection file {missing}" in out.stderr
    broken = tmp_path / "broken.json"
    broken.write_text('{"ip": "127.0.0.1"}')
    out = subprocess.run([BIN, "kernel", "-f", str(broken)], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "is not a Jupyter connection file" in out.stderr
    bad_scheme = tmp_path / "scheme.json"
    bad_scheme.write_text(json.dumps({"ip": "127.0.0.1", "transport": "tcp", "shell_port": 0, "iopub_port": 0,
                                      "stdin_port": 0, "control_port": 0, "hb_port": 0, "key": "k",
                                      "signature_scheme": "hmac-md5"}))
    out = subprocess.run([BIN, "kernel", "-f", str(bad_scheme)], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "unsupported signature_scheme `hmac-md5`" in out.stderr


def test_the_build_does_not_depend_on_the_ci_variable():
    # scripts/setup (so scripts/lab) and scripts/test build through scripts/build; a build made
    # with CI set (as CI runs) must be the build a user's shell gets, and the reverse.
    root = pathlib.Path(__file__).resolve().parent.parent
    for ci in ({"CI": "true"}, {}):
        env = {k: v for k, v in os.environ.items() if k != "CI"} | ci
        proc = subprocess.run([str(root / "scripts" / "build")], capture_output=True, text=True, env=env,
                              timeout=1800)
        assert proc.returncode == 0, proc.stderr
        assert "Compiling" not in proc.stderr, (ci, proc.stderr[-3000:])
