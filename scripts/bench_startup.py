"""How long a tinygpt command takes from a fresh process: the median wall time of runs.

    python scripts/bench_startup.py [--runs 9] [--repo PATH] [--against PATH] [-- ARGS...]

Each run starts a new interpreter (``python -m tinygpt ARGS``, default ``--help``) with
``PYTHONPATH`` pointing at ``--repo`` (default: this checkout). ``--against`` names a second
checkout (an older commit's worktree): the two then run alternately, so both see the same
machine, and the ratio is printed. A CLI that imports torch before it parses its arguments pays
a second or more here on every command; a command that builds an optimizer or checks a weights
file used to import torch's compiler stack too. For example, start-up plus one training step:

    python scripts/bench_startup.py --against ../old -- train data/tinyshakespeare.txt \
        --tokenizer char --max-steps 1 --eval-batches 1 --no-eval-samples --overwrite --out /tmp/s
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
    parser.add_argument("--against", type=Path, default=None, help="a second checkout")
    parser.add_argument("args", nargs="*", default=["--help"], help="tinygpt's arguments")
    opts = parser.parse_args()
    if opts.runs < 1:
        parser.error("--runs must be at least 1")
    repos = [opts.repo.resolve()] + ([opts.against.resolve()] if opts.against else [])
    for repo in repos:
        time_once(repo, opts.args)  # warm the file cache, so the first run is not an outlier
    times: dict[Path, list[float]] = {repo: [] for repo in repos}
    for _ in range(opts.runs):
        for repo in repos:
            times[repo].append(time_once(repo, opts.args))
    print(f"tinygpt {' '.join(opts.args)}")
    for repo, t in times.items():
        print(
            f"  {repo}: median {statistics.median(t):.3f}s over {opts.runs} runs "
            f"(min {min(t):.3f}s, max {max(t):.3f}s)"
        )
    if opts.against:
        ratio = statistics.median(times[repos[0]]) / statistics.median(times[repos[1]])
        print(f"  ratio {ratio:.2f} ({repos[0].name} / {repos[1].name})")


if __name__ == "__main__":
    main()
