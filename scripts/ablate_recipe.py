"""What each piece of the recipe buys: change one thing at a time, compare side by side.

    python scripts/ablate_recipe.py [--table recipe|budget] [--steps 400 | --budget SECONDS]
                                    [--only NAME ...] [--seeds 1337 1338] [--workers 2]
                                    [--data FILE]

``--table recipe`` (the default): the reference is the speedrun's whole set (the modern recipe
plus ReLU² and zero-initialised projections); every variant sets one switch back to its gpt2
value; then tinygpt's default (the reference without those two, which did not pay here) and the
whole gpt2 recipe. All at nanoGPT's CPU shape (4 layers, 4 heads, 128 wide, block 64, batch 12).

``--table budget``: the search for the README's five minutes (issue 32). The reference is
tinygpt's default (4 layers x 128, block 128, batch 32, char); each variant changes one thing
(shape, rates, schedule, regularisation). With ``--budget 300`` each variant trains for the steps
it reaches in 300 seconds here (its ms/step timed with every thread, as the main job runs,
less the share its evaluations take), and the schedule spans those steps as ``--max-time`` plans
it: the comparison the main job makes. ``--only`` runs the named variants (and the reference).

Reported, per variant:

* ms/step: median over interleaved timed steps of every variant in this one process (one
  thread like the training workers; every thread with ``--budget``), and its ratio to the
  reference;
* val loss after ``--steps`` steps (equal steps; deterministic for a seed), mean over seeds;
* val loss at equal wall time: the variant runs ``steps x t_reference / t_variant`` steps (the
  schedule spans them), so a slower piece pays for its cost per step.

Validation loss is the trainer's estimate on fixed batches (``--eval-batches``), the same for all.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from benchutil import machine

from tinygpt.training.trainer import Trainer, TrainerCallback

# (float32, as the table in docs/benchmarks.md was measured before AMX was used)
SHAPE = dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, tokenizer="char")
SHAPE["dtype"] = "float32"
SHAPE["data_order"] = "random"  # the order the table was measured with
SHAPE["batch_warmup_steps"] = 0  # one update a step, as the table was measured (and timed)
# The speedrun's set: tinygpt's default plus its two pieces that measured worse at this scale.
SPEEDRUN = {"activation": "relu2", "zero_init_proj": True}
# name -> options that differ from the speedrun's set
RECIPE: dict[str, dict] = {
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
# One change each from tinygpt's default (the README's main job: 4x128, block 128, batch 32).
BUDGET: dict[str, dict] = {
    "default": {},  # --dtype auto: bf16 autocast on a CPU with AMX (this one), else float32
    "float32": {"dtype": "float32"},  # the default before AMX was used
    "float32, 3 layers": {"dtype": "float32", "n_layer": 3},
    "float32, 6 layers": {"dtype": "float32", "n_layer": 6},
    "float32, block 256, batch 16": {"dtype": "float32", "block_size": 256, "batch_size": 16},
    "float32, block 64, batch 64": {"dtype": "float32", "block_size": 64, "batch_size": 64},
    "float32, batch 16": {"dtype": "float32", "batch_size": 16},
    "3 layers": {"n_layer": 3},
    "width 192 (6 heads)": {"n_embd": 192, "n_head": 6},
    "width 256 (8 heads)": {"n_embd": 256, "n_head": 8},
    "6 layers x 192": {"n_layer": 6, "n_embd": 192, "n_head": 6},
    "block 256, batch 16": {"block_size": 256, "batch_size": 16},
    "matrix lr 0.03": {"matrix_lr": 0.03},
    "matrix lr 0.014": {"matrix_lr": 0.014},
    "decay over the last 60%": {"decay_fraction": 0.6},
    "embeddings and head lr x2": {"embed_lr": 0.02, "lr": 0.016},
    "embeddings and head lr x0.5": {"embed_lr": 0.005, "lr": 0.004},
    "weight decay 0.2": {"weight_decay": 0.2},
    "dropout 0.05": {"dropout": 0.05},
    "weight decay 0.05": {"weight_decay": 0.05},
    "random windows (the data order before)": {"data_order": "random"},
}
# Options that change the numbers but not the work of a step.
SAME_COST = {"lr", "matrix_lr", "embed_lr", "min_lr", "warmup_steps", "decay_fraction", "schedule"}
SAME_COST |= {"weight_decay", "momentum", "beta1", "beta2", "data_order"}
# table -> (its variants, the reference row)
TABLES: dict[str, tuple[dict[str, dict], str]] = {
    "recipe": (RECIPE, "speedrun set (reference)"),
    "budget": (BUDGET, "default"),
}
# Steps a --max-time run reached x the ms/step timed here, over its budget: 1,395 x 183 ms in
# 300 s on 2026-12-07 (the rest is evaluations, saves, data and start-up; docs/benchmarks.md).
STEP_SHARE = 0.88


def variant_options(table: str, name: str) -> tuple[dict, bool]:
    """The options of a variant, and whether its projections start at zero (not a tinygpt
    option: it did not pay, so the script applies it itself); a whole recipe (``arch``)
    replaces the speedrun's switches."""
    change = TABLES[table][0][name]
    if table == "budget":
        options = {"tokenizer": "char", **change}
    elif "arch" in change:
        options = {**SHAPE, **change}
    else:
        options = {**SHAPE, **SPEEDRUN, **change}
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


def time_steps(table: str, names: list[str], repeats: int, warmup: int, threads: int) -> dict:
    """Median seconds per training step of each variant, timed round-robin in this process."""
    from tinygpt.config.model import ModelConfig
    from tinygpt.config.train import TrainConfig
    from tinygpt.model import GPT
    from tinygpt.model.device import autocast, resolve_dtype
    from tinygpt.training.optim import build_optimizer
    from tinygpt.training.presets import resolve_options

    torch.set_num_threads(threads)
    setups = {}
    for name in names:
        options, zero_init = variant_options(table, name)
        opts = resolve_options(None, None, options)
        model_fields = ModelConfig.__dataclass_fields__
        mcfg = ModelConfig(vocab_size=65, **{k: v for k, v in opts.items() if k in model_fields})
        tcfg = TrainConfig(**{k: v for k, v in opts.items() if k not in model_fields})
        torch.manual_seed(0)
        model = GPT(mcfg)
        if zero_init:
            zero_init_projections(model)
        x = torch.randint(0, 65, (tcfg.batch_size, mcfg.block_size))
        cpu = torch.device("cpu")
        setups[name] = (model, build_optimizer(model, tcfg, cpu), x, resolve_dtype(tcfg.dtype, cpu))
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(warmup + repeats):
        for name, (model, opt, x, dtype) in setups.items():
            t0 = time.perf_counter()
            with autocast(torch.device("cpu"), dtype):
                _, loss = model(x, x)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad()
            if i >= warmup:
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def train_one(job: tuple[str, str, int, int, str, int, str]) -> tuple[str, int, int, float]:
    table, name, seed, steps, data, eval_batches, out_root = job
    torch.set_num_threads(1)  # one process per core
    import tinygpt

    options, zero_init = variant_options(table, name)
    options.update(seed=seed, max_steps=steps, eval_every=steps, eval_batches=eval_batches)
    options.update(device="cpu", head_snapshots=False, weight_history=False, eval_samples=False)
    slug = "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")
    out = Path(out_root) / f"{table}-{slug}-{seed}-{steps}"
    callbacks = [ZeroInit()] if zero_init else []
    result = tinygpt.train(data, out_dir=out, overwrite=True, callbacks=callbacks, **options)
    print(f"{name} seed {seed}, {steps} steps: {result.metrics[-1]['val_loss']:.4f}", flush=True)
    return name, seed, steps, result.metrics[-1]["val_loss"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        default=str(Path(__file__).resolve().parents[2] / "shared/data/tinyshakespeare.txt"),
    )
    parser.add_argument("--table", choices=sorted(TABLES), default="recipe")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument(
        "--budget", type=float, help="seconds: each variant trains the steps it reaches in them"
    )
    parser.add_argument(
        "--only", nargs="+", default=None, help="these variants (and the reference)"
    )
    parser.add_argument(
        "--reference-steps", type=int, help="--budget: the reference's steps (others in ratio)"
    )
    parser.add_argument(
        "--skip-reference", action="store_true", help="--budget: do not train the reference"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[1337, 1338])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--eval-batches", type=int, default=50)
    parser.add_argument("--timing-steps", type=int, default=15)
    parser.add_argument("--out", default="/tmp/tinygpt-ablation")
    parser.add_argument("--json", action="store_true", help="also print the raw figures as JSON")
    parser.add_argument(
        "--timing-only", action="store_true", help="only the ms/step column (no training)"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    variants, reference = TABLES[args.table]
    names = [n for n in variants if args.only is None or n in args.only or n == reference]
    threads = torch.get_num_threads() if args.budget else 1
    print(machine(), file=sys.stderr)
    per_step = time_steps(args.table, names, args.timing_steps, warmup=3, threads=threads)
    base = per_step[reference]
    for name in names:  # a change of rates or schedule costs nothing: no timing noise either
        if set(variants[name]) <= SAME_COST:
            per_step[name] = base
    if args.timing_only or args.budget:
        print(f"| variant | ms/step ({threads} threads) | x ref |\n|---|---|---|")
        for name, t in per_step.items():
            print(f"| {name} | {t * 1e3:.1f} | {t / base:.2f} |", flush=True)
        if args.timing_only:
            return
    if args.budget:
        ref_steps = args.reference_steps or round(args.budget * STEP_SHARE / base)
        steps_of = {n: round(ref_steps * base / t) for n, t in per_step.items()}
        if args.skip_reference:
            names.remove(reference)
        report_budget(args, names, reference, per_step, steps_of)
        return
    report_equal_steps(args, names, reference, per_step)


def run_jobs(args: argparse.Namespace, jobs: set[tuple[str, int, int]]) -> dict:
    """Val loss of each (variant, seed, steps), trained ``args.workers`` at a time."""
    work = [(args.table, n, s, st, args.data, args.eval_batches, args.out) for n, s, st in jobs]
    losses: dict[tuple[str, int], list[float]] = {}
    with ProcessPoolExecutor(args.workers) as pool:
        for name, _seed, steps, loss in pool.map(train_one, sorted(work)):
            losses.setdefault((name, steps), []).append(loss)
    return losses


def report_budget(
    args: argparse.Namespace, names: list[str], reference: str, per_step: dict, steps_of: dict
) -> None:
    losses = run_jobs(args, {(n, s, steps_of[n]) for n in names for s in args.seeds})
    ref_losses = losses.get((reference, steps_of[reference]))
    ref = statistics.fmean(ref_losses) if ref_losses else math.nan
    print(f"\n{args.budget:g} s each; val loss, mean over seeds {args.seeds} (each in brackets)\n")
    print("| variant | ms/step | steps | val | Δ |\n|---|---:|---:|---|---:|")
    for name in names:
        got = losses[(name, steps_of[name])]
        each = " ".join(f"{v:.4f}" for v in got)
        mean = statistics.fmean(got)
        print(
            f"| {name} | {per_step[name] * 1e3:.1f} | {steps_of[name]} | {mean:.4f} ({each}) "
            f"| {mean - ref:+.4f} |"
        )
    if args.json:
        print(json.dumps({f"{n}@{st}": v for (n, st), v in losses.items()}))


def report_equal_steps(
    args: argparse.Namespace, names: list[str], reference: str, per_step: dict
) -> None:
    base = per_step[reference]
    equal_time = {name: max(1, round(args.steps * base / t)) for name, t in per_step.items()}
    jobs = {(n, s, args.steps) for n in names for s in args.seeds}
    # A variant within 3% of the reference's speed needs no second run: its equal-time run
    # is its equal-steps run.
    for name, steps in equal_time.items():
        if abs(steps - args.steps) > 0.03 * args.steps:
            jobs |= {(name, s, steps) for s in args.seeds}
        else:
            equal_time[name] = args.steps
    losses = run_jobs(args, jobs)

    def mean(name: str, steps: int) -> float:
        return statistics.fmean(losses[(name, steps)])

    ref_steps = ref_time = mean(reference, args.steps)
    print(
        f"\n{args.steps} steps, seeds {' '.join(map(str, args.seeds))}; val loss mean over seeds "
        f"(each seed in brackets)\n"
    )
    print("| variant | ms/step | x ref | val @ equal steps | Δ | val @ equal time | Δ |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for name in names:
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
