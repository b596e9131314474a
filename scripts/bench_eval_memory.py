"""Peak memory of ``tinygpt eval`` against the size of the text it scores.

    python scripts/bench_eval_memory.py -c CHECKPOINT [--sizes 1 2 5] [--source FILE]

For each size (MB), writes that much text (``--source`` repeated; default tiny Shakespeare
from ../shared or data/), runs ``tinygpt eval`` on it in a fresh process and prints the
process's peak resident memory (``ru_maxrss`` of the child). A flat line in the size means the
text is scored as it should be: per-token memory is the ids and losses (12 bytes a token).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def peak_mb(args: list[str]) -> tuple[float, float]:
    """Peak RSS (MB) and seconds of ``python -m tinygpt ARGS`` in a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tinygpt", *args], check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(after, before) / 1024, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--checkpoint", required=True)
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 2, 5])
    default = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
    parser.add_argument("--source", type=Path, default=default)
    args = parser.parse_args()
    text = args.source.read_text()
    with tempfile.TemporaryDirectory() as tmp:
        for size in sorted(args.sizes):  # ru_maxrss of children only grows: smallest first
            path = Path(tmp) / f"{size}mb.txt"
            need = int(size * 1e6)
            path.write_text((text * (need // len(text) + 1))[:need])
            mb, seconds = peak_mb(["eval", str(path), "-c", args.checkpoint, "--device", "cpu"])
            print(f"{size:g} MB of text: peak {mb:,.0f} MB resident, {seconds:.0f} s")


if __name__ == "__main__":
    main()
