#!/usr/bin/env python3
"""The PyTorch eager twin of `wgtrain bench`: the same MLP, batch, optimizer, random data and
loss, timed the same way (warm-up steps, then `repeats` runs of `steps` steps, each ended by a
readback of the loss after the device has finished; the median run is reported).

    python3 bench/pytorch_mlp.py --layers 56,100,100,100,1 --batch 256 [--optimizer adam]
        [--steps 200] [--warmup 20] [--repeats 5] [--task regression|classification] [--json]
    python3 bench/pytorch_mlp.py --matmul 4096 [--steps 10] [--warmup 3] [--repeats 5] [--json]

fp32 throughout, TF32 off. Device: cuda if available, else cpu (or --device).
"""

import argparse
import json
import statistics
import sys
import time

import torch

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def describe(dev):
    if dev.type == "cuda":
        return f"{torch.cuda.get_device_name(dev)} (torch {torch.__version__} cuda)"
    return f"cpu (torch {torch.__version__}, {torch.get_num_threads()} threads)"


def bench_train(a, dev):
    sizes = [int(s) for s in a.layers.split(",")]
    if len(sizes) < 2 or min(sizes) < 1:
        sys.exit("--layers: give widths like 56,100,1")
    d, n_out = sizes[0], sizes[-1]
    task = a.task or ("regression" if n_out == 1 else "classification")
    steps = a.steps if a.steps is not None else 200
    warmup = a.warmup if a.warmup is not None else 20

    # Same construction as wgtrain: rows = batch x batches, uploaded once; each pass over
    # them takes batches through a fresh random permutation (gathered on the device).
    g = torch.Generator().manual_seed(a.seed)
    rows = a.batch * a.batches
    x = torch.randn(rows, d, generator=g).to(dev)
    if task == "regression":
        y = torch.randn(rows, n_out, generator=g).to(dev)
        loss_fn = torch.nn.MSELoss()
    else:
        y = torch.randint(0, n_out, (rows,), generator=g).to(dev)
        loss_fn = torch.nn.CrossEntropyLoss()

    mods = []
    for i in range(len(sizes) - 1):
        mods.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i + 2 < len(sizes):
            mods.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*mods).to(dev)
    opt = {
        # capturable: Adam's step count stays on the device, as CUDA graphs need.
        "adam": lambda p: torch.optim.Adam(p, lr=a.lr, capturable=a.cuda_graph),
        "sgd": lambda p: torch.optim.SGD(p, lr=a.lr),
        "momentum": lambda p: torch.optim.SGD(p, lr=a.lr, momentum=0.9),
    }[a.optimizer](model.parameters())

    state = {"order": None, "next": 0}

    def batch_idx():
        if state["next"] == 0:
            state["order"] = torch.randperm(rows, device=dev)
        start = state["next"] * a.batch
        state["next"] = (state["next"] + 1) % a.batches
        return state["order"][start : start + a.batch]

    def step():
        idx = batch_idx()
        xb, yb = x[idx], y[idx]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        return loss

    if a.cuda_graph:
        step = graphed_step(a, dev, model, opt, loss_fn, x, y, batch_idx)

    loss = None
    for _ in range(warmup):
        loss = step()
    if loss is not None:
        loss.item()
    sync(dev)

    runs, cpu_runs = [], []
    for _ in range(a.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(steps):
            loss = step()
        sync(dev)
        last = loss.item()  # the readback
        runs.append((time.perf_counter() - t0) * 1e3 / steps)
        # CPU seconds of every thread of the process: on a busy shared machine this does not
        # count time the scheduler gave to other jobs.
        cpu_runs.append((time.process_time() - c0) * 1e3 / steps)
    ms = statistics.median(runs)
    sps = 1e3 / ms
    out = {
        "mode": "train",
        "framework": "pytorch-cuda-graph" if a.cuda_graph else "pytorch-eager",
        "device": describe(dev),
        "layers": sizes,
        "batch": a.batch,
        "optimizer": a.optimizer,
        "task": task,
        "loss": "mse" if task == "regression" else "ce",
        "steps": steps,
        "warmup": warmup,
        "repeats": a.repeats,
        "steps_per_s": sps,
        "samples_per_s": sps * a.batch,
        "median_ms_per_step": ms,
        "median_cpu_ms_per_step": statistics.median(cpu_runs),
        "runs": runs,
        "last_batch_loss": last,
    }
    if a.json:
        print(json.dumps(out))
    else:
        print(
            f"pytorch train: mlp {'-'.join(map(str, sizes))} {task} ({out['loss']}), "
            f"{a.optimizer} batch {a.batch} on {out['device']}"
        )
        print(
            f"  {warmup} warm-up steps, {a.repeats} runs of {steps} steps, ms/step: "
            + " ".join(f"{r:.3f}" for r in runs)
        )
        print(
            f"  median {ms:.3f} ms/step = {sps:.1f} steps/s = {sps * a.batch:.0f} samples/s "
            f"(last batch loss {last:.4f})"
        )


def graphed_step(a, dev, model, opt, loss_fn, x, y, batch_idx):
    """One whole training step (gather, forward, loss, backward, optimizer) captured as a CUDA
    graph and replayed: the launch cost PyTorch eager pays per op, paid once per step. The
    batch's indices are copied into a static buffer before each replay."""
    if dev.type != "cuda":
        sys.exit("--cuda-graph needs a CUDA device")
    static_idx = batch_idx().clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):  # warm-up on a side stream, as the CUDA graphs notes ask
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x[static_idx]), y[static_idx]).backward()
            opt.step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        static_loss = loss_fn(model(x[static_idx]), y[static_idx])
        static_loss.backward()
        opt.step()

    def step():
        static_idx.copy_(batch_idx())
        graph.replay()
        return static_loss

    return step


def bench_matmul(a, dev):
    n = a.matmul
    iters = a.steps if a.steps is not None else 10
    warmup = a.warmup if a.warmup is not None else 3
    g = torch.Generator().manual_seed(a.seed)
    x = torch.randn(n, n, generator=g).to(dev)
    w = torch.randn(n, n, generator=g).to(dev)
    # y = x . w^T, the layout of wgtrain's matmul_nt.
    for _ in range(warmup):
        y = torch.mm(x, w.t())
    sync(dev)
    runs = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        for _ in range(iters):
            y = torch.mm(x, w.t())
        sync(dev)
        y[0, 0].item()
        runs.append((time.perf_counter() - t0) * 1e3 / iters)
    ms = statistics.median(runs)
    gflops = 2.0 * n * n * n / (ms * 1e-3) / 1e9
    out = {
        "mode": "matmul",
        "framework": "pytorch",
        "device": describe(dev),
        "m": n,
        "n": n,
        "k": n,
        "iters": iters,
        "warmup": warmup,
        "repeats": a.repeats,
        "gflops": gflops,
        "median_ms": ms,
        "runs": runs,
    }
    if a.json:
        print(json.dumps(out))
    else:
        print(f"pytorch mm: M = N = K = {n} on {out['device']}")
        print(
            f"  {warmup} warm-up products, {a.repeats} runs of {iters}, ms/product: "
            + " ".join(f"{r:.3f}" for r in runs)
        )
        print(f"  median {ms:.3f} ms = {gflops:.1f} GFLOP/s")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--layers")
    p.add_argument("--matmul", type=int)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--optimizer", default="adam", choices=["adam", "sgd", "momentum"])
    p.add_argument("--lr", type=float, default=0.001)
    p.add_argument("--task", choices=["regression", "classification"])
    p.add_argument("--steps", type=int)
    p.add_argument("--warmup", type=int)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batches", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["cuda", "cpu"])
    p.add_argument("--threads", type=int, help="torch.set_num_threads (CPU)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--cuda-graph", action="store_true", help="replay each step as a CUDA graph")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(a.seed)
    if (a.matmul is None) == (a.layers is None):
        sys.exit("give exactly one of --layers or --matmul")
    if a.matmul is not None:
        bench_matmul(a, dev)
    else:
        bench_train(a, dev)


if __name__ == "__main__":
    main()
