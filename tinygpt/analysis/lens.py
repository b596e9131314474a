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


@torch.inference_mode()
def logit_lens(model: GPT, ids: list[int], position: int, target: int) -> list[LensRow]:
    """At ``position``, after each layer: the top token, the ``target``'s probability and rank."""
    model.eval()
    idx = torch.tensor([ids], device=model.wte.weight.device)
    layers = range(len(model.blocks))
    points = ["blocks.0.hook_resid_pre"] + [f"blocks.{i}.hook_resid_post" for i in layers]
    _, cache = run_with_cache(model, idx, lambda name: name in points)
    streams = torch.stack([cache[p][0, position] for p in points])  # (n_layer + 1, C)
    logp = F.log_softmax(model.head(model.ln_f(streams)).float(), dim=-1).cpu()
    rows = []
    for name, lp in zip(["embed"] + [f"L{i}" for i in layers], logp, strict=True):
        rank = int((lp > lp[target]).sum())
        rows.append(
            LensRow(name, int(lp.argmax()), float(lp.max().exp()), float(lp[target].exp()), rank)
        )
    return rows
