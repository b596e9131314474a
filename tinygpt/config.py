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

ATTENTION_CHOICES = ("auto", "sdpa", "manual")
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise UsageError(f"--{name.replace('_', '-')} must be positive, got {value}")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UsageError(f"--{name} must be one of {', '.join(choices)}; got {value!r}")


@dataclass
class ModelConfig:
    """Shape of the decoder-only transformer (defaults: a small char model that trains on a CPU)."""

    vocab_size: int = 65
    block_size: int = 128
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True
    # "gelu" (exact, erf) or "gelu_tanh" (GPT-2's original approximation, for imported models)
    activation: str = "gelu"

    def validate(self) -> ModelConfig:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise UsageError(
                    f"--{name.replace('_', '-')} must be a positive integer, got {value}"
                )
        if self.n_embd % self.n_head:
            raise UsageError(
                f"--n-embd ({self.n_embd}) must be divisible by --n-head ({self.n_head}); "
                f"try --n-embd {self.n_head * max(1, round(self.n_embd / self.n_head))}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise UsageError(f"--dropout must be in [0, 1), got {self.dropout}")
        check_choice("activation", self.activation, ("gelu", "gelu_tanh"))
        return self

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


@dataclass
class TrainConfig:
    """One training run: data, optimiser, schedule, evaluation, hardware and bookkeeping."""

    data: str = ""
    out_dir: str = ""
    tokenizer: str = "gpt2"
    encoding: str = "utf-8"
    batch_size: int = 32
    grad_accum: int = 1
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    max_steps: int = 2000
    max_time: float | None = None
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
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
    # Data-parallel processes (set by the trainer from torchrun's environment, not an option).
    world_size: int = 1

    @property
    def effective_batch_size(self) -> int:
        """Sequences per optimizer step: batch x accumulation x data-parallel processes."""
        return self.batch_size * self.grad_accum * self.world_size

    def validate(self) -> TrainConfig:
        for name in ("batch_size", "grad_accum", "max_steps", "eval_every", "eval_batches"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise UsageError(
                    f"--{name.replace('_', '-')} must be a positive integer, got {value}"
                )
        _positive("lr", self.lr)
        if not (0 <= self.min_lr <= self.lr) or not math.isfinite(self.min_lr):
            raise UsageError(f"--min-lr must be between 0 and --lr ({self.lr}), got {self.min_lr}")
        if self.warmup_steps < 0:
            raise UsageError(f"--warmup-steps must be >= 0, got {self.warmup_steps}")
        if self.weight_decay < 0 or not math.isfinite(self.weight_decay):
            raise UsageError(f"--weight-decay must be >= 0, got {self.weight_decay}")
        if self.grad_clip < 0 or not math.isfinite(self.grad_clip):
            raise UsageError(
                f"--grad-clip must be >= 0 (0 disables clipping), got {self.grad_clip}"
            )
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise UsageError(f"--{name} must be in [0, 1), got {getattr(self, name)}")
        if self.max_time is not None:
            _positive("max_time", self.max_time)
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

    def validate(self) -> SampleConfig:
        if self.max_new_tokens < 0:
            raise UsageError(f"--max-new-tokens must be >= 0, got {self.max_new_tokens}")
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            raise UsageError(f"--temperature must be >= 0 (0 means greedy), got {self.temperature}")
        if self.top_k is not None and self.top_k <= 0:
            raise UsageError(f"--top-k must be a positive integer, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise UsageError(f"--top-p must be in (0, 1], got {self.top_p}")
        if self.num_samples <= 0:
            raise UsageError(f"--num-samples must be a positive integer, got {self.num_samples}")
        return self


@dataclass
class RunConfig:
    """What a checkpoint's ``config.json`` holds: the model and the run that trained it."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        train = {**asdict(self.train), "effective_batch_size": self.train.effective_batch_size}
        return {"model": asdict(self.model), "train": train}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Read a config.json; keys this version does not know (or no longer uses) are ignored."""
        return cls(
            model=_known_fields(ModelConfig, data.get("model", {})),
            train=_known_fields(TrainConfig, data.get("train", {})),
        )


def _known_fields(cls: type, data: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})
