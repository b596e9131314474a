"""One prompt through the model with every layer's attention captured at its hook points (hooking
the pattern runs the explicit path, the only one that forms softmax(Q Kᵀ / √d_k + mask)), and
what whole patterns give: attention rollout and the divergence of two patterns."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tinygpt.model import GPT, run_with_cache

# AttentionCapture's fields -> the attention hook point each is read from
CAPTURED = {
    "q": "hook_rot_q",
    "k": "hook_rot_k",
    "v": "hook_v",
    "weights": "hook_pattern",
    "head_outputs": "hook_z",
    "q_projected": "hook_q",
    "k_projected": "hook_k",
}


@dataclass
class AttentionCapture:
    """What one attention layer computed for a prompt."""

    q: torch.Tensor  # (B, n_head, T, head_dim), as attention compares them (after QK-norm, RoPE)
    k: torch.Tensor  # (B, n_head, T_keys, head_dim), likewise
    v: torch.Tensor  # (B, n_head, T_keys, head_dim)
    weights: torch.Tensor  # (B, n_head, T, T_keys), after softmax, before dropout
    head_outputs: torch.Tensor  # (B, n_head, T, head_dim): weights @ v per head
    # q and k as projected, before QK-norm and the rotation (equal to q, k in the gpt2 recipe)
    q_projected: torch.Tensor
    k_projected: torch.Tensor


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
        """The run of the prompt's first ``end`` tokens: exact, as attention is causal."""
        captures = []
        for c in self.captures:
            cut = {name: getattr(c, name)[..., :end, :] for name in CAPTURED}
            captures.append(AttentionCapture(**{**cut, "weights": cut["weights"][..., :end]}))
        return AttentionRun(self.ids[:end], self.tokens[:end], captures)


@torch.inference_mode()
def capture_attention(model: GPT, ids: list[int], token_strings: list[str]) -> AttentionRun:
    model.eval()
    idx = torch.tensor([ids], device=model.wte.weight.device)
    points = set(CAPTURED.values())
    _, cache = run_with_cache(model, idx, lambda name: name.rsplit(".", 1)[-1] in points)
    captures = [
        AttentionCapture(
            **{
                field: cache[f"blocks.{layer}.attn.{point}"].float().cpu()
                for field, point in CAPTURED.items()
            }
        )
        for layer in range(len(model.blocks))
    ]
    return AttentionRun(ids, token_strings, captures)


def rollout(weights: torch.Tensor) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020) of (L, H, T, T) weights: per layer the heads'
    mean plus the identity (the residual), rows renormalised, layers multiplied. Row i: how much
    token i's final representation draws on each input token."""
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
