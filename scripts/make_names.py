"""Write a records corpus: N made-up names, one a line (for --records line tests and benchmarks).

    python scripts/make_names.py data/names.txt --count 2000 --seed 0

Names are 2-3 syllables from a fixed list, distinct, in a seeded random order: the same
arguments write the same file.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

SYLLABLES = [
    "an",
    "bel",
    "cor",
    "da",
    "el",
    "fin",
    "gar",
    "hal",
    "is",
    "jo",
    "ka",
    "lin",
    "mar",
    "nor",
    "ol",
    "pe",
    "qui",
    "ra",
    "sol",
    "ta",
    "ul",
    "vi",
    "wen",
    "xa",
    "yor",
    "zed",
]


def make_names(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    names: dict[str, None] = {}  # insertion-ordered set: the order depends on the seed only
    while len(names) < count:
        name = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))
        names[name.capitalize()] = None
    return list(names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.write_text("\n".join(make_names(args.count, args.seed)) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
