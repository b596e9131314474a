"""Preparing a corpus larger than memory: throughput and peak memory at two sizes.

    python scripts/bench_prepare.py [--sizes-mb 100,1024] [--tokenizers char,gpt2]

Writes a synthetic corpus (tiny Shakespeare's lines shuffled and repeated, so the text is real
English-like text of any size) under --workdir, then tokenizes it with ``prepare_corpus`` in a
fresh process per run and reports MB/s and that process's peak resident memory. Flat memory
means the peak stays about the same while the corpus grows ten-fold.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchutil import machine

CHILD = """
import sys, time, resource
from pathlib import Path
from tinygpt.data.corpus import prepare_corpus
if sys.argv[2] == "none":  # the cost of the imports alone, for reference
    print(0, 0.0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    raise SystemExit
t0 = time.perf_counter()
corpus = prepare_corpus(sys.argv[1], sys.argv[2], cache_dir=Path(sys.argv[3]))
dt = time.perf_counter() - t0
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{len(corpus.ids)} {dt} {peak_mb}")
"""


def make_corpus(path: Path, size_mb: int, source: Path) -> None:
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    rng = random.Random(0)
    target = size_mb * 1024 * 1024
    written = 0
    with open(path, "w", encoding="utf-8") as out:
        while written < target:
            rng.shuffle(lines)
            block = "".join(lines)
            out.write(block)
            written += len(block.encode("utf-8"))


def main() -> None:
    default_source = Path(__file__).resolve().parents[2] / "shared/data/tinyshakespeare.txt"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", default="100,1024")
    parser.add_argument("--tokenizers", default="char,gpt2")
    parser.add_argument("--source", type=Path, default=default_source)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-prepare-"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    shared_cache = default_source.parents[1] / "tiktoken_cache"
    if "TIKTOKEN_CACHE_DIR" not in env and shared_cache.is_dir():
        env["TIKTOKEN_CACHE_DIR"] = str(shared_cache)  # offline machines: the shared encodings

    def child(*argv: str) -> list[str]:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, env=env
        )
        if out.returncode:
            sys.exit(f"preparing {argv} failed:\n{out.stderr[-2000:]}")
        return out.stdout.split()

    print(f"machine: {machine()}\nworkdir: {work}")
    print(
        f"peak RSS of a process that only imports tinygpt.data.corpus: "
        f"{float(child('-', 'none', '-')[2]):.0f}MB\n"
    )
    print(
        f"{'corpus':>8} {'tokenizer':<10} {'tokens':>14} {'seconds':>8} {'MB/s':>7} {'peak RSS':>9}"
    )
    for size in (int(s) for s in args.sizes_mb.split(",")):
        corpus = work / f"corpus-{size}mb.txt"
        if not corpus.exists():
            make_corpus(corpus, size, args.source)
        mb = corpus.stat().st_size / 2**20
        for tok in args.tokenizers.split(","):
            cache = work / f"cache-{size}-{tok}"
            shutil.rmtree(cache, ignore_errors=True)  # measure tokenizing, not the cache
            n, dt, peak = child(str(corpus), tok, str(cache))
            print(
                f"{mb:>6.0f}MB {tok:<10} {int(n):>14,} {float(dt):>8.1f} "
                f"{mb / float(dt):>7.1f} {float(peak):>7.0f}MB",
                flush=True,
            )
            shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
