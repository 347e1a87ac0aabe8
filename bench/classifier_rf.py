#!/usr/bin/env python3
"""qoelab's classifiers vs scikit-learn on the same CSV, side by side in one run.

Writes a seeded 10,000 x 20 three-class dataset (sklearn's make_classification) to one CSV;
both sides read that file, train on its first 8,000 rows and test on the last 2,000. For each
seed, runs interleaved: scikit-learn with n_jobs=1, ours on 1 thread, scikit-learn with
n_jobs=-1, ours on all threads (random forest), so machine load hits both alike. Reports the
median fit time and mean held-out accuracy over the seeds, and the ratios. Only the fit is timed.

Run through bench/classifier.sh (builds ours, installs scikit-learn if missing).
"""

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import sklearn
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier


def write_dataset(path, rows, features, classes, seed):
    x, y = make_classification(
        n_samples=rows,
        n_features=features,
        n_informative=10,
        n_redundant=5,
        n_classes=classes,
        n_clusters_per_class=2,
        flip_y=0.02,
        random_state=seed,
    )
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow([f"f{i}" for i in range(features)] + ["class"])
        for row, label in zip(x, y):
            out.writerow([repr(float(v)) for v in row] + [int(label)])


def read_dataset(path):
    with open(path) as f:
        reader = csv.reader(f)
        next(reader)
        rows = [list(map(float, r)) for r in reader]
    data = np.array(rows)
    return data[:, :-1], data[:, -1].astype(int)


def sklearn_fit(model, x_train, y_train, x_test, y_test):
    start = time.perf_counter()
    model.fit(x_train, y_train)
    fit_s = time.perf_counter() - start
    return fit_s, float(model.score(x_test, y_test))


def ours_fit(binary, path, train_rows, kind, trees, seed, threads):
    env = dict(os.environ)
    if threads:
        env["RAYON_NUM_THREADS"] = str(threads)
    else:
        env.pop("RAYON_NUM_THREADS", None)
    out = subprocess.run(
        [binary, path, "class", str(train_rows), kind, str(trees), str(seed)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return result["fit_s"], result["accuracy"], result["threads"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--binary", required=True, help="our bench executable")
    p.add_argument("--dir", default="target/bench-classifier")
    p.add_argument("--rows", type=int, default=10_000)
    p.add_argument("--features", type=int, default=20)
    p.add_argument("--test-rows", type=int, default=2_000)
    p.add_argument("--trees", type=int, default=100)
    p.add_argument("--seeds", type=int, default=5, help="fits per configuration")
    p.add_argument("--linfa-seeds", type=int, default=2,
                   help="fits of linfa's stock forest (slow), 0 to leave it out")
    p.add_argument("--data-seed", type=int, default=42)
    args = p.parse_args()

    os.makedirs(args.dir, exist_ok=True)
    path = os.path.join(args.dir, f"classes3_{args.rows}x{args.features}.csv")
    write_dataset(path, args.rows, args.features, 3, args.data_seed)
    x, y = read_dataset(path)
    train_rows = args.rows - args.test_rows
    split = (x[:train_rows], y[:train_rows], x[train_rows:], y[train_rows:])
    cores = os.cpu_count()
    load_before = os.getloadavg()

    # (label, anchor factory, our model kind, our threads); threads None = all.
    configs = [
        ("random forest, 1 core", lambda s: RandomForestClassifier(
            n_estimators=args.trees, n_jobs=1, random_state=s), "rf", 1),
        (f"random forest, all cores ({cores})", lambda s: RandomForestClassifier(
            n_estimators=args.trees, n_jobs=-1, random_state=s), "rf", None),
        ("decision tree", lambda s: DecisionTreeClassifier(random_state=s), "tree", 1),
        ("logistic regression (standardised, L2)", lambda s: make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=200)), "logreg", 1),
        ("Gaussian naive Bayes", lambda s: GaussianNB(), "nb", 1),
    ]
    # linfa-ensemble's stock forest in the "ours" columns: what building our own forest saved.
    linfa = ("linfa-ensemble RandomForest (stock), 1 core", lambda s: RandomForestClassifier(
        n_estimators=args.trees, n_jobs=1, random_state=s), "linfa-rf", 1)
    if args.linfa_seeds > 0:
        configs.append(linfa)
    results = {c[0]: {"sk_t": [], "sk_a": [], "our_t": [], "our_a": [], "threads": 0}
               for c in configs}
    for seed in range(args.seeds):
        for label, anchor, kind, threads in configs:
            if kind == "linfa-rf" and seed >= args.linfa_seeds:
                continue
            r = results[label]
            t, a = sklearn_fit(anchor(seed), *split)
            r["sk_t"].append(t)
            r["sk_a"].append(a)
            t, a, used = ours_fit(args.binary, path, train_rows, kind, args.trees, seed, threads)
            r["our_t"].append(t)
            r["our_a"].append(a)
            r["threads"] = used
        print(f"seed {seed} done", file=sys.stderr)
    load_after = os.getloadavg()

    print(f"data: {path} ({args.rows} rows x {args.features} features, 3 classes; "
          f"train on the first {train_rows}, test on the last {args.test_rows})")
    print(f"scikit-learn {sklearn.__version__}, numpy {np.__version__}; {args.trees} trees; "
          f"{args.seeds} seeds per row ({args.linfa_seeds} for linfa's forest): median fit time, "
          "mean held-out accuracy")
    print(f"machine: {cores} cores; load average before {load_before[0]:.2f}, "
          f"after {load_after[0]:.2f} (other work on the machine slows both sides)\n")
    header = ["model", "sklearn fit s", "ours fit s", "ours threads", "time ours/sklearn",
              "sklearn acc", "ours acc", "acc ours-sklearn"]
    rows = []
    for label, *_ in configs:
        r = results[label]
        sk_t, our_t = statistics.median(r["sk_t"]), statistics.median(r["our_t"])
        sk_a, our_a = statistics.mean(r["sk_a"]), statistics.mean(r["our_a"])
        rows.append([label, f"{sk_t:.3f}", f"{our_t:.3f}", str(r["threads"]),
                     f"{our_t / sk_t:.2f}", f"{sk_a:.4f}", f"{our_a:.4f}",
                     f"{our_a - sk_a:+.4f}"])
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    for row in [header] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())


if __name__ == "__main__":
    main()
