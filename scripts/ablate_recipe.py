"""What each piece of the modern recipe buys: switch one off at a time, compare side by side.

    python scripts/ablate_recipe.py [--data FILE] [--steps 400]
                                    [--seeds 1337 1338] [--workers 2]

The reference is the speedrun's whole set (the modern recipe plus ReLU² and zero-initialised
projections); every variant sets one switch back to its gpt2 value; then tinygpt's default (the
reference without those two, which did not pay here) and the whole gpt2 recipe. All at nanoGPT's
CPU shape (4 layers, 4 heads, 128 wide, block 64, batch 12). Reported, per variant:

* ms/step: median over interleaved timed steps of every variant in this one process, on one
  thread like the training runs (so a busy machine slows them all alike), and its ratio to the
  default;
* val loss after ``--steps`` steps (equal steps; deterministic for a seed), mean over seeds;
* val loss at equal wall time: the variant runs ``steps x t_default / t_variant`` steps (the
  schedule spans them), so a slower piece pays for its cost per step.

Validation loss is the trainer's estimate on fixed batches (``--eval-batches``), the same for all.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from benchutil import machine

from tinygpt.training.trainer import Trainer, TrainerCallback

SHAPE = dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, tokenizer="char")
# The speedrun's set: tinygpt's default plus its two pieces that measured worse at this scale.
SPEEDRUN = {"activation": "relu2", "zero_init_proj": True}
# name -> options that differ from the speedrun's set
VARIANTS: dict[str, dict] = {
    "speedrun set (reference)": {},
    "- Muon (AdamW for all, lr 1e-3)": {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.1},
    "- Muon (AdamW for all, lr 3e-3)": {"optimizer": "adamw", "lr": 3e-3, "weight_decay": 0.1},
    "- RoPE (learned positions)": {"position": "learned"},
    "- QK-norm": {"qk_norm": False},
    "- ReLU² (GELU)": {"activation": "gelu"},
    "- RMSNorm (LayerNorm)": {"norm": "layernorm", "embed_norm": False},
    "- untied head (tied)": {"tie_embeddings": True},
    "- logit soft-cap": {"logit_softcap": 0.0},
    "- zero-init projections": {"zero_init_proj": False},
    "- WSD schedule (cosine)": {"schedule": "cosine"},
    "tinygpt default (GELU, GPT-2 init)": {"activation": "gelu", "zero_init_proj": False},
    "gpt2 recipe (all off)": {"arch": "gpt2"},
}
REFERENCE = "speedrun set (reference)"


def variant_options(name: str) -> tuple[dict, bool]:
    """The options of a variant, and whether its projections start at zero (not a tinygpt
    option: it did not pay, so the script applies it itself); a whole recipe (``arch``)
    replaces the speedrun's switches."""
    change = VARIANTS[name]
    options = {**SHAPE, **change} if "arch" in change else {**SHAPE, **SPEEDRUN, **change}
    return options, bool(options.pop("zero_init_proj", False))


def zero_init_projections(model: torch.nn.Module) -> None:
    """The speedrun's init: each block starts as the identity on the residual stream (output
    projections at zero) and an untied head predicts uniformly; Muon moves them off zero."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("c_proj.weight"):
                p.zero_()
        if model.lm_head.weight is not model.wte.weight:
            model.lm_head.weight.zero_()


class ZeroInit(TrainerCallback):
    """Applies :func:`zero_init_projections` to a fresh run's model."""

    def on_start(self, trainer: Trainer) -> None:
        if trainer.step == 0:
            zero_init_projections(trainer.model)


def time_steps(repeats: int, warmup: int) -> dict[str, float]:
    """Median seconds per training step of every variant, timed round-robin in this process."""
    from tinygpt.config.model import ModelConfig
    from tinygpt.config.train import TrainConfig
    from tinygpt.model import GPT
    from tinygpt.training.optim import build_optimizer
    from tinygpt.training.presets import resolve_options

    torch.set_num_threads(1)  # as each training worker runs
    setups = {}
    for name in VARIANTS:
        options, zero_init = variant_options(name)
        opts = resolve_options(None, None, options)
        model_fields = ModelConfig.__dataclass_fields__
        mcfg = ModelConfig(vocab_size=65, **{k: v for k, v in opts.items() if k in model_fields})
        tcfg = TrainConfig(**{k: v for k, v in opts.items() if k not in model_fields})
        torch.manual_seed(0)
        model = GPT(mcfg)
        if zero_init:
            zero_init_projections(model)
        setups[name] = (model, build_optimizer(model, tcfg, torch.device("cpu")))
    x = torch.randint(0, 65, (SHAPE["batch_size"], SHAPE["block_size"]))
    y = torch.randint(0, 65, x.shape)
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for i in range(warmup + repeats):
        for name, (model, opt) in setups.items():
            t0 = time.perf_counter()
            _, loss = model(x, y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad()
            if i >= warmup:
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def train_one(job: tuple[str, int, int, str, int, str]) -> tuple[str, int, int, float]:
    name, seed, steps, data, eval_batches, out_root = job
    torch.set_num_threads(1)  # one process per core
    import tinygpt

    options, zero_init = variant_options(name)
    options.update(seed=seed, max_steps=steps)
    options.update(eval_every=steps, eval_batches=eval_batches, device="cpu")
    slug = "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")
    out = Path(out_root) / f"{slug}-{seed}-{steps}"
    callbacks = [ZeroInit()] if zero_init else []
    result = tinygpt.train(data, out_dir=out, overwrite=True, callbacks=callbacks, **options)
    return name, seed, steps, result.metrics[-1]["val_loss"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        default=str(Path(__file__).resolve().parents[2] / "shared/data/tinyshakespeare.txt"),
    )
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1337, 1338])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--eval-batches", type=int, default=50)
    parser.add_argument("--timing-steps", type=int, default=15)
    parser.add_argument("--out", default="/tmp/tinygpt-ablation")
    parser.add_argument("--json", action="store_true", help="also print the raw figures as JSON")
    parser.add_argument(
        "--timing-only", action="store_true", help="only the ms/step column (no training)"
    )
    args = parser.parse_args()
    print(machine(), file=sys.stderr)

    per_step = time_steps(args.timing_steps, warmup=3)
    base = per_step[REFERENCE]
    if args.timing_only:
        print("| variant | ms/step | x ref |\n|---|---|---|")
        for name, t in per_step.items():
            print(f"| {name} | {t * 1e3:.1f} | {t / base:.2f} |")
        return
    equal_time = {name: max(1, round(args.steps * base / t)) for name, t in per_step.items()}
    jobs = {(n, s, args.steps) for n in VARIANTS for s in args.seeds}
    # A variant within 3% of the default's speed needs no second run: its equal-time run
    # is its equal-steps run.
    for name, steps in equal_time.items():
        if abs(steps - args.steps) > 0.03 * args.steps:
            jobs |= {(name, s, steps) for s in args.seeds}
        else:
            equal_time[name] = args.steps
    work = [(n, s, st, args.data, args.eval_batches, args.out) for n, s, st in sorted(jobs)]
    losses: dict[tuple[str, int], list[float]] = {}
    with ProcessPoolExecutor(args.workers) as pool:
        for name, _seed, steps, loss in pool.map(train_one, work):
            losses.setdefault((name, steps), []).append(loss)

    def mean(name: str, steps: int) -> float:
        return statistics.fmean(losses[(name, steps)])

    ref_steps = ref_time = mean(REFERENCE, args.steps)
    print(
        f"\n{args.steps} steps of {SHAPE['batch_size']}x{SHAPE['block_size']} tokens, "
        f"seeds {' '.join(map(str, args.seeds))}; val loss mean over seeds "
        f"(each seed in brackets)\n"
    )
    print("| variant | ms/step | x ref | val @ equal steps | Δ | val @ equal time | Δ |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for name in VARIANTS:
        eq_steps, eq_time = mean(name, args.steps), mean(name, equal_time[name])
        seeds_a = " ".join(f"{v:.3f}" for v in losses[(name, args.steps)])
        seeds_b = " ".join(f"{v:.3f}" for v in losses[(name, equal_time[name])])
        print(
            f"| {name} | {per_step[name] * 1e3:.1f} | {per_step[name] / base:.2f} | "
            f"{eq_steps:.4f} ({seeds_a}) | {eq_steps - ref_steps:+.4f} | "
            f"{eq_time:.4f} ({seeds_b}; {equal_time[name]}) | {eq_time - ref_time:+.4f} |"
        )
        rows.append(
            dict(
                variant=name,
                ms_per_step=per_step[name] * 1e3,
                val_equal_steps=losses[(name, args.steps)],
                val_equal_time=losses[(name, equal_time[name])],
                equal_time_steps=equal_time[name],
            )
        )
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
