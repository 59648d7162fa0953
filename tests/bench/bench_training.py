"""Training benchmark: rustmaker's built-in algorithms against scikit-learn, and boosting also
against LightGBM, side by side in one run, on the same train/validation splits with comparable
hyperparameters.

    python3 -m venv .venv-bench && .venv-bench/bin/pip install -r tests/bench/requirements-training.txt
    .venv-bench/bin/python tests/bench/bench_training.py [--skip-large] [--only ALGO,...] [--repeat N]

Needs the release binary (`cargo build --release -p rustmaker-kernel`) and the benchmark's own
environment (LightGBM is a peer here, never a test dependency). For each algorithm and
data set it prints the validation metric of both (accuracy for classifiers, R² for regressors,
the mean squared distance to the closest centre for k-means: lower is better) and both fit
times. rustmaker's time is the fit alone as its job log records it ("fit took"), without
reading the CSV or preparing features; scikit-learn's is `fit` of the same pipeline (with a
StandardScaler where rustmaker standardises: linear models, SVM, k-means). The classic tables
are scikit-learn's own; the large ones are make_classification / make_regression with
1,000,000 rows × 20 features (800,000 train, 200,000 validation). SVMs are left out of the
large run on both sides: kernel SVMs are quadratic in the rows. Boosting runs twice there:
depth-wise (XGBoost's default: depth 6, up to 64 leaves) and leaf-wise (31 leaves, the
default of LightGBM and HistGradientBoosting); each boosting row is followed by a LightGBM row
with the same rounds, leaves, depth, learning rate, L2 penalty and least child hessian.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

try:
    import lightgbm
except ImportError:  # the benchmark's own environment has it; CI's does not
    sys.exit("lightgbm is missing: python3 -m venv .venv-bench && "
             ".venv-bench/bin/pip install -r tests/bench/requirements-training.txt")
from sklearn.cluster import KMeans
from sklearn.ensemble import (HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                              RandomForestClassifier, RandomForestRegressor)
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

ROOT = pathlib.Path(__file__).resolve().parents[2]
ONLY: set[str] | None = None
REPEAT = 1
BIN = pathlib.Path(os.environ.get("RUSTMAKER_BIN", ROOT / "target" / "release" / "rustmaker"))
DATA = ROOT / "tests" / "data" / "ml"


def scaled(model):
    return make_pipeline(StandardScaler(), model)


# (rustmaker algorithm, its hyperparameters, the scikit-learn model), per problem.
def classifiers(large: bool):
    depth = 12 if large else None
    ours_depth = "12" if large else "30"
    trees = 20 if large else 100
    out = [
        ("logistic-regression", {"alpha": "1", "max_iter": "100"},
         lambda: scaled(LogisticRegression(C=1.0, max_iter=100))),
        ("naive-bayes", {}, lambda: GaussianNB()),
        ("decision-tree", {"max_depth": ours_depth},
         lambda: DecisionTreeClassifier(max_depth=depth, random_state=0)),
        ("random-forest", {"num_trees": str(trees), "max_depth": ours_depth},
         lambda: RandomForestClassifier(n_estimators=trees, max_depth=depth, max_features="sqrt",
                                        n_jobs=2, random_state=0)),
    ]
    out += boosting("classification", large)
    if not large:
        out.append(("svm", {"kernel": "rbf", "C": "1"}, lambda: scaled(SVC(C=1.0, kernel="rbf", gamma="scale"))))
    return out


def regressors(large: bool):
    out = [("linear-regression", {}, lambda: LinearRegression())]
    if large:
        return out + boosting("regression", large)
    out += [
        ("decision-tree", {"max_depth": "30"}, lambda: DecisionTreeRegressor(random_state=0)),
        ("random-forest", {"num_trees": "100", "max_features": "all"},
         lambda: RandomForestRegressor(n_estimators=100, max_features=1.0, n_jobs=2, random_state=0)),
    ]
    out += boosting("regression", large)
    out += [
        ("svm", {"kernel": "rbf", "C": "1", "epsilon": "0.1"}, lambda: scaled(SVR(C=1.0, epsilon=0.1))),
    ]
    return out


def boosting(problem: str, large: bool):
    """Boosting's rows: (name, our hyperparameters, scikit-learn's model, LightGBM's model)."""
    hgb = HistGradientBoostingClassifier if problem == "classification" else HistGradientBoostingRegressor
    lgb = lightgbm.LGBMClassifier if problem == "classification" else lightgbm.LGBMRegressor
    common = {"num_round": "100", "eta": "0.1", "lambda": "1"}
    # min_child_weight 1 and min_data_in_leaf 1 are rustmaker's defaults; the peers get the same.
    peer = dict(learning_rate=0.1, min_child_weight=1.0, reg_lambda=1.0, min_child_samples=1, max_bin=255,
                n_jobs=2, verbose=-1, random_state=0)
    configs = [("gradient-boosting", {**common, "max_depth": "6"}, dict(max_depth=6, max_leaf_nodes=None),
                dict(max_depth=6, num_leaves=64))]
    if large:
        configs.append(("gradient-boosting (leaf-wise)",
                        {**common, "grow_policy": "lossguide", "max_leaves": "31", "max_depth": "0"},
                        dict(max_depth=None, max_leaf_nodes=31), dict(max_depth=-1, num_leaves=31)))
    return [(name, hp,
             lambda shape=shape: hgb(max_iter=100, learning_rate=0.1, l2_regularization=1.0, min_samples_leaf=1,
                                     early_stopping=False, random_state=0, **shape),
             lambda lshape=lshape: lgb(n_estimators=100, **peer, **lshape))
            for name, hp, shape, lshape in configs]


class Ours:
    def __init__(self, work: pathlib.Path):
        self.work = work
        self.env = dict(os.environ, RUSTMAKER_DATA_DIR=str(work / "data"))
        self.n = 0

    def train(self, algorithm, hp, train, valid, target, metric):
        self.n += 1
        name = f"bench-{self.n}"
        args = [str(BIN), "train", name, "--algorithm", algorithm, "--data", str(train),
                "--validation", str(valid), "--target", target, "--experiment", "bench"]
        for k, v in hp.items():
            args += ["--hp", f"{k}={v}"]
        started = time.perf_counter()
        proc = subprocess.run(args, env=self.env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"{algorithm}: {proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        log = (self.work / "data" / "training-jobs" / name / "logs" / "train.log").read_text()
        fit = float(re.search(r"fit took ([0-9.]+) s", log).group(1))
        db = sqlite3.connect(self.work / "data" / "experiments.db")
        value = db.execute("SELECT value FROM metrics WHERE component = ? AND name = ? "
                           "ORDER BY step DESC, rowid DESC LIMIT 1", (name, metric)).fetchone()[0]
        db.close()
        return value, fit, wall


def msd(centres, x):
    d = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    return float(d.min(axis=1).mean())


def split_table(name, work):
    df = pd.read_csv(DATA / f"{name}.csv")
    train, valid = train_test_split(df, test_size=0.25, random_state=0)
    paths = work / f"{name}-train.csv", work / f"{name}-valid.csv"
    train.to_csv(paths[0], index=False)
    valid.to_csv(paths[1], index=False)
    return train, valid, paths


def xy(df, target="target"):
    y = df[target].to_numpy()
    if y.dtype == object:
        y = pd.Categorical(y, categories=sorted(set(y))).codes
    return df.drop(columns=[target]).to_numpy(dtype=float), y


def row(rows, data, algorithm, metric, sk, sk_fit, ours, ours_fit, lower_better=False):
    diff = (ours - sk) * (1 if not lower_better else -1)
    rows.append((data, algorithm, metric, sk, ours, diff, sk_fit, ours_fit))
    print(f"{data:<22} {algorithm:<30} {metric:<9} {sk:>8.4f} {ours:>9.4f} {diff * 100:>+7.2f} "
          f"{sk_fit:>10.3f} {ours_fit:>9.3f} {sk_fit / max(ours_fit, 1e-6):>8.2f}x", flush=True)


def run_table(ours, rows, name, problem, work, large=False, paths=None, frames=None):
    if frames is None:
        train, valid, paths = split_table(name, work)
    else:
        train, valid = frames
    x_train, y_train = xy(train)
    x_valid, y_valid = xy(valid)
    models = classifiers(large) if problem == "classification" else regressors(large)
    metric = "accuracy" if problem == "classification" else "r2"
    def peer_fit(make):
        model = make()
        started = time.perf_counter()
        model.fit(x_train, y_train)
        took = time.perf_counter() - started
        predicted = model.predict(x_valid)
        quality = accuracy_score(y_valid, predicted) if metric == "accuracy" else r2_score(y_valid, predicted)
        return quality, took

    for algorithm, hp, make, *lgb in models:
        builtin = algorithm.split(" ")[0]
        if ONLY and builtin not in ONLY:
            continue
        # Each repeat fits the peer, rustmaker and LightGBM in turn, so that a slow spell of a
        # shared machine falls on all of them; the fit times shown are the medians.
        sk_fits, fits, lgb_fits = [], [], []
        for _ in range(REPEAT):
            sk, sk_fit = peer_fit(make)
            value, fit, _ = ours.train(builtin, hp, paths[0], paths[1], "target", f"validation:{metric}")
            sk_fits.append(sk_fit)
            fits.append(fit)
            if lgb:
                peer, peer_fit_s = peer_fit(lgb[0])
                lgb_fits.append(peer_fit_s)
        fit = statistics.median(fits)
        row(rows, name, algorithm, metric, sk, statistics.median(sk_fits), value, fit)
        if lgb:
            row(rows, name, "  against LightGBM", metric, peer, statistics.median(lgb_fits), value, fit)
    if problem == "classification" and (not ONLY or "kmeans" in ONLY):
        k = 8 if large else len(set(y_train))
        scaler = StandardScaler().fit(x_train)
        model = KMeans(n_clusters=k, n_init=1, max_iter=300, tol=1e-4, random_state=0)
        started = time.perf_counter()
        model.fit(scaler.transform(x_train))
        sk_fit = time.perf_counter() - started
        sk = msd(model.cluster_centers_, scaler.transform(x_valid))
        value, fit, _ = ours.train("kmeans", {"k": str(k), "n_init": "1"}, paths[0], paths[1], "target",
                                   "validation:msd")
        row(rows, name, "kmeans", "msd", sk, sk_fit, value, fit, lower_better=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-large", action="store_true", help="only the classic tables")
    parser.add_argument("--only", help="comma-separated algorithms to run (default: all)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="fits of each algorithm and peer, interleaved; the median time is shown")
    args = parser.parse_args()
    global ONLY, REPEAT
    ONLY = set(args.only.split(",")) if args.only else None
    REPEAT = max(1, args.repeat)
    if not BIN.exists():
        sys.exit(f"{BIN} is missing: cargo build --release -p rustmaker-kernel")
    print(f"load average: {os.getloadavg()[0]:.2f}")
    print(f"{'data':<22} {'algorithm':<30} {'metric':<9} {'peer':>8} {'rustmaker':>9} {'Δ pp':>7} "
          f"{'peer fit s':>10} {'our fit s':>9} {'speed':>9}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        ours = Ours(work)
        for name in ("iris", "wine", "breast_cancer"):
            run_table(ours, rows, name, "classification", work)
        run_table(ours, rows, "diabetes", "regression", work)
        if not args.skip_large:
            from sklearn.datasets import make_classification, make_regression

            for problem, (x, y) in (
                ("classification", make_classification(n_samples=1_000_000, n_features=20, n_informative=10,
                                                       random_state=0)),
                ("regression", make_regression(n_samples=1_000_000, n_features=20, n_informative=10,
                                               noise=10.0, random_state=0)),
            ):
                df = pd.DataFrame(x, columns=[f"f{i}" for i in range(20)])
                df["target"] = y
                train, valid = df.iloc[:800_000], df.iloc[800_000:]
                paths = work / f"large-{problem}-train.parquet", work / f"large-{problem}-valid.parquet"
                train.to_parquet(paths[0], index=False)
                valid.to_parquet(paths[1], index=False)
                run_table(ours, rows, f"generated-1M-{problem[:5]}", problem, work, large=True, paths=paths,
                          frames=(train, valid))
    if not rows:
        return
    worst = min(r[5] for r in rows)
    faster = sum(1 for r in rows if r[7] <= r[6])
    print(f"\nworst quality difference: {worst * 100:+.2f} points; rustmaker fit at least as fast in "
          f"{faster} of {len(rows)} cases")


if __name__ == "__main__":
    main()
