"""Scoring a checkpoint on a text file: cross-entropy, perplexity and bits per byte.

The file is cut into consecutive windows of ``block_size`` tokens; every token after the first
is predicted once, from the tokens before it in its window. Bits per byte divides the total
loss (in bits) by the file's size in UTF-8 bytes, so models with different tokenizers compare.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from tinygpt.data import encode_text
from tinygpt.errors import UsageError
from tinygpt.model import GPT
from tinygpt.tokenizer import Tokenizer


@dataclass
class EvalResult:
    loss: float
    perplexity: float
    bits_per_byte: float
    tokens: int
    bytes: int

    def to_dict(self) -> dict:
        return asdict(self)


@torch.inference_mode()
def evaluate_text(
    model: GPT,
    tokenizer: Tokenizer,
    text: str,
    batch_size: int = 16,
    on_progress: Callable[[int, int], None] | None = None,
) -> EvalResult:
    """Score the whole text; ``on_progress(windows done, windows in all)`` after each batch
    (a megabyte takes most of a minute on a CPU: the CLI shows a bar)."""
    model.eval()
    device = model.wte.weight.device
    ids = encode_text(tokenizer, text).astype(np.int64)
    if len(ids) < 2:
        raise UsageError("the file is too short to evaluate: it needs at least 2 tokens")
    block = model.config.block_size
    starts = list(range(0, len(ids) - 1, block))
    total_nats, counted = 0.0, 0
    full = [s for s in starts if s + block + 1 <= len(ids)]
    report = on_progress or (lambda done, total: None)
    for i in range(0, len(full), batch_size):
        rows = np.stack([ids[s : s + block + 1] for s in full[i : i + batch_size]])
        total_nats += _sum_nll(model, torch.from_numpy(rows).to(device))
        counted += rows.shape[0] * block
        report(i + rows.shape[0], len(starts))
    for s in starts[len(full) :]:  # the short window at the end
        row = torch.from_numpy(ids[s:][None, :]).to(device)
        total_nats += _sum_nll(model, row)
        counted += row.size(1) - 1
        report(len(starts), len(starts))
    loss = total_nats / counted
    num_bytes = len(text.encode("utf-8"))
    return EvalResult(
        loss=loss,
        perplexity=math.exp(min(loss, 700.0)),
        bits_per_byte=total_nats / math.log(2) / num_bytes,
        tokens=len(ids),
        bytes=num_bytes,
    )


def token_losses(model: GPT, rows: torch.Tensor) -> torch.Tensor:
    """(B, T) cross-entropy of each next token, for rows of T + 1 token ids."""
    logits, _ = model(rows[:, :-1])
    losses = F.cross_entropy(logits.flatten(0, 1).float(), rows[:, 1:].flatten(), reduction="none")
    return losses.view(rows.size(0), -1)


def _sum_nll(model: GPT, rows: torch.Tensor) -> float:
    return float(token_losses(model, rows).sum())
