"""The loader's yardstick: pandas read_csv + astype(float32) (+ the target split off), timed.

python3 bench/pandas_load.py FILE TARGET [--engine pyarrow]
"""
import sys
import time

import pandas as pd

path, target = sys.argv[1], sys.argv[2]
engine = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--engine" else None
t0 = time.perf_counter()
df = pd.read_csv(path, engine=engine) if engine else pd.read_csv(path)
y = df.pop(target).to_numpy()
x = df.to_numpy(dtype="float32")
dt = time.perf_counter() - t0
print(f"{path}: {x.shape[0]} rows x {x.shape[1]} features, {dt:.3f} s (pandas {pd.__version__}, engine {engine or 'c'})")
