#!/usr/bin/env python3
"""Why wgtrain's friedman1 RMSE trails scikit-learn's in sklearn_compare.py: the initialization.

The same 10-64-1 ReLU MLP, Adam lr 0.001, batch 32, 100 epochs, standardized features and
target, on the seed-s 80/20 split of data/friedman1.csv, trained in PyTorch three times with
only the initialization changed:
- he:     wgtrain's (He normal std sqrt(2/in) for the ReLU layer, Xavier uniform output, zero biases)
- glorot: scikit-learn's (Xavier uniform weights and biases, bound sqrt(6/(in+out)))
- torch:  PyTorch's nn.Linear default
Prints the held-out RMSE (target units) per seed and the mean.

    python3 bench/friedman_init.py [--seeds 3]
"""

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parent.parent


def run(init, seed, X, Y, Xv, yv, my, sy, epochs=100, batch=32):
    torch.manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Linear(10, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    for i, l in enumerate([m[0], m[2]]):
        fi, fo = l.in_features, l.out_features
        a = math.sqrt(6 / (fi + fo))
        if init == "he":
            if i == 0:
                torch.nn.init.normal_(l.weight, 0, math.sqrt(2 / fi))
            else:
                torch.nn.init.uniform_(l.weight, -a, a)
            torch.nn.init.zeros_(l.bias)
        elif init == "glorot":
            torch.nn.init.uniform_(l.weight, -a, a)
            torch.nn.init.uniform_(l.bias, -a, a)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    n = len(X)
    for _ in range(epochs):
        p = torch.randperm(n)
        for s in range(0, n, batch):
            i = p[s : s + batch]
            opt.zero_grad()
            ((m(X[i]) - Y[i]) ** 2).mean().backward()
            opt.step()
    with torch.no_grad():
        pr = m(Xv).numpy() * sy + my
    return math.sqrt(((pr - yv) ** 2).mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(1)
    df = pd.read_csv(ROOT / "data" / "friedman1.csv")
    res = {k: [] for k in ("he", "glorot", "torch")}
    for seed in range(a.seeds):
        tr, va = train_test_split(df, test_size=0.2, random_state=seed)
        X, y = tr.drop(columns="y").values, tr[["y"]].values
        Xv, yv = va.drop(columns="y").values, va[["y"]].values
        mx, sx, my, sy = X.mean(0), X.std(0), y.mean(0), y.std(0)
        t = lambda v: torch.tensor(v, dtype=torch.float32)  # noqa: E731
        for k in res:
            res[k].append(run(k, seed, t((X - mx) / sx), t((y - my) / sy), t((Xv - mx) / sx),
                              yv, my, sy))
    for k, v in res.items():
        print(f"{k:7s} mean RMSE {np.mean(v):.4f}  " + " ".join(f"{r:.4f}" for r in v))


if __name__ == "__main__":
    main()
