"""Noticing a collapse in training speed (another job on the cores, too many threads): a shared
machine can slow a run tenfold with nothing said. :class:`SpeedWatch` takes each step's tokens
and seconds and reports once when the recent rate falls far below the run's own best.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class SpeedRule:
    """When a slowdown is reported."""

    warmup_steps: int = 20  # the first steps of a session are slow (allocation, compilation)
    window: int = 20  # steps per window; its median shrugs off a single slow step
    ratio: float = 1 / 3  # the recent window's median under this share of the best window's


@dataclass(frozen=True)
class Slowdown:
    step: int
    recent: float  # tokens/s: the median of the last window's steps
    best: float  # tokens/s: the best earlier window's median


class SpeedWatch:
    """Per-step timings in, at most one :class:`Slowdown` out."""

    def __init__(self, rule: SpeedRule | None = None) -> None:
        self.rule = rule or SpeedRule()
        self.rates: deque[float] = deque(maxlen=self.rule.window)
        self.steps = 0
        self.best = 0.0
        self.reported = False

    def add(self, step: int, tokens: int, seconds: float) -> Slowdown | None:
        """Record one step; the Slowdown the first time the rule holds, else None."""
        self.steps += 1
        if self.reported or self.steps <= self.rule.warmup_steps or seconds <= 0:
            return None
        self.rates.append(tokens / seconds)
        if len(self.rates) < self.rule.window:
            return None
        recent = statistics.median(self.rates)
        if recent < self.rule.ratio * self.best:
            self.reported = True
            return Slowdown(step, recent, self.best)
        self.best = max(self.best, recent)
        return None
