#!/usr/bin/env python3
"""CPU milliseconds per training step of two wgtrain binaries on one core, for the before/after
of issue 12: each figure is the difference of two `wgtrain bench` runs (100 and 500 timed steps,
3 repeats) in user + system seconds, so start-up and data generation cancel and time given to
other jobs on a shared machine is not counted.

    python3 bench/cpu_before_after.py BEFORE_BINARY AFTER_BINARY

BEFORE runs with MATMUL_NUM_THREADS=1 (matrixmultiply), AFTER with WGTRAIN_CPU_THREADS=1.
"""

import json
import os
import resource
import subprocess
import sys


def cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def per_step(exe, layers, batch, env):
    spent = []
    for steps in (100, 500):
        c0 = cpu()
        subprocess.run([exe, "bench", "--layers", layers, "--batch", str(batch), "--device",
                        "cpu", "--steps", str(steps), "--repeats", "3", "--warmup", "10"],
                       check=True, capture_output=True, env=env)
        spent.append(cpu() - c0)
    return (spent[1] - spent[0]) * 1e3 / (3 * 400)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    before, after = sys.argv[1:]
    res = {"load": os.getloadavg()[0]}
    for name, exe, env in [
        ("before", before, dict(os.environ, MATMUL_NUM_THREADS="1")),
        ("after", after, dict(os.environ, WGTRAIN_CPU_THREADS="1")),
    ]:
        res[name] = {
            "mnist 784-100-10 @200 cpu ms/step": per_step(exe, "784,100,10", 200, env),
            "lecture 56-100-100-100-1 @256 cpu ms/step": per_step(exe, "56,100,100,100,1", 256, env),
        }
    res["load_after"] = os.getloadavg()[0]
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
