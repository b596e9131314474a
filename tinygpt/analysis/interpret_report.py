"""What each analysis hands to the views and to ``--json``: the numbers with the prompt's tokens
and a checkpoint's name, so a report renders without the model."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch

from tinygpt.analysis.attribution import LogitAttribution
from tinygpt.analysis.labels import head_label
from tinygpt.analysis.lens import LensRow
from tinygpt.analysis.patching import PatchingResult
from tinygpt.analysis.predictions import Prediction


@dataclass
class PredictionsReport:
    model: str
    tokens: list[str]
    predictions: list[Prediction]
    names: dict[int, str]  # token id -> its text, for every id shown
    notices: list[str] = field(default_factory=list)

    def prefix(self, end: int) -> PredictionsReport:
        """The report of the prompt's first ``end`` tokens (the last has no next token now)."""
        kept = self.predictions[:end]
        if kept:
            kept[-1] = replace(kept[-1], next_id=None, next_prob=None, loss=None)
        return replace(self, tokens=self.tokens[:end], predictions=kept)

    @property
    def mean_loss(self) -> float | None:
        losses = [p.loss for p in self.predictions if p.loss is not None]
        return sum(losses) / len(losses) if losses else None

    def to_dict(self) -> dict[str, Any]:
        rows = []
        for p in self.predictions:
            row = p.to_dict()
            for top in row["top"]:
                top["token"] = self.names[top["id"]]
            row["token"] = self.tokens[p.position]
            row["next"] = self.names.get(p.next_id) if p.next_id is not None else None
            rows.append(row)
        return {
            "model": self.model,
            "tokens": self.tokens,
            "mean_loss": self.mean_loss,
            "predictions": rows,
        }


@dataclass
class AttributionReport:
    """Direct logit attribution and the logit lens at one position, for one target token."""

    model: str
    tokens: list[str]
    position: int
    target: int
    target_text: str
    target_source: str  # "next" (the token that came next), "top" (the model's guess), "given"
    attribution: LogitAttribution
    lens: list[LensRow]
    names: dict[int, str]  # token id -> its text (the lens's top tokens)
    notices: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "tokens": self.tokens,
            "position": self.position,
            "target": {"id": self.target, "token": self.target_text, "source": self.target_source},
            "attribution": self.attribution.to_dict(),
            "lens": [{**asdict(r), "top_token": self.names[r.top_id]} for r in self.lens],
        }


@dataclass
class PatchingReport:
    model: str
    clean: list[str]
    corrupted: list[str]
    target_text: str
    layers: int
    heads: int
    result: PatchingResult
    notices: list[str] = field(default_factory=list)

    def grid(self) -> list[tuple[str, torch.Tensor]]:
        """The one-position-at-a-time rows, (label, restored by position): each head, then the
        residual stream into each layer."""
        r, layers = self.result, range(self.layers)
        heads = [
            (head_label(i, h), r.head_positions[i, h]) for i in layers for h in range(self.heads)
        ]
        return heads + [(f"resid L{i}", r.residual[i]) for i in layers]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "clean": self.clean,
            "corrupted": self.corrupted,
            "target": {"id": self.result.target, "token": self.target_text},
            **self.result.to_dict(),
        }
