#!/usr/bin/env python3
"""MNIST 784-100-10 on the CPU: scikit-learn's MLPClassifier against `wgtrain train --device cpu`.

Both: ReLU, Adam lr 0.001, batch 200, 10 epochs, shuffled, no validation split, 60,000 train
rows, accuracy on the 10,000 test rows. Seconds per epoch exclude reading the CSV:
- scikit-learn: the wall time of `fit` / epochs run (includes sklearn's input checks, small);
  float32 input (so its weights and BLAS products are float32 too), pixels scaled by 1/255.
- wgtrain: the mean of the per-epoch seconds printed by `wgtrain train` (shuffle, every batch,
  the epoch's loss readback); wgtrain standardizes each pixel column (mean/std on train) instead.

    python3 bench/sklearn_mnist.py [--data DIR] [--wgtrain target/release/wgtrain] [--json]
        [--skip-sklearn] [--skip-wgtrain]

DIR defaults to $WGTRAIN_DATA/mnist, else ../shared/data/mnist from the repository root.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def data_dir(arg):
    if arg:
        return Path(arg)
    if os.environ.get("WGTRAIN_DATA"):
        return Path(os.environ["WGTRAIN_DATA"]) / "mnist"
    return ROOT.parent / "shared" / "data" / "mnist"


def run_sklearn(d, epochs):
    import numpy as np
    import pandas as pd
    from sklearn.neural_network import MLPClassifier
    import warnings
    from sklearn.exceptions import ConvergenceWarning

    t0 = time.perf_counter()
    tr = pd.read_csv(d / "mnist_train.csv.gz")
    te = pd.read_csv(d / "mnist_test.csv.gz")
    load_s = time.perf_counter() - t0
    # float32 input: scikit-learn then keeps its weights and products in float32 (as wgtrain).
    xtr = tr.drop(columns="label").to_numpy(np.float32) / np.float32(255.0)
    ytr = tr["label"].to_numpy()
    xte = te.drop(columns="label").to_numpy(np.float32) / np.float32(255.0)
    yte = te["label"].to_numpy()
    clf = MLPClassifier(
        hidden_layer_sizes=(100,),
        activation="relu",
        solver="adam",
        batch_size=200,
        max_iter=epochs,
        learning_rate_init=0.001,
        shuffle=True,
        random_state=0,
        tol=0,
        n_iter_no_change=1000,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0, c0 = time.perf_counter(), time.process_time()
        clf.fit(xtr, ytr)
        fit_s = time.perf_counter() - t0
        fit_cpu_s = time.process_time() - c0
    acc = float(clf.score(xte, yte))
    import sklearn

    return {
        "tool": f"scikit-learn {sklearn.__version__} MLPClassifier ({clf.coefs_[0].dtype})",
        "epochs": int(clf.n_iter_),
        "s_per_epoch": fit_s / clf.n_iter_,
        "fit_s": fit_s,
        "fit_cpu_s": fit_cpu_s,
        "load_s": load_s,
        "test_accuracy": acc,
        "final_train_loss": float(clf.loss_),
    }


EPOCH = re.compile(r"^epoch\s+(\d+)\s+train_loss\s+(\S+).*?([\d.]+)s\s*$")


def run_wgtrain(d, exe, epochs):
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "mnist.safetensors"
        cmd = [
            str(exe), "train", str(d / "mnist_train.csv.gz"), "--target", "label",
            "--task", "classification", "--hidden", "100", "--batch-size", "200",
            "--epochs", str(epochs), "--optimizer", "adam", "--lr", "0.001",
            "--val-split", "0", "--device", "cpu", "--out", str(model),
        ]
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        total_s = time.perf_counter() - t0
        if p.returncode != 0:
            sys.exit(f"wgtrain train failed:\n{p.stderr}")
        secs, losses = [], []
        for line in p.stdout.splitlines():
            m = EPOCH.match(line.strip())
            if m:
                losses.append(float(m.group(2)))
                secs.append(float(m.group(3)))
        ecmd = [str(exe), "eval", str(model), str(d / "mnist_test.csv.gz"), "--json",
                "--device", "cpu"]
        e = subprocess.run(ecmd, capture_output=True, text=True)
        if e.returncode != 0:
            sys.exit(f"wgtrain eval failed:\n{e.stderr}")
        ev = json.loads(e.stdout)
    desc = p.stderr.splitlines()[0] if p.stderr else ""
    return {
        "tool": "wgtrain train --device cpu (float32)",
        "epochs": len(secs),
        "s_per_epoch": sum(secs) / len(secs),
        "epoch_seconds": secs,
        "total_s": total_s,
        "test_accuracy": ev["accuracy"],
        "final_train_loss": losses[-1],
        "command": " ".join(["wgtrain"] + [Path(c).name if "/" in c else c for c in cmd[1:]]),
        "describe": desc,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data")
    ap.add_argument("--wgtrain", default=str(ROOT / "target" / "release" / "wgtrain"))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--skip-sklearn", action="store_true")
    ap.add_argument("--skip-wgtrain", action="store_true")
    a = ap.parse_args()
    d = data_dir(a.data)
    if not (d / "mnist_train.csv.gz").exists():
        sys.exit(f"no MNIST under {d} (set --data or WGTRAIN_DATA)")
    out = {"cores": os.cpu_count()}
    if not a.skip_sklearn:
        out["sklearn"] = run_sklearn(d, a.epochs)
    if not a.skip_wgtrain:
        out["wgtrain"] = run_wgtrain(d, a.wgtrain, a.epochs)
    if "sklearn" in out and "wgtrain" in out:
        out["speedup"] = out["sklearn"]["s_per_epoch"] / out["wgtrain"]["s_per_epoch"]
    if a.json:
        print(json.dumps(out))
        return
    for k in ("sklearn", "wgtrain"):
        if k in out:
            r = out[k]
            print(
                f"{r['tool']}: {r['s_per_epoch']:.3f} s/epoch over {r['epochs']} epochs, "
                f"test accuracy {r['test_accuracy']:.4f}, final train loss {r['final_train_loss']:.4f}"
            )
    if "speedup" in out:
        print(f"wgtrain is {out['speedup']:.2f}x faster per epoch (target: >= 2x)")


if __name__ == "__main__":
    main()
