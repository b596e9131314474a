"""The learning-rate schedule: warmup, then a cosine decay or a stable phase and a linear decay;
every parameter group follows the same curve scaled to its own peak. ``horizon_free`` says up to
which step the rate does not depend on the total yet, so ``--max-time`` may re-plan it until then.
"""

from __future__ import annotations

import math

from tinygpt.config.train import TrainConfig


def lr_at(step: int, cfg: TrainConfig, total: int | None = None) -> float:
    """The ``lr`` group's rate at ``step`` (0-based) of a run of ``total`` steps (a group with
    peak ``p`` runs at ``lr_at(...) * p / cfg.lr``)."""
    total = cfg.max_steps if total is None else total
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "cosine":
        span = max(1, total - cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / span)
        return cfg.min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)
    decay_start = decay_start_step(cfg, total)
    if step < decay_start:
        return cfg.lr
    # Linear down to min_lr, reached at the last step (step total - 1).
    progress = min(1.0, (step - decay_start + 1) / max(1, total - decay_start))
    return cfg.min_lr + (1.0 - progress) * (cfg.lr - cfg.min_lr)


def decay_start_step(cfg: TrainConfig, total: int) -> int:
    """The first step of the wsd decay (never inside the warmup)."""
    return max(cfg.warmup_steps, total - round(cfg.decay_fraction * total))


def horizon_free(cfg: TrainConfig, total: int) -> int:
    """Steps before this one have rates that do not depend on ``total``."""
    if cfg.schedule == "cosine":
        return cfg.warmup_steps
    return decay_start_step(cfg, total)


def describe(cfg: TrainConfig) -> str:
    """The schedule in words, for the run header."""
    warmup = f"warmup {cfg.warmup_steps}, " if cfg.warmup_steps else ""
    if cfg.schedule == "cosine":
        shape = f"{warmup}cosine to {cfg.min_lr:g}"
    else:
        shape = (
            f"{warmup}stable, linear decay over the last {cfg.decay_fraction:.0%} to {cfg.min_lr:g}"
        )
    if cfg.max_time is None:
        return f"{shape} at step {cfg.max_steps}"
    cap = f" (at most {cfg.step_cap} steps)" if cfg.step_cap is not None else ""
    return f"{shape}, planned from the measured speed to end at the {cfg.max_time:g}s deadline{cap}"
