"""Head scores through training: a snapshot at every evaluation, and when each head earned a role.

:class:`HeadSnapshots` attaches to the trainer's evaluation event and adds the snapshot to the
record that goes into ``metrics.jsonl``; ``inspect-attention --trajectory`` reads them back.
"""

from __future__ import annotations

from typing import Any

import torch

from tinygpt.attention.capture import capture_attention
from tinygpt.attention.labels import head_label
from tinygpt.attention.probes import (
    default_probe_length,
    in_context_score,
    induction_loss,
    induction_probe,
)
from tinygpt.attention.scores import ROLE_SCORES, SNAPSHOT_KEYS, all_head_scores, clears
from tinygpt.data import BatchSampler
from tinygpt.device import autocast
from tinygpt.model import GPT
from tinygpt.trainer import Trainer, TrainerCallback

# The induction probe repeats this many random tokens twice; with fewer there is no second-copy
# token left to predict (block size 1 or 2, or a one-character vocabulary).
MIN_PROBE_LENGTH = 2


@torch.inference_mode()
def probe_snapshot(model: GPT, text_ids: list[int], windows: torch.Tensor) -> dict[str, Any]:
    """Head scores on a fixed probe, for a run's metrics at every evaluation (cheap)."""
    was_training = model.training
    model.eval()
    run = capture_attention(model, text_ids, [str(i) for i in text_ids])
    scores = all_head_scores(run.weights, text_ids)
    induction = induction_probe(model)
    heads = {}
    for s in scores:
        s.induction = float(induction.scores[s.layer, s.head])
        entry = {k: getattr(s, k) for k in SNAPSHOT_KEYS}
        heads[head_label(s.layer, s.head)] = {k: v for k, v in entry.items() if v is not None}
    chance = {**scores[0].chance, "induction": induction.chance}
    snapshot = {
        "heads": heads,
        "chance": {k: chance[k] for k in SNAPSHOT_KEYS if k in chance},
        "induction_loss": induction_loss(model, induction.length),
        "icl_score": in_context_score(model, windows),
    }
    model.train(was_training)
    return snapshot


class HeadSnapshots(TrainerCallback):
    """Adds head scores on a fixed probe (the start of the validation text) to every evaluation."""

    def on_evaluate(self, trainer: Trainer, record: dict[str, Any]) -> None:
        if default_probe_length(trainer.model) < MIN_PROBE_LENGTH:
            return  # a context (or vocabulary) too small for the probes: no snapshot
        block = trainer.run.model.block_size
        probe = [int(i) for i in trainer.val_ids[:block]]
        sampler = BatchSampler(
            trainer.val_ids, block, min(8, trainer.cfg.batch_size), trainer.cfg.seed + 2
        )
        windows = sampler.rows(trainer.device)
        with autocast(trainer.device, trainer.dtype):
            record.update(probe_snapshot(trainer.model, probe, windows))


def first_crossings(metrics: list[dict[str, Any]]) -> list[tuple[str, str, int, float]]:
    """(head, role, step, score) for the first evaluation at which each head earns each role."""
    seen: set[tuple[str, str]] = set()
    out = []
    for record in metrics:
        chance = record.get("chance", {})
        for head, scores in record.get("heads", {}).items():
            for score in ROLE_SCORES:
                value = scores.get(score.key)
                if (head, score.role) in seen or not clears(
                    score, value, chance.get(score.key, 0.0)
                ):
                    continue
                seen.add((head, score.role))
                out.append((head, score.role, int(record["step"]), float(value)))
    return out
