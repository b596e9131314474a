"""The weights at every evaluation of a run (``history.safetensors``), for ``tinygpt explore``'s
step slider. Kept in float16 (a display's precision), on by default only for small models, and
past :data:`MAX_KEPT` steps the one whose neighbours lie closest goes (an even spread stays).
"""

from __future__ import annotations

import re

import safetensors.torch
import torch

from tinygpt.checkpoint.weights import clean_state_dict, is_tied
from tinygpt.config.model import ModelConfig, parameter_bound
from tinygpt.errors import CheckpointError

AUTO_MAX_PARAMETERS = 2_000_000  # on by default up to this size: 4 MB a kept step
MAX_KEPT = 64
_KEY = re.compile(r"step(\d{1,12})/(.+)")


def wants_history(asked: bool | None, model: ModelConfig) -> bool:
    """``--weight-history`` when given, else on for models of at most 2M parameters."""
    return asked if asked is not None else parameter_bound(model) <= AUTO_MAX_PARAMETERS


class WeightHistory:
    """Step -> that step's weights (plain names, float16, on the CPU)."""

    def __init__(self, steps: dict[int, dict[str, torch.Tensor]] | None = None) -> None:
        self.by_step = steps or {}

    @property
    def steps(self) -> list[int]:
        return sorted(self.by_step)

    def add(self, model: torch.nn.Module, step: int) -> None:
        state = clean_state_dict(model.state_dict(), is_tied(model))
        self.by_step[step] = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        while len(self.by_step) > MAX_KEPT:
            # Drop the inner step whose neighbours lie closest: the least coverage lost.
            steps = self.steps
            inner = min(range(1, len(steps) - 1), key=lambda i: steps[i + 1] - steps[i - 1])
            del self.by_step[steps[inner]]

    def weights(self, step: int) -> bytes:
        """That step's weights as a float32 safetensors file (what ``load_weights`` reads)."""
        state = {
            k: v.float() if v.is_floating_point() else v for k, v in self.by_step[step].items()
        }
        return safetensors.torch.save(state)

    def to_bytes(self) -> bytes:
        flat = {f"step{s}/{k}": v for s, state in self.by_step.items() for k, v in state.items()}
        return safetensors.torch.save(flat, metadata={"format": "pt"})

    @classmethod
    def from_bytes(cls, data: bytes, source: str) -> WeightHistory:
        try:
            flat = safetensors.torch.load(data)
        except Exception as exc:
            raise CheckpointError(f"{source} is corrupt: not a safetensors file ({exc})") from None
        steps: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in flat.items():
            match = _KEY.fullmatch(key)
            if match is None:
                raise CheckpointError(f"{source} is corrupt: unknown tensor {key[:60]!r}")
            steps.setdefault(int(match[1]), {})[match[2]] = value
        return cls(steps)
