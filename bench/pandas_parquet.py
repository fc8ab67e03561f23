"""pandas read_parquet + astype(float32), timed: the yardstick for Parquet loads.

python3 bench/pandas_parquet.py FILE TARGET
"""
import sys
import time

import pandas as pd

path, target = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
df = pd.read_parquet(path)
y = df.pop(target).to_numpy()
x = df.to_numpy(dtype="float32")
dt = time.perf_counter() - t0
print(f"{path}: {x.shape[0]} rows x {x.shape[1]} features, {dt:.3f} s (pandas {pd.__version__}, pyarrow)")
