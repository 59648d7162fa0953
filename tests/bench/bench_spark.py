#!/usr/bin/env python3
"""Benchmark: rustmaker's Spark magics against sparkmagic's PySpark kernel, side by side, in
one run, on the same local Livy-compatible server (so the Spark work is the same for both).

Measures, for each kernel, send -> execute_reply and idle:
  * `1+1` in the Spark session (`%%spark` here, a plain cell in sparkmagic's kernel), median of --n;
  * `%%sql -q -o df -n -1` of 100,000 and 1,000,000 rows (4 columns) into a frame (polars here,
    pandas in sparkmagic), median of --reps.

Run it on a quiet machine with a release build and compare ratios:
    cargo build --release -p rustmaker-kernel && .venv/bin/python tests/bench/bench_spark.py
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from bench_kernels import Kernel, fmt  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]

QUERY = "SELECT id, id * 1.5 AS x, CONCAT('row-', id) AS s, id % 2 = 0 AS even FROM range({n})"


def checked(kernel: Kernel, code: str) -> float:
    """Runs `code`; fails loudly unless it succeeded (sparkmagic replies `ok` to a failed
    statement and prints "An error was encountered" on stderr)."""
    took = kernel.execute(code)
    if kernel.last_reply["status"] != "ok" or "error was encountered" in kernel.last_streams["stderr"]:
        raise RuntimeError(f"{code!r} failed: {kernel.last_reply} {kernel.last_streams}")
    return took


def measure(kernel: Kernel, trivial: str, sql_prefix: str, count_cell: str, args) -> dict:
    kernel.start()
    time.sleep(0.3)
    checked(kernel, trivial)  # starts the Livy session
    for _ in range(3):
        checked(kernel, trivial)
    result = {"trivial": statistics.median(checked(kernel, trivial) for _ in range(args.n))}
    for rows in (100_000, 1_000_000):
        cell = f"{sql_prefix}\n{QUERY.format(n=rows)}"
        checked(kernel, cell)  # warm-up: Spark's code generation for this query
        result[rows] = statistics.median(checked(kernel, cell) for _ in range(args.reps))
        checked(kernel, count_cell)  # the frame really holds every row
        if str(rows) not in kernel.last_streams["stdout"].replace(",", ""):
            raise RuntimeError(f"expected {rows} rows, got {kernel.last_streams['stdout']!r}")
    kernel.stop()
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=30, help="trivial statements per median")
    p.add_argument("--reps", type=int, default=3, help="transfers per median")
    p.add_argument("--rustmaker", default=None)
    args = p.parse_args()
    binary = args.rustmaker
    if binary is None:
        release = ROOT / "target" / "release" / "rustmaker"
        binary = str(release if release.exists() else ROOT / "target" / "debug" / "rustmaker")
    os.environ["RUSTMAKER_BIN"] = binary
    from conftest import LivyServer

    home = pathlib.Path(tempfile.mkdtemp(prefix="bench-spark-"))
    server = LivyServer(home)
    # sparkmagic reads its endpoint from its config file; rustmaker from its environment.
    (home / "config.json").write_text(json.dumps({
        "kernel_python_credentials": {"username": server.user, "password": server.password,
                                      "url": server.url, "auth": "Basic_Access"},
        "livy_session_startup_timeout_seconds": 120,
    }))
    os.environ.update(server.kernel_env())
    print(f"rustmaker binary: {binary}; Livy server: {server.url}")
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    try:
        ours = measure(Kernel([binary, "kernel", "--connection-file", "{connection_file}"]),
                       "%%spark\n1+1", "%%sql -q -o df -n -1", "%frames df", args)
        theirs = measure(Kernel([sys.executable, "-m", "sparkmagic.kernels.pysparkkernel.pysparkkernel",
                                 "-f", "{connection_file}"]),
                         "1+1", "%%sql -q -o df -n -1", "%%local\nprint(len(df))", args)
    finally:
        server.stop()
    print()
    print("| measure | rustmaker | sparkmagic PySpark kernel | sparkmagic / rustmaker |")
    print("| --- | ---: | ---: | ---: |")
    for label, key in (("`1+1` in the Spark session (median)", "trivial"),
                       ("`%%sql -o` 100,000 rows into a frame", 100_000),
                       ("`%%sql -o` 1,000,000 rows into a frame", 1_000_000)):
        a, b = ours[key], theirs[key]
        print(f"| {label} | {fmt(a)} | {fmt(b)} | {b / a:.2f}x |")
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    sys.exit(main())
