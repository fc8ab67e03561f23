#!/usr/bin/env python3
"""Quality parity with scikit-learn on the data sets the project ships.

For each data set and seed 0..4: one train/val split (80/20, seeded; stratified for classes)
is written to two CSV files; `wgtrain train train.csv --val val.csv` and scikit-learn train the
same layers with the same optimizer (Adam, lr 0.001), batch size and epochs; the held-out
accuracy (classification) or RMSE in the target's units (regression) is compared.

- iris (`data/iris.csv`, species): 4-100-3 ReLU, cross-entropy, MLPClassifier.
- friedman1 (`data/friedman1.csv`, y): 10-64-1 ReLU, MSE, MLPRegressor.

scikit-learn gets what wgtrain does by default: features standardized with a StandardScaler
fitted on the train split, and for regression the target standardized too (predictions mapped
back before the RMSE); no L2 penalty (alpha=0, wgtrain's --weight-decay 0); every epoch run
(tol=0, n_iter_no_change larger than the epochs). The initializations differ (sklearn: Glorot
uniform; wgtrain: He normal for ReLU layers), so single runs differ; compare mean ± std.

    python3 bench/sklearn_compare.py [--wgtrain target/release/wgtrain] [--seeds 5] [--markdown]
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parent.parent

SETS = [
    {
        "name": "iris",
        "file": "data/iris.csv",
        "target": "species",
        "task": "classification",
        "hidden": 100,
        "batch": 16,
        "epochs": 200,
    },
    {
        "name": "friedman1",
        "file": "data/friedman1.csv",
        "target": "y",
        "task": "regression",
        "hidden": 64,
        "batch": 32,
        "epochs": 100,
    },
]


def wgtrain_run(exe, s, train_csv, val_csv, seed, tmp):
    model = Path(tmp) / "m.safetensors"
    cmd = [
        exe, "train", str(train_csv), "--target", s["target"], "--task", s["task"],
        "--val", str(val_csv), "--hidden", str(s["hidden"]), "--activation", "relu",
        "--optimizer", "adam", "--lr", "0.001", "--batch-size", str(s["batch"]),
        "--epochs", str(s["epochs"]), "--seed", str(seed), "--device", "cpu",
        "--out", str(model), "--quiet",
    ]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"wgtrain train failed: {' '.join(cmd)}\n{p.stderr}")
    e = subprocess.run([exe, "eval", str(model), str(val_csv), "--json", "--device", "cpu"],
                       capture_output=True, text=True)
    if e.returncode != 0:
        sys.exit(f"wgtrain eval failed\n{e.stderr}")
    m = json.loads(e.stdout)
    return m["accuracy"] if s["task"] == "classification" else m["rmse"]


def sklearn_run(s, tr, va, seed):
    xcols = [c for c in tr.columns if c != s["target"]]
    sc = StandardScaler().fit(tr[xcols].to_numpy(np.float64))
    xtr = sc.transform(tr[xcols].to_numpy(np.float64))
    xva = sc.transform(va[xcols].to_numpy(np.float64))
    common = dict(
        hidden_layer_sizes=(s["hidden"],), activation="relu", solver="adam",
        learning_rate_init=0.001, batch_size=s["batch"], max_iter=s["epochs"], shuffle=True,
        random_state=seed, tol=0, n_iter_no_change=s["epochs"] + 1, alpha=0.0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if s["task"] == "classification":
            clf = MLPClassifier(**common).fit(xtr, tr[s["target"]])
            return float(clf.score(xva, va[s["target"]]))
        ysc = StandardScaler().fit(tr[[s["target"]]].to_numpy(np.float64))
        ytr = ysc.transform(tr[[s["target"]]].to_numpy(np.float64)).ravel()
        reg = MLPRegressor(**common).fit(xtr, ytr)
        pred = ysc.inverse_transform(reg.predict(xva).reshape(-1, 1)).ravel()
        err = pred - va[s["target"]].to_numpy(np.float64)
        return float(np.sqrt(np.mean(err**2)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wgtrain", default=str(ROOT / "target" / "release" / "wgtrain"))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    a = ap.parse_args()
    rows = []
    for s in SETS:
        df = pd.read_csv(ROOT / s["file"])
        got = {"wgtrain": [], "sklearn": []}
        for seed in range(a.seeds):
            strat = df[s["target"]] if s["task"] == "classification" else None
            tr, va = train_test_split(df, test_size=0.2, random_state=seed, stratify=strat)
            with tempfile.TemporaryDirectory() as tmp:
                tcsv, vcsv = Path(tmp) / "train.csv", Path(tmp) / "val.csv"
                tr.to_csv(tcsv, index=False)
                va.to_csv(vcsv, index=False)
                got["wgtrain"].append(wgtrain_run(a.wgtrain, s, tcsv, vcsv, seed, tmp))
            got["sklearn"].append(sklearn_run(s, tr, va, seed))
        metric = "accuracy" if s["task"] == "classification" else "RMSE"
        row = {"set": s, "metric": metric, "train_rows": len(tr), "val_rows": len(va)}
        for k, v in got.items():
            row[k] = (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0, v)
        rows.append(row)
    if a.markdown:
        print("| data set | network | batch, epochs | rows train/val | metric (held out) "
              "| wgtrain mean ± std | scikit-learn mean ± std |")
        print("|---|---|---|---|---|---|---|")
    for r in rows:
        s = r["set"]
        n_in = "4" if s["name"] == "iris" else "10"
        n_out = "3" if s["name"] == "iris" else "1"
        net = f"{n_in}-{s['hidden']}-{n_out} relu, adam 0.001"
        w, k = r["wgtrain"], r["sklearn"]
        if a.markdown:
            print(f"| {s['name']} | {net} | {s['batch']}, {s['epochs']} | "
                  f"{r['train_rows']}/{r['val_rows']} | {r['metric']} | "
                  f"{w[0]:.4f} ± {w[1]:.4f} | {k[0]:.4f} ± {k[1]:.4f} |")
        else:
            print(f"{s['name']} ({net}, batch {s['batch']}, {s['epochs']} epochs, "
                  f"{r['train_rows']}/{r['val_rows']} rows), held-out {r['metric']} "
                  f"over seeds 0..{a.seeds - 1}:")
            print(f"  wgtrain  {w[0]:.4f} ± {w[1]:.4f}  " + " ".join(f"{v:.4f}" for v in w[2]))
            print(f"  sklearn  {k[0]:.4f} ± {k[1]:.4f}  " + " ".join(f"{v:.4f}" for v in k[2]))


if __name__ == "__main__":
    main()
