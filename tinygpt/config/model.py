"""The network's shape and recipe switches, and the bounds on its size."""

from __future__ import annotations

from dataclasses import dataclass

from tinygpt.config.fields import (
    MAX_BLOCK_SIZE,
    MAX_KV_ELEMENTS,
    MAX_LAYERS,
    MAX_PARAMETERS,
    MAX_VOCAB,
    MAX_WIDTH,
    check_choice,
    check_rate,
    check_types,
    documented,
)
from tinygpt.errors import Opt, Piece, UsageError
from tinygpt.recipe import RECIPES


def _shape_suggestion(cfg: ModelConfig) -> tuple[Piece, ...]:
    """A width near ``n_embd`` or a head count near ``n_head`` that fit, with an even head size
    for RoPE (it rotates pairs of channels)."""
    step = cfg.n_head * (2 if cfg.position == "rope" else 1)
    width = step * max(1, round(cfg.n_embd / step))
    near = range(1, min(cfg.n_embd, 4 * cfg.n_head + 16) + 1)  # a width of 10**12 ends here
    heads = [
        h
        for h in near
        if cfg.n_embd % h == 0 and (cfg.position != "rope" or (cfg.n_embd // h) % 2 == 0)
    ]
    suggestion: tuple[Piece, ...] = (Opt("n_embd", width),)
    if heads:  # the nearest head count; on a tie the larger (smaller heads, as asked)
        nearest = min(heads, key=lambda h: (abs(h - cfg.n_head), -h))
        suggestion += (" or ", Opt("n_head", nearest))
    return suggestion


def parameter_bound(m: ModelConfig) -> int:
    """An upper bound on ``m``'s parameters (untied head, learned positions, biases)."""
    c = m.n_embd
    per_block = 12 * c * c + 13 * c if m.mlp else 4 * c * c + 6 * c
    return 2 * m.vocab_size * c + m.block_size * c + m.n_layer * per_block + 2 * c


def _check_size(m: ModelConfig) -> None:
    for name, limit in (
        ("n_layer", MAX_LAYERS),
        ("n_embd", MAX_WIDTH),
        ("vocab_size", MAX_VOCAB),
        ("block_size", MAX_BLOCK_SIZE),
    ):
        if getattr(m, name) > limit:
            raise UsageError(Opt(name), f" {getattr(m, name)} is above tinygpt's limit {limit}")
    params = parameter_bound(m)
    if params > MAX_PARAMETERS:
        raise UsageError(
            f"the model would have about {params:,} parameters, above tinygpt's limit of "
            f"{MAX_PARAMETERS:,}; make it smaller"
        )
    if 2 * m.n_layer * m.block_size * m.n_embd > MAX_KV_ELEMENTS:
        raise UsageError(
            Opt("block_size", m.block_size),
            f" with {m.n_layer} layers {m.n_embd} wide needs a key/value cache above tinygpt's "
            "limit; use a smaller ",
            Opt("block_size"),
        )


@dataclass
class ModelConfig:
    """Shape of the decoder-only transformer (defaults: a small char model that trains on a CPU)."""

    vocab_size: int = 65
    block_size: int = documented(128, "Context length in tokens.")
    n_layer: int = documented(4, "Transformer blocks.")
    n_head: int = documented(4, "Attention heads per block.")
    n_embd: int = documented(128, "Model width.")
    # False: attention-only blocks, as in the induction-head papers (docs/benchmarks.md)
    mlp: bool = documented(True, "--no-mlp: attention-only blocks.")
    dropout: float = documented(0.0, "Dropout probability.")
    # The recipe's switches (defaults: the modern recipe; tinygpt/recipe.py names both sets).
    bias: bool = documented(False, "Biases in Linear and LayerNorm.")
    position: str = "rope"  # "rope" (rotary, on queries and keys) or "learned" (GPT-2's table)
    norm: str = "rmsnorm"  # "rmsnorm" (no parameters) or "layernorm" (gain and bias)
    embed_norm: bool = True  # normalise the token embedding before the first block (modern)
    qk_norm: bool = True  # RMSNorm each head's queries and keys before the dot product
    activation: str = "gelu"  # or "gelu_tanh" (GPT-2's, for imports) or "relu2" (the speedrun's)
    tie_embeddings: bool = False  # share the LM head with the token embedding (GPT-2)
    logit_softcap: float = 15.0  # logits = c * tanh(logits / c); 0 disables

    def validate(self) -> ModelConfig:
        check_types(self)
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if value <= 0:  # (an integer: check_types saw to it)
                raise UsageError(Opt(name), f" must be a positive integer, got {value}")
        if self.n_embd % self.n_head:
            raise UsageError(
                Opt("n_embd"),
                f" ({self.n_embd}) must be divisible by ",
                Opt("n_head"),
                f" ({self.n_head}); try ",
                *_shape_suggestion(self),
            )
        if not 0.0 <= self.dropout < 1.0:
            raise UsageError(Opt("dropout"), f" must be in [0, 1), got {self.dropout}")
        check_choice("activation", self.activation, ("relu2", "gelu", "gelu_tanh"))
        check_choice("position", self.position, ("rope", "learned"))
        check_choice("norm", self.norm, ("rmsnorm", "layernorm"))
        if self.position == "rope" and self.head_dim % 2:
            raise UsageError(
                "rotary embeddings need an even head size (",
                Opt("n_embd"),
                " / ",
                Opt("n_head"),
                f"), got {self.n_embd} / {self.n_head} = {self.head_dim}; try ",
                *_shape_suggestion(self),
            )
        # applied in float32: 1e300 became inf, and inf * tanh(0) NaN
        check_rate("logit_softcap", self.logit_softcap, off=True)
        _check_size(self)
        return self

    def _differences(self) -> dict[str, list[str]]:
        """For each recipe, the switches this config sets otherwise."""
        return {
            name: [
                f"{k}={getattr(self, k)}"
                for k, v in r.model_options().items()
                if getattr(self, k) != v
            ]
            for name, r in RECIPES.items()
        }

    @property
    def arch(self) -> str:
        """``modern`` or ``gpt2`` when the switches match that set, else ``custom``."""
        return next((name for name, d in self._differences().items() if not d), "custom")

    @property
    def arch_description(self) -> str:
        """The nearer recipe and what differs from it (``modern, qk_norm=False``), and
        ``attention-only`` without MLPs."""
        differ = self._differences()
        base = min(differ, key=lambda name: len(differ[name]))
        parts = [base, *differ[base]] + ([] if self.mlp else ["attention-only"])
        return ", ".join(parts)

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head
