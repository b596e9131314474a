"""Attention for one query of one head, step by step, with the model's own numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from tinygpt.analysis.capture import AttentionRun
from tinygpt.model import GPT


@dataclass
class Explanation:
    layer: int
    head: int
    query: int
    head_dim: int
    q_norm: float  # ‖q‖ as attention uses it (after QK-norm and the rotation, where present)
    projected_q_norm: float  # ‖x · W_Q‖ before either step
    qk_norm: bool  # the model normalises each head's q and k to unit RMS
    rotary: bool  # the model rotates q and k by their positions (RoPE)
    # q·k_j with the rotation left out (rotary models only): what position changes
    unrotated_scores: list[float] | None
    raw_scores: list[float]  # q · k_j for visible keys j <= query
    scaled_scores: list[float]  # ÷ √d_k
    masked: int  # future keys set to -inf
    weights: list[float]  # softmax
    contributions: list[tuple[int, float, float]]  # (key, weight, ‖weight · v_j‖), largest first
    output_norm: float
    head_shares: list[float]  # ‖W_O[:, head slice] · o_head‖ for every head of the layer
    weights_match_model: bool
    # What each visible key is to the query, by the tokens alone (see key_relation)
    relations: list[str] = field(default_factory=list)

    @property
    def top_key(self) -> int:
        return max(range(len(self.weights)), key=self.weights.__getitem__)


# How a key stands to the query, from the token ids alone; the names the explain view prints.
AFTER_COPY = "follows an earlier copy"  # of the query's token: what an induction head reads
PREVIOUS = "previous token"
SAME = "same token"
SELF = "the query"


def key_relation(ids: list[int], query: int, key: int) -> str:
    """Why a head might attend from ``query`` to ``key``: an induction head looks at the token
    right after an earlier occurrence of the query's token (so it can predict that token next);
    a previous-token head at ``query - 1``."""
    if key == query:
        return SELF
    if key == query - 1:
        return PREVIOUS
    if key >= 1 and ids[key - 1] == ids[query]:
        return AFTER_COPY
    if ids[key] == ids[query]:
        return SAME
    return ""


def explain(model: GPT, run: AttentionRun, layer: int, head: int, query: int) -> Explanation:
    cap = run.captures[layer]
    q = cap.q[0, head, query].double()
    k = cap.k[0, head, : query + 1].double()
    v = cap.v[0, head, : query + 1].double()
    d = q.numel()
    raw = k @ q
    scaled = raw / math.sqrt(d)
    weights = torch.softmax(scaled, dim=0)
    contrib = weights[:, None] * v
    order = torch.argsort(contrib.norm(dim=-1), descending=True)
    proj = model.blocks[layer].attn.c_proj.weight.detach().double().cpu()
    outputs = cap.head_outputs[0, :, query].double()  # (n_head, head_dim)
    shares = [
        float((proj[:, h * d : (h + 1) * d] @ outputs[h]).norm()) for h in range(outputs.size(0))
    ]
    model_weights = cap.weights[0, head, query, : query + 1].double()
    rotary = model.config.position == "rope"
    unrotated = None
    if rotary:
        qp, kp = cap.q_projected[0, head, query], cap.k_projected[0, head, : query + 1]
        with torch.no_grad():
            norm = model.blocks[layer].attn.qk_norm
            unrotated = (norm(kp).double() @ norm(qp).double()).tolist()
    return Explanation(
        layer=layer,
        head=head,
        query=query,
        head_dim=d,
        q_norm=float(q.norm()),
        projected_q_norm=float(cap.q_projected[0, head, query].double().norm()),
        qk_norm=model.config.qk_norm,
        rotary=rotary,
        unrotated_scores=unrotated,
        raw_scores=raw.tolist(),
        scaled_scores=scaled.tolist(),
        masked=len(run.ids) - query - 1,
        weights=weights.tolist(),
        contributions=[(int(j), float(weights[j]), float(contrib[j].norm())) for j in order],
        output_norm=float(contrib.sum(0).norm()),
        head_shares=shares,
        weights_match_model=bool(torch.allclose(weights, model_weights, atol=1e-5)),
        relations=[key_relation(run.ids, query, j) for j in range(query + 1)],
    )
