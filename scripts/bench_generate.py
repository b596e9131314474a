"""Sampling speed with and without the KV cache, and the per-token latency curve.

    python scripts/bench_generate.py [--checkpoint DIR] [--repeats 3] [--arch modern,gpt2]

Without a checkpoint a randomly initialised model of the default char shape (block 256) is used,
once per recipe in ``--arch`` (default: both, so the modern recipe's sampling speed is measured
against the gpt2 one's): speed does not depend on the weights. Figures are medians of
``--repeats`` runs, measured side by side in one process.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from benchutil import machine, median_seconds, sync

from tinygpt.config import ARCHITECTURES, MODEL_SWITCHES, ModelConfig, SampleConfig
from tinygpt.device import resolve_device
from tinygpt.model import GPT
from tinygpt.sampling import stream_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lengths", default="1,256,1024")
    parser.add_argument("--arch", default="modern,gpt2", help="recipes, without --checkpoint")
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(f"machine: {machine()}")
    if args.checkpoint:
        from tinygpt.checkpoint import open_checkpoint

        measure(open_checkpoint(args.checkpoint).load_model(device), device, args)
        return
    for arch in args.arch.split(","):
        torch.manual_seed(0)
        switches = {k: ARCHITECTURES[arch][k] for k in MODEL_SWITCHES}
        cfg = ModelConfig(
            vocab_size=65, block_size=256, n_layer=4, n_head=4, n_embd=128, **switches
        )
        print(f"\n== {arch} recipe")
        measure(GPT(cfg).to(device), device, args)


def measure(model: GPT, device: torch.device, args: argparse.Namespace) -> None:
    model.eval()
    c = model.config
    print(
        f"model: {c.n_layer} layers, {c.n_head} heads, {c.n_embd} wide, block {c.block_size}, "
        f"{model.parameter_count().describe()}, device {device.type}"
    )
    print(f"\n{'new tokens':>10} {'KV cache tok/s':>15} {'no cache tok/s':>15} {'speed-up':>9}")
    for n in (int(x) for x in args.lengths.split(",")):
        rates = {}
        for cached in (True, False):
            cfg = SampleConfig(
                max_new_tokens=n, temperature=1.0, top_k=None, seed=0, kv_cache=cached
            )

            def run(cfg: SampleConfig = cfg) -> None:
                for _ in stream_tokens(model, [0], cfg, torch.Generator().manual_seed(0)):
                    pass

            rates[cached] = n / median_seconds(run, args.repeats, device)
        print(
            f"{n:>10} {rates[True]:>15,.0f} {rates[False]:>15,.0f} "
            f"{rates[True] / rates[False]:>8.1f}x"
        )

    # Per-token latency: time of each step of one long cached run, medians per bucket.
    steps = 2 * c.block_size
    cfg = SampleConfig(max_new_tokens=steps, temperature=1.0, top_k=None, seed=0)
    print(
        f"\nper-token latency with the KV cache ({steps} tokens; the context is cropped and the "
        f"cache refilled every {c.block_size - (3 * c.block_size) // 4} tokens past "
        f"{c.block_size}):"
    )
    curves: list[list[float]] = []
    for _ in range(args.repeats):
        times, last = [], time.perf_counter()
        for _ in stream_tokens(model, [0], cfg, torch.Generator().manual_seed(0)):
            sync(device)
            now = time.perf_counter()
            times.append(now - last)
            last = now
        curves.append(times)
    per_step = [statistics.median(col) for col in zip(*curves, strict=True)]
    bucket = max(1, steps // 8)
    print(f"{'tokens':>12} {'median ms/token':>16} {'max ms/token':>13}")
    for start in range(0, steps, bucket):
        chunk = per_step[start : start + bucket]
        print(
            f"{start:>5}-{start + len(chunk) - 1:<6} {statistics.median(chunk) * 1e3:>16.3f} "
            f"{max(chunk) * 1e3:>13.3f}"
        )


if __name__ == "__main__":
    main()
