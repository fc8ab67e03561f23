"""The loader against pandas, side by side: N interleaved pairs of
`target/release/examples/load FILE --target T` and `bench/pandas_load.py FILE T`, each a fresh
process under /usr/bin/time for its peak memory; prints every pair and the median ratio.

cargo build --release --example load
python3 bench/load_compare.py FILE TARGET [PAIRS [LOADER FLAGS...]]
(MNIST: `python3 bench/load_compare.py mnist_train.csv.gz label 3 --task classification`)
"""
import re
import statistics
import subprocess
import sys


def run(cmd):
    out = subprocess.run(["/usr/bin/time", "-f", "maxrss %M"] + cmd, capture_output=True, text=True, check=True)
    text = out.stdout + out.stderr
    secs = float(re.search(r"([0-9.]+) s[ ,(]", text).group(1))
    rss = int(re.search(r"maxrss (\d+)", text).group(1)) / 1024
    return secs, rss


path, target = sys.argv[1], sys.argv[2]
pairs = int(sys.argv[3]) if len(sys.argv) > 3 else 7
extra = sys.argv[4:]
ratios = []
for i in range(pairs):
    w, wm = run(["target/release/examples/load", path, "--target", target] + extra)
    p, pm = run(["python3", "bench/pandas_load.py", path, target])
    ratios.append(w / p)
    print(f"pair {i + 1}: wgtrain {w:.3f} s {wm:.0f} MB | pandas {p:.3f} s {pm:.0f} MB | {w / p:.2f}x")
print(f"median ratio {statistics.median(ratios):.2f}x (min {min(ratios):.2f}, max {max(ratios):.2f})")
