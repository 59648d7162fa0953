"""Debugger benchmark: what the hook costs a training job, and the built-in network against
scikit-learn's, side by side in one run.

    cargo build --release -p rustmaker-kernel
    .venv/bin/python tests/bench/bench_debugger.py [--rows N] [--repeats R]

For gradient boosting (100 rounds, depth 6) and the MLP (one hidden layer of 64 ReLUs, Adam,
batches of 200, 20 epochs) on make_classification tables, each job is trained without a hook,
with the hook saving every 10th step, and saving every step, and the fit times compared (the
"fit took" of the job's log: the fit alone, with the hook's writing and the rules' reading).
The hook saves what the learner offers that its rules would read: boosting its losses,
metrics and feature importances; the network its loss, weights, biases, gradients and ReLU
inputs and outputs (the last batch's). A LossNotDecreasing rule runs in every hooked job.
The MLP then runs against scikit-learn's MLPClassifier with the same architecture, solver,
batch size, epochs and split (features standardised on both sides): validation accuracy and
fit time. Times are the median of --repeats runs; compare the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import statistics
import subprocess
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("RUSTMAKER_BIN", ROOT / "target" / "release" / "rustmaker"))


def fit_seconds(log: str) -> float:
    return float(re.search(r"fit took ([0-9.]+) s", log).group(1))


def run_job(home: pathlib.Path, name: str, args: list[str]) -> tuple[float, str]:
    env = dict(os.environ, RUSTMAKER_DATA_DIR=str(home), RUSTMAKER_EXPERIMENT="bench", RUST_BACKTRACE="0")
    out = subprocess.run([str(BIN), "train", name, "--replace", *args], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{name} failed:\n{out.stdout}\n{out.stderr}")
    log = (home / "training-jobs" / name / "logs" / "train.log").read_text()
    return fit_seconds(log), log


def accuracy_of(log: str) -> float:
    return float(re.search(r"final: .*validation:accuracy=([0-9.]+)", log).group(1))


def median_fit(home, name, args, repeats) -> tuple[float, str]:
    runs = [run_job(home, name, args) for _ in range(repeats)]
    return statistics.median(r[0] for r in runs), runs[-1][1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--mlp-rows", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    a = parser.parse_args()
    if not BIN.exists():
        raise SystemExit(f"{BIN} is missing: cargo build --release -p rustmaker-kernel")
    home = pathlib.Path(tempfile.mkdtemp(prefix="bench-debugger-"))
    rows = []

    def table(n, seed):
        x, y = make_classification(n_samples=n, n_features=20, n_informative=12, random_state=seed)
        frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(20)])
        frame["target"] = y
        train, valid = train_test_split(frame, test_size=0.2, random_state=0)
        paths = home / f"train-{n}.csv", home / f"valid-{n}.csv"
        train.to_csv(paths[0], index=False)
        valid.to_csv(paths[1], index=False)
        return train, valid, paths

    _, _, (gb_train, gb_valid) = table(a.rows, 1)
    boosting = ["--algorithm", "gradient-boosting", "--data", str(gb_train), "--validation", str(gb_valid),
                "--target", "target", "--hp", "num_round=100", "--hp", "max_depth=6"]
    gb_hook = ["--collections", "losses,metrics,feature_importance", "--rule", "LossNotDecreasing"]
    mlp_tr, mlp_va, (mlp_train, mlp_valid) = table(a.mlp_rows, 2)
    network = ["--algorithm", "mlp", "--data", str(mlp_train), "--validation", str(mlp_valid), "--target", "target",
               "--hp", "hidden_layer_sizes=64", "--hp", "max_iter=20", "--hp", "n_iter_no_change=1000",
               "--hp", "batch_size=200"]
    mlp_hook = ["--collections", "losses,weights,biases,gradients,relu_input,relu_output", "--rule", "LossNotDecreasing"]
    for label, base, hook in (("gradient-boosting", boosting, gb_hook), ("mlp", network, mlp_hook)):
        plain, _ = median_fit(home, f"{label}-plain", base, a.repeats)
        for interval in (10, 1):
            hooked, log = median_fit(home, f"{label}-every-{interval}", [*base, *hook, "--save-interval", str(interval)],
                                     a.repeats)
            size = sum(f.stat().st_size for f in (home / "training-jobs" / f"{label}-every-{interval}" / "debug-output").rglob("*")
                       if f.is_file())
            rows.append((label, interval, plain, hooked, size))

    print(f"\nHook overhead ({a.rows:,} rows × 20 for boosting, {a.mlp_rows:,} for the MLP; median of {a.repeats})\n")
    print("| algorithm | save_interval | fit without hook | fit with hook | overhead | saved |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, interval, plain, hooked, size in rows:
        print(f"| {label} | {interval} | {plain:.2f} s | {hooked:.2f} s | {100 * (hooked / plain - 1):+.1f} % | "
              f"{size / 1e6:.1f} MB |")

    ours = [run_job(home, "mlp-against", network) for _ in range(a.repeats)]
    ours_fit = statistics.median(r[0] for r in ours)
    ours_acc = accuracy_of(ours[-1][1])
    x_tr, x_va = mlp_tr.drop(columns="target"), mlp_va.drop(columns="target")
    scaler = StandardScaler().fit(x_tr)
    xs_tr, xs_va = scaler.transform(x_tr), scaler.transform(x_va)
    times, peer_acc = [], 0.0
    for _ in range(a.repeats):
        peer = MLPClassifier(hidden_layer_sizes=(64,), batch_size=200, max_iter=20, n_iter_no_change=1000,
                             random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            started = time.perf_counter()
            peer.fit(xs_tr, mlp_tr["target"])
            times.append(time.perf_counter() - started)
        peer_acc = peer.score(xs_va, mlp_va["target"])
    peer_fit = statistics.median(times)
    print(f"\nMLP against scikit-learn ({a.mlp_rows:,} rows × 20, 64 ReLUs, Adam, batches of 200, 20 epochs)\n")
    print("| | validation accuracy | fit |")
    print("| --- | ---: | ---: |")
    print(f"| scikit-learn MLPClassifier | {peer_acc:.4f} | {peer_fit:.2f} s |")
    print(f"| rustmaker mlp | {ours_acc:.4f} | {ours_fit:.2f} s ({peer_fit / ours_fit:.2f}x scikit-learn's speed) |")


if __name__ == "__main__":
    main()
