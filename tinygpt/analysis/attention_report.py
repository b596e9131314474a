"""One prompt's attention report (weights, head scores, rollout, probes): what every output shows,
so ``--queries A:B`` is applied once, here. The prompt is cut after token B - 1 (exact: attention
is causal), queries before A are left out of every view, and the per-prompt scores are recomputed
over queries A..B-1; model-level scores (induction probe, OV circuits) carry over unchanged.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import torch

from tinygpt.analysis.capture import AttentionRun, capture_attention, rollout
from tinygpt.analysis.explain import Explanation
from tinygpt.analysis.inputs import resolve_position
from tinygpt.analysis.interpret_report import PredictionsReport
from tinygpt.analysis.labels import parse_head_spec
from tinygpt.analysis.probes import (
    InductionProbe,
    copying_scores,
    direct_copying_per_query,
    induction_probe,
)
from tinygpt.analysis.scores import HeadScores, all_head_scores
from tinygpt.errors import Opt, UsageError
from tinygpt.model import GPT


def parse_query_range(spec: str, t: int) -> tuple[int, int]:
    """``A:B`` (either side may be empty) as positions 0 <= A < B <= t."""
    try:
        start_s, end_s = spec.split(":")
        start, end = int(start_s or 0), int(end_s or t)
    except ValueError:
        raise UsageError(Opt("queries"), f" takes A:B (positions), got {spec!r}") from None
    check_query_range(start, end, t, spec)
    return start, end


def check_query_range(start: int, end: int, t: int, spec: str | None = None) -> None:
    """Queries ``start`` .. ``end - 1`` of a ``t``-token prompt; ``spec``: as the user wrote it."""
    if not 0 <= start < end <= t:
        shown = f"{start}:{end}" if spec is None else spec
        raise UsageError(Opt("queries", shown), f": need 0 <= A < B <= {t} (the prompt's tokens)")


@dataclass
class AttentionReport:
    """Everything ``inspect-attention`` shows about one prompt."""

    model: str  # "DIR (step N)"
    run: AttentionRun
    direct: torch.Tensor  # (n_layer, n_head, T): direct-path copying of each query
    induction: InductionProbe
    copying: torch.Tensor  # (n_layer, n_head): weights-only OV copying
    notices: list[str] = field(default_factory=list)
    first_query: int = 0  # queries before this one are left out (--queries A:B)
    explanation: Explanation | None = None  # --explain: one query of one head, step by step
    predictions: PredictionsReport | None = None  # what the model predicted at each position
    focus: tuple[int | None, int | None] = (None, None)  # the layer and head looked at

    @classmethod
    def build(
        cls,
        model: GPT,
        ids: list[int],
        tokens: list[str],
        name: str,
        notices: list[str] | None = None,
        induction_length: int | None = None,
        avoid: Sequence[int] = (),
    ) -> AttentionReport:
        """``avoid``: token ids the induction probe never draws (line breaks)."""
        run = capture_attention(model, ids, tokens)
        return cls(
            model=name,
            run=run,
            direct=direct_copying_per_query(model, run),
            induction=induction_probe(model, induction_length, avoid=avoid),
            copying=copying_scores(model),
            notices=list(notices or []),
        )

    @property
    def tokens(self) -> list[str]:
        """Every token of the (cut) prompt: the keys; queries are those from ``first_query``."""
        return self.run.tokens

    @property
    def weights(self) -> torch.Tensor:
        """(n_layer, n_head, T, T) weights of the cut prompt, rows before first_query included."""
        return self.run.weights

    @property
    def query_weights(self) -> torch.Tensor:
        """(n_layer, n_head, T - first_query, T): the rows of the queries in range."""
        return self.weights[..., self.first_query :, :]

    @property
    def rollout(self) -> torch.Tensor:
        """(T - first_query, T) attention rollout of the queries in range."""
        return rollout(self.weights)[self.first_query :]

    @cached_property
    def scores(self) -> list[HeadScores]:
        """Every head's scores, layer-major: per-prompt ones over the queries in range."""
        scores = all_head_scores(self.weights, self.run.ids, self.first_query)
        rows = self.direct[..., max(1, self.first_query) :]
        for s in scores:
            s.copying_direct = float(rows[s.layer, s.head].mean()) if rows.numel() else None
            s.induction = float(self.induction.scores[s.layer, s.head])
            s.chance["induction"] = self.induction.chance
            s.copying = float(self.copying[s.layer, s.head])
        return scores

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.direct.size(0)), int(self.direct.size(1))

    def cut(self, start: int, end: int) -> AttentionReport:
        """The report of queries ``start`` .. ``end - 1`` (positions in this report's prompt)."""
        check_query_range(start, end, len(self.tokens))
        return replace(
            self,
            run=self.run.prefix(end),
            direct=self.direct[..., :end],
            first_query=start,
            explanation=None,
            predictions=self.predictions.prefix(end) if self.predictions else None,
        )

    def check_focus(self, layer: int | None, head: int | None) -> None:
        n_layer, n_head = self.shape
        if head is not None and layer is None:  # a head number alone names no head
            raise UsageError(
                Opt("head", head), " needs ", Opt("layer"), f" (or name the head as L1H{head})"
            )
        if layer is not None and not 0 <= layer < n_layer:
            raise UsageError(Opt("layer"), f" must be in 0..{n_layer - 1}")
        if head is not None and not 0 <= head < n_head:
            raise UsageError(Opt("head"), f" must be in 0..{n_head - 1}")

    def named_head(self, label: str, layer: int | None) -> tuple[int, int]:
        """The layer and head of a label as the tables print it (L1H2), checked against this
        model's shape and against ``layer`` where that is given too."""
        try:
            named_layer, index = parse_head_spec(label)
        except ValueError:
            raise UsageError(
                Opt("head"),
                " takes a label such as L1H2, a number or a role (induction, "
                f"previous-token, ...), got {label!r}",
            ) from None
        n_layer, n_head = self.shape
        if layer is not None and layer != named_layer:
            raise UsageError(
                Opt("head", label), f" is in layer {named_layer}, not ", Opt("layer", layer)
            )
        if not (0 <= named_layer < n_layer and 0 <= index < n_head):
            raise UsageError(
                Opt("head", label),
                f" names no head of this model: L0H0 to L{n_layer - 1}H{n_head - 1}",
            )
        return named_layer, index

    def query_position(self, query: str | None) -> int:
        """A position or a token's text among the queries in range; None: the last query."""
        return resolve_position(self.tokens, query, "query", first=self.first_query)

    def to_dict(self, tensors: bool = False) -> dict[str, Any]:
        """The JSON document; ``attention`` is [layer][head][query - first_query][key]. With
        ``tensors`` the attention and rollout stay tensors (for the HTML page)."""

        def out(t: torch.Tensor) -> Any:
            return t if tensors else t.tolist()

        predicted = (
            {"predictions": self.predictions.to_dict()["predictions"]} if self.predictions else {}
        )
        explained = {"explanation": asdict(self.explanation)} if self.explanation else {}
        return {
            "model": self.model,
            "tokens": self.tokens,
            "ids": self.run.ids,
            "first_query": self.first_query,
            "attention": out(self.query_weights),
            "scores": [s.to_dict() for s in self.scores],
            "rollout": out(self.rollout),
            "induction": self.induction.to_dict(),
            "notices": self.notices,
            **predicted,
            **explained,  # --explain's steps, which the terminal view prints
        }

    def to_npz(self) -> bytes:
        """The raw tensors: attention and q of the queries in range, k and v of every key."""
        first, captures = self.first_query, self.run.captures
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            attention=self.query_weights.numpy(),
            q=np.stack([c.q[0, :, first:].numpy() for c in captures]),
            k=np.stack([c.k[0].numpy() for c in captures]),
            v=np.stack([c.v[0].numpy() for c in captures]),
            ids=np.asarray(self.run.ids),
            tokens=np.asarray(self.tokens),
            first_query=np.asarray(first),
        )
        return buf.getvalue()
