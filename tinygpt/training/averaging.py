"""``--ema``: an exponential moving average of the weights, the model a run evaluates, saves
and samples from, while the optimizer steps the weights it trains.

Late in a run each step still moves the weights along its batch's noise; their average over the
last hundred-odd steps lies nearer the bottom of the valley (docs/benchmarks.md). torch's
``AveragedModel`` keeps the copy; the decay ramps up as (1 + n) / (10 + n) after n updates, so
that a short run's average is not mostly its initial weights.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from tinygpt.model import GPT


class WeightAverage:
    """The average of a model's weights, updated after each applied step."""

    def __init__(self, model: GPT, decay: float) -> None:
        self.decay = decay
        self._averaged = AveragedModel(model, multi_avg_fn=self._lerp, use_buffers=False)
        self.model: GPT = self._averaged.module  # a GPT of its own, the average's weights

    @property
    def updates(self) -> int:
        """How many steps the average has taken in (a CPU counter: reading it waits for no
        device)."""
        return int(self._averaged.n_averaged)

    def update(self, model: GPT) -> None:
        self._averaged.update_parameters(model)

    def _lerp(self, averaged: Any, current: Any, count: torch.Tensor) -> None:
        n = self.updates  # the updates before this one (AveragedModel counts it afterwards)
        get_ema_multi_avg_fn(min(self.decay, (1 + n) / (10 + n)))(averaged, current, count)

    def restore(self, averaged: dict[str, torch.Tensor], updates: int) -> None:
        """Continue a saved average: its weights and how many updates made it."""
        self.model.load_state_dict(averaged)
        self._averaged.n_averaged.fill_(updates)
