"""Planning a ``--max-time`` run: the steps that fit before the deadline, and the schedule's
total (:class:`Deadline`, what the trainer asks).

A session's first step (compilation, or warm-up) is time spent, never multiplied by the steps
left; until a steady step has been timed there is no plan, so a slow start cannot freeze the
schedule. An evaluation costs what the last one took; before one, a forward pass per batch.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from tinygpt.config.train import EVAL_SHARE, TrainConfig
from tinygpt.errors import Message, Opt
from tinygpt.training.schedule import horizon_free, lr_at

RECENT_STEPS = 20  # the latest steps whose pace can shorten a plan after its decay began
SLOWED_NOTE = 0.95  # a plan shrunk below this share of the one the decay began with is said
# A plan in its decay grows back only to this share of its total short of what fits: the
# estimate jitters by a step or two, and a plan grown on that noise would end past the deadline.
GROW_SLACK = 0.01
MAX_PLANNED_STEPS = 2**62  # more than any run takes; int(inf) would raise


def _whole_steps(steps: float) -> int:
    """Planned steps as a count: none below 0, and a budget of 1e308 s is not infinite steps."""
    return int(min(max(0.0, steps), MAX_PLANNED_STEPS))


@dataclass
class DeadlinePlanner:
    """Steps left before ``max_time`` seconds, from the times the trainer reports."""

    max_time: float
    eval_every: int | None  # steps between evaluations; None: every eval_seconds
    eval_forward_passes: int  # the val estimate: eval_batches
    grad_accum: int = 1
    warmup_steps: int = 1  # the session's first steps, timed as warm-up
    compiled: bool = False  # the warm-up is then mostly compilation (for the end note)
    warmup_seconds: float = 0.0  # what the warm-up steps took
    evaluating_seconds: float = 0.0  # the evaluations and saves
    evaluations: int = 0
    eval_seconds: float | None = None  # seconds between evaluations (eval_every None)
    steps_seen: int = 0
    step_seconds: float | None = None  # the last estimate of a steady step
    # The training clock (session time less evaluations) at the latest steady steps.
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_STEPS))

    def step_done(self, elapsed: float) -> None:
        """A step ended ``elapsed`` seconds into the session."""
        self.steps_seen += 1
        if self.steps_seen <= self.warmup_steps:
            self.warmup_seconds = elapsed - self.evaluating_seconds
        else:
            self.recent.append(elapsed - self.evaluating_seconds)

    def evaluation_done(self, seconds: float) -> None:
        self.evaluating_seconds += seconds
        self.evaluations += 1

    @property
    def eval_cost(self) -> float | None:
        """An evaluation and save, the mean of those so far: one slowed by the machine must
        not space the rest of the run's evaluations out (None before the first)."""
        return self.evaluating_seconds / self.evaluations if self.evaluations else None

    def steps_left(self, elapsed: float, recent: bool = False) -> int | None:
        """Steps that still fit after ``elapsed`` seconds, paying for the evaluations still due
        and the final one; None without a steady step. ``recent``: the slower of the mean
        steady step and the latest steps' pace (a machine that slowed)."""
        steady = self.steps_seen - self.warmup_steps
        if steady < 1:
            return None
        per_step = (elapsed - self.warmup_seconds - self.evaluating_seconds) / steady
        if recent and len(self.recent) > 1:
            pace = (self.recent[-1] - self.recent[0]) / (len(self.recent) - 1)
            per_step = max(per_step, pace)
        self.step_seconds = per_step = max(per_step, 1e-9)
        evaluation = self.eval_cost
        if evaluation is None:
            evaluation = self.eval_forward_passes * per_step / (3 * self.grad_accum)
        left = self.max_time - elapsed - evaluation
        if self.eval_every is not None:
            return _whole_steps(left / (per_step + evaluation / self.eval_every))
        evaluations = max(0.0, left) / self.eval_interval()  # those still due on the clock
        return _whole_steps((left - evaluations * evaluation) / per_step)

    def eval_interval(self) -> float:
        """Seconds between evaluations by the clock: the configured interval, or wider where
        an evaluation takes more than ``EVAL_SHARE`` of it."""
        assert self.eval_seconds is not None
        return max(self.eval_seconds, (self.eval_cost or 0.0) / EVAL_SHARE)

    def summary(self) -> str:
        """What the warm-up cost and a step costs, for the end note."""
        warm = "compiling" if self.compiled else "warm-up"
        text = f"{warm} took {self.warmup_seconds:.1f}s"
        if self.step_seconds is not None:
            text += f", then {self.step_seconds * 1e3:.0f} ms a step"
        if self.eval_cost is not None:
            text += f"; an evaluation and save {self.eval_cost:.1f}s"
        return text


class Deadline:
    """A session's ``--max-time`` budget: the schedule's total that ends at it, whether it has
    passed, and what to say when it ends the run.

    The total is re-planned freely while the rate does not depend on it (``horizon_free``), and
    the one settled on is saved, so a resume is exact. Once the decay has begun the rate never
    rises: the total shrinks when the latest pace says it no longer fits, and grows back when
    the machine is faster again only as far as keeps the rate level.
    """

    def __init__(self, cfg: TrainConfig, start: float, compiled: bool) -> None:
        assert cfg.max_time is not None
        self.cfg, self.start, self.max_time = cfg, start, cfg.max_time
        self.cap = cfg.max_steps  # --max-steps stays a cap
        self.planner = DeadlinePlanner(
            self.max_time,
            cfg.eval_steps,
            cfg.eval_batches,
            cfg.grad_accum,
            warmup_steps=2 if compiled else 1,  # a compiled second step may recompile
            compiled=compiled,
            eval_seconds=cfg.eval_seconds,
        )
        self.planned: int | None = None  # the total the last plan settled on
        self.first_plan: int | None = None  # the total when the decay began
        self.slowed = False  # the plan shrank once its decay had begun (said once)
        self.pending_note: Message | None = None

    def plan(self, now: float, step: int, total: int, agree: Callable[[int], int]) -> int:
        """The schedule's total after ``step`` steps at clock ``now``; ``agree`` makes every
        rank take the same one."""
        self.planned = self._plan(now - self.start, step, total, agree)
        return self.planned

    def _plan(self, elapsed: float, step: int, total: int, agree: Callable[[int], int]) -> int:
        self.planner.step_done(elapsed)
        if step >= horizon_free(self.cfg, total):
            return self._replan_decay(elapsed, step, total, agree)
        left = self.planner.steps_left(elapsed)
        if left is None:
            return total
        # Capped first: a budget like 1e38 s must not overflow the float32 all ranks average.
        estimate = agree(step + min(left, self.cap))
        # --max-steps stays a cap even while the warmup outlasts it (the horizon not reached)
        return min(self.cap, max(step + 1, estimate))

    def _replan_decay(
        self, elapsed: float, step: int, total: int, agree: Callable[[int], int]
    ) -> int:
        """The total once the decay has begun: fewer steps, or more up to a level rate."""
        if self.first_plan is None:
            self.first_plan = total
        left = self.planner.steps_left(elapsed, recent=True)
        if left is None:
            return total
        fits = min(self.cap, max(step + 1, agree(step + min(left, self.cap))))
        if fits >= total:
            return self._grow(step, total, fits - max(2, round(GROW_SLACK * total)))
        if not self.slowed and fits < SLOWED_NOTE * self.first_plan:
            self.slowed = True
            self.pending_note = Message(
                Opt("max_time"),
                f" {self.max_time:g}s: training slowed, so the schedule now ends at step "
                f"{fits} instead of {self.first_plan}, its decay still finished by the deadline",
            )
        return fits

    def _grow(self, step: int, total: int, limit: int) -> int:
        """The largest total up to ``limit`` whose rate for the next step is no higher than the
        last step's."""
        ceiling = lr_at(step - 1, self.cfg, total)
        grown = total
        while grown < limit and lr_at(step, self.cfg, grown + 1) <= ceiling:
            grown += 1
        return grown

    def take_note(self) -> Message | None:
        """The note about a shrunk plan, the first time it shrinks; then None."""
        note, self.pending_note = self.pending_note, None
        return note

    def passed(self, now: float) -> bool:
        return now - self.start >= self.max_time

    def evaluation_done(self, seconds: float) -> None:
        self.planner.evaluation_done(seconds)

    def eval_interval(self) -> float | None:
        """Seconds from one evaluation to the next by the clock (None: every ``--eval-every``
        steps)."""
        return None if self.planner.eval_seconds is None else self.planner.eval_interval()

    def ends_early(self, step: int, total: int) -> bool:
        """The run reached the total planned for the deadline, short of --max-steps (a total
        something else set, such as an early stop, is not the deadline's)."""
        return step == total == self.planned and total < self.cap

    def reached_note(self, step: int) -> Message:
        return Message(
            Opt("max_time"),
            f" {self.max_time:g}s reached at step {step} ({self.planner.summary()})",
        )

    def planned_end_note(self, step: int, now: float) -> Message:
        return Message(
            Opt("max_time"),
            f" {self.max_time:g}s: the schedule planned for the deadline ended at step {step} "
            f"({now - self.start:.0f}s; {self.planner.summary()})",
        )
