"""Each row's next token from the logits (temperature, top-k, top-p, greedy), and the model's
own top alternatives."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tinygpt.config.sample import SampleConfig
from tinygpt.errors import not_finite


def filter_logits(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """Set to -inf every logit outside the top-k and outside the top-p (nucleus) mass."""
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = torch.softmax(sorted_logits, dim=-1)
        # Drop a token when the mass before it already reaches top_p (the first always stays).
        drop_sorted = (probs.cumsum(dim=-1) - probs) >= top_p
        drop_sorted[..., 0] = False  # a top_p below float32's range (1e-300) rounds to 0
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def choose(
    logits: torch.Tensor, cfg: SampleConfig, generators: list[torch.Generator | None]
) -> torch.Tensor:
    """The next token id of each row of ``logits`` (B, vocab); temperature 0 is greedy. Row i
    draws from ``generators[i]`` alone, so its sample depends on its seed, not on its batch."""
    if cfg.temperature == 0:
        return logits.argmax(dim=-1)
    # Shifted so the largest logit is 0 before dividing: a tiny temperature (1e-45) then sends
    # the rest to -inf, not the top to inf (inf - inf is NaN in the softmax). Below float32's
    # smallest normal number it would divide by 0 (0 / 0 for the top): the smallest does the same.
    logits = logits.float()
    temperature = max(cfg.temperature, torch.finfo(torch.float32).tiny)
    logits = (logits - logits.amax(dim=-1, keepdim=True)) / temperature
    logits = filter_logits(logits, cfg.top_k, cfg.top_p)
    probs = torch.softmax(logits, dim=-1)
    try:
        draws = [
            torch.multinomial(probs[i : i + 1], 1, generator=generator)
            for i, generator in enumerate(generators)
        ]
    except RuntimeError as exc:  # NaN or inf probabilities: weights finite but far too large
        raise not_finite("next-token probabilities are") from exc
    return torch.cat(draws).view(-1)


@dataclass(frozen=True)
class Alternatives:
    """One step's view of the model's distribution (temperature 1, before any filtering)."""

    ids: list[list[int]]  # per row, the K most likely tokens, most likely first
    probs: list[list[float]]  # their probabilities
    taken_logprob: list[float]  # per row, the log-probability of the token that was taken


def alternatives(logits: torch.Tensor, taken: torch.Tensor, k: int) -> Alternatives:
    """The top ``k`` tokens of each row's distribution and the log-probability of ``taken``."""
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    top = logprobs.topk(min(k, logprobs.size(-1)), dim=-1)
    taken_lp = logprobs.gather(-1, taken.view(-1, 1)).view(-1)
    return Alternatives(top.indices.tolist(), top.values.exp().tolist(), taken_lp.tolist())
