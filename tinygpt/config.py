"""Typed configuration that travels through tinygpt: one dataclass per stage.

``ModelConfig`` fixes the network's shape, ``TrainConfig`` the optimisation run and
``SampleConfig`` the sampling controls. Each validates itself and raises ``UsageError`` with a
message that names the option to fix, so the CLI and the Python API report the same thing.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from tinygpt.errors import UsageError
from tinygpt.spelling import option

ATTENTION_CHOICES = ("auto", "sdpa", "manual")
OPTIMIZER_CHOICES = ("muon", "adamw")
SCHEDULE_CHOICES = ("wsd", "cosine")

# The 2019 recipe as the switches it sets (and what a checkpoint without them was trained with).
# The modern recipe is the dataclass defaults; ARCHITECTURES, after the dataclasses, names both.
GPT2_RECIPE: dict[str, Any] = dict(
    position="learned",
    norm="layernorm",
    qk_norm=False,
    activation="gelu",
    tie_embeddings=True,
    logit_softcap=0.0,
    zero_init_proj=False,
    bias=True,
    optimizer="adamw",
    lr=1e-3,
    min_lr=1e-4,
    warmup_steps=100,
    schedule="cosine",
)
MODEL_SWITCHES = (
    "position",
    "norm",
    "qk_norm",
    "activation",
    "tie_embeddings",
    "logit_softcap",
    "zero_init_proj",
    "bias",
)
# The training options a recipe sets (the rest of TrainConfig is the run, not the recipe).
RECIPE_TRAIN_OPTIONS = (
    "optimizer",
    "lr",
    "matrix_lr",
    "embed_lr",
    "min_lr",
    "warmup_steps",
    "schedule",
)
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")


# Bounds on a model's size, checked before anything is allocated: a config.json (or a flag) may
# ask for a terabyte of weights or ten million layers, and should get one line instead.
MAX_PARAMETERS = 4_000_000_000  # 16 GB of float32 weights; GPT-2 XL has 1.5e9
MAX_LAYERS = 1024
MAX_WIDTH = 1 << 16
MAX_VOCAB = 1 << 24
MAX_BLOCK_SIZE = 1 << 20
MAX_KV_ELEMENTS = 1 << 32  # keys and values of one full-length sequence, all layers
MAX_ALTERNATIVES = 100  # per token in --json; more is a dump of the vocabulary, not a view
MAX_SEED = (1 << 63) - (1 << 20)  # torch takes 64-bit seeds; the run adds small offsets to it

# Declared field types -> (accepted Python types, how a message names them).
_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "int": ((int,), "an integer"),
    "float": ((int, float), "a number"),
    "bool": ((bool,), "true or false"),
    "str": ((str,), "a string"),
    "tuple[str,...]": ((tuple, list), "a list of texts"),
}


def _shape_suggestion(cfg: ModelConfig) -> str:
    """A width near ``n_embd`` that the head count divides, or a head count near ``n_head``
    that divides the width, either one giving a head size the position scheme accepts
    (RoPE rotates pairs of channels, so its head size must be even)."""
    step = cfg.n_head * (2 if cfg.position == "rope" else 1)
    width = step * max(1, round(cfg.n_embd / step))
    near = range(1, min(cfg.n_embd, 4 * cfg.n_head + 16) + 1)  # a width of 10**12 ends here
    heads = [
        h
        for h in near
        if cfg.n_embd % h == 0 and (cfg.position != "rope" or (cfg.n_embd // h) % 2 == 0)
    ]
    suggestion = _option("n_embd", width)
    if heads:  # the nearest head count; on a tie the larger (smaller heads, as asked)
        nearest = min(heads, key=lambda h: (abs(h - cfg.n_head), -h))
        suggestion += f" or {_option('n_head', nearest)}"
    return suggestion


def _option(name: str, value: object = None) -> str:
    return option(name, value)  # --n-embd from the CLI, n_embd from Python


def _check_types(obj: Any) -> None:
    """Every field holds a value of its declared type, and every number is finite.

    Values reach the configs from TOML/JSON files and checkpoints as well as from the command
    line, so ``dropout = "0.1"`` or ``warmup_steps = inf`` must be caught here, before a
    comparison raises TypeError or an infinite number silently breaks the schedule.
    """
    for f in fields(obj):
        value = getattr(obj, f.name)
        declared = str(f.type).replace(" ", "").split("|")
        if value is None and "None" in declared:
            continue
        allowed = tuple(t for d in declared if d in _TYPES for t in _TYPES[d][0])
        # bool is an int to Python, but `n_layer = true` is a mistake, not 1.
        wrong = not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed)
        if wrong:
            kinds = " or ".join(_TYPES[d][1] for d in declared if d in _TYPES)
            raise UsageError(f"{_option(f.name)} must be {kinds}, got {value!r:.40}")
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"{_option(f.name)} must be a finite number, got {value}")


def parameter_bound(m: ModelConfig) -> int:
    """An upper bound on the parameter count of ``m`` (untied head, learned positions, biases),
    computed from the shape alone."""
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
            raise UsageError(f"{_option(name)} {getattr(m, name)} is above tinygpt's limit {limit}")
    params = parameter_bound(m)
    if params > MAX_PARAMETERS:
        raise UsageError(
            f"the model would have about {params:,} parameters, above tinygpt's limit of "
            f"{MAX_PARAMETERS:,}; make it smaller"
        )
    if 2 * m.n_layer * m.block_size * m.n_embd > MAX_KV_ELEMENTS:
        raise UsageError(
            f"{_option('block_size', m.block_size)} with {m.n_layer} layers {m.n_embd} wide "
            f"needs a key/value cache above tinygpt's limit; use a smaller {_option('block_size')}"
        )


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise UsageError(f"{_option(name)} must be positive, got {value}")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UsageError(f"{_option(name)} must be one of {', '.join(choices)}; got {value!r}")


@dataclass
class ModelConfig:
    """Shape of the decoder-only transformer (defaults: a small char model that trains on a CPU)."""

    vocab_size: int = 65
    block_size: int = 128
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    # False: attention-only blocks (no MLP, no second norm), the setting of the induction-head
    # papers, where circuits form fastest and are easiest to read (docs/benchmarks.md)
    mlp: bool = True
    dropout: float = 0.0
    # The recipe's switches (defaults: the modern set; ARCHITECTURES names both sets).
    bias: bool = False
    position: str = "rope"  # "rope" (rotary, on queries and keys) or "learned" (GPT-2's table)
    norm: str = "rmsnorm"  # "rmsnorm" (no parameters) or "layernorm" (gain and bias)
    qk_norm: bool = True  # RMSNorm each head's queries and keys before the dot product
    # "gelu" (exact, erf), "gelu_tanh" (GPT-2's approximation, for imported models) or "relu2"
    # (the speedrun's ReLU²; GELU measured better here: docs/benchmarks.md)
    activation: str = "gelu"
    tie_embeddings: bool = False  # share the LM head with the token embedding (GPT-2)
    logit_softcap: float = 15.0  # logits = c * tanh(logits / c); 0 disables
    # output projections (and an untied head) start at zero, as in the speedrun; off: GPT-2's
    # scaled normal init, which measured better at this scale (docs/benchmarks.md)
    zero_init_proj: bool = False

    def validate(self) -> ModelConfig:
        _check_types(self)
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise UsageError(f"{_option(name)} must be a positive integer, got {value}")
        if self.n_embd % self.n_head:
            raise UsageError(
                f"{_option('n_embd')} ({self.n_embd}) must be divisible by {_option('n_head')} "
                f"({self.n_head}); try {_shape_suggestion(self)}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise UsageError(f"{_option('dropout')} must be in [0, 1), got {self.dropout}")
        check_choice("activation", self.activation, ("relu2", "gelu", "gelu_tanh"))
        check_choice("position", self.position, ("rope", "learned"))
        check_choice("norm", self.norm, ("rmsnorm", "layernorm"))
        if self.position == "rope" and self.head_dim % 2:
            raise UsageError(
                f"rotary embeddings need an even head size ({_option('n_embd')} / "
                f"{_option('n_head')}), got {self.n_embd} / {self.n_head} = {self.head_dim}; "
                f"try {_shape_suggestion(self)}"
            )
        if not (self.logit_softcap >= 0 and math.isfinite(self.logit_softcap)):
            raise UsageError(
                f"{_option('logit_softcap')} must be >= 0 (0 disables), got {self.logit_softcap}"
            )
        _check_size(self)
        return self

    def _differences(self) -> dict[str, list[str]]:
        """For each named recipe, the switches this config sets otherwise."""
        default = ModelConfig.__dataclass_fields__
        sets = {
            "modern": {k: default[k].default for k in MODEL_SWITCHES},
            "gpt2": {k: GPT2_RECIPE[k] for k in MODEL_SWITCHES},
        }
        return {
            name: [f"{k}={getattr(self, k)}" for k, v in switches.items() if getattr(self, k) != v]
            for name, switches in sets.items()
        }

    @property
    def arch(self) -> str:
        """``modern`` or ``gpt2`` when the switches match that set, else ``custom``."""
        return next((name for name, d in self._differences().items() if not d), "custom")

    @property
    def arch_description(self) -> str:
        """The recipe in words: ``modern``, ``gpt2``, or the nearer of the two and what
        differs from it (``modern, qk_norm=False``), and ``attention-only`` without MLPs."""
        differ = self._differences()
        base = min(differ, key=lambda name: len(differ[name]))
        parts = [base, *differ[base]] + ([] if self.mlp else ["attention-only"])
        return ", ".join(parts)

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


@dataclass(frozen=True)
class TrainConfig:
    """One training run: data, optimiser, schedule, evaluation, hardware and bookkeeping.

    Frozen: what changes as a run goes (its step, the total ``--max-time`` plans, the number
    of processes) is the run's state (tinygpt/training/state.py), not its configuration.
    """

    data: str = ""
    out_dir: str = ""
    tokenizer: str = "gpt2"
    encoding: str = "utf-8"
    batch_size: int = 32
    grad_accum: int = 1
    # Muon for the blocks' matrices, AdamW for the rest; "adamw": AdamW for everything (gpt2).
    optimizer: str = "muon"
    lr: float = 8e-3  # AdamW: the head and scalars (with "adamw": every parameter)
    matrix_lr: float = 0.02  # Muon: the blocks' weight matrices
    embed_lr: float = 0.01  # AdamW: the embeddings (with "muon")
    min_lr: float = 0.0  # where the schedule ends (each group in proportion to its own rate)
    warmup_steps: int = 20
    # "wsd": warmup, stable, then a linear decay over the last decay_fraction of the steps;
    # "cosine": warmup then cosine decay over every remaining step (the gpt2 recipe)
    schedule: str = "wsd"
    decay_fraction: float = 0.4
    max_steps: int = 2000
    max_time: float | None = None
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    momentum: float = 0.95  # Muon's (Nesterov) momentum
    grad_clip: float = 1.0
    eval_every: int = 250
    eval_batches: int = 20
    device: str = "auto"
    dtype: str = "auto"
    attention: str = "auto"
    compile: bool | None = None
    seed: int = 1337
    # Consecutive non-finite steps tolerated (each skipped) before the run stops with an error.
    max_bad_steps: int = 5
    val_fraction: float = 0.1

    def effective_batch_size(self, world_size: int = 1) -> int:
        """Sequences per optimizer step: batch x accumulation x data-parallel processes."""
        return self.batch_size * self.grad_accum * world_size

    def validate(self) -> TrainConfig:
        _check_types(self)
        for name in (
            "batch_size",
            "grad_accum",
            "max_steps",
            "eval_every",
            "eval_batches",
            "max_bad_steps",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise UsageError(f"{_option(name)} must be a positive integer, got {value}")
        for name in ("lr", "matrix_lr", "embed_lr"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise UsageError(f"{_option(name)} must be positive, got {value}")
        check_choice("optimizer", self.optimizer, OPTIMIZER_CHOICES)
        check_choice("schedule", self.schedule, SCHEDULE_CHOICES)
        if not 0 <= self.decay_fraction <= 1:
            raise UsageError(
                f"{_option('decay_fraction')} must be in [0, 1], got {self.decay_fraction}"
            )
        if not 0 <= self.momentum < 1:
            raise UsageError(f"{_option('momentum')} must be in [0, 1), got {self.momentum}")
        if not (0 <= self.min_lr <= self.lr) or not math.isfinite(self.min_lr):
            raise UsageError(
                f"{_option('min_lr')} must be between 0 and {_option('lr')} ({self.lr}), "
                f"got {self.min_lr}"
            )
        if self.warmup_steps < 0:
            raise UsageError(f"{_option('warmup_steps')} must be >= 0, got {self.warmup_steps}")
        if self.weight_decay < 0 or not math.isfinite(self.weight_decay):
            raise UsageError(f"{_option('weight_decay')} must be >= 0, got {self.weight_decay}")
        if self.grad_clip < 0 or not math.isfinite(self.grad_clip):
            raise UsageError(
                f"{_option('grad_clip')} must be >= 0 (0 disables clipping), got {self.grad_clip}"
            )
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise UsageError(f"{_option(name)} must be in [0, 1), got {getattr(self, name)}")
        if self.max_time is not None:
            _positive("max_time", self.max_time)
        if not 0 <= self.seed <= MAX_SEED:
            raise UsageError(f"{_option('seed')} must be between 0 and {MAX_SEED}, got {self.seed}")
        if not 0 < self.val_fraction < 1:
            raise UsageError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        check_choice("device", self.device, DEVICE_CHOICES)
        check_choice("dtype", self.dtype, DTYPE_CHOICES)
        check_choice("attention", self.attention, ATTENTION_CHOICES)
        return self


@dataclass
class SampleConfig:
    """Sampling controls for ``generate``."""

    max_new_tokens: int = 500
    temperature: float = 0.8
    top_k: int | None = 200
    top_p: float | None = None
    seed: int | None = None
    num_samples: int = 1
    kv_cache: bool = True
    # A sample ends where one of these texts first appears (the text itself is not kept).
    stop: tuple[str, ...] = ()
    # With each generated token, the model's K most likely tokens and their probabilities.
    alternatives: int = 0

    def validate(self) -> SampleConfig:
        _check_types(self)
        if self.seed is not None and not 0 <= self.seed <= MAX_SEED:
            raise UsageError(f"{_option('seed')} must be between 0 and {MAX_SEED}, got {self.seed}")
        if self.max_new_tokens < 0:
            raise UsageError(f"{_option('max_new_tokens')} must be >= 0, got {self.max_new_tokens}")
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            raise UsageError(
                f"{_option('temperature')} must be >= 0 (0 means greedy), got {self.temperature}"
            )
        if self.top_k is not None and self.top_k <= 0:
            raise UsageError(f"{_option('top_k')} must be a positive integer, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise UsageError(f"{_option('top_p')} must be in (0, 1], got {self.top_p}")
        if self.num_samples <= 0:
            raise UsageError(
                f"{_option('num_samples')} must be a positive integer, got {self.num_samples}"
            )
        if self.seed is not None and self.seed + self.num_samples - 1 > MAX_SEED:
            raise UsageError(
                f"{_option('seed')} + {_option('num_samples')} must stay within {MAX_SEED}"
                " (sample i uses seed + i)"
            )
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise UsageError(f"{_option('stop')} needs a non-empty text")
        if not 0 <= self.alternatives <= MAX_ALTERNATIVES:
            raise UsageError(
                f"{_option('alternatives')} must be between 0 and {MAX_ALTERNATIVES}, "
                f"got {self.alternatives}"
            )
        return self


@dataclass
class RunConfig:
    """What a checkpoint's ``config.json`` holds: the model and the run that trained it."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self, world_size: int = 1) -> dict[str, Any]:
        """config.json's contents; ``world_size``: the processes that trained it (recorded with
        the batch they made, not read back)."""
        train = {
            **asdict(self.train),
            "world_size": world_size,
            "effective_batch_size": self.train.effective_batch_size(world_size),
        }
        return {"model": {"arch": self.model.arch, **asdict(self.model)}, "train": train}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Read a config.json; keys this version does not know (or no longer uses) are ignored."""
        if not isinstance(data, dict):
            raise ValueError("config.json must hold an object")
        model, train = data.get("model", {}), data.get("train", {})
        if not isinstance(model, dict) or not isinstance(train, dict):
            raise ValueError("config.json's model and train entries must be objects")
        model, train = dict(model), dict(train)
        if "position" not in model:
            # Written before the recipe had switches: every such run used the gpt2 recipe.
            legacy = GPT2_RECIPE
            model = {**{k: legacy[k] for k in MODEL_SWITCHES}, **model}
            train = {**{k: v for k, v in legacy.items() if k not in MODEL_SWITCHES}, **train}
        return cls(model=_known_fields(ModelConfig, model), train=_known_fields(TrainConfig, train))


def _modern_recipe() -> dict[str, Any]:
    model, train = ModelConfig(), TrainConfig()
    return {
        **{k: getattr(model, k) for k in MODEL_SWITCHES},
        **{k: getattr(train, k) for k in RECIPE_TRAIN_OPTIONS},
    }


# Model switches go to ModelConfig, the rest to TrainConfig; options given explicitly win.
ARCHITECTURES: dict[str, dict[str, Any]] = {"modern": _modern_recipe(), "gpt2": GPT2_RECIPE}


def expand_arch(options: dict[str, Any]) -> dict[str, Any]:
    """Replace an ``arch`` option by the switches it names; switches given explicitly win."""
    options = dict(options)
    name = options.pop("arch", None)
    if name is None:
        return options
    if name not in ARCHITECTURES:
        raise UsageError(
            f"{_option('arch')} must be one of {', '.join(ARCHITECTURES)}; got {name!r}"
        )
    return {**ARCHITECTURES[name], **options}


def _known_fields(cls: type, data: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})
