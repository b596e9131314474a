"""``--ema``: an exponential moving average of the weights, the model a run evaluates, saves
and samples, while the optimizer steps the trained weights. Late in a run the average lies
nearer the valley's bottom than the noisy last step (docs/benchmarks.md). The decay ramps up as
(1 + n) / (10 + n) after n updates, so a short run's average is not mostly its initial weights.
"""

from __future__ import annotations

import copy

import torch
from torch.optim.swa_utils import get_ema_multi_avg_fn

from tinygpt.model import GPT


class WeightAverage:
    """The average of a model's weights, updated after each applied optimizer update (two a
    step in the batch warmup)."""

    def __init__(self, model: GPT, decay: float) -> None:
        self.decay = decay
        self.updates = 0  # updates taken in
        self.model: GPT = copy.deepcopy(model)  # a GPT of its own, the average's weights
        # The parameter lists once, not per step: the step's only cost is the lerp itself.
        self._averaged = [p.detach() for p in self.model.parameters()]
        self._trained = [p.detach() for p in model.parameters()]

    @torch.no_grad()
    def update(self) -> None:
        """Take in the trained weights as they are after a step (the first step's are copied)."""
        n = self.updates
        if n == 0:
            for averaged, trained in zip(self._averaged, self._trained, strict=True):
                averaged.copy_(trained)
        else:
            decay = min(self.decay, (1 + n) / (10 + n))
            get_ema_multi_avg_fn(decay)(self._averaged, self._trained, None)
        self.updates += 1

    def restore(self, averaged: dict[str, torch.Tensor], updates: int) -> None:
        """Continue a saved average: its weights and how many updates made it."""
        self.model.load_state_dict(averaged)
        self.updates = updates
