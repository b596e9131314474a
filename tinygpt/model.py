"""A decoder-only transformer (GPT) that can be read in one sitting.

    tokens -> token embedding (+ learned position embedding, gpt2) -> dropout (-> RMSNorm, modern)
           -> n_layer x Block [ x + Attn(Norm(x)); x + MLP(Norm(x)) ]   (pre-norm residual blocks)
           -> final Norm -> LM head -> (soft-capped) logits

Two recipes share this code, chosen by switches in :class:`ModelConfig` (``ARCHITECTURES`` names
the two sets):

* ``gpt2``: GPT-2 as published in 2019: learned position embeddings, LayerNorm, GELU MLP, the LM
  head tied to the token embedding. Kept bit-for-bit for old checkpoints and Hugging Face interop.
* ``modern``: from what the NanoGPT speedrun and nanochat train with: rotary position embeddings
  (RoPE) applied to queries and keys, RMSNorm (also on each head's queries and keys: QK-norm), an
  untied LM head and tanh soft-capped logits (and Muon, in the trainer). It reaches the same loss
  in a fraction of the steps (docs/benchmarks.md). Their ReLU² MLP and zero-initialised output
  projections are switches too (``activation="relu2"``, ``zero_init_proj``); at this scale GELU
  and GPT-2's init measured better, so they are off by default.

Attention has two interchangeable paths that compute the same numbers:

* ``manual``: the textbook formula, softmax(Q Kᵀ / √d_k + causal mask) · V, written out step by
  step. It is the only path that can hand back the attention weights, for inspection.
* ``sdpa``: ``torch.nn.functional.scaled_dot_product_attention``, which fuses those steps (flash
  or memory-efficient kernels where available). ``auto`` picks it.

Generation uses a KV cache: each layer keeps the keys and values of the tokens already seen in a
preallocated buffer, so a new token costs one row of attention instead of a whole forward pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tinygpt.config import ModelConfig

NORM_EPS = 1e-6  # RMSNorm's epsilon (LayerNorm keeps torch's 1e-5, as GPT-2 had)
ROPE_BASE = 10000.0  # RoPE's wavelength base, as in the paper and most models since
PARAMETER_ROLES = ("matrices", "embeddings", "head", "scalars")


@dataclass
class AttentionCapture:
    """What one attention layer computed, kept when ``capture=True`` (manual path only)."""

    q: torch.Tensor  # (B, n_head, T, head_dim)
    k: torch.Tensor  # (B, n_head, T_keys, head_dim)
    v: torch.Tensor  # (B, n_head, T_keys, head_dim)
    weights: torch.Tensor  # (B, n_head, T, T_keys), after softmax, before dropout
    head_outputs: torch.Tensor  # (B, n_head, T, head_dim): weights @ v per head
    # q and k as projected, before QK-norm and the rotation (equal to q, k in the gpt2 recipe)
    q_projected: torch.Tensor | None = None
    k_projected: torch.Tensor | None = None


# (head outputs, attention weights, values) -> new head outputs
HeadHook = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class KVCache:
    """Preallocated keys and values for every layer, filled left to right during generation.

    Two ways in: :meth:`GPT.forward` appends a chunk at ``length`` (the prompt, a refill after the
    window jumps), and :meth:`GPT.step` writes one token at the position held in the tensor
    ``position``. The step reads nothing from the host and keeps every shape fixed, so one CUDA
    graph of it can be replayed at any position."""

    def __init__(
        self,
        config: ModelConfig,
        batch_size: int,
        device: torch.device,
        dtype: torch.dtype,
        rotary: Rotary | None = None,
    ) -> None:
        shape = (config.n_layer, batch_size, config.n_head, config.block_size, config.head_dim)
        # Zeros, not empty: the step masks positions not yet written, but a masked weight of 0
        # times a NaN left in uninitialised memory would still be NaN.
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0  # tokens stored so far (the same for every layer)
        self.position = torch.zeros(1, dtype=torch.long, device=device)  # the step's position
        # Row p: 0 on the keys a query at position p sees (0..p), -inf on the rest; the step
        # picks its row on the device. Additive, so attention adds it instead of converting it.
        size = config.block_size
        future = torch.ones(size, size, dtype=torch.bool, device=device).triu(1)
        self.visible = torch.zeros(size, size, dtype=dtype, device=device)
        self.visible.masked_fill_(future, float("-inf"))
        # Per position, RoPE as one (head_dim x head_dim) matrix: one matmul a layer per token
        # instead of the half-split, four products and a concatenation.
        self.rotations = rotary.matrices().to(dtype) if rotary is not None else None
        # The step's input rows where they do not depend on the position (set by the model).
        self.embeddings: torch.Tensor | None = None

    def append(
        self, layer: int, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store this step's keys/values for ``layer`` and return all keys/values so far."""
        start, end = self.length, self.length + k.size(2)
        self.k[layer, :, :, start:end] = k
        self.v[layer, :, :, start:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def reset(self) -> None:
        self.length = 0


def causal_mask(t_query: int, t_key: int, device: torch.device) -> torch.Tensor:
    """True where query i may attend to key j: j <= i, with queries the last ``t_query`` keys."""
    offset = t_key - t_query
    rows = torch.arange(t_query, device=device)[:, None] + offset
    return torch.arange(t_key, device=device)[None, :] <= rows


def make_norm(config: ModelConfig, size: int) -> nn.Module:
    """LayerNorm (gpt2: learned gain and bias) or RMSNorm (modern: no parameters at all)."""
    if config.norm == "rmsnorm":
        return nn.RMSNorm(size, eps=NORM_EPS, elementwise_affine=False)
    return nn.LayerNorm(size, bias=config.bias)


def step_norm(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``norm(x)`` in the one-token step, where a CPU pays per operation, not per number.

    A parameter-free RMSNorm goes through LayerNorm's fused kernel: LayerNorm of [x, -x] has
    mean 0 and variance mean(x²), so its first half is x / sqrt(mean(x²) + eps), RMSNorm's
    formula, in one kernel where torch's RMSNorm runs five (half the time of a token here)."""
    if isinstance(norm, nn.RMSNorm) and norm.weight is None:
        n = x.size(-1)
        eps = norm.eps if norm.eps is not None else torch.finfo(x.dtype).eps
        return F.layer_norm(torch.cat((x, -x), dim=-1), (2 * n,), eps=eps)[..., :n]
    return norm(x)


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
        """Rotate ``x`` (B, n_head, T, head_dim) whose first token sits at position ``start``."""
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
        # One parameter-free norm serves both (k_norm is the same module, for readers).
        self.q_norm: nn.Module | None = None
        if config.qk_norm:
            self.q_norm = nn.RMSNorm(self.head_dim, eps=NORM_EPS, elementwise_affine=False)
        self.k_norm = self.q_norm
        self.rotary = (
            Rotary(self.head_dim, config.block_size) if config.position == "rope" else None
        )
        # Analysis hook (ablation): may rewrite the per-head outputs (B, n_head, T, head_dim)
        # given the attention weights (manual path) and the values. None in normal use.
        self.head_hook: HeadHook | None = None

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x · W_Q, x · W_K, x · W_V, each split into heads: (B, n_head, T, head_dim)."""
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, self.head_dim).transpose(1, 2) for z in (q, k, v))
        return q, k, v

    def position(
        self, q: torch.Tensor, k: torch.Tensor, start: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """QK-norm, then the rotation for tokens from position ``start`` (where the model has
        those steps): the queries and keys attention compares."""
        if self.q_norm is None and self.rotary is None:
            return q, k
        # Both steps act on each head's vector alone, so queries and keys go through them as
        # one tensor: half the operations per generated token, the same numbers.
        qk = torch.cat((q, k), dim=1)
        if self.q_norm is not None:
            qk = self.q_norm(qk)
        if self.rotary is not None:
            qk = self.rotary(qk, start)
        q, k = qk.split(self.n_head, dim=1)
        return q, k

    def split_heads(
        self, x: torch.Tensor, start: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values as attention uses them, for tokens from ``start``."""
        q, k, v = self.project(x)
        return (*self.position(q, k, start), v)

    def forward(
        self,
        x: torch.Tensor,
        mode: str = "sdpa",
        cache: KVCache | None = None,
        layer: int = 0,
        capture: bool = False,
    ) -> tuple[torch.Tensor, AttentionCapture | None]:
        b, t, c = x.shape
        q_projected, k_projected, v = self.project(x)
        q, k = self.position(q_projected, k_projected, cache.length if cache is not None else 0)
        if cache is not None:
            k, v = cache.append(layer, k, v)
        t_key = k.size(2)
        captured = None
        if mode == "manual" or capture or self.head_hook is not None:
            # The mechanism written out: similarity of each query with every key, scaled so the
            # softmax doesn't saturate as head_dim grows, future keys masked out with -inf.
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)
            scores = scores.masked_fill(~causal_mask(t, t_key, x.device), float("-inf"))
            weights = F.softmax(scores, dim=-1)
            y = self.attn_dropout(weights) @ v
            if self.head_hook is not None:
                y = self.head_hook(y, weights, v)
            if capture:
                captured = AttentionCapture(q, k, v, weights, y, q_projected, k_projected)
        elif mode == "sdpa":
            # is_causal aligns the mask top-left, which is only right when queries and keys start
            # at the same position; with cached keys an explicit mask (or none, for one query).
            if t == t_key:
                mask, is_causal = None, True
            elif t == 1:
                mask, is_causal = None, False
            else:
                mask, is_causal = causal_mask(t, t_key, x.device), False
            y = F.scaled_dot_product_attention(
                q,
                k,
                v,
                attn_mask=mask,
                dropout_p=self.dropout if self.training else 0.0,
                is_causal=is_causal,
            )
        else:
            raise ValueError(f"unknown attention mode {mode!r}")
        y = y.transpose(1, 2).contiguous().view(b, t, c)  # concatenate the heads
        return self.resid_dropout(self.c_proj(y)), captured

    def step(
        self,
        x: torch.Tensor,
        cache: KVCache,
        layer: int,
        visible: torch.Tensor,
        rotation: torch.Tensor | None,
    ) -> torch.Tensor:
        """One new token per row (x: B, 1, C) at ``cache.position``; inference only.

        The same numbers as :meth:`forward` with as few operations as possible: the keys go into
        the cache at a position read on the device, and attention runs over the whole
        preallocated cache with the not-yet-written positions masked, so every shape is fixed."""
        b = x.size(0)
        qkv = self.c_attn(x).view(b, 3 * self.n_head, 1, self.head_dim)
        qk, v = qkv.split((2 * self.n_head, self.n_head), dim=1)
        if self.q_norm is not None:
            qk = step_norm(self.q_norm, qk)
        if rotation is not None:
            qk = qk @ rotation
        q, k = qk.split(self.n_head, dim=1)
        keys, values = cache.k[layer], cache.v[layer]
        keys.index_copy_(2, cache.position, k)
        values.index_copy_(2, cache.position, v)
        y = F.scaled_dot_product_attention(q, keys, values, attn_mask=visible)
        return self.c_proj(y.reshape(b, 1, -1))


class MLP(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.activation = config.activation
        self.gelu = nn.GELU(approximate="tanh" if config.activation == "gelu_tanh" else "none")
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c_fc(x)
        # ReLU² (So et al. 2021, "Primer"): sparse like ReLU, smooth enough to train well.
        h = F.relu(h).square() if self.activation == "relu2" else self.gelu(h)
        return self.dropout(self.c_proj(h))


class Block(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.ln_1 = make_norm(config, config.n_embd)
        self.attn = CausalSelfAttention(config)
        # Attention-only blocks (``mlp=False``) have neither the MLP nor its norm.
        self.ln_2 = make_norm(config, config.n_embd) if config.mlp else None
        self.mlp = MLP(config) if config.mlp else None

    def forward(
        self,
        x: torch.Tensor,
        mode: str,
        cache: KVCache | None,
        layer: int,
        capture: bool,
    ) -> tuple[torch.Tensor, AttentionCapture | None]:
        a, captured = self.attn(self.ln_1(x), mode, cache, layer, capture)
        x = x + a
        if self.mlp is not None:
            x = x + self.mlp(self.ln_2(x))
        return x, captured

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


@dataclass(frozen=True)
class ParameterCount:
    """A model's size. ``total`` counts every parameter once (a tied head is the token
    embedding); ``position`` is the learned position table's share (gpt2 recipe; 0 with RoPE)."""

    total: int
    position: int = 0

    def describe(self, exact: bool = False) -> str:
        """``0.82M parameters (0.80M without position embeddings)``; RoPE: ``0.80M parameters``.
        ``exact`` writes the numbers in full (818,048)."""
        number = (lambda n: f"{n:,}") if exact else _millions
        text = f"{number(self.total)} parameters"
        if self.position:
            text += f" ({number(self.total - self.position)} without position embeddings)"
        return text

    def short(self) -> str:
        """The total alone, ``0.82M`` (a table column)."""
        return _millions(self.total)

    def to_dict(self) -> dict[str, int]:
        """The JSON fields, the same in ``train``, ``runs`` and ``info``."""
        return {"parameters": self.total, "position_embedding_parameters": self.position}


def count_parameters(config: ModelConfig) -> ParameterCount:
    """What ``GPT(config).parameter_count()`` gives, from the shape alone: ``runs`` lists many
    checkpoints, and building each model (even on the meta device) cost it seconds.
    ``tests/test_newcomer.py`` checks the two agree for every recipe switch."""
    c, bias = config.n_embd, int(config.bias)
    norm = 0 if config.norm == "rmsnorm" else c + c * bias  # RMSNorm here has no parameters
    attention = 3 * c * c + 3 * c * bias + c * c + c * bias  # c_attn, c_proj (QK-norm: none)
    mlp = norm + 4 * c * c + 4 * c * bias + 4 * c * c + c * bias if config.mlp else 0
    position = config.block_size * c if config.position == "learned" else 0
    head = 0 if config.tie_embeddings else config.vocab_size * c
    total = (
        config.vocab_size * c
        + position
        + config.n_layer * (norm + attention + mlp)
        + norm  # ln_f (ln_emb, RMSNorm only, has none)
        + head
    )
    return ParameterCount(total, position)


def _millions(n: int) -> str:
    return f"{n / 1e6:.2f}M"


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
        self.ln_emb = make_norm(config, config.n_embd) if config.norm == "rmsnorm" else None
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = make_norm(config, config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.wte.weight  # weight tying (Press & Wolf 2017)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if not name.endswith("c_proj.weight"):
                continue
            if config.zero_init_proj:
                # Each block starts as the identity on the residual stream and learns what to
                # add (modded-nanogpt); Muon's orthogonalised updates move it off zero at once.
                nn.init.zeros_(p)
            else:
                # GPT-2: scale the residual projections by 1/sqrt(2 * n_layer) so the residual
                # stream's variance does not grow with depth.
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))
        if config.zero_init_proj and not config.tie_embeddings:
            nn.init.zeros_(self.lm_head.weight)  # uniform predictions at step 0

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def parameter_count(self) -> ParameterCount:
        """The one count every command shows (train, runs, info): each parameter once."""
        position = self.wpe.weight.numel() if self.wpe is not None else 0
        return ParameterCount(sum(p.numel() for p in self.parameters()), position)

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        cache: KVCache | None = None,
        capture: bool = False,
        last_only: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None, list[AttentionCapture]]:
        """Logits for ``idx`` (B, T); the mean cross-entropy if ``targets`` is given.

        With ``cache`` the tokens continue the cached sequence (positions start at its length).
        ``capture`` runs the manual path and returns each layer's Q, K, V and weights.
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
        x = self.drop(x)
        if self.ln_emb is not None:
            x = self.ln_emb(x)
        captures: list[AttentionCapture] = []
        for i, block in enumerate(self.blocks):
            x, captured = block(x, self.attention, cache, i, capture)
            if captured is not None:
                captures.append(captured)
        if cache is not None:
            cache.length += t
        x = self.ln_f(x)
        if last_only:
            x = x[:, -1:, :]
        logits = self.head(x)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        return logits, loss, captures

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
        cache = KVCache(self.config, batch_size, weight.device, weight.dtype, rotary)
        if self.wpe is None and self.ln_emb is not None:
            # Without position embeddings the normalised embedding of a token is the same at
            # every position: normalise the table once instead of a row per token.
            with torch.inference_mode():
                cache.embeddings = self.ln_emb(weight)
        return cache

    @torch.inference_mode()
    def step(self, idx: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Logits (B, vocab) for one new token per row, ``idx`` (B, 1), at ``cache.position``.

        The sampler's per-token path: what :meth:`forward` computes for that token given the
        cached keys, with no dropout, hooks or captures, no host synchronisation and fixed
        shapes (a CUDA graph captures it once). The caller sets ``cache.position``."""
        position = cache.position
        if cache.embeddings is not None:
            x = F.embedding(idx, cache.embeddings)
        else:
            x = self.wte(idx)
            if self.wpe is not None:
                x = x + self.wpe(position)
            if self.ln_emb is not None:
                x = step_norm(self.ln_emb, x)
        visible = cache.visible.index_select(0, position)  # (1, block): broadcast over rows
        rotation = None
        if cache.rotations is not None:
            rotation = cache.rotations.index_select(0, position)[0]
        for i, block in enumerate(self.blocks):
            x = block.step(x, cache, i, visible, rotation)
        return self.head(step_norm(self.ln_f, x))[:, 0]

    def parameter_roles(self) -> dict[str, list[nn.Parameter]]:
        """Every parameter once, by role: ``matrices`` (the blocks' 2-D weights), ``embeddings``
        (token and position tables), ``head`` (the LM head, when untied) and ``scalars`` (norm
        gains and biases). The optimizer gives each role its own learning rate and decay."""
        roles: dict[str, list[nn.Parameter]] = {r: [] for r in PARAMETER_ROLES}
        seen: set[int] = set()
        for name, p in self.named_parameters():
            if id(p) in seen:
                continue
            seen.add(id(p))
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
        params = {id(p): p for p in self.parameters()}.values()  # tied weight once
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
