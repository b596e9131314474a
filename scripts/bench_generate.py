"""Sampling speed, side by side in one process: tinygpt's sampler against nanoGPT's ``generate``,
the KV cache against none, N samples as one batch against one sample, and the per-token latency.

    python scripts/bench_generate.py [--nanogpt DIR] [--device auto] [--threads 1] [--repeats 3]

Without ``--checkpoint``, randomly initialised models are used (speed does not depend on the
weights): both recipes at the default shape on the CPU (4x128, block 128) or at nanoGPT's
shakespeare-char shape on a GPU (6x384, block 256). ``--nanogpt`` is a nanoGPT checkout (or any
folder with its ``model.py``); without it that comparison is skipped. Every figure is a median
of ``--repeats`` timed runs after a warm-up, the variants taking turns, and names the device,
dtype and threads it came from.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from benchutil import machine, sync

from tinygpt.config.model import ModelConfig
from tinygpt.config.sample import SampleConfig
from tinygpt.data.tokenizer import CharTokenizer
from tinygpt.model import GPT
from tinygpt.model.device import resolve_device
from tinygpt.recipe import RECIPES
from tinygpt.sampling import generate_text, make_generator, stream_tokens

VOCAB = 65  # Shakespeare's characters
SAMPLING = dict(temperature=0.8, top_k=200)  # nanoGPT's sample.py defaults


def side_by_side(runs: dict[str, Callable[[], object]], repeats: int, device: torch.device):
    """Median seconds of each run, taking turns (one warm-up each first)."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for fn in runs.values():
        fn()
    for _ in range(repeats):
        for name, fn in runs.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def recipe_model(arch: str, shape: tuple[int, int, int], block: int, device: torch.device) -> GPT:
    torch.manual_seed(0)
    layers, heads, width = shape
    switches = RECIPES[arch].model_options()
    cfg = ModelConfig(
        vocab_size=VOCAB, block_size=block, n_layer=layers, n_head=heads, n_embd=width, **switches
    )
    return GPT(cfg).to(device).eval()


def tokens_run(model: GPT, n: int, kv_cache: bool = True) -> Callable[[], None]:
    device = model.wte.weight.device
    cfg = SampleConfig(max_new_tokens=n, seed=0, kv_cache=kv_cache, **SAMPLING)

    def run() -> None:
        for _ in stream_tokens(model, [0], cfg, make_generator(device, 0)):
            pass

    return run


def nanogpt_run(folder: Path, model: GPT, n: int) -> Callable[[], None]:
    """nanoGPT's GPT at the same shape and its ``generate`` (no KV cache, by design)."""
    sys.path.insert(0, str(folder))
    from model import GPT as NanoGPT  # type: ignore[import-not-found]
    from model import GPTConfig  # type: ignore[import-not-found]

    c = model.config
    device = model.wte.weight.device
    nano = (
        NanoGPT(
            GPTConfig(
                n_layer=c.n_layer,
                n_head=c.n_head,
                n_embd=c.n_embd,
                block_size=c.block_size,
                vocab_size=VOCAB,
                bias=False,
                dropout=0.0,
            )
        )
        .to(device)
        .eval()
    )
    start = torch.zeros((1, 1), dtype=torch.long, device=device)

    @torch.no_grad()
    def run() -> None:
        nano.generate(start, n, **SAMPLING)

    return run


def header(model: GPT, device: torch.device) -> str:
    c = model.config
    dtype = str(model.wte.weight.dtype).removeprefix("torch.")
    return (
        f"{c.n_layer}x{c.n_embd}, {c.n_head} heads, block {c.block_size}; {device.type}, "
        f"{dtype}, {torch.get_num_threads()} threads"
    )


def against_nanogpt(models: dict[str, GPT], args: argparse.Namespace, device: torch.device):
    n = args.new_tokens
    first = next(iter(models.values()))
    print(f"\n(a) tokens/s, {n} new tokens, temperature 0.8, top-k 200 ({header(first, device)})")
    runs = {f"tinygpt {arch}": tokens_run(m, n) for arch, m in models.items()}
    if args.nanogpt:
        runs["nanoGPT generate"] = nanogpt_run(args.nanogpt, first, n)
    seconds = side_by_side(runs, args.repeats, device)
    base = seconds.get("nanoGPT generate")
    for name, s in seconds.items():
        ratio = f"  {base / s:5.2f}x nanoGPT" if base else ""
        print(f"  {name:<18} {n / s:>9,.0f} tok/s{ratio}")
    if "tinygpt modern" in seconds and "tinygpt gpt2" in seconds:
        print(
            f"  modern / gpt2 recipe: "
            f"{seconds['tinygpt gpt2'] / seconds['tinygpt modern']:.2f}x the speed"
        )


def cache_against_none(args: argparse.Namespace, device: torch.device) -> None:
    n, block = 240, 256
    for arch in args.arch.split(","):
        model = recipe_model(arch, args.shape, block, device)
        runs = {"cache": tokens_run(model, n), "none": tokens_run(model, n, kv_cache=False)}
        s = side_by_side(runs, args.repeats, device)
        print(
            f"\n(b) KV cache vs none, {n} new tokens, {arch} ({header(model, device)}): "
            f"{n / s['cache']:,.0f} vs {n / s['none']:,.0f} tok/s = {s['none'] / s['cache']:.2f}x"
        )


def batch_against_one(models: dict[str, GPT], args: argparse.Namespace, device: torch.device):
    n, rows = 200, 8
    tok = CharTokenizer([chr(32 + i) for i in range(VOCAB)])
    for arch, model in models.items():

        def run(samples: int, model: GPT = model) -> Callable[[], object]:
            cfg = SampleConfig(max_new_tokens=n, seed=0, num_samples=samples, **SAMPLING)
            return lambda: generate_text(model, tok, "A", cfg)

        s = side_by_side({"1": run(1), "8": run(rows)}, args.repeats, device)
        one, batch = n / s["1"], rows * n / s["8"]
        print(
            f"\n(c) --num-samples {rows} as one batch vs one sample, {n} new tokens, {arch} "
            f"({header(model, device)}): {batch:,.0f} vs {one:,.0f} tok/s = {batch / one:.2f}x"
        )


def latency(model: GPT, args: argparse.Namespace, device: torch.device) -> None:
    """Time of each step of one long cached run (medians per bucket): flat, with a refill
    every quarter-block past the block size."""
    c = model.config
    steps = 2 * c.block_size
    cfg = SampleConfig(max_new_tokens=steps, seed=0, **SAMPLING)
    print(f"\n(d) per-token latency with the KV cache, {steps} tokens ({header(model, device)}):")
    curves: list[list[float]] = []
    for _ in range(args.repeats):
        times, last = [], time.perf_counter()
        for _ in stream_tokens(model, [0], cfg, make_generator(device, 0)):
            sync(device)
            now = time.perf_counter()
            times.append(now - last)
            last = now
        curves.append(times)
    per_step = [statistics.median(col) for col in zip(*curves, strict=True)]
    bucket = max(1, steps // 8)
    print(f"  {'tokens':>12} {'median ms/token':>16} {'max ms/token':>13}")
    for start in range(0, steps, bucket):
        chunk = per_step[start : start + bucket]
        print(
            f"  {start:>5}-{start + len(chunk) - 1:<6} {statistics.median(chunk) * 1e3:>16.3f} "
            f"{max(chunk) * 1e3:>13.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="measure this model instead")
    parser.add_argument("--nanogpt", type=Path, default=None, help="folder with nanoGPT's model.py")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on the CPU")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--arch", default="modern,gpt2", help="recipes, without --checkpoint")
    parser.add_argument("--new-tokens", type=int, default=None, help="(a): 500 CPU, 1000 GPU")
    parser.add_argument("--only", default="abcd", help="which figures: letters of abcd")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    gpu = device.type == "cuda"
    args.shape = (6, 6, 384) if gpu else (4, 4, 128)
    args.new_tokens = args.new_tokens or (1000 if gpu else 500)
    print(f"machine: {machine()}")
    if args.checkpoint:
        from tinygpt.checkpoint.store import open_checkpoint

        models = {"checkpoint": open_checkpoint(args.checkpoint).load_model(device).eval()}
    else:
        block = 256 if gpu else 128
        models = {a: recipe_model(a, args.shape, block, device) for a in args.arch.split(",")}
    if "a" in args.only:
        against_nanogpt(models, args, device)
    if "b" in args.only and not args.checkpoint:
        cache_against_none(args, device)
    if "c" in args.only:
        batch_against_one(models, args, device)
    if "d" in args.only:
        latency(next(iter(models.values())), args, device)


if __name__ == "__main__":
    main()
