"""Tuning benchmark: rustmaker's Bayesian and Random strategies against Optuna's TPESampler
(multivariate, Optuna 5.0's default) and RandomSampler, on the same objectives, budgets and
seeds, in one run.

    .venv/bin/python tests/bench/bench_tuning.py [--seeds 10] [--trials 50] [--only NAME]

rustmaker's optimiser is driven through `rustmaker tune-ask-tell` (the release binary, or
$RUSTMAKER_BIN): the very code `%tune` uses, minus the training jobs. Objectives:
- branin: 2 continuous ranges, minimum 0.397887;
- hartmann6: 6 continuous ranges in [0, 1], minimum -3.32237;
- logscaled: learning rate in [1e-6, 1] and regularisation in [1e-5, 10] (both logarithmic)
  and units in [8, 1024] (integer, logarithmic), minimum 0 at (1e-3, 0.1, 128);
- gbt-cancer: scikit-learn's HistGradientBoostingClassifier on the breast-cancer table (a fixed
  70/30 split), validation accuracy (maximised) over learning rate, iterations, leaves and L2.
For each optimiser it prints the median over seeds of the best value after 20 and after the
full budget, the median number of trials to reach a target (a seed that never reaches it
counts as never), and the optimiser's own time per suggestion (rustmaker's as it reports it,
Optuna's ask plus suggest calls).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("RUSTMAKER_BIN", str(ROOT / "target" / "release" / "rustmaker"))


def branin(p):
    x, y = p["x"], p["y"]
    a, b, c, r, s, t = 1, 5.1 / (4 * math.pi ** 2), 5 / math.pi, 6, 10, 1 / (8 * math.pi)
    return a * (y - b * x * x + c * x - r) ** 2 + s * (1 - t) * math.cos(x) + s


H_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
H_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                       [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(p):
    x = np.array([p[f"x{i}"] for i in range(6)])
    return float(-np.sum(H_ALPHA * np.exp(-np.sum(H_A * (x - H_P) ** 2, axis=1))))


def logscaled(p):
    return ((math.log10(p["lr"]) + 3) ** 2 + 0.5 * (math.log10(p["reg"]) + 1) ** 2
            + 0.3 * (math.log2(p["units"]) - 7) ** 2)


_cancer = None


def gbt_cancer(p):
    global _cancer
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import train_test_split
    if _cancer is None:
        x, y = load_breast_cancer(return_X_y=True)
        _cancer = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    xt, xv, yt, yv = _cancer
    model = HistGradientBoostingClassifier(learning_rate=p["learning_rate"], max_iter=int(p["max_iter"]),
                                           max_leaf_nodes=int(p["max_leaf_nodes"]),
                                           l2_regularization=p["l2_regularization"], early_stopping=False,
                                           random_state=0)
    model.fit(xt, yt)
    return float((model.predict(xv) == yv).mean())


def cont(name, lo, hi, log=False):
    return ("float", name, lo, hi, log)


def integer(name, lo, hi, log=False):
    return ("int", name, lo, hi, log)


# name: (function, ranges, minimise?, optimum or None, target)
OBJECTIVES = {
    "branin": (branin, [cont("x", -5, 10), cont("y", 0, 15)], True, 0.397887, 0.5),
    "hartmann6": (hartmann6, [cont(f"x{i}", 0, 1) for i in range(6)], True, -3.32237, -3.0),
    "logscaled": (logscaled, [cont("lr", 1e-6, 1, True), cont("reg", 1e-5, 10, True),
                              integer("units", 8, 1024, True)], True, 0.0, 0.1),
    "gbt-cancer": (gbt_cancer, [cont("learning_rate", 0.001, 1, True), integer("max_iter", 10, 300, True),
                                integer("max_leaf_nodes", 2, 64, True), cont("l2_regularization", 1e-6, 10, True)],
                   False, None, 0.977),
}


def sagemaker_ranges(ranges):
    out = {"ContinuousParameterRanges": [], "IntegerParameterRanges": []}
    for kind, name, lo, hi, log in ranges:
        key = "ContinuousParameterRanges" if kind == "float" else "IntegerParameterRanges"
        out[key].append({"Name": name, "MinValue": str(lo), "MaxValue": str(hi),
                         "ScalingType": "Logarithmic" if log else "Linear"})
    return out


def run_rustmaker(strategy, objective, seed, trials):
    f, ranges, minimise, _, _ = OBJECTIVES[objective]
    proc = subprocess.Popen([BIN, "tune-ask-tell"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def talk(msg):
        proc.stdin.write(json.dumps(msg) + "\n")
        proc.stdin.flush()
        reply = json.loads(proc.stdout.readline())
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    talk({"Strategy": strategy, "RandomSeed": seed, "MaxNumberOfTrainingJobs": trials,
          "Type": "Minimize" if minimise else "Maximize", "ParameterRanges": sagemaker_ranges(ranges)})
    values, seconds = [], []
    for _ in range(trials):
        reply = talk({"ask": True})
        seconds.append(reply["seconds"])
        v = f(reply["params"])
        values.append(v)
        talk({"tell": reply["trial"], "value": v})
    proc.stdin.close()
    proc.wait(timeout=10)
    return values, seconds


def run_optuna(sampler_name, objective, seed, trials):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    f, ranges, minimise, _, _ = OBJECTIVES[objective]
    sampler = (optuna.samplers.TPESampler(seed=seed) if sampler_name == "tpe"
               else optuna.samplers.RandomSampler(seed=seed))
    study = optuna.create_study(sampler=sampler, direction="minimize" if minimise else "maximize")
    values, seconds = [], []
    for _ in range(trials):
        started = time.perf_counter()
        trial = study.ask()
        p = {}
        for kind, name, lo, hi, log in ranges:
            p[name] = (trial.suggest_float(name, lo, hi, log=log) if kind == "float"
                       else trial.suggest_int(name, lo, hi, log=log))
        seconds.append(time.perf_counter() - started)
        v = f(p)
        values.append(v)
        study.tell(trial, v)
    return values, seconds


OPTIMISERS = {
    "rustmaker Bayesian (GP-EI)": lambda o, s, n: run_rustmaker("Bayesian", o, s, n),
    "rustmaker Random": lambda o, s, n: run_rustmaker("Random", o, s, n),
    "Optuna TPE (multivariate)": lambda o, s, n: run_optuna("tpe", o, s, n),
    "Optuna Random": lambda o, s, n: run_optuna("random", o, s, n),
}


def best_after(values, n, minimise):
    return (min if minimise else max)(values[:n])


def trials_to(values, target, minimise):
    for i, v in enumerate(values):
        if (v <= target) if minimise else (v >= target):
            return i + 1
    return math.inf


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--only", action="append")
    args = parser.parse_args()
    if not pathlib.Path(BIN).exists():
        sys.exit(f"{BIN} is missing: cargo build --release -p rustmaker-kernel (or set RUSTMAKER_BIN)")
    print(f"{args.seeds} seeds × {args.trials} trials; medians over seeds\n")
    print("| objective | optimiser | best after 20 | best after %d | trials to target | ms per suggestion |" % args.trials)
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    summary = {}
    for objective, (_, _, minimise, optimum, target) in OBJECTIVES.items():
        if args.only and objective not in args.only:
            continue
        for name, run in OPTIMISERS.items():
            b20, bn, reach, ms = [], [], [], []
            for seed in range(args.seeds):
                values, seconds = run(objective, seed, args.trials)
                b20.append(best_after(values, 20, minimise))
                bn.append(best_after(values, args.trials, minimise))
                reach.append(trials_to(values, target, minimise))
                ms.append(1000 * statistics.mean(seconds))
            row = (statistics.median(b20), statistics.median(bn), statistics.median(reach), statistics.median(ms))
            summary[(objective, name)] = row
            reached = "never" if math.isinf(row[2]) else f"{row[2]:g}"
            print(f"| {objective} (target {target}) | {name} | {row[0]:.4f} | {row[1]:.4f} | {reached} | {row[3]:.2f} |",
                  flush=True)
    print("\nRatios, rustmaker Bayesian over Optuna TPE (gap to the optimum after the budget: below 1 is "
          "better; suggestion time: below 1 is faster):\n")
    print("| objective | gap ratio | time ratio |")
    print("| --- | ---: | ---: |")
    for objective, (_, _, minimise, optimum, _) in OBJECTIVES.items():
        ours = summary.get((objective, "rustmaker Bayesian (GP-EI)"))
        tpe = summary.get((objective, "Optuna TPE (multivariate)"))
        if not ours or not tpe:
            continue
        if optimum is None:
            # No known optimum: compare the shortfall from a perfect score of 1.
            gap = lambda v: 1.0 - v
        else:
            gap = lambda v: abs(v - optimum)
        ratio = gap(ours[1]) / gap(tpe[1]) if gap(tpe[1]) > 0 else (0.0 if gap(ours[1]) == 0 else math.inf)
        print(f"| {objective} | {ratio:.2f} | {ours[3] / tpe[3]:.2f} |")


if __name__ == "__main__":
    main()
