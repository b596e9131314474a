"""Scoring a checkpoint on a text file: cross-entropy, perplexity and bits per byte (the loss in
bits over the file's UTF-8 bytes, so different tokenizers compare). Consecutive windows of
``block_size`` tokens predict every token after the first once."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields

import numpy as np
import torch
import torch.nn.functional as F

from tinygpt.data.corpus import encode_text
from tinygpt.data.tokenizer import Tokenizer
from tinygpt.errors import UsageError, not_finite
from tinygpt.model import GPT

SPAN_TOKENS = 8  # tokens per surprising span


@dataclass
class EvalResult:
    loss: float
    perplexity: float
    bits_per_byte: float
    tokens: int
    bytes: int
    # With keep_token_losses: the text's ids, and the loss of each of ids[1:]
    token_ids: np.ndarray | None = field(default=None, repr=False)
    token_losses: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        kept = ("token_ids", "token_losses")
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in kept}


@dataclass
class Span:
    start: int  # token positions [start, end)
    end: int
    mean_loss: float
    text: str


def surprising_spans(
    losses: np.ndarray, ids: list[int], tokenizer: Tokenizer, count: int = 10
) -> list[Span]:
    """The ``count`` non-overlapping runs of :data:`SPAN_TOKENS` tokens with the highest mean
    loss, most surprising first. ``losses[i]`` is token ``i + 1``'s."""
    width = min(SPAN_TOKENS, len(losses))
    if width == 0:
        return []
    means = np.convolve(losses, np.ones(width) / width, mode="valid")  # mean of losses[i:i+w]
    taken = np.zeros(len(losses), dtype=bool)
    spans = []
    for i in np.argsort(-means, kind="stable"):
        if len(spans) == count:
            break
        if taken[i : i + width].any():
            continue
        taken[i : i + width] = True
        start = int(i) + 1  # the tokens predicted
        text = tokenizer.decode(ids[start : start + width])
        spans.append(Span(start, start + width, float(means[i]), text))
    return spans


@torch.inference_mode()
def evaluate_text(
    model: GPT,
    tokenizer: Tokenizer,
    text: str,
    batch_size: int = 16,
    on_progress: Callable[[int, int], None] | None = None,
    keep_token_losses: bool = False,
) -> EvalResult:
    """Score the whole text, calling ``on_progress(windows done, windows in all)`` after each
    batch; ``keep_token_losses`` keeps each token's loss in the result (4 bytes a token)."""
    model.eval()
    ids = encode_text(tokenizer, text).astype(np.int64)
    if len(ids) < 2:
        raise UsageError("the file is too short to evaluate: it needs at least 2 tokens")
    block = model.config.block_size
    starts = list(range(0, len(ids) - 1, block))
    # Losses go into one array made up front: thousands of small arrays kept between the
    # batches' large temporaries fragmented the heap (4.9 GB for a 5.5 MB text).
    losses = np.empty(len(ids) - 1, dtype=np.float32)
    written = 0
    full = [s for s in starts if s + block + 1 <= len(ids)]
    report = on_progress or (lambda done, total: None)
    for i in range(0, len(full), batch_size):
        rows = np.stack([ids[s : s + block + 1] for s in full[i : i + batch_size]])
        written = _write_losses(model, rows, losses, written)
        report(i + rows.shape[0], len(starts))
    for s in starts[len(full) :]:  # the short window at the end
        written = _write_losses(model, ids[s:][None, :], losses, written)
        report(len(starts), len(starts))
    total_nats, counted = float(losses.sum(dtype=np.float64)), len(losses)
    loss = total_nats / counted
    if not math.isfinite(loss):
        raise not_finite("loss on this text is")
    num_bytes = len(text.encode("utf-8"))
    return EvalResult(
        loss=loss,
        perplexity=math.exp(min(loss, 700.0)),
        bits_per_byte=total_nats / math.log(2) / num_bytes,
        tokens=len(ids),
        bytes=num_bytes,
        token_ids=ids if keep_token_losses else None,
        token_losses=losses if keep_token_losses else None,
    )


def token_losses(model: GPT, rows: torch.Tensor) -> torch.Tensor:
    """(B, T) cross-entropy of each next token, for rows of T + 1 token ids."""
    logits, _ = model(rows[:, :-1])
    losses = F.cross_entropy(logits.flatten(0, 1).float(), rows[:, 1:].flatten(), reduction="none")
    return losses.view(rows.size(0), -1)


def _write_losses(model: GPT, rows: np.ndarray, out: np.ndarray, at: int) -> int:
    rows_on_device = torch.from_numpy(rows).to(model.wte.weight.device)
    part = token_losses(model, rows_on_device).float().flatten().cpu().numpy()
    out[at : at + len(part)] = part
    return at + len(part)
