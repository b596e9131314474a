"""One prompt through the model with every layer's attention captured, and what is computed from
whole patterns: attention rollout and the divergence of two patterns.

Weights come from the model's own forward pass on the explicit (``manual``) attention path, the
only one that materialises softmax(Q Kᵀ / √d_k + mask).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tinygpt.model import GPT, AttentionCapture


@dataclass
class AttentionRun:
    """One prompt through the model: token ids and strings, and every layer's capture."""

    ids: list[int]
    tokens: list[str]
    captures: list[AttentionCapture]

    @property
    def weights(self) -> torch.Tensor:
        """(n_layer, n_head, T, T) attention weights."""
        return torch.stack([c.weights[0] for c in self.captures])

    def prefix(self, end: int) -> AttentionRun:
        """The run of the prompt's first ``end`` tokens. Attention is causal, so the rows before
        ``end`` never saw later tokens: cutting the captures is exact, no new forward pass."""
        return AttentionRun(
            self.ids[:end],
            self.tokens[:end],
            [
                AttentionCapture(
                    c.q[..., :end, :],
                    c.k[..., :end, :],
                    c.v[..., :end, :],
                    c.weights[..., :end, :end],
                    c.head_outputs[..., :end, :],
                    None if c.q_projected is None else c.q_projected[..., :end, :],
                    None if c.k_projected is None else c.k_projected[..., :end, :],
                )
                for c in self.captures
            ],
        )


@torch.inference_mode()
def capture_attention(model: GPT, ids: list[int], token_strings: list[str]) -> AttentionRun:
    model.eval()
    device = model.wte.weight.device
    _, _, captures = model(torch.tensor([ids], device=device), capture=True)
    return AttentionRun(ids, token_strings, [_to_cpu_float(c) for c in captures])


def _to_cpu_float(c: AttentionCapture) -> AttentionCapture:
    tensors = (c.q, c.k, c.v, c.weights, c.head_outputs, c.q_projected, c.k_projected)
    return AttentionCapture(*(None if t is None else t.detach().float().cpu() for t in tensors))


def rollout(weights: torch.Tensor) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020) through all layers of (L, H, T, T) weights.

    Each layer: average the heads, add the identity for the residual connection, renormalise
    rows; then multiply the layers together. Row i says how much token i's final representation
    draws on each input token.
    """
    t = weights.size(-1)
    eye = torch.eye(t, dtype=torch.float64)
    result = eye
    for layer in weights.double():
        a = layer.mean(0) + eye
        a = a / a.sum(-1, keepdim=True)
        result = a @ result
    return result.float()


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence (nats) between rows of two attention patterns, per row."""
    p, q = p.double(), q.double()
    m = (p + q) / 2

    def kl(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.where(
            a > 0, a * (a.clamp_min(1e-300).log() - b.clamp_min(1e-300).log()), torch.zeros_like(a)
        ).sum(-1)

    return (kl(p, m) + kl(q, m)) / 2
