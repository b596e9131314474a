"""What a finished run hands back: where it saved, how far it got and why it stopped."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinygpt.model import GPT, ParameterCount, count_parameters


@dataclass
class TrainResult:
    out_dir: Path
    step: int
    best_val_loss: float
    metrics: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False
    stopped_by_time: bool = False
    is_main: bool = True  # False on data-parallel ranks other than 0 (they report nothing)
    model: GPT | None = None  # the trained model, in memory
    signal: int = 0  # the stop signal that interrupted the run (SIGINT, SIGTERM, SIGHUP), or 0
    train_tokens: int = 0  # the training split's length

    @property
    def passes(self) -> float:
        """How many times over the training split the run read, in tokens."""
        seen = self.metrics[-1].get("tokens_seen", 0) if self.metrics else 0
        return seen / self.train_tokens if self.train_tokens else 0.0

    @property
    def parameters(self) -> ParameterCount | None:
        return count_parameters(self.model.config) if self.model is not None else None
