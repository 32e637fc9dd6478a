"""Where a py-spy raw profile's samples go: the top functions by self and by inclusive samples.

python -m bench.pyspy_top FILE [--top 25]
FILE is `py-spy record -f raw` output (one "frame;frame;... count" line per distinct stack).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r" \(([^)]*?):\d+\)")  # a frame's "(file.py:123)": the line number is dropped


def summarize(text: str) -> tuple[int, Counter[str], Counter[str]]:
    """(samples, self samples per function, inclusive samples per function)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_LINE.sub(r" (\1)", f) for f in stack.split(";")]
        own[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n
    return total, own, inclusive


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", type=Path)
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args()
    total, own, inclusive = summarize(args.file.read_text())
    for title, counts in (("self", own), ("inclusive", inclusive)):
        print(f"{title} samples of {total}:")
        for name, n in counts.most_common(args.top):
            print(f"  {100 * n / max(1, total):5.1f}%  {name}")


if __name__ == "__main__":
    main()
