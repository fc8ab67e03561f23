#!/usr/bin/env python3
"""Regenerates docs/lecture.md: Hung-yi Lee's ML 2021 lecture 1 (and the short classification
lecture) rerun with wgtrain. Every number and plot in the document comes from this script.

    python3 scripts/lecture.py            # needs cargo; ../shared/data for MNIST and covid
    WGTRAIN_SHARED_DATA=/path python3 scripts/lecture.py

Standard library only. Runs on the CPU path (`--device cpu`) so the figures are the same on
every machine; `--device gpu` gives the same curves (see tests/gpu_training.rs).
"""

import csv
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
IMG = DOCS / "img"
RUNS = ROOT / "target" / "lecture"
BIN = ROOT / "target" / "release" / "wgtrain"
SHARED = Path(os.environ.get("WGTRAIN_SHARED_DATA", ROOT.parent / "shared" / "data"))
VIEWS = "data/views.csv"
DAYS = 1826  # rows of data/views.csv: 2017-01-01 .. 2021-12-31
DAYS_2021 = 365


def run(args, quiet=False):
    """Runs wgtrain with `args` (relative paths from the repo root) and returns its stdout."""
    args = [str(a) for a in args]
    cmd = [str(BIN)] + args
    t0 = time.time()
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"failed: {shlex.join(cmd)}\n{p.stderr}")
    if not quiet:
        print(f"  {time.time() - t0:6.1f}s  wgtrain {shlex.join(args)}", flush=True)
    return p.stdout


def shown(args):
    """The command as a reader types it: data sets named by their file, not this machine's path."""
    def short(a):
        a = str(a)
        if a.startswith(str(SHARED)):
            return Path(a).name
        return a
    return "wgtrain " + shlex.join([short(a) for a in args])


def metrics(path):
    with open(ROOT / path) as f:
        return [
            {k: (float(v) if v != "" else None) for k, v in row.items()}
            for row in csv.DictReader(f)
        ]


def train(name, args, plot=True):
    """Trains with a metrics file (and a plot); returns (rows of metrics, the command shown)."""
    m = RUNS / f"{name}.csv"
    full = ["train", *args, "--device", "cpu", "--seed", "0", "-q", "--out", RUNS / f"{name}.safetensors", "--metrics", m]
    shown_args = ["train", *args]
    if plot:
        full += ["--plot", IMG / f"{name}.png"]
        shown_args += ["--plot", f"{name}.png"]
    run(full)
    return metrics(m), shown(shown_args)


def k(v):
    """Views in thousands, as the lecture writes them."""
    return f"{v / 1000:.3f}k"


def series_args(window, hidden, activation="relu", epochs=400, lr=0.001):
    # Validation = the last 365 samples = the year 2021, as the lecture tests on 2021.
    frac = DAYS_2021 / (DAYS - window)
    act = [] if hidden == "none" else ["--activation", activation]
    return [
        VIEWS, "--target", "views", "--drop", "date", "--window", window, "--hidden", hidden, *act,
        "--loss", "mae", "--optimizer", "adam", "--lr", lr,
        "--batch-size", "64", "--epochs", epochs, "--val-split", f"{frac:.6f}",
    ]


# The course's dev split (every 10th row) and the honest one (the last 20% of each state's days:
# the rows are sliding 3-day windows of a state, so a neighbour of a dev row is in training).
COURSE_SPLIT = ["--val-every", "10"]
HONEST_SPLIT = ["--val-last", "0.2", "--group", "AL:WI"]
HW_GRID = ["select-k=14|17|20|24|32|40", "hidden=none|8|16|32", "lr=0.01|0.05"]


def best_dev(rows):
    best = min(rows, key=lambda r: r["val_loss"])
    return best, best["val_rmse"]


def hw_sweep(train_csv, common):
    """`wgtrain sweep` on the honest split; returns the best row of its leaderboard."""
    root = RUNS / "sweeps"
    args = ["sweep", train_csv, *common, *HONEST_SPLIT, "--device", "cpu", "--seed", "0",
            "--runs", root, "-q"]
    for g in HW_GRID:
        args += ["--grid", g]
    run(args)
    boards = sorted((ROOT / root).glob("*-sweep/leaderboard.csv"),
                    key=lambda p: int(p.parent.name.split("-")[0]))
    with open(boards[-1]) as f:
        rows = list(csv.DictReader(f))
    cmd = shown(["sweep", train_csv, *common, *HONEST_SPLIT] +
                [x for g in HW_GRID for x in ("--grid", g)])
    return rows[0], cmd, len(rows)


def homework(w, hw):
    train_csv = hw / "covid.train.csv"
    recipe = ["--target", "tested_positive.2", "--drop", "id", "--hidden", "64", "--optimizer",
              "momentum", "--lr", "0.05", "--batch-size", "270", "--epochs", "3000",
              "--patience", "200"]
    rows, cmd = train("covid", [train_csv, *recipe, *COURSE_SPLIT])
    best, leaky = best_dev(rows)
    sub = RUNS / "submission.csv"
    run(["predict", RUNS / "covid.safetensors", hw / "covid.test.csv", "--keep", "id", "--names",
         "tested_positive", "--out", sub, "--device", "cpu"])
    head = (ROOT / sub).read_text().splitlines()[:4]
    w("The sample code's setup (93 → 64 ReLU → 1, MSE, SGD with momentum 0.9, batch 270, "
      "dev set = every 10th row, early stopping after 200 epochs without improvement), with "
      "wgtrain's standardized target, which lets the learning rate be 0.05 instead of 0.001:\n")
    w(f"    {cmd}\n")
    w(f"Best dev MSE {best['val_loss']:.4f} at epoch {int(best['epoch'])}, dev RMSE "
      f"{leaky:.4f} (the sample model: 0.871). Training stopped at epoch {len(rows)}.\n")
    w("![homework 1: loss per epoch](img/covid.png)\n")
    w("![homework 1: dev rows, real (blue) and predicted (red)](img/covid.pred.png)\n")

    # The same network on the honest split, then the best of a sweep on it, on both splits.
    honest_rows, honest_cmd = train("covid_honest", [train_csv, *recipe, *HONEST_SPLIT], plot=False)
    _, honest = best_dev(honest_rows)
    common = ["--target", "tested_positive.2", "--drop", "id", "--optimizer", "momentum",
              "--batch-size", "270", "--epochs", "3000", "--patience", "200"]
    top, sweep_cmd, n = hw_sweep(train_csv, common)
    flags = ["--select-k", top["select-k"], "--hidden", top["hidden"], "--lr", top["lr"]]
    s_rows, _ = train("covid_best_leaky", [train_csv, *common, *flags, *COURSE_SPLIT], plot=False)
    h_rows, best_cmd = train("covid_best_honest", [train_csv, *common, *flags, *HONEST_SPLIT], plot=False)
    _, best_leaky = best_dev(s_rows)
    _, best_honest = best_dev(h_rows)
    w("### An honest dev split\n")
    w("The course's dev set is every 10th row, but the rows are sliding 3-day windows of one "
      "state: a dev row's neighbours, one day apart and sharing two of its three days, are in "
      "training, so the dev score measures memory. The honest split validates on the last 20% "
      "of each state's days, as the Kaggle test asks for days the model has not seen "
      "(`--group AL:WI` names the state by its one-hot block, `--val-last 0.2` takes the last "
      "fifth of each group's rows):\n")
    w(f"    {honest_cmd}\n")
    w(f"Then `sweep` searched {n} configurations on the honest split (feature selection by "
      "`--select-k`, which ranks on the training rows only; hidden layers; learning rate):\n")
    w(f"    {sweep_cmd}\n")
    w(f"Best: `{' '.join(flags)}`:\n")
    w(f"    {best_cmd}\n")
    w("| model | dev RMSE, course split (every 10th row) | dev RMSE, honest split (last 20% of each state) |")
    w("|---|---|---|")
    w(f"| sample network (93 → 64 → 1), above | {leaky:.4f} | {honest:.4f} |")
    w(f"| best of the sweep on the honest split | {best_leaky:.4f} | {best_honest:.4f} |\n")
    same_order = (leaky < best_leaky) == (honest < best_honest)
    w(("Both splits rank the two models the same way" if same_order else
       "The two splits rank the two models in opposite order") +
      f"; the course split's numbers are {honest / leaky:.1f}× (sample network) and "
      f"{best_honest / best_leaky:.1f}× (sweep's best) smaller than the honest ones. "
      "Which one tracks the Kaggle test: the homework's slides give the sample code, run as "
      "it is, as the simple baseline, 2.03 RMSE on the public test (see the data's README); "
      "its every-10th-row dev set says 0.871 for it, while the honest split puts the same "
      f"network at {honest:.2f}. The honest split is the one near the Kaggle scale; a "
      "student choosing flags by the course split picks by memory. (We cannot score on "
      "Kaggle here; this is the one check we have.)\n")
    w("The Kaggle submission comes straight out of predict:\n")
    w(f"    wgtrain predict model.safetensors covid.test.csv --keep id --names tested_positive --out submission.csv\n")
    w("```\n" + "\n".join(head) + "\n…\n```\n")


def main():
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    for d in (IMG, RUNS):
        d.mkdir(parents=True, exist_ok=True)
    for old in IMG.glob("*.png"):
        old.unlink()
    out = []
    w = out.append
    w("# The lecture, reproduced with wgtrain\n")
    w("Hung-yi Lee, *Machine Learning* 2021 (NTU), lecture 1 — a function with unknown parameters, "
      "a loss from training data, optimization by gradient descent — and the short lecture on "
      "classification (softmax, cross-entropy, and why MSE on a softmax is harder to optimize). "
      "**This file is generated by `python3 scripts/lecture.py`**; every number and picture below "
      "comes from that run, on the CPU path (`--device cpu`), seed 0. The commands beside each "
      "result are what a student types (the script adds `--device cpu --seed 0 --metrics …`). "
      "On a GPU (`--device gpu`) the same commands follow the same curves to about six digits "
      "(`tests/gpu_training.rs` checks this epoch by epoch).\n")
    w("## The data\n")
    w("The lecture predicts a YouTube channel's daily views from the views of the previous days, "
      "training on 2017–2020 and testing on 2021. **The lecture's own view counts are not "
      "public**, so `data/views.csv` is a synthetic series made by `examples/make_data.rs`: "
      "a rising trend (3000 → 6000 views a day), a weekly rhythm (Fridays and Saturdays low, "
      "as in the lecture's plot), a mild yearly season, multiplicative noise of about 5% and a "
      "rare spike. `--window N` turns a row into the N previous days' views (x₁ … x_N) and the "
      "day's own views (y); the last 365 samples (2021) are the validation set. The loss is the "
      "lecture's MAE, L = 1/N Σ |y − ŷ|, in views (shown in thousands, like the lecture).\n")

    # (a) linear models with longer windows
    w("## (a) The linear model y = b + Σ wⱼxⱼ with longer windows\n")
    w("`--hidden none` is the lecture's linear model. The lecture found 1 day: 0.48k/0.58k, 7 days "
      "0.38k/0.49k, 28 days 0.33k/0.46k, 56 days 0.32k/0.46k (train/2021).\n")
    w("| window (days) | train MAE | 2021 MAE | command |")
    w("|---|---|---|---|")
    linear = {}
    for n in (1, 7, 28, 56):
        rows, cmd = train(f"linear_{n}", series_args(n, "none", epochs=300, lr=0.01), plot=(n == 56))
        linear[n] = rows[-1]
        w(f"| {n} | {k(rows[-1]['train_loss'])} | {k(rows[-1]['val_loss'])} | `{cmd}` |")
    w("")
    w("As in the lecture, a longer window helps, most of all from one day to a week: the weekly "
      "rhythm is only visible with 7 days or more.\n")
    w("\n![linear model, 56 days: loss per epoch](img/linear_56.png)\n")
    w("![linear model, 56 days: 2021, real (blue) and predicted (red)](img/linear_56.pred.png)\n")

    # (b) deeper
    w("## (b) Deeper: 1 to 4 layers of 100 ReLU on the 56-day window\n")
    w("The lecture: 1 layer 0.28k/0.43k, 2 layers 0.18k/0.39k, 3 layers 0.14k/0.38k, "
      "4 layers 0.10k/0.44k — the fourth layer fits the training years better and 2021 worse "
      "(overfitting).\n")
    w("| layers | train MAE | 2021 MAE | best 2021 MAE (epoch) | 2021 MAE with `--patience 20` | command |")
    w("|---|---|---|---|---|---|")
    deep = {}
    for layers in (1, 2, 3, 4):
        hidden = ",".join(["100"] * layers)
        rows, cmd = train(f"relu_{layers}", series_args(56, hidden), plot=(layers == 4))
        early, _ = train(f"relu_{layers}_early", series_args(56, hidden) + ["--patience", "20"], plot=False)
        kept = min(early, key=lambda r: r["val_loss"])
        best = min(rows, key=lambda r: r["val_loss"])
        deep[layers] = rows[-1]
        w(f"| {layers} | {k(rows[-1]['train_loss'])} | {k(rows[-1]['val_loss'])} | "
          f"{k(best['val_loss'])} ({int(best['epoch'])}) | {k(kept['val_loss'])} (stopped at {len(early)}) | `{cmd}` |")
    fits = deep[4]["train_loss"] < deep[3]["train_loss"]
    worse = deep[4]["val_loss"] > deep[3]["val_loss"]
    w("")
    if fits and worse:
        w("As in the lecture, the fourth layer **overfits** here: its training loss is lower than "
          f"three layers' ({k(deep[4]['train_loss'])} < {k(deep[3]['train_loss'])}) and its 2021 "
          f"loss higher ({k(deep[4]['val_loss'])} > {k(deep[3]['val_loss'])}).\n")
    else:
        w(f"On this synthetic series the fourth layer {'fits the training years better' if fits else 'does not fit the training years better'} "
          f"(train {k(deep[4]['train_loss'])} vs {k(deep[3]['train_loss'])} for three layers) and "
          f"{'scores worse' if worse else 'does not score worse'} on 2021 ({k(deep[4]['val_loss'])} vs "
          f"{k(deep[3]['val_loss'])}): {'overfitting, as in the lecture' if fits and worse else 'no clear overfitting at this size of data and noise, unlike the lecture'}. "
          "The table reports what happened, not what the lecture found.\n")
    lin = linear[56]
    if all(d["train_loss"] < lin["train_loss"] and d["val_loss"] > lin["val_loss"] for d in deep.values()):
        w(f"Every network fits the training years better than the linear model "
          f"({k(lin['train_loss'])}) and 2021 worse ({k(lin['val_loss'])}): the synthetic series is a "
          "trend times a weekly rhythm plus noise, which a linear function of the last 56 days "
          "already captures, so the extra flexibility goes into fitting noise.\n")
    w("Where the best 2021 loss comes before the last epoch, `--patience 20` stops near it and "
      "the saved model keeps those weights (the fifth column).\n")
    w("![4 layers of 100 ReLU: loss per epoch](img/relu_4.png)\n")
    w("![4 layers: 2021, real (blue) and predicted (red)](img/relu_4.pred.png)\n")

    # (c) sigmoid vs relu
    w("## (c) Sigmoid against ReLU\n")
    w("The lecture builds its first networks from sums of sigmoids, then switches to ReLU "
      "(two ReLUs make a hard sigmoid). Three layers of 100 on the 56-day window:\n")
    w("| activation | train MAE | 2021 MAE | command |")
    w("|---|---|---|---|")
    for act in ("sigmoid", "relu"):
        rows, cmd = train(f"act_{act}", series_args(56, "100,100,100", activation=act), plot=False)
        w(f"| {act} | {k(rows[-1]['train_loss'])} | {k(rows[-1]['val_loss'])} | `{cmd}` |")
    w("")

    # (d) classification: CE vs MSE on softmax
    w("## (d) Classification: cross-entropy against MSE on the softmax\n")
    mnist = SHARED / "mnist" / "mnist_train.csv.gz"
    if mnist.exists():
        data = [str(mnist), "--target", "label", "--task", "classification", "--hidden", "100",
                "--optimizer", "sgd", "--lr", "0.1", "--batch-size", "200", "--epochs", "10",
                "--val", str(SHARED / "mnist" / "mnist_test.csv.gz")]
        where = ("MNIST (`../shared/data/mnist`): 784 → 100 ReLU → 10, plain SGD lr 0.1, batch 200, "
                 "10 epochs, validated on the 10,000 test images")
    else:
        data = ["data/iris.csv", "--target", "species", "--hidden", "100", "--optimizer", "sgd",
                "--lr", "0.05", "--batch-size", "16", "--epochs", "60"]
        where = ("iris (MNIST was not found under `$WGTRAIN_SHARED_DATA`, so this section falls "
                 "back to the bundled iris set): 4 → 100 ReLU → 3, plain SGD")
    w(f"The lecture's point: with a softmax output, MSE has flat regions where the loss is large, "
      f"so gradient descent can stall; cross-entropy keeps a slope. On {where}:\n")
    curves = {}
    cmds = {}
    for loss in ("ce", "mse"):
        rows, cmd = train(f"classes_{loss}", data + ["--loss", loss])
        curves[loss], cmds[loss] = rows, cmd
    w("| epoch | accuracy, cross-entropy | accuracy, MSE on softmax |")
    w("|---|---|---|")
    for a, b in zip(curves["ce"], curves["mse"]):
        e = int(a["epoch"])
        if e <= 5 or e % max(1, len(curves["ce"]) // 10) == 0 or e == len(curves["ce"]):
            w(f"| {e} | {a['val_accuracy']:.4f} | {b['val_accuracy']:.4f} |")
    w("")
    for loss, name in (("ce", "cross-entropy"), ("mse", "MSE on the softmax")):
        w(f"- {name}: `{cmds[loss]}`")
    w("\n![cross-entropy: loss per epoch](img/classes_ce.png)\n")
    w("![MSE on softmax: loss per epoch](img/classes_mse.png)\n")
    ce_acc, mse_acc = curves["ce"][0]["val_accuracy"], curves["mse"][0]["val_accuracy"]
    w(f"After the first epoch cross-entropy reaches {ce_acc:.4f} accuracy and MSE on the softmax "
      f"{mse_acc:.4f}; after the last, {curves['ce'][-1]['val_accuracy']:.4f} and "
      f"{curves['mse'][-1]['val_accuracy']:.4f}. "
      + ("Cross-entropy is the easier one to optimize, as the lecture says.\n"
         if ce_acc >= mse_acc else "Here MSE kept up with cross-entropy.\n"))

    # (e) homework 1
    w("## (e) Homework 1: COVID-19 cases (covid2021)\n")
    hw = SHARED / "covid2021"
    if (hw / "covid.train.csv").exists():
        homework(w, hw)
    else:
        w(f"Skipped: `{hw}` was not found (set `WGTRAIN_SHARED_DATA`).\n")

    (DOCS / "lecture.md").write_text("\n".join(out) + "\n")
    print(f"wrote {DOCS / 'lecture.md'}")


if __name__ == "__main__":
    main()
