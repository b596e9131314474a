"""Training throughput: tokens/s (and MFU on CUDA) for a few model sizes, sdpa vs manual
attention, with and without torch.compile, side by side in one run.

    python scripts/bench_train.py [--sizes tiny,small,medium] [--compile] [--steps 10]

Each configuration runs tinygpt's real training step (``Trainer.train_step``) on random tokens;
speed does not depend on the data. Figures are medians over ``--steps`` steps after warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from benchutil import machine, sync

from tinygpt.config.model import ModelConfig
from tinygpt.config.run import RunConfig
from tinygpt.config.train import TrainConfig
from tinygpt.data.token_cache import Corpus
from tinygpt.data.tokenizer import CharTokenizer
from tinygpt.training.trainer import Trainer

SIZES = {
    "tiny": dict(n_layer=2, n_head=2, n_embd=64),
    "small": dict(n_layer=4, n_head=4, n_embd=128),  # tinygpt's default
    "medium": dict(n_layer=6, n_head=6, n_embd=384),  # nanoGPT's char-level Shakespeare model
}
# Dense bf16 peak FLOP/s of common GPUs, for model FLOPs utilisation.
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12}


def peak_flops() -> float | None:
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(0)
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def measure(size: str, attention: str, compile_: bool, args: argparse.Namespace) -> dict:
    shape = SIZES[size]
    mcfg = ModelConfig(vocab_size=65, block_size=args.block_size, **shape)
    tcfg = TrainConfig(
        batch_size=args.batch_size,
        attention=attention,
        compile=compile_,
        device=args.device,
        dtype=args.dtype,
        warmup_steps=1,
        batch_warmup_steps=0,  # a plain step: one update on the whole batch
        max_steps=10**6,
    )
    ids = np.random.default_rng(0).integers(0, 65, 200_000).astype(np.uint16)
    corpus = Corpus(CharTokenizer([chr(32 + i) for i in range(65)]), ids, len(ids))
    trainer = Trainer(RunConfig(mcfg, tcfg), corpus)
    t0 = time.perf_counter()
    trainer.train_step()
    sync(trainer.device)
    first = time.perf_counter() - t0
    for _ in range(2):
        trainer.train_step()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        trainer.train_step()
        sync(trainer.device)
        times.append(time.perf_counter() - t0)
    dt = statistics.median(times)
    tokens = args.batch_size * args.block_size
    count = trainer.model.parameter_count()
    n_params = count.total - count.position  # the matmul weights (and embeddings) only
    # 6N per token for the matmuls, plus attention's 12 * layers * T * width (PaLM appendix B)
    flops_per_token = 6 * n_params + 12 * mcfg.n_layer * mcfg.block_size * mcfg.n_embd
    peak = peak_flops()
    return {
        "params": n_params,
        "tok_s": tokens / dt,
        "first_step_s": first,
        "mfu": flops_per_token * tokens / dt / peak if peak else None,
        "dtype": str(trainer.dtype).removeprefix("torch."),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="tiny,small,medium")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--block-size", type=int, default=None)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile")
    args = parser.parse_args()
    cuda = torch.cuda.is_available() and args.device in ("auto", "cuda")
    args.batch_size = args.batch_size or (64 if cuda else 8)
    args.block_size = args.block_size or (256 if cuda else 128)
    print(f"machine: {machine()}")
    print(f"batch {args.batch_size} x block {args.block_size}, median of {args.steps} steps\n")
    header = (
        f"{'size':<7} {'params':>8} {'attention':<9} {'compile':<7} {'dtype':<8} "
        f"{'tok/s':>10} {'1st step':>9} {'MFU':>6}"
    )
    print(header)
    for size in args.sizes.split(","):
        for compile_ in (False, True) if args.compile else (False,):
            for attention in ("sdpa", "manual"):
                r = measure(size, attention, compile_, args)
                mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "-"
                print(
                    f"{size:<7} {r['params'] / 1e6:>7.2f}M {attention:<9} "
                    f"{'yes' if compile_ else 'no':<7} {r['dtype']:<8} {r['tok_s']:>10,.0f} "
                    f"{r['first_step_s']:>8.2f}s {mfu:>6}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
