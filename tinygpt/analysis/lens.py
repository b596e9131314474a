"""The logit lens (nostalgebraist 2020): the residual stream after each layer decoded as if it were
the last, through the final norm and the LM head, to watch the prediction form layer by layer."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tinygpt.model import GPT, run_with_cache


@dataclass
class LensRow:
    """The residual stream ``after`` (``embed``, ``L0``, ``L1``, ...) decoded at one position."""

    after: str
    top_id: int
    top_prob: float
    target_prob: float
    target_rank: int  # 0: the target is the top token

    def to_dict(self) -> dict:
        return dict(vars(self))


def residual_streams(model: GPT, ids: list[int]) -> tuple[list[str], torch.Tensor]:
    """Names (``embed``, ``L0``, ...) and the stream after each: (n_layer + 1, T, C)."""
    idx = torch.tensor([ids], device=model.wte.weight.device)
    names = ["blocks.0.hook_resid_pre"] + [
        f"blocks.{i}.hook_resid_post" for i in range(len(model.blocks))
    ]
    _, cache = run_with_cache(model, idx, lambda name: name in names)
    streams = torch.stack([cache[n][0] for n in names])
    return ["embed"] + [f"L{i}" for i in range(len(model.blocks))], streams


def decode(model: GPT, resid: torch.Tensor) -> torch.Tensor:
    """Log-probabilities from a residual stream, as the model's own final layers compute them."""
    return F.log_softmax(model.head(model.ln_f(resid)).float(), dim=-1)


@torch.inference_mode()
def logit_lens(model: GPT, ids: list[int], position: int, target: int) -> list[LensRow]:
    """At ``position``, after each layer: the top token, the ``target``'s probability and rank."""
    model.eval()
    names, streams = residual_streams(model, ids)
    logp = decode(model, streams[:, position]).cpu()  # (n_layer + 1, vocab)
    rows = []
    for name, lp in zip(names, logp, strict=True):
        rank = int((lp > lp[target]).sum())
        rows.append(
            LensRow(name, int(lp.argmax()), float(lp.max().exp()), float(lp[target].exp()), rank)
        )
    return rows
