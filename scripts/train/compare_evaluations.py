"""Compares two evaluate.py --json results (same captions and seeds) attribute by attribute.

    compare_evaluations.py COMMITTED.json RETRAINED.json --images N

Within noise: |difference| <= 2 standard errors of a difference of two accuracies on N images each,
sqrt(p1(1-p1)/N + p2(1-p2)/N) (binomial, images treated as independent). Exit status 1 if any
attribute at any step count differs by more.
"""
from __future__ import annotations

import argparse
import json
import math
import sys


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("committed")
    p.add_argument("retrained")
    p.add_argument("--images", type=int, required=True, help="images per row (50 captions x seeds)")
    args = p.parse_args()
    a, b = (json.load(open(path)) for path in (args.committed, args.retrained))
    n = args.images
    worst = 0.0
    print(f"| steps | attribute | committed | retrained | difference | 2 s.e. (n = {n}) | within noise |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for steps in a:
        if steps not in b:
            sys.exit(f"error: {args.retrained} has no result at {steps} steps")
        for attribute, p1 in a[steps].items():
            p2 = b[steps][attribute]
            two_se = 2 * math.sqrt(p1 * (1 - p1) / n + p2 * (1 - p2) / n)
            diff = p2 - p1
            ok = abs(diff) <= max(two_se, 1 / n)
            worst = max(worst, abs(diff) / max(two_se, 1 / n))
            print(f"| {steps} | {attribute} | {p1:.3f} | {p2:.3f} | {diff:+.3f} | {two_se:.3f} | {'yes' if ok else 'NO'} |")
    print(f"largest difference: {worst:.2f} of its 2-s.e. band")
    sys.exit(0 if worst <= 1 else 1)


if __name__ == "__main__":
    main()
