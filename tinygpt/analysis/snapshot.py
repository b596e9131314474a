"""Head scores through training: a snapshot in every evaluation's ``metrics.jsonl`` record (read
back by ``inspect trajectory``), and when each head earned a role."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from tinygpt.analysis.capture import capture_attention
from tinygpt.analysis.labels import head_label, parse_head_label
from tinygpt.analysis.probes import (
    in_context_score,
    induction_loss,
    induction_probe,
    line_break_ids,
    probe_fits,
    repeat_loss,
)
from tinygpt.analysis.scores import BY_ROLE, ROLE_SCORES, SNAPSHOT_KEYS, all_head_scores, clears
from tinygpt.config.model import ModelConfig
from tinygpt.data.batches import BatchSampler
from tinygpt.model import GPT
from tinygpt.model.device import autocast
from tinygpt.training.trainer import Trainer, TrainerCallback

# Head snapshots are on by default while a probe's attention weights are at most this many.
AUTO_SNAPSHOT_WEIGHTS = 4_000_000


@torch.inference_mode()
def probe_snapshot(
    model: GPT, text_ids: list[int], windows: torch.Tensor, avoid: Sequence[int] = ()
) -> dict[str, Any]:
    """Head scores on a fixed probe, for a run's metrics at every evaluation (cheap). ``avoid``:
    token ids the induction probe never draws (line breaks)."""
    was_training = model.training
    model.eval()
    run = capture_attention(model, text_ids, [str(i) for i in text_ids])
    scores = all_head_scores(run.weights, text_ids)
    induction = induction_probe(model, avoid=avoid)
    heads = {}
    for s in scores:
        s.induction = float(induction.scores[s.layer, s.head])
        entry = {k: getattr(s, k) for k in SNAPSHOT_KEYS}
        heads[head_label(s.layer, s.head)] = {k: v for k, v in entry.items() if v is not None}
    chance = {**scores[0].chance, "induction": induction.chance}
    snapshot = {
        "heads": heads,
        "chance": {k: chance[k] for k in SNAPSHOT_KEYS if k in chance},
        "induction_loss": induction_loss(model, induction.length, avoid=avoid),
        "icl_score": in_context_score(model, windows),
    }
    repeated = repeat_loss(model, windows)
    if repeated is not None:
        snapshot["repeat_loss"] = repeated
    model.train(was_training)
    return snapshot


class HeadSnapshots(TrainerCallback):
    """Adds head scores on a fixed probe (the start of the validation text) to every evaluation,
    and says (a ``note`` event) when a head first earns a role, as it happens."""

    def __init__(self) -> None:
        self.announced: set[tuple[str, str]] = set()  # (head, role) already earned
        self.avoid: tuple[int, ...] = ()  # token ids the induction probe never draws

    def on_start(self, trainer: Trainer) -> None:
        # A resumed run has its earlier evaluations: a role earned then is not news now.
        self.announced = {(head, role) for head, role, *_ in first_crossings(trainer.metrics)}
        self.avoid = line_break_ids(trainer.corpus.tokenizer, trainer.eval_model.config.vocab_size)

    def on_evaluate(self, trainer: Trainer, record: dict[str, Any]) -> None:
        if not wants_snapshots(trainer.cfg.head_snapshots, trainer.run.model):
            return
        self._snapshot(trainer, record)
        for head, role, step, score in first_crossings([record]):
            if (head, role) in self.announced:
                continue
            self.announced.add((head, role))
            chance = record["chance"].get(BY_ROLE[role].key, 0.0)
            article = "an" if role[0] in "aeiou" else "a"
            trainer.emit(
                "note",
                f"{head} became {article} {role} head at step {step} ({score:.2f}, chance "
                f"{chance:.2f})",
            )

    def _snapshot(self, trainer: Trainer, record: dict[str, Any]) -> None:
        if not probe_fits(trainer.eval_model, self.avoid):
            return  # a context (or vocabulary) too small for the probes: no snapshot
        block = trainer.run.model.block_size
        probe = [int(i) for i in trainer.val_ids[:block]]
        sampler = BatchSampler(
            trainer.val_ids, block, min(8, trainer.cfg.batch_size), trainer.cfg.seed + 2
        )
        windows = sampler.rows(trainer.device)
        with autocast(trainer.device, trainer.dtype):
            record.update(probe_snapshot(trainer.eval_model, probe, windows, self.avoid))


def wants_snapshots(asked: bool | None, model: ModelConfig) -> bool:
    """``--head-snapshots`` when given, else on while a probe's attention weights stay under
    :data:`AUTO_SNAPSHOT_WEIGHTS` (induction preset: 131k; GPT-2 small: 151M)."""
    if asked is not None:
        return asked
    return model.n_layer * model.n_head * model.block_size**2 <= AUTO_SNAPSHOT_WEIGHTS


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


@dataclass(frozen=True)
class Crossing:
    """The first evaluation at which ``head`` earned ``role``: its score there and chance."""

    head: str
    role: str
    step: int
    score: float
    chance: float


@dataclass(frozen=True)
class LossDrop:
    """The steepest fall of a loss between two consecutive evaluations (per step)."""

    key: str  # the metrics field: repeat_loss, else induction_loss
    start_step: int
    end_step: int
    before: float
    after: float
    first: float  # the loss at the first evaluation, for scale
    last: float


@dataclass(frozen=True)
class PhaseChange:
    """The induction-head phase change in a run's evaluations: the repeat loss's steepest drop,
    the first previous-token head and the first induction head in a later layer (Olsson et al.
    2022: they appear together, as the loss drops)."""

    drop: LossDrop | None
    previous_token: Crossing | None
    induction: Crossing | None


def _layer(head: str) -> int:
    return parse_head_label(head)[0]


def steepest_drop(records: list[dict[str, Any]]) -> LossDrop | None:
    key = "repeat_loss" if any("repeat_loss" in r for r in records) else "induction_loss"
    points = [(int(r["step"]), float(r[key])) for r in records if key in r]
    pairs = [(a, b) for a, b in itertools.pairwise(points) if b[0] > a[0]]
    if not pairs:
        return None
    (s0, v0), (s1, v1) = max(pairs, key=lambda p: (p[0][1] - p[1][1]) / (p[1][0] - p[0][0]))
    if v1 >= v0:
        return None  # the loss never fell
    return LossDrop(key, s0, s1, v0, v1, points[0][1], points[-1][1])


def phase_change(records: list[dict[str, Any]]) -> PhaseChange:
    """The phase change of a run; parts it never reached are None."""
    chance_at = {int(r["step"]): r.get("chance", {}) for r in records}
    crossings = [
        Crossing(head, role, step, score, float(chance_at[step].get(BY_ROLE[role].key, 0.0)))
        for head, role, step, score in first_crossings(records)
    ]
    prev = _first([c for c in crossings if c.role == "previous-token"])
    later = [c for c in crossings if c.role == "induction"]
    if prev is not None and any(_layer(c.head) > _layer(prev.head) for c in later):
        later = [c for c in later if _layer(c.head) > _layer(prev.head)]
    return PhaseChange(steepest_drop(records), prev, _first(later))


def _first(crossings: list[Crossing]) -> Crossing | None:
    """The earliest crossing; among those at the same step, the highest score."""
    return min(crossings, key=lambda c: (c.step, -c.score), default=None)
