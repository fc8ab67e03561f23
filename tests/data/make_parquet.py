"""Write the Parquet test files (pandas + pyarrow), seeded; rerun to regenerate.

python3 tests/data/make_parquet.py
- mixed.parquet + mixed.csv: the same 50 rows, one column per kind of number (f64, f32, int8,
  int64, uint16, bool) and a text class target `species`; 4 row groups (row_group_size 16),
  snappy (pandas' default).
- nulls.parquet: gzip, 3 row groups of 4, column `b` null on file row 7 (row group 1).
"""
import os

import numpy as np
import pandas as pd

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(7)
n = 50
df = pd.DataFrame(
    {
        "a": rng.standard_normal(n),
        "b": rng.standard_normal(n).astype(np.float32),
        "c": rng.integers(-100, 100, n).astype(np.int8),
        "d": rng.integers(-(10**12), 10**12, n).astype(np.int64),
        "e": rng.integers(0, 60000, n).astype(np.uint16),
        "f": rng.integers(0, 2, n).astype(bool),
        "species": rng.choice(["setosa", "versicolor", "virginica"], n),
    }
)
df.to_parquet(os.path.join(here, "mixed.parquet"), engine="pyarrow", index=False, row_group_size=16)
csv = df.copy()
csv["f"] = csv["f"].astype(int)
csv.to_csv(os.path.join(here, "mixed.csv"), index=False)

nulls = pd.DataFrame({"a": np.arange(12, dtype=np.float64) / 4, "b": np.arange(12, dtype=np.float64), "y": np.arange(12) % 3})
nulls.loc[6, "b"] = None
nulls.to_parquet(os.path.join(here, "nulls.parquet"), engine="pyarrow", index=False, row_group_size=4, compression="gzip")
