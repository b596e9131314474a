"""How long ``tinygpt --help`` takes to answer: the median wall time of fresh processes.

    python scripts/bench_startup.py [--runs 9] [--repo PATH] [-- ARGS...]

Each run starts a new interpreter (``python -m tinygpt --help``) with ``PYTHONPATH`` pointing at
``--repo`` (default: this checkout), so two checkouts can be compared on one machine. A CLI that
imports torch before it parses its arguments pays a second or more here on every command.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def time_once(repo: Path, args: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(repo)}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "tinygpt", *args], env=env, capture_output=True, cwd=repo
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(
            f"error: tinygpt {' '.join(args)} exited {proc.returncode}: {proc.stderr[-200:]!r}"
        )
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="timed runs (after one warm-up)")
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("args", nargs="*", default=["--help"], help="tinygpt's arguments")
    opts = parser.parse_args()
    if opts.runs < 1:
        parser.error("--runs must be at least 1")
    repo = opts.repo.resolve()
    time_once(repo, opts.args)  # warm the file cache, so the first run is not an outlier
    times = [time_once(repo, opts.args) for _ in range(opts.runs)]
    print(
        f"tinygpt {' '.join(opts.args)} ({repo}): median {statistics.median(times):.3f}s over "
        f"{opts.runs} runs (min {min(times):.3f}s, max {max(times):.3f}s)"
    )


if __name__ == "__main__":
    main()
