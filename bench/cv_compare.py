#!/usr/bin/env python3
"""Cross-validated accuracy: `wgtrain train --cv K` beside scikit-learn's `cross_val_score`.

The same network on both sides: one hidden ReLU layer, softmax + cross-entropy, Adam at lr 0.001,
the same batch size and number of epochs, no L2 penalty (sklearn alpha=0, wgtrain's default),
every epoch run (tol=0, n_iter_no_change beyond the epochs), features standardized on each
fold's training rows (a StandardScaler in the pipeline; wgtrain fits its normalizer per fold).
Folds are stratified on both sides but drawn by different generators, so single folds differ:
compare the mean ± std over the K folds.

- iris (`data/iris.csv`, 150 rows): 4-100-3, batch 16, 200 epochs, 5 folds.
- MNIST subset (the first N rows of `mnist_train.csv.gz`, default 3000): 784-100-10, batch 64,
  20 epochs, 5 folds.

    python3 bench/cv_compare.py [--wgtrain target/release/wgtrain] [--mnist-rows 3000] [--markdown]
"""

import argparse
import gzip
import json
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


def wgtrain_cv(exe, csv, target, hidden, batch, epochs, k, seed):
    cmd = [exe, "train", str(csv), "--target", target, "--task", "classification",
           "--hidden", str(hidden), "--optimizer", "adam", "--lr", "0.001",
           "--batch-size", str(batch), "--epochs", str(epochs), "--seed", str(seed),
           "--cv", str(k), "--no-refit", "--device", "cpu", "--json", "-q"]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    secs = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"wgtrain failed: {' '.join(cmd)}\n{p.stderr}")
    out = json.loads(p.stdout.strip().splitlines()[-1])
    folds = [f["val_accuracy"] for f in out["cv"]["folds"]]
    return folds, secs, " ".join(cmd)


def sklearn_cv(x, y, hidden, batch, epochs, k, seed):
    net = MLPClassifier(hidden_layer_sizes=(hidden,), activation="relu", solver="adam",
                        learning_rate_init=0.001, batch_size=batch, max_iter=epochs, alpha=0.0,
                        tol=0.0, n_iter_no_change=epochs + 1, random_state=seed)
    pipe = make_pipeline(StandardScaler(), net)
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(pipe, x, y, cv=folds, scoring="accuracy")
    return list(scores), time.perf_counter() - t


def ms(v):
    return f"{statistics.mean(v):.4f} ± {statistics.stdev(v):.4f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wgtrain", default=str(ROOT / "target/release/wgtrain"))
    ap.add_argument("--mnist-rows", type=int, default=3000)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        sets = [("iris", ROOT / "data/iris.csv", "species", 100, 16, 200)]
        mnist = SHARED / "mnist/mnist_train.csv.gz"
        if mnist.exists():
            sub = Path(tmp) / f"mnist{a.mnist_rows}.csv"
            pd.read_csv(mnist, nrows=a.mnist_rows).to_csv(sub, index=False)
            sets.append((f"MNIST first {a.mnist_rows}", sub, "label", 100, 64, 20))
        else:
            print(f"(no {mnist}: MNIST skipped)", file=sys.stderr)
        rows = []
        for name, csv, target, hidden, batch, epochs in sets:
            df = pd.read_csv(csv)
            y = df.pop(target).to_numpy()
            x = df.to_numpy(dtype=np.float64)
            w, wsec, cmd = wgtrain_cv(a.wgtrain, csv, target, hidden, batch, epochs, a.folds, a.seed)
            s, ssec = sklearn_cv(x, y, hidden, batch, epochs, a.folds, a.seed)
            rows.append((name, len(y), x.shape[1], hidden, batch, epochs, w, wsec, s, ssec, cmd))

    if a.markdown:
        print(f"| data | rows | net | batch × epochs | wgtrain --cv {a.folds} (cpu) | "
              f"sklearn cross_val_score | wgtrain s | sklearn s |")
        print("|---|---|---|---|---|---|---|---|")
        for name, n, d, h, b, e, w, wsec, s, ssec, _ in rows:
            print(f"| {name} | {n} | {d}-{h}-… | {b} × {e} | {ms(w)} | {ms(s)} | "
                  f"{wsec:.1f} | {ssec:.1f} |")
    else:
        for name, n, d, h, b, e, w, wsec, s, ssec, cmd in rows:
            print(f"{name}: wgtrain {ms(w)} ({wsec:.1f}s)  sklearn {ms(s)} ({ssec:.1f}s)")
            print(f"  wgtrain folds {[round(v, 4) for v in w]}")
            print(f"  sklearn folds {[round(v, 4) for v in s]}")
            print(f"  {cmd}")


if __name__ == "__main__":
    main()
