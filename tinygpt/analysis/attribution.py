"""Direct logit attribution: how much each component wrote the target token's logit directly.

The final residual stream is a sum (embedding, each head through its slice of the output
projection, projection biases, MLPs). With the final norm's scale frozen at this position (as
TransformerLens does) norm and LM head are linear, so the logit is exactly the sum of the shares
plus the norm's bias: before any soft cap (``raw_logit``); ``logit`` is what the cap made of it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from tinygpt.analysis.labels import head_label
from tinygpt.model import GPT, run_with_cache


@dataclass
class Share:
    component: str  # "embed", "L1H0", "L1 attn bias", "L0 MLP", "final norm bias"
    logit: float


@dataclass
class LogitAttribution:
    position: int
    target: int
    logit: float  # the model's logit for the target (soft-capped where the recipe caps)
    raw_logit: float  # before the cap: what the shares add up to
    shares: list[Share]  # largest first (by size)

    @property
    def total(self) -> float:
        return sum(s.logit for s in self.shares)

    def to_dict(self) -> dict:
        return {
            "position": self.position,
            "target": self.target,
            "logit": self.logit,
            "raw_logit": self.raw_logit,
            "total": self.total,
            "shares": [asdict(s) for s in self.shares],
        }


def frozen_norm(norm: nn.Module, final: torch.Tensor) -> tuple[callable, torch.Tensor | None]:
    """The final norm as a linear map at the scale it had on ``final`` (C,), and its bias.
    LayerNorm: x -> (x - mean x) * s * gain; RMSNorm: x -> x * s (times a gain, if any)."""
    x = final.double()
    gain = norm.weight.detach().double().cpu() if norm.weight is not None else 1.0
    eps = norm.eps if norm.eps is not None else torch.finfo(final.dtype).eps
    if isinstance(norm, nn.LayerNorm):
        scale = 1 / torch.sqrt(x.var(unbiased=False) + eps)
        bias = norm.bias.detach().double().cpu() if norm.bias is not None else None
        return (lambda c: (c - c.mean()) * scale * gain), bias
    scale = 1 / torch.sqrt(x.square().mean() + eps)
    return (lambda c: c * scale * gain), None


@torch.inference_mode()
def components(
    model: GPT, ids: list[int], position: int
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Each component's write to the residual stream at ``position`` (name -> (C,), float64 on
    the CPU), and the final stream."""
    model.eval()
    idx = torch.tensor([ids], device=model.wte.weight.device)
    last = len(model.blocks) - 1
    # Only what the sum needs: hooking the pattern would force the explicit attention path.
    wanted = {"blocks.0.hook_resid_pre", f"blocks.{last}.hook_resid_post"}
    wanted |= {f"blocks.{i}.attn.hook_z" for i in range(last + 1)}
    wanted |= {f"blocks.{i}.hook_mlp_out" for i, b in enumerate(model.blocks) if b.mlp is not None}
    _, cache = run_with_cache(model, idx, lambda name: name in wanted)
    at = {k: v[0, ..., position, :].double().cpu() for k, v in cache.items()}
    parts = {"embed": at["blocks.0.hook_resid_pre"]}
    for layer, block in enumerate(model.blocks):
        proj = block.attn.c_proj
        weight = proj.weight.detach().double().cpu()
        z = at[f"blocks.{layer}.attn.hook_z"]  # (H, D) at this position
        d = z.size(-1)
        for h in range(z.size(0)):
            parts[head_label(layer, h)] = weight[:, h * d : (h + 1) * d] @ z[h]
        if proj.bias is not None:
            parts[f"L{layer} attn bias"] = proj.bias.detach().double().cpu()
        if block.mlp is not None:
            parts[f"L{layer} MLP"] = at[f"blocks.{layer}.hook_mlp_out"]
    return parts, at[f"blocks.{last}.hook_resid_post"]


def direct_logit_attribution(
    model: GPT, ids: list[int], position: int, target: int
) -> LogitAttribution:
    """Each component's direct share of the ``target``'s logit at ``position``."""
    parts, final = components(model, ids, position)
    linear, bias = frozen_norm(model.ln_f, final)
    direction = model.lm_head.weight[target].detach().double().cpu()
    shares = [Share(name, float(linear(c) @ direction)) for name, c in parts.items()]
    if bias is not None:
        shares.append(Share("final norm bias", float(bias @ direction)))
    shares.sort(key=lambda s: -abs(s.logit))
    with torch.inference_mode():
        normed = model.ln_f(final.to(model.wte.weight))
        raw, capped = model.lm_head(normed)[target], model.head(normed)[target]
    return LogitAttribution(position, target, float(capped), float(raw), shares)
