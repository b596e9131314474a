"""Heads named by their role (``--head induction``: the strongest induction head, measured on the
repeated-random-tokens probe): which head that is depends on the run, so a role works with any
checkpoint where a fixed label (L1H2) would not."""

from __future__ import annotations

import torch

from tinygpt.analysis.capture import capture_attention
from tinygpt.analysis.labels import head_label
from tinygpt.analysis.probes import (
    default_probe_length,
    induction_probe,
    induction_sequence,
    line_break_ids,
)
from tinygpt.analysis.scores import BY_ROLE, all_head_scores
from tinygpt.data.tokenizer import Tokenizer
from tinygpt.errors import UsageError
from tinygpt.model import GPT


def is_role(spec: str) -> bool:
    return spec.strip().lower() in BY_ROLE


@torch.inference_mode()
def strongest(
    model: GPT, tokenizer: Tokenizer, role: str, layer: int | None = None
) -> tuple[int, int, float]:
    """(layer, head, score) of the head with the highest ``role`` score on the probe (in
    ``layer`` when given)."""
    role = role.strip().lower()
    avoid = line_break_ids(tokenizer, model.config.vocab_size)
    if role == "induction":  # the probe every report and snapshot scores induction on
        table = induction_probe(model, avoid=avoid).scores
    else:
        ids = induction_sequence(
            model.config.vocab_size, default_probe_length(model, avoid), avoid=avoid
        )
        weights = capture_attention(model, ids, [str(i) for i in ids]).weights
        key = BY_ROLE[role].key
        scores = all_head_scores(weights, ids)
        table = torch.tensor([getattr(s, key) or 0.0 for s in scores]).view(weights.shape[:2])
    if layer is not None:
        if not 0 <= layer < table.size(0):
            raise UsageError(f"--layer {layer}: the model has layers 0..{table.size(0) - 1}")
        table = torch.where(torch.arange(table.size(0))[:, None] == layer, table, -torch.inf)
    flat = int(table.argmax())
    found_layer, head = divmod(flat, table.size(1))
    return found_layer, head, float(table[found_layer, head])


def role_notice(role: str, layer: int, head: int, score: float) -> str:
    return (
        f"--head {role.strip().lower()}: {head_label(layer, head)}, the strongest on the "
        f"repeated-random-tokens probe ({score:.2f})"
    )
