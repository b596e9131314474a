"""The pieces the recipes choose between, each a class picked once from the config: norms,
activations, the rotary position embedding, and the causal mask."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tinygpt.config.model import ModelConfig

NORM_EPS = 1e-6  # RMSNorm's epsilon (LayerNorm keeps torch's 1e-5, as GPT-2 had)
ROPE_BASE = 10000.0  # RoPE's wavelength base, as in the paper and most models since


def make_norm(config: ModelConfig, size: int) -> nn.Module:
    """LayerNorm (gpt2: learned gain and bias) or RMSNorm (modern: no parameters at all)."""
    if config.norm == "rmsnorm":
        return nn.RMSNorm(size, eps=NORM_EPS, elementwise_affine=False)
    return nn.LayerNorm(size, bias=config.bias)


def step_norm(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``norm(x)`` in the one-token step, where a CPU pays per operation, not per number.

    LayerNorm of [x, -x] has mean 0 and variance mean(x²), so its first half is RMSNorm's
    x / sqrt(mean(x²) + eps): one fused kernel where torch's RMSNorm runs five."""
    if isinstance(norm, nn.RMSNorm) and norm.weight is None:
        n = x.size(-1)
        eps = norm.eps if norm.eps is not None else torch.finfo(x.dtype).eps
        return F.layer_norm(torch.cat((x, -x), dim=-1), (2 * n,), eps=eps)[..., :n]
    return norm(x)


class ReLUSquared(nn.Module):
    """ReLU² (So et al. 2021, "Primer"): sparse like ReLU, smooth enough to train well."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x).square()


def make_activation(name: str) -> nn.Module:
    """ModelConfig.activation -> the MLP's nonlinearity (gelu_tanh: GPT-2's, imported models)."""
    if name == "relu2":
        return ReLUSquared()
    return nn.GELU(approximate={"gelu": "none", "gelu_tanh": "tanh"}[name])


class Rotary(nn.Module):
    """Rotary position embedding (Su et al. 2021): rotates each query/key pair of channels by an
    angle proportional to its position, so q·k depends only on the distance between tokens."""

    def __init__(self, head_dim: int, max_positions: int, base: float = ROPE_BASE) -> None:
        super().__init__()
        freqs = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        angles = torch.outer(torch.arange(max_positions, dtype=torch.float32), freqs)
        # Not part of the weights: recomputed from the shape, so never saved.
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: torch.Tensor, start: int) -> torch.Tensor:
        """Rotate ``x`` (B, n_head, T, head_dim) whose first token is at position ``start``."""
        t = x.size(-2)
        cos, sin = self.cos[start : start + t], self.sin[start : start + t]
        if cos.dtype != x.dtype:  # autocast: rotate in the activations' precision
            cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)

    def matrices(self) -> torch.Tensor:
        """(positions, head_dim, head_dim): ``x @ matrices()[p]`` is ``x`` rotated at position p."""
        cos, sin = torch.diag_embed(self.cos), torch.diag_embed(self.sin)
        top = torch.cat((cos, sin), dim=-1)  # x1's share of both output halves
        bottom = torch.cat((-sin, cos), dim=-1)  # x2's
        return torch.cat((top, bottom), dim=-2)


class NoRotation(nn.Module):
    """Positions without rotation (the gpt2 recipe adds a learned table to the input instead)."""

    def forward(self, x: torch.Tensor, start: int) -> torch.Tensor:
        return x


def causal_mask(t_query: int, t_key: int, device: torch.device) -> torch.Tensor:
    """True where query i may attend to key j: j <= i, with queries the last ``t_query`` keys."""
    offset = t_key - t_query
    rows = torch.arange(t_query, device=device)[:, None] + offset
    return torch.arange(t_key, device=device)[None, :] <= rows
