"""A decoder-only transformer (GPT) that can be read in one sitting.

    tokens -> token embedding (+ learned position table, gpt2) -> dropout (-> embedding norm)
           -> n_layer x Block [ x + Attn(Norm(x)); x + MLP(Norm(x)) ]   (pre-norm residual blocks)
           -> final Norm -> LM head -> (soft-capped) logits

The recipe (tinygpt/recipe.py) is read once, in the constructors: each choice becomes a module
(``nn.Identity`` for a norm it leaves out), and ``forward`` just runs them. Attention has two
paths that compute the same numbers: ``manual``, softmax(Q Kᵀ / √d_k + causal mask) · V written
out (the only one that forms the scores and weights, so a layer whose ``hook_attn_scores`` or
``hook_pattern`` is hooked runs it), and ``sdpa``, torch's fused kernel (what ``auto`` picks).
Hook points (model/hooks.py) sit at every activation worth reading or changing; generation uses
a KV cache (model/cache.py) and the one-token :meth:`GPT.step`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from tinygpt.config.model import ModelConfig
from tinygpt.model.cache import KVCache
from tinygpt.model.hooks import HookPoint
from tinygpt.model.layers import (
    NORM_EPS,
    NoRotation,
    Rotary,
    causal_mask,
    make_activation,
    make_norm,
    step_norm,
)

PARAMETER_ROLES = ("matrices", "embeddings", "head", "scalars")


class CausalSelfAttention(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.head_dim = config.head_dim
        self.dropout = config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # Q, K, V
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)  # heads -> model
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        # QK-norm: unit-RMS queries and keys keep the scores bounded, whatever the weights do.
        self.qk_norm: nn.Module = (
            nn.RMSNorm(self.head_dim, eps=NORM_EPS, elementwise_affine=False)
            if config.qk_norm
            else nn.Identity()
        )
        self.rotary: nn.Module = (
            Rotary(self.head_dim, config.block_size) if config.position == "rope" else NoRotation()
        )
        # Without QK-norm or RoPE (gpt2), queries and keys reach attention as projected.
        self.shapes_qk = config.qk_norm or config.position == "rope"
        self.hook_q, self.hook_k, self.hook_v = HookPoint(), HookPoint(), HookPoint()
        self.hook_rot_q, self.hook_rot_k = HookPoint(), HookPoint()
        self.hook_attn_scores, self.hook_pattern = HookPoint(), HookPoint()
        self.hook_z = HookPoint()  # registered after the pattern: hook points list in flow order

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x · W_Q, x · W_K, x · W_V, each split into heads: (B, n_head, T, head_dim)."""
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, self.head_dim).transpose(1, 2) for z in (q, k, v))
        return self.hook_q(q), self.hook_k(k), self.hook_v(v)

    def position(
        self, q: torch.Tensor, k: torch.Tensor, start: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """QK-norm, then the rotation for tokens from position ``start``."""
        if self.shapes_qk:
            # Both act on each head's vector alone: one tensor halves the operations per token.
            q, k = self.rotary(self.qk_norm(torch.cat((q, k), dim=1)), start).split(
                self.n_head, dim=1
            )
        return self.hook_rot_q(q), self.hook_rot_k(k)

    def forward(
        self, x: torch.Tensor, mode: str = "sdpa", cache: KVCache | None = None, layer: int = 0
    ) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.project(x)
        q, k = self.position(q, k, cache.length if cache is not None else 0)
        if cache is not None:
            k, v = cache.append(layer, k, v)
        if mode == "manual" or self.hook_attn_scores.active or self.hook_pattern.active:
            y = self.explicit(q, k, v)
        else:
            y = self.fused(q, k, v)
        y = self.hook_z(y).transpose(1, 2).contiguous().view(b, t, c)  # concatenate the heads
        return self.resid_dropout(self.c_proj(y))

    def explicit(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Each query against every key, scaled so the softmax doesn't saturate as head_dim
        grows, future keys masked out with -inf."""
        t, t_key = q.size(2), k.size(2)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)
        scores = scores.masked_fill(~causal_mask(t, t_key, q.device), float("-inf"))
        weights = self.hook_pattern(F.softmax(self.hook_attn_scores(scores), dim=-1))
        return self.attn_dropout(weights) @ v

    def fused(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        # is_causal aligns the mask top-left, which is only right when queries and keys start
        # at the same position; with cached keys an explicit mask (or none, for one query).
        t, t_key = q.size(2), k.size(2)
        mask = None if t in (1, t_key) else causal_mask(t, t_key, q.device)
        dropout = self.dropout if self.training else 0.0
        if q.device.type == "cpu" and q.dtype == torch.bfloat16:
            # The CPU's fused attention is 4x slower backwards in bfloat16 than in float32
            # (docs/benchmarks.md): under autocast only the matmuls around it run in bfloat16.
            with torch.autocast("cpu", enabled=False):
                q, k, v = q.float(), k.float(), v.float()
                return F.scaled_dot_product_attention(q, k, v, mask, dropout, t == t_key)
        return F.scaled_dot_product_attention(q, k, v, mask, dropout, t == t_key)

    def step(
        self,
        x: torch.Tensor,
        cache: KVCache,
        layer: int,
        visible: torch.Tensor,
        rotation: torch.Tensor | None,
    ) -> torch.Tensor:
        """One new token per row (x: B, 1, C) at ``cache.position``; inference only. The keys go
        in at a position read on the device and attention runs over the whole cache, unwritten
        positions masked, so every shape is fixed."""
        b = x.size(0)
        qkv = self.c_attn(x).view(b, 3 * self.n_head, 1, self.head_dim)
        qk, v = qkv.split((2 * self.n_head, self.n_head), dim=1)
        qk = step_norm(self.qk_norm, qk)
        if rotation is not None:
            qk = qk @ rotation
        q, k = qk.split(self.n_head, dim=1)
        keys, values = cache.k[layer], cache.v[layer]
        # (under autocast the projections come out in bf16; the cache keeps the model's dtype)
        keys.index_copy_(2, cache.position, k.to(keys.dtype))
        values.index_copy_(2, cache.position, v.to(values.dtype))
        y = F.scaled_dot_product_attention(q, keys, values, attn_mask=visible)
        return self.c_proj(y.reshape(b, 1, -1))


class MLP(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.act = make_activation(config.activation)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class Block(nn.Module):
    """Pre-norm residual block. Attention-only blocks (``mlp=False``) have neither the MLP nor its
    norm: ``ln_2`` and ``mlp`` are then ``None``, and the block skips that half."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.ln_1 = make_norm(config, config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = make_norm(config, config.n_embd) if config.mlp else None
        self.mlp = MLP(config) if config.mlp else None
        self.hook_resid_pre, self.hook_attn_out = HookPoint(), HookPoint()
        self.hook_resid_mid, self.hook_resid_post = HookPoint(), HookPoint()
        self.hook_mlp_out = HookPoint() if config.mlp else None

    def forward(
        self, x: torch.Tensor, mode: str, cache: KVCache | None, layer: int
    ) -> torch.Tensor:
        x = self.hook_resid_pre(x)
        x = self.hook_resid_mid(x + self.hook_attn_out(self.attn(self.ln_1(x), mode, cache, layer)))
        if self.mlp is not None:
            x = x + self.hook_mlp_out(self.mlp(self.ln_2(x)))
        return self.hook_resid_post(x)

    def step(
        self,
        x: torch.Tensor,
        cache: KVCache,
        layer: int,
        visible: torch.Tensor,
        rotation: torch.Tensor | None,
    ) -> torch.Tensor:
        x = x + self.attn.step(step_norm(self.ln_1, x), cache, layer, visible, rotation)
        if self.mlp is not None:
            x = x + self.mlp(step_norm(self.ln_2, x))
        return x


class GPT(nn.Module):
    """The whole model. ``attention`` selects the attention path: ``sdpa`` or ``manual``."""

    def __init__(self, config: ModelConfig, attention: str = "auto") -> None:
        super().__init__()
        self.config = config.validate()
        self.attention = resolve_attention(attention)
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = (
            nn.Embedding(config.block_size, config.n_embd) if config.position == "learned" else None
        )
        self.drop = nn.Dropout(config.dropout)
        # modern: normalise the embedding before the first block (its scale is then free).
        self.ln_emb = make_norm(config, config.n_embd) if config.embed_norm else nn.Identity()
        self.hook_embed = HookPoint()
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = make_norm(config, config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.wte.weight  # weight tying (Press & Wolf 2017)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                # GPT-2: scale the residual projections by 1/sqrt(2 * n_layer) so the residual
                # stream's variance does not grow with depth.
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        cache: KVCache | None = None,
        last_only: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits for ``idx`` (B, T), and the mean cross-entropy if ``targets`` is given.

        With ``cache`` the tokens continue the cached sequence (positions start at its length).
        ``last_only`` computes logits for the final position only (what sampling needs).
        """
        _, t = idx.shape
        start = cache.length if cache is not None else 0
        if start + t > self.config.block_size:
            raise ValueError(
                f"sequence of {start + t} tokens exceeds the block size {self.config.block_size}"
            )
        x = self.wte(idx)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(start, start + t, device=idx.device))
        x = self.ln_emb(self.drop(self.hook_embed(x)))
        for i, block in enumerate(self.blocks):
            x = block(x, self.attention, cache, i)
        if cache is not None:
            cache.length += t
        x = self.ln_f(x)
        if last_only:
            x = x[:, -1:, :]
        logits = self.head(x)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        return logits, loss

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """The LM head on the final norm's output: logits, soft-capped where the recipe caps."""
        logits = self.lm_head(x)
        cap = self.config.logit_softcap
        if cap > 0:
            # Soft-capping (Gemma 2): bounded logits keep the loss from rewarding overconfidence.
            logits = cap * torch.tanh(logits.float() / cap)
        return logits

    def new_cache(self, batch_size: int) -> KVCache:
        """An empty KV cache for ``batch_size`` rows on the model's device and dtype."""
        weight = self.wte.weight
        rotary = self.blocks[0].attn.rotary
        rotations = rotary.matrices() if isinstance(rotary, Rotary) else None
        cache = KVCache(self.config, batch_size, weight.device, weight.dtype, rotations)
        if self.wpe is None:
            # Without position embeddings the normalised embedding of a token is the same at
            # every position: normalise the table once instead of a row per token.
            with torch.inference_mode():
                cache.embeddings = self.ln_emb(weight)
        return cache

    @torch.inference_mode()
    def step(self, idx: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Logits (B, vocab) for one new token per row, ``idx`` (B, 1), at ``cache.position`` (set
        by the caller): :meth:`forward`'s numbers with no hooks, no host synchronisation and
        fixed shapes, so a CUDA graph captures it once."""
        position = cache.position
        if cache.embeddings is not None:
            x = F.embedding(idx, cache.embeddings)
        else:
            x = self.wte(idx)
            if self.wpe is not None:
                x = x + self.wpe(position)
            x = step_norm(self.ln_emb, x)
        visible = cache.visible.index_select(0, position)  # (1, block): broadcast over rows
        rotation = None
        if cache.rotations is not None:
            rotation = cache.rotations.index_select(0, position)[0]
        for i, block in enumerate(self.blocks):
            x = block.step(x, cache, i, visible, rotation)
        return self.head(step_norm(self.ln_f, x))[:, 0]

    def parameter_roles(self) -> dict[str, list[nn.Parameter]]:
        """Every parameter once, by role (each gets its own learning rate and decay): ``matrices``
        (the blocks' 2-D weights), ``embeddings``, ``head`` (when untied), ``scalars``."""
        roles: dict[str, list[nn.Parameter]] = {r: [] for r in PARAMETER_ROLES}
        for name, p in self.named_parameters():  # a tied weight once, as the embedding
            if name.startswith(("wte.", "wpe.")):
                roles["embeddings"].append(p)
            elif name.startswith("lm_head."):
                roles["head"].append(p)
            elif p.dim() >= 2:
                roles["matrices"].append(p)
            else:
                roles["scalars"].append(p)
        return roles

    def optimizer_groups(self, weight_decay: float) -> list[dict]:
        """Decay matrices (linear weights, embeddings); never decay biases or LayerNorm gains."""
        params = list(self.parameters())  # a tied weight once
        decay = [p for p in params if p.dim() >= 2]
        no_decay = [p for p in params if p.dim() < 2]
        return [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]


def resolve_attention(mode: str) -> str:
    if mode == "auto":
        return "sdpa"
    if mode not in ("sdpa", "manual"):
        raise ValueError(f"unknown attention mode {mode!r}")
    return mode
