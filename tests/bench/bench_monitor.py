"""Profiling benchmark: `rustmaker monitor baseline` against whylogs, side by side in one run.

A generated table of 1,000,000 rows × 20 columns (12 float, 4 integer, 4 categorical, with
nulls) is profiled by both. Printed per tool: wall time, peak memory (max RSS of the process
that profiles) and the worst KLL rank error over the float columns against exact quantiles
(99 probes each); then the ratios. rustmaker reads the CSV file itself (streaming); whylogs
profiles a pandas DataFrame already in memory, and its time excludes reading the file. A
second rustmaker run on a quarter of the rows shows whether memory grows with the rows.

    .venv/bin/python tests/bench/bench_monitor.py [--rows N]

Uses target/release/rustmaker when it exists (`cargo build --release`), else RUSTMAKER_BIN or
the debug build.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
RELEASE = ROOT / "target" / "release" / "rustmaker"
BIN = os.environ.get("RUSTMAKER_BIN") or str(RELEASE if RELEASE.exists() else ROOT / "target" / "debug" / "rustmaker")
FLOATS = [f"f{i}" for i in range(12)]

WHYLOGS = r"""
import json, resource, sys, time
import numpy as np
if not hasattr(np, "unicode_"):
    np.unicode_ = np.str_
import pandas as pd
import whylogs as why
df = pd.read_csv(sys.argv[1])
started = time.perf_counter()
view = why.log(pandas=df).view()
elapsed = time.perf_counter() - started
probes = json.loads(sys.argv[2])
ranks = {}
for name, ps in probes.items():
    kll = view.get_column(name).get_metric("distribution").kll.value
    ranks[name] = [kll.get_rank(p) for p in ps]
print(json.dumps({"seconds": elapsed, "ranks": ranks, "k": view.get_column("f0").get_metric("distribution").kll.value.get_k()}))
"""


def generate(path: pathlib.Path, rows: int, seed: int = 3):
    import pandas as pd

    rng = np.random.default_rng(seed)
    cols = {}
    for i, name in enumerate(FLOATS):
        kind = i % 3
        x = rng.normal(50, 10, rows) if kind == 0 else rng.gamma(2.0, 3.0, rows) if kind == 1 else rng.uniform(0, 1, rows)
        x[rng.random(rows) < 0.02] = np.nan
        cols[name] = x
    for i in range(4):
        cols[f"i{i}"] = pd.array(rng.integers(0, 1000 * (i + 1), rows), dtype="Int64")
        cols[f"i{i}"][rng.random(rows) < 0.01] = pd.NA
    for i in range(4):
        cats = np.array([f"cat{j}" for j in range(5 * (i + 1))], dtype=object)
        c = cats[rng.integers(0, len(cats), rows)]
        c[rng.random(rows) < 0.03] = None
        cols[f"s{i}"] = c
    df = pd.DataFrame(cols)
    df.to_csv(path, index=False)
    return df


# Forks and measures the command from a fresh, small interpreter: a child forked (or vforked)
# from this process would have this process's memory (the data set) counted in its peak.
MEASURE = r"""
import json, os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(json.dumps({"seconds": time.perf_counter() - started, "rss_kib": usage.ru_maxrss,
                  "code": os.waitstatus_to_exitcode(status)}), file=sys.stderr)
"""


def run_with_rusage(cmd: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MiB and stdout of one command."""
    proc = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    if report["code"] != 0:
        sys.exit(f"{' '.join(cmd[:3])} … failed: {proc.stderr[-2000:]}")
    return report["seconds"], report["rss_kib"] / 1024, proc.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-monitor-"))
    csv, small = tmp / "data.csv", tmp / "quarter.csv"
    print(f"generating {args.rows:,} rows × 20 columns …", flush=True)
    df = generate(csv, args.rows)
    df.iloc[: args.rows // 4].to_csv(small, index=False)

    exact = {n: np.sort(df[n].dropna().to_numpy()) for n in FLOATS}
    probes = {n: list(np.quantile(v, np.linspace(0.01, 0.99, 99))) for n, v in exact.items()}

    def worst(ranks: dict[str, list[float]]) -> float:
        out = 0.0
        for n, r in ranks.items():
            e = np.searchsorted(exact[n], probes[n], side="right") / len(exact[n])
            out = max(out, float(np.abs(np.array(r) - e).max()))
        return out

    t_ours, m_ours, _ = run_with_rusage([BIN, "monitor", "baseline", "--data", str(csv), "--header",
                                         "--output", str(tmp / "baseline")])
    stats = json.loads((tmp / "baseline" / "statistics.json").read_text())
    ours_ranks = {}
    for f in stats["features"]:
        if f["name"] in exact:
            data = f["numerical_statistics"]["distribution"]["kll"]["sketch"]["data"]
            items = np.concatenate([np.array(level, dtype=float) for level in data])
            weights = np.concatenate([np.full(len(level), 2.0 ** h) for h, level in enumerate(data)])
            order = np.argsort(items)
            items, cum = items[order], np.cumsum(weights[order])
            idx = np.searchsorted(items, probes[f["name"]], side="right") - 1
            ours_ranks[f["name"]] = list(np.where(idx >= 0, cum[np.maximum(idx, 0)], 0) / cum[-1])
    _, m_small, _ = run_with_rusage([BIN, "monitor", "baseline", "--data", str(small), "--header",
                                     "--output", str(tmp / "baseline-small")])

    t_why_total, m_why, out = run_with_rusage([sys.executable, "-c", WHYLOGS, str(csv), json.dumps(probes)])
    why = json.loads(out)

    e_ours, e_why = worst(ours_ranks), worst(why["ranks"])
    print()
    print(f"{'':34}{'rustmaker':>14}{'whylogs 1.6':>14}{'ratio':>10}")
    print(f"{'profile time (s)':34}{t_ours:>14.2f}{why['seconds']:>14.2f}{why['seconds'] / t_ours:>9.1f}x")
    print(f"{'peak memory (MiB)':34}{m_ours:>14.0f}{m_why:>14.0f}{m_why / m_ours:>9.1f}x")
    print(f"{'KLL k':34}{2048:>14}{why['k']:>14}")
    print(f"{'worst KLL rank error (12 columns)':34}{e_ours:>14.5f}{e_why:>14.5f}")
    print(f"{'peak memory, 1/4 of the rows':34}{m_small:>14.0f}")
    print()
    print("rustmaker's time includes reading and parsing the CSV; whylogs' excludes pandas.read_csv "
          f"(its process took {t_why_total:.1f} s in all). Binary: {BIN}")


if __name__ == "__main__":
    main()
