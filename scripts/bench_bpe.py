"""Learning --tokenizer bpe:N from the Shakespeare training split, and what N buys in bits/byte.

    python scripts/bench_bpe.py learn [--sizes 512,1024,2048,4096,8192]
    python scripts/bench_bpe.py runs [--tokenizers char,bpe:512,bpe:1024,bpe:2048] [--max-time 120]
    python scripts/bench_bpe.py records [--tokenizers char,bpe:512] [--max-time 60]

``learn``: seconds to learn each N from the first 90% of the text (median of 3, cache-free),
and tokens per byte on the last 10%. ``runs``: the README's training command with each
tokenizer under one --max-time budget, one run at a time, then ``tinygpt eval`` on the last 5%
of the text (held out by every tokenizer's split) in bits per byte, the unit that compares
tokenizers fairly. ``records``: a model per tokenizer on 2,000 made-up names (--records line),
then 200 samples: how many end at a record, and how many run across two records (hold a line
break), with and without --no-stop-at-record.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchutil import machine

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"


def learn(corpus: Path, sizes: list[int]) -> None:
    from tinygpt.data.bpe import learn_bpe
    from tinygpt.data.corpus import _training_text
    from tinygpt.data.sources import resolve_sources

    text = corpus.read_text(encoding="utf-8")
    held_out = text[int(len(text) * 0.9) :].encode()
    for size in sizes:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            tok = learn_bpe(_training_text(resolve_sources(corpus), "utf-8", 0.1, None), size)
            times.append(time.perf_counter() - t0)
        per_byte = len(tok.encode(held_out.decode())) / len(held_out)
        print(
            f"bpe:{size:<6} learn {statistics.median(times):.2f} s  "
            f"held-out tokens/byte {per_byte:.3f}",
            flush=True,
        )


def tinygpt(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``python -m tinygpt ARGS`` in a fresh process; a failure stops the benchmark."""
    command = [sys.executable, "-m", "tinygpt", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=True)


def one_thread(workdir: Path) -> dict[str, str]:
    """The environment of every run: one torch thread, a token cache of the benchmark's own."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "TINYGPT_CACHE_DIR": str(workdir / "cache")}


def runs(corpus: Path, tokenizers: list[str], max_time: float, workdir: Path) -> None:
    text = corpus.read_text(encoding="utf-8")
    held = workdir / "held_out.txt"
    held.write_text(text[int(len(text) * 0.95) :], encoding="utf-8")
    env = one_thread(workdir)
    for name in tokenizers:
        out = workdir / name.replace(":", "")
        t0 = time.perf_counter()
        train_args = ["--tokenizer", name, "--max-time", str(max_time), "--overwrite"]
        tinygpt("train", str(corpus), *train_args, "--out", str(out), env=env)
        wall = time.perf_counter() - t0
        last = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][-1]
        result = json.loads(tinygpt("eval", str(held), "-c", str(out), "--json", env=env).stdout)
        print(
            f"{name:<9} steps {last['step']:<5} val loss {last['val_loss']:.4f}  "
            f"held-out {result['bits_per_byte']:.4f} bits/byte  wall {wall:.0f} s  "
            f"load {os.getloadavg()[0]:.1f}",
            flush=True,
        )


def records(tokenizers: list[str], max_time: float, workdir: Path) -> None:
    from make_names import make_names

    names = workdir / "names.txt"
    names.write_text("\n".join(make_names(2000)) + "\n", encoding="utf-8")
    env = one_thread(workdir)
    for name in tokenizers:
        out = workdir / f"names-{name.replace(':', '')}"
        train_args = ["--records", "line", "--tokenizer", name, "--max-time", str(max_time)]
        shape = ["--block-size", "64", "--out", str(out), "--overwrite"]
        tinygpt("train", str(names), *train_args, *shape, env=env)
        for extra in ([], ["--no-stop-at-record"]):
            sample = ["--num-samples", "200", "--seed", "0", "--max-new-tokens", "40", "--json"]
            gen = tinygpt("generate", "-c", str(out), *sample, *extra, env=env)
            result = json.loads(gen.stdout)
            ends = [d["finish"] for d in result["sample_details"]]
            across = sum("\n" in s.strip("\n") for s in result["samples"])
            known = set(names.read_text().split())
            fresh = sum(s not in known for s in result["samples"] if "\n" not in s)
            print(
                f"{name:<9} {' '.join(extra) or 'default':<21} ended at a record "
                f"{ends.count('record')}/200, across two records {across}/200, "
                f"new names {fresh}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["learn", "runs", "records"])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--sizes", default="512,1024,2048,4096,8192")
    parser.add_argument("--tokenizers", default="char,bpe:512,bpe:1024,bpe:2048")
    parser.add_argument("--max-time", type=float, default=120)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    print(machine(), flush=True)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-bpe-"))
    if args.mode == "learn":
        learn(args.corpus, [int(s) for s in args.sizes.split(",")])
    elif args.mode == "records":
        records(args.tokenizers.split(","), args.max_time, workdir)
    else:
        runs(args.corpus, args.tokenizers.split(","), args.max_time, workdir)


if __name__ == "__main__":
    main()
