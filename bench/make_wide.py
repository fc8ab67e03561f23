"""Write the loader benchmark's table: ROWS x COLS numeric CSV (last column `y`), seeded.

python3 bench/make_wide.py OUT.csv [ROWS] [COLS]   (defaults 300000 x 40, about 110 MB)
"""
import sys

import numpy as np

out = sys.argv[1]
rows = int(sys.argv[2]) if len(sys.argv) > 2 else 300_000
cols = int(sys.argv[3]) if len(sys.argv) > 3 else 40
rng = np.random.default_rng(0)
x = rng.standard_normal((rows, cols - 1)).astype(np.float32)
w = rng.standard_normal(cols - 1).astype(np.float32)
y = np.tanh(x) @ w + 0.1 * rng.standard_normal(rows).astype(np.float32)
header = ",".join([f"x{i}" for i in range(cols - 1)] + ["y"])
np.savetxt(out, np.column_stack([x, y]), fmt="%.6g", delimiter=",", header=header, comments="")
