"""Watching a run learn: a short sample at each evaluation, a note when it starts to overfit,
and ``--early-stop``, each a :class:`TrainerCallback` over plain functions of the records.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch

from tinygpt.config.sample import SampleConfig
from tinygpt.config.train import TrainConfig
from tinygpt.errors import Message, Opt, UsageError
from tinygpt.sampling import generate_text
from tinygpt.training.trainer import Trainer, TrainerCallback

SAMPLE_TOKENS = 64  # a line or two of text: enough to see words form, cheap on a CPU
SAMPLE_SEED = 0  # the same seed at every evaluation: the samples differ by the weights alone
OVERFIT_EVALS = 3  # validation loss rising this many evaluations in a row is a trend, not noise


def monitors(cfg: TrainConfig) -> tuple[list[TrainerCallback], list[TrainerCallback]]:
    """The callbacks ``cfg`` asks for: those that must see an evaluation before the display
    does (the sample it shows), and those after it (their notes follow its line)."""
    before: list[TrainerCallback] = [EvalSample()] if cfg.eval_samples else []
    after: list[TrainerCallback] = [OverfitWatch()]
    if cfg.early_stop is not None:
        after.append(EarlyStop(cfg.early_stop))
    return before, after


class EvalSample(TrainerCallback):
    """Adds ``sample``, a short seeded continuation of nothing, to each evaluation's record."""

    def on_evaluate(self, trainer: Trainer, record: dict[str, Any]) -> None:
        record["sample"] = eval_sample(trainer)


def eval_sample(trainer: Trainer, tokens: int = SAMPLE_TOKENS) -> str:
    """A sample from the model as it is now. It draws from its own seeded generator, so the
    run's random streams (and a resumed run's numbers) are the same with or without it."""
    cfg = SampleConfig(max_new_tokens=tokens, seed=SAMPLE_SEED, temperature=0.8, top_k=200)
    model = trainer.eval_model
    model.eval()
    try:
        with torch.inference_mode():
            result = generate_text(model, trainer.corpus.tokenizer, "", cfg, graph=False)
    finally:
        model.train()
    return result.samples[0]


def overfitting(records: Sequence[dict[str, Any]], evals: int = OVERFIT_EVALS) -> bool:
    """Whether validation loss rose at each of the last ``evals`` evaluations while training
    loss fell over the same span."""
    if len(records) <= evals:
        return False
    window = records[-evals - 1 :]
    val = [r["val_loss"] for r in window]
    rising = all(b > a for a, b in itertools.pairwise(val))
    return rising and window[-1]["train_loss"] < window[0]["train_loss"]


def evals_since_best(records: Sequence[dict[str, Any]]) -> int | None:
    """Evaluations after the last one that set a new best (None: none has yet)."""
    for back, record in enumerate(reversed(records)):
        if record.get("best"):
            return back
    return None


class OverfitWatch(TrainerCallback):
    """One note per session when :func:`overfitting` first holds."""

    def __init__(self) -> None:
        self.noted = False

    def on_evaluate(self, trainer: Trainer, record: dict[str, Any]) -> None:
        records = [*trainer.metrics, record]
        if self.noted or not overfitting(records):
            return
        self.noted = True
        first, last = records[-OVERFIT_EVALS - 1], records[-1]
        trainer.emit(
            "note",
            Message(
                f"validation loss rose at each of the last {OVERFIT_EVALS} evaluations "
                f"({first['val_loss']:.4f} -> {last['val_loss']:.4f}) while training loss fell "
                f"({first['train_loss']:.4f} -> {last['train_loss']:.4f}): the model is "
                f"overfitting; the best weights so far are kept in best.safetensors, and ",
                Opt("early_stop"),
                " ends such a run",
            ),
        )


class EarlyStop(TrainerCallback):
    """Ends the run once ``patience`` evaluations in a row set no new best, by making the
    current step the schedule's total (the loop then saves and ends as planned)."""

    def __init__(self, patience: int) -> None:
        self.patience = patience

    def on_start(self, trainer: Trainer) -> None:
        if trainer.dist.enabled:  # only rank 0 evaluates: the others could not know to stop
            raise UsageError(Opt("early_stop"), " works with one process only, not torchrun")

    def on_evaluate(self, trainer: Trainer, record: dict[str, Any]) -> None:
        records = [*trainer.metrics, record]
        since = evals_since_best(records)
        if since is None or since < self.patience or trainer.step >= trainer.state.total_steps:
            return
        best = records[-since - 1]
        trainer.state.total_steps = trainer.step
        trainer.emit(
            "note",
            f"early stop at step {trainer.step}: no new best validation loss in {since} "
            f"evaluations; the best ({best['val_loss']:.4f}, step {best['step']}) is in "
            f"best.safetensors (generate --best)",
        )
