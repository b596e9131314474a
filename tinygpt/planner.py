"""Planning a ``--max-time`` run: how many steps fit before the deadline.

The speed is that of steady training steps. A session's first step (with ``torch.compile``,
the compilation, and the second, which may recompile; without, the allocator and kernel
warm-up) is time spent, not a rate: counted against the budget, never multiplied by the steps
left (evaluation runs the uncompiled model, so it compiles nothing). Until a steady step has
been timed there is no plan, so a slow start cannot freeze the schedule on an estimate that
says no time is left. Evaluations are priced at their last measurement; before one, at a
forward pass per evaluation batch, a third of a training step's work.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DeadlinePlanner:
    """Steps left before ``max_time`` seconds, from the times the trainer reports."""

    max_time: float
    eval_every: int
    eval_forward_passes: int  # train and val estimates: 2 x eval_batches
    grad_accum: int = 1
    warmup_steps: int = 1  # the session's first steps, timed as warm-up
    compiled: bool = False  # the warm-up is then mostly compilation (for the end note)
    warmup_seconds: float = 0.0  # what the warm-up steps took
    evaluating_seconds: float = 0.0  # the evaluations and saves
    eval_seconds: float | None = None  # the last evaluation and save
    steps_seen: int = 0
    step_seconds: float | None = None  # the last estimate of a steady step

    def step_done(self, elapsed: float) -> None:
        """A step ended ``elapsed`` seconds into the session (read at the same point of every
        step, so that steady steps are timed from the end of the warm-up on)."""
        self.steps_seen += 1
        if self.steps_seen <= self.warmup_steps:
            self.warmup_seconds = elapsed - self.evaluating_seconds

    def evaluation_done(self, seconds: float) -> None:
        self.evaluating_seconds += seconds
        self.eval_seconds = seconds

    def steps_left(self, elapsed: float) -> int | None:
        """Steps that still fit after ``elapsed`` seconds of the session, paying for an
        evaluation every ``eval_every`` steps and the final one; None without a steady step.

        A steady step costs the session's time less warm-up and evaluations, over the steady
        steps: everything else the loop does between steps is part of a step's price."""
        steady = self.steps_seen - self.warmup_steps
        if steady < 1:
            return None
        per_step = (elapsed - self.warmup_seconds - self.evaluating_seconds) / steady
        self.step_seconds = per_step = max(per_step, 1e-9)
        evaluation = self.eval_seconds
        if evaluation is None:
            evaluation = self.eval_forward_passes * per_step / (3 * self.grad_accum)
        left = self.max_time - elapsed - evaluation
        return int(max(0.0, left / (per_step + evaluation / self.eval_every)))

    def summary(self) -> str:
        """What the warm-up cost and a step costs, for the end note."""
        warm = "compiling" if self.compiled else "warm-up"
        text = f"{warm} took {self.warmup_seconds:.1f}s"
        if self.step_seconds is not None:
            text += f", then {self.step_seconds * 1e3:.0f} ms a step"
        if self.eval_seconds is not None:
            text += f"; an evaluation and save {self.eval_seconds:.1f}s"
        return text
