#!/usr/bin/env python3
"""`--select-k` against scikit-learn's `SelectKBest`: the same columns, or the script fails.

For each case `wgtrain train DATA --select-k K --val-split 0 --epochs 1 --json` picks K features
on all rows (no validation rows, so the training rows are every row) and reports them in its
JSON line; `SelectKBest(f_regression | f_classif, k=K)` is fitted on the same rows and columns.

    python3 bench/select_k_check.py [--wgtrain target/release/wgtrain]
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
from sklearn.feature_selection import SelectKBest, f_classif, f_regression

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"

CASES = [
    # (data, target, task, drop, k)
    (SHARED / "covid2021/covid.train.csv", "tested_positive.2", "regression", ["id"], 14),
    (SHARED / "covid2021/covid.train.csv", "tested_positive.2", "regression", ["id"], 3),
    (ROOT / "data/friedman1.csv", "y", "regression", [], 5),
    (ROOT / "data/iris.csv", "species", "classification", [], 2),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wgtrain", default=str(ROOT / "target/release/wgtrain"))
    a = ap.parse_args()
    failed = 0
    for path, target, task, drop, k in CASES:
        if not path.exists():
            print(f"skip {path} (absent)")
            continue
        cmd = [a.wgtrain, "train", str(path), "--target", target, "--task", task,
               "--select-k", str(k), "--val-split", "0", "--epochs", "1", "--device", "cpu",
               "--json", "-q", "--out", str(Path("/tmp") / "select_k_check.safetensors")]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"wgtrain failed: {' '.join(cmd)}\n{p.stderr}")
        ours = json.loads(p.stdout.strip().splitlines()[-1])["features"]
        df = pd.read_csv(path)
        # pandas names repeated columns as wgtrain does (cli, cli.1, …).
        y = df.pop(target)
        x = df.drop(columns=drop)
        if task == "classification":
            y = y.astype("category").cat.codes
        sel = SelectKBest(f_regression if task == "regression" else f_classif, k=k).fit(x, y)
        theirs = list(x.columns[sel.get_support()])
        same = ours == theirs
        failed += not same
        print(f"{'ok  ' if same else 'DIFF'} {path.name} k={k}: wgtrain {ours}")
        if not same:
            print(f"     sklearn {theirs}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
