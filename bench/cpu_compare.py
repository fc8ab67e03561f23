#!/usr/bin/env python3
"""The CPU goals of issue 12, side by side in one run: wgtrain's CPU path against PyTorch eager
(lecture size 56-100-100-100-1, batch 256, Adam) and scikit-learn's MLPClassifier on float32
(MNIST 784-100-10, batch 200, Adam, via bench/sklearn_mnist.py).

    python3 bench/cpu_compare.py [--wgtrain target/release/wgtrain] [--threads 2] [--json]

Each figure comes twice: wall time (what a user sees; on a busy shared machine it counts the
time other jobs took) and CPU time (user + system seconds of every thread; robust to other
jobs, and with --threads 1 equal to the wall time of a quiet core). wgtrain's CPU time per
step or epoch is the difference of two runs that differ only in their number of steps or
epochs, so start-up and CSV loading cancel. The 1-minute load average is printed before and
after: a fair wall-time ratio needs a quiet machine (load < 0.5).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(cmd, env):
    c0, t0 = child_cpu(), time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stderr}")
    return p.stdout, child_cpu() - c0, time.perf_counter() - t0


def wgtrain_lecture(exe, threads, env):
    env = dict(env, WGTRAIN_CPU_THREADS=str(threads))
    base = [exe, "bench", "--layers", "56,100,100,100,1", "--batch", "256", "--device", "cpu",
            "--repeats", "5", "--json"]
    out, cpu_a, _ = run(base + ["--steps", "100"], env)
    wall = json.loads(out)
    _, cpu_b, _ = run(base + ["--steps", "600"], env)
    return {
        "tool": f"wgtrain bench ({threads} thread(s))",
        "wall_ms_per_step": wall.get("median_ms_per_step"),
        # 5 repeats of 500 more steps in the second run.
        "cpu_ms_per_step": (cpu_b - cpu_a) * 1e3 / (5 * 500),
        "command": " ".join(["wgtrain"] + base[1:] + ["--steps", "100|600"]),
    }


def torch_lecture(threads, env):
    cmd = [sys.executable, str(ROOT / "bench" / "pytorch_mlp.py"), "--layers", "56,100,100,100,1",
           "--batch", "256", "--device", "cpu", "--threads", str(threads), "--repeats", "5",
           "--json"]
    out, _, _ = run(cmd, env)
    r = json.loads(out)
    return {
        "tool": r["device"],
        "wall_ms_per_step": r["median_ms_per_step"],
        "cpu_ms_per_step": r["median_cpu_ms_per_step"],
        "command": "python3 bench/pytorch_mlp.py " + " ".join(cmd[2:]),
    }


def wgtrain_mnist(exe, data, threads, env):
    env = dict(env, WGTRAIN_CPU_THREADS=str(threads))
    cpus, walls = [], []
    for epochs in (1, 6):
        cmd = [exe, "train", str(data / "mnist_train.csv.gz"), "--target", "label", "--task",
               "classification", "--hidden", "100", "--batch-size", "200", "--epochs",
               str(epochs), "--optimizer", "adam", "--lr", "0.001", "--val-split", "0",
               "--device", "cpu", "--out", "/tmp/cpu_compare_mnist.safetensors"]
        out, cpu, _ = run(cmd, env)
        cpus.append(cpu)
        walls = [float(line.split()[-1].rstrip("s")) for line in out.splitlines()
                 if line.startswith("epoch")]
    return {
        "tool": f"wgtrain train ({threads} thread(s))",
        "wall_s_per_epoch": sum(walls) / len(walls),
        "cpu_s_per_epoch": (cpus[1] - cpus[0]) / 5,
        "command": "wgtrain train mnist_train.csv.gz --target label --task classification "
                   "--hidden 100 --batch-size 200 --epochs 1|6 --optimizer adam --lr 0.001 "
                   "--val-split 0 --device cpu",
    }


def sklearn_mnist(data, threads, env):
    code = (
        "import json, sys; sys.path.insert(0, %r); import sklearn_mnist as s; "
        "from pathlib import Path; print(json.dumps(s.run_sklearn(Path(%r), 5)))"
    ) % (str(ROOT / "bench"), str(data))
    env = dict(env, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    out, cpu, _ = run([sys.executable, "-c", code], env)
    r = json.loads(out.strip().splitlines()[-1])
    return {
        "tool": r["tool"] + f" ({threads} BLAS thread(s))",
        "wall_s_per_epoch": r["s_per_epoch"],
        "cpu_s_per_epoch": r["fit_cpu_s"] / r["epochs"],
        "test_accuracy": r["test_accuracy"],
        "command": f"bench/sklearn_mnist.py run_sklearn, 5 epochs, OPENBLAS_NUM_THREADS={threads}",
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wgtrain", default=str(ROOT / "target" / "release" / "wgtrain"))
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--skip-mnist", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    env = dict(os.environ)
    out = {"load_before": os.getloadavg()[0], "threads": a.threads,
           "date": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())}
    out["lecture"] = {"wgtrain": wgtrain_lecture(a.wgtrain, a.threads, env),
                      "pytorch": torch_lecture(a.threads, env)}
    w, t = out["lecture"]["wgtrain"], out["lecture"]["pytorch"]
    out["lecture"]["speedup_wall"] = t["wall_ms_per_step"] / w["wall_ms_per_step"]
    out["lecture"]["speedup_cpu"] = t["cpu_ms_per_step"] / w["cpu_ms_per_step"]
    if not a.skip_mnist:
        d = Path(a.data)
        out["mnist"] = {"wgtrain": wgtrain_mnist(a.wgtrain, d, a.threads, env),
                        "sklearn": sklearn_mnist(d, a.threads, env)}
        w, s = out["mnist"]["wgtrain"], out["mnist"]["sklearn"]
        out["mnist"]["speedup_wall"] = s["wall_s_per_epoch"] / w["wall_s_per_epoch"]
        out["mnist"]["speedup_cpu"] = s["cpu_s_per_epoch"] / w["cpu_s_per_epoch"]
    out["load_after"] = os.getloadavg()[0]
    print(json.dumps(out, indent=None if a.json else 2))


if __name__ == "__main__":
    main()
