"""The two recipes tinygpt trains with: an architecture and the optimisation that goes with it.

* ``gpt2``: GPT-2 as published (learned positions, LayerNorm with biases, tied head; AdamW,
  cosine), kept bit-for-bit for old checkpoints and Hugging Face interop.
* ``modern``: what the NanoGPT speedrun and nanochat use where it pays at this scale
  (docs/benchmarks.md): RoPE, RMSNorm with QK-norm, no biases, an untied soft-capped head;
  Muon and AdamW on a warmup-stable-decay schedule; the text read pass by pass.

``--arch NAME`` starts from a recipe; options given explicitly win. ``ModelConfig``'s defaults
are the modern recipe's architecture (a test holds the two together).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

# The architecture a recipe fixes: these ModelConfig fields (the rest is the model's shape).
MODEL_SWITCHES = (
    "position",
    "norm",
    "embed_norm",
    "qk_norm",
    "activation",
    "tie_embeddings",
    "logit_softcap",
    "bias",
)


@dataclass(frozen=True)
class Recipe:
    """A recipe's architecture switches and optimisation settings; a training setting left
    ``None`` is not part of it (the run's default applies)."""

    # architecture (ModelConfig fields)
    position: str  # "rope" or "learned"
    norm: str  # "rmsnorm" or "layernorm"
    embed_norm: bool  # normalise the token embedding before the first block
    qk_norm: bool
    activation: str  # "gelu", "gelu_tanh" or "relu2"
    tie_embeddings: bool
    logit_softcap: float  # 0: no cap
    bias: bool
    # optimisation (TrainConfig fields)
    optimizer: str
    lr: float
    min_lr: float
    warmup_steps: int
    schedule: str
    matrix_lr: float | None = None
    embed_lr: float | None = None
    data_order: str | None = None  # "passes" or "random" (docs/benchmarks.md)
    ema: float | None = None  # the weights' average evaluated and saved; 0: none
    normuon: bool | None = None  # Muon's per-neuron step sizes (tinygpt/training/muon.py)
    batch_warmup_steps: int | None = None  # the first steps update on each half batch

    def model_options(self) -> dict[str, Any]:
        """The ModelConfig fields this recipe sets."""
        return {k: getattr(self, k) for k in MODEL_SWITCHES}

    def train_options(self) -> dict[str, Any]:
        """The TrainConfig fields this recipe sets."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in MODEL_SWITCHES and getattr(self, f.name) is not None
        }

    def options(self) -> dict[str, Any]:
        """Every option the recipe sets, model and training."""
        return {k: v for k, v in asdict(self).items() if v is not None}


MODERN = Recipe(
    position="rope",
    norm="rmsnorm",
    embed_norm=True,
    qk_norm=True,
    # GELU and GPT-2's init measured better than the speedrun's ReLU² and zero-initialised
    # projections at this scale (docs/benchmarks.md; scripts/ablate_recipe.py builds those).
    activation="gelu",
    tie_embeddings=False,
    logit_softcap=15.0,
    bias=False,
    optimizer="muon",
    lr=8e-3,
    matrix_lr=0.02,
    embed_lr=0.01,
    min_lr=0.0,
    warmup_steps=20,
    schedule="wsd",
    data_order="passes",
    ema=0.99,
    normuon=True,
    batch_warmup_steps=400,
)

GPT2 = Recipe(
    position="learned",
    norm="layernorm",
    embed_norm=False,
    qk_norm=False,
    activation="gelu",
    tie_embeddings=True,
    logit_softcap=0.0,
    bias=True,
    optimizer="adamw",
    lr=1e-3,
    min_lr=1e-4,
    warmup_steps=100,
    schedule="cosine",
    data_order="random",  # nanoGPT's: every window drawn anywhere
    ema=0.0,
    normuon=False,  # no Muon in this recipe: recorded as off
    batch_warmup_steps=0,
)

RECIPES: dict[str, Recipe] = {"modern": MODERN, "gpt2": GPT2}
