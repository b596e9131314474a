"""A model's parameter count, from the built model or from its shape alone."""

from __future__ import annotations

from dataclasses import dataclass

from tinygpt.config.model import ModelConfig


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
    """The count every command shows, from the shape alone (building each model that ``runs``
    lists cost seconds); tests/test_model.py checks it against built models."""
    c, bias = config.n_embd, int(config.bias)
    norm = 0 if config.norm == "rmsnorm" else c + c * bias  # RMSNorm here has no parameters
    attention = 3 * c * c + 3 * c * bias + c * c + c * bias  # c_attn, c_proj (QK-norm: none)
    mlp = norm + 4 * c * c + 4 * c * bias + 4 * c * c + c * bias if config.mlp else 0
    position = config.block_size * c if config.position == "learned" else 0
    head = 0 if config.tie_embeddings else config.vocab_size * c
    total = (
        config.vocab_size * c
        + position
        + (norm if config.embed_norm else 0)  # ln_emb
        + config.n_layer * (norm + attention + mlp)
        + norm  # ln_f
        + head
    )
    return ParameterCount(total, position)


def _millions(n: int) -> str:
    return f"{n / 1e6:.2f}M"
