"""Fails when a Rust function under a folder runs past a number of lines (from `fn` to its
closing brace), listing the offenders; prints the longest few either way.
Usage: longest_fn.py FOLDER [MAX_LINES=100]"""
import os, re, sys

def functions(folder):
    for root, _, files in os.walk(folder):
        for f in sorted(files):
            if not f.endswith(".rs"):
                continue
            p = os.path.join(root, f)
            lines = open(p, encoding="utf-8").read().splitlines()
            i = 0
            while i < len(lines):
                head = re.match(r"\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)", lines[i])
                if not head or lines[i].rstrip().endswith(";"):
                    i += 1
                    continue
                depth, j, opened = 0, i, False
                while j < len(lines):
                    s = re.sub(r'"(\\.|[^"\\])*"', '""', lines[j])
                    s = re.sub(r"//.*", "", s)
                    s = re.sub(r"'(\\.|[^'\\])'", "''", s)
                    if not opened and "{" not in s and s.rstrip().endswith(";"):
                        j = -1
                        break
                    depth += s.count("{") - s.count("}")
                    opened |= "{" in s
                    if opened and depth <= 0:
                        break
                    j += 1
                if j < 0:
                    i += 1
                    continue
                yield j - i + 1, f"{p}:{i + 1} {head.group(6)}"
                i = j + 1

folder = sys.argv[1]
limit = int(sys.argv[2]) if len(sys.argv) > 2 else 100
found = sorted(functions(folder), reverse=True)
for n, where in found[:5]:
    print(n, where)
over = [(n, w) for n, w in found if n > limit]
if over:
    print(f"{len(over)} function(s) over {limit} lines:", file=sys.stderr)
    for n, w in over:
        print(f"  {n} {w}", file=sys.stderr)
    sys.exit(1)
