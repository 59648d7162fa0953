"""Autopilot benchmark: rustmaker's `%autopilot` against AutoGluon (`autogluon.tabular`,
presets="medium_quality") and FLAML (`flaml.AutoML`), side by side in one run, with the same
time limit per table and the same train/holdout split.

    python3 -m venv .venv-bench && .venv-bench/bin/pip install -r tests/bench/requirements-autopilot.txt
    .venv-bench/bin/python tests/bench/bench_autopilot.py [--time SECONDS] [--only TABLE,...]

Needs the release binary (`cargo build --release -p rustmaker-kernel`) and the benchmark's own
environment (AutoGluon and FLAML are peers here, never test dependencies). The tables ship
inside scikit-learn (breast-cancer, wine, digits, diabetes; nothing is downloaded) or are
generated: a noisy make_classification, Friedman #1 regression, and a table with missing
values, categorical and text columns. Each is split 80/20 (stratified for classes, seed 0);
every system sees the training rows only and is scored on the holdout: accuracy for classes,
RMSE for values. rustmaker runs `rustmaker autopilot … --max-runtime T` (objective Accuracy or
MSE) and scores the holdout with `rustmaker predict` on the best candidate; its wall time is
the whole job (analysis, notebooks, tuning, scoring). AutoGluon gets `time_limit=T`, FLAML
`time_budget=T`. The table prints each system's holdout metric and wall time, rustmaker's
difference to AutoGluon (percentage points of accuracy, or relative RMSE) and the time ratios.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

try:
    from autogluon.tabular import TabularPredictor
    from flaml import AutoML
except ImportError:  # the benchmark's own environment has them; CI's does not
    sys.exit("autogluon or flaml is missing: python3 -m venv .venv-bench && "
             ".venv-bench/bin/pip install -r tests/bench/requirements-autopilot.txt")
from sklearn import datasets
from sklearn.metrics import accuracy_score, mean_squared_error
from sklearn.model_selection import train_test_split

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("RUSTMAKER_BIN", ROOT / "target" / "release" / "rustmaker"))


def sklearn_table(loader) -> pd.DataFrame:
    bunch = loader()
    names = [str(n).replace(" ", "_").replace("(", "").replace(")", "").replace("/", "_")
             for n in (bunch.feature_names if hasattr(bunch, "feature_names") else range(bunch.data.shape[1]))]
    frame = pd.DataFrame(bunch.data, columns=[f"f_{n}" for n in names])
    if loader is datasets.load_diabetes:
        frame["y"] = bunch.target
    else:
        frame["y"] = [f"c{int(t)}" for t in bunch.target]
    return frame


def noisy_classification() -> pd.DataFrame:
    x, y = datasets.make_classification(n_samples=3000, n_features=20, n_informative=8, n_redundant=4,
                                        flip_y=0.1, class_sep=0.8, random_state=0)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(20)])
    frame["y"] = [f"c{t}" for t in y]
    return frame


def friedman() -> pd.DataFrame:
    x, y = datasets.make_friedman1(n_samples=3000, n_features=10, noise=1.0, random_state=0)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(10)])
    frame["y"] = y
    return frame


def mixed() -> pd.DataFrame:
    """Numbers with gaps, categories, a free-text note, and a binary label that depends on all."""
    rng = np.random.default_rng(0)
    n = 3000
    tenure = rng.integers(0, 72, n).astype(float)
    monthly = rng.normal(60, 20, n)
    plan = rng.choice(["basic", "plus", "pro"], n)
    region = rng.choice(["north", "south", "east", "west", "central"], n)
    calls = rng.poisson(1.5, n)
    words = ["slow", "great", "billing", "cancel", "thanks", "issue", "fast", "price"]
    note = [" ".join(rng.choice(words, 4)) for _ in range(n)]
    score = (1.0 - 0.05 * tenure + 0.6 * calls - 0.5 * (plan == "pro") + 0.4 * (region == "south")
             + np.array([1.2 * ("cancel" in t) - 0.8 * ("thanks" in t) for t in note]))
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-score)), "yes", "no")
    monthly[rng.random(n) < 0.1] = np.nan
    tenure[rng.random(n) < 0.05] = np.nan
    region = np.where(rng.random(n) < 0.05, None, region)
    return pd.DataFrame({"tenure": tenure, "monthly": monthly, "plan": plan, "region": region,
                         "calls": calls, "note": note, "y": y})


TABLES = {
    "breast-cancer": lambda: sklearn_table(datasets.load_breast_cancer),
    "wine": lambda: sklearn_table(datasets.load_wine),
    "digits": lambda: sklearn_table(datasets.load_digits),
    "diabetes": lambda: sklearn_table(datasets.load_diabetes),
    "noisy-classification": noisy_classification,
    "friedman": friedman,
    "mixed": mixed,
}


def holdout(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
    classify = frame["y"].dtype == object
    train, test = train_test_split(frame, test_size=0.2, random_state=0,
                                   stratify=frame["y"] if classify else None)
    return train.reset_index(drop=True), test.reset_index(drop=True), classify


def metric(classify: bool, truth, predicted) -> float:
    if classify:
        return accuracy_score(truth, predicted)
    return float(np.sqrt(mean_squared_error(truth, predicted)))


def run_rustmaker(name: str, train: pd.DataFrame, test: pd.DataFrame, classify: bool, limit: int,
                  work: pathlib.Path) -> tuple[float, float]:
    env = dict(os.environ, RUSTMAKER_DATA_DIR=str(work / "data"), RUSTMAKER_HOME=str(work))
    train_csv, test_csv = work / f"{name}-train.csv", work / f"{name}-test.csv"
    train.to_csv(train_csv, index=False)
    test.drop(columns=["y"]).to_csv(test_csv, index=False)
    job = name.replace("_", "-")[:24]
    started = time.perf_counter()
    proc = subprocess.run([str(BIN), "autopilot", job, "--data", str(train_csv), "--target", "y",
                           "--objective", "Accuracy" if classify else "MSE", "--max-runtime", str(limit),
                           "--max-candidates", "250", "--seed", "0", "--output", str(work / "out")],
                          env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"rustmaker autopilot {job} failed: {proc.stderr[-2000:]}")
    scored = work / f"{name}-scored.csv"
    model = work / "out" / job / "best-candidate" / "model.tar.gz"
    proc = subprocess.run([str(BIN), "predict", "--model", str(model), "--data", str(test_csv),
                           "--output", str(scored)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"rustmaker predict failed: {proc.stderr[-2000:]}")
    answers = pd.read_csv(scored)
    predicted = answers["predicted_label"].astype(str) if classify else answers["score"]
    return metric(classify, test["y"].astype(str) if classify else test["y"], predicted), took


def run_autogluon(train: pd.DataFrame, test: pd.DataFrame, classify: bool, limit: int,
                  work: pathlib.Path) -> tuple[float, float]:
    started = time.perf_counter()
    predictor = TabularPredictor(label="y", path=str(work / "autogluon"), verbosity=0,
                                 eval_metric="accuracy" if classify else "root_mean_squared_error")
    predictor.fit(train, time_limit=limit, presets="medium_quality")
    took = time.perf_counter() - started
    predicted = predictor.predict(test.drop(columns=["y"]))
    shutil.rmtree(work / "autogluon", ignore_errors=True)
    return metric(classify, test["y"], predicted), took


def run_flaml(train: pd.DataFrame, test: pd.DataFrame, classify: bool, limit: int) -> tuple[float, float]:
    x, y = train.drop(columns=["y"]), train["y"]
    for frame in (x,):
        for c in frame.columns:
            if frame[c].dtype == object:
                frame[c] = frame[c].astype("category")
    x_test = test.drop(columns=["y"]).copy()
    for c in x_test.columns:
        if x_test[c].dtype == object:
            x_test[c] = pd.Categorical(x_test[c], categories=x[c].cat.categories)
    started = time.perf_counter()
    automl = AutoML()
    automl.fit(x, y, task="classification" if classify else "regression", time_budget=limit,
               metric="accuracy" if classify else "rmse", seed=0, verbose=0)
    took = time.perf_counter() - started
    return metric(classify, test["y"], automl.predict(x_test)), took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time", type=int, default=60, help="the time limit per table and system (s)")
    parser.add_argument("--only", help="comma-separated table names")
    args = parser.parse_args()
    if not BIN.exists():
        sys.exit(f"{BIN} is missing: cargo build --release -p rustmaker-kernel")
    chosen = [t for t in TABLES if not args.only or t in args.only.split(",")]
    print(f"time limit {args.time} s per table and system; holdout 20 %, seed 0\n")
    header = (f"{'table':<22}{'metric':<10}{'rustmaker':>10}{'AutoGluon':>11}{'FLAML':>9}"
              f"{'Δ vs AG':>10}{'rm s':>8}{'AG s':>8}{'FLAML s':>9}{'AG/rm':>7}")
    print(header)
    print("-" * len(header))
    gaps_flaml = []
    for name in chosen:
        train, test, classify = holdout(TABLES[name]())
        with tempfile.TemporaryDirectory() as tmp:
            work = pathlib.Path(tmp)
            rm, rm_s = run_rustmaker(name, train, test, classify, args.time, work)
            ag, ag_s = run_autogluon(train, test, classify, args.time, work)
            fl, fl_s = run_flaml(train, test, classify, args.time)
        if classify:
            delta = f"{(rm - ag) * 100:+.1f} pp"
            gaps_flaml.append(rm - fl)
        else:
            delta = f"{(rm - ag) / ag * 100:+.1f} %"
            gaps_flaml.append((fl - rm) / fl)
        print(f"{name:<22}{'accuracy' if classify else 'RMSE':<10}{rm:>10.4f}{ag:>11.4f}{fl:>9.4f}"
              f"{delta:>10}{rm_s:>8.1f}{ag_s:>8.1f}{fl_s:>9.1f}{ag_s / rm_s:>7.2f}", flush=True)
    print(f"\nmedian advantage over FLAML (accuracy points, or relative RMSE): "
          f"{statistics.median(gaps_flaml) * 100:+.2f}")


if __name__ == "__main__":
    main()
