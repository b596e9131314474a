"""The training loop: steps under the schedule, an evaluation and a save every ``eval_every``
steps, until the planned total or a stop. It shows nothing itself: it fires events to the
:class:`TrainerCallback` objects its caller attaches. A checkpoint holds everything a run needs
to continue, so ``resume=True`` is exact on CPU.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tinygpt.checkpoint.history import WeightHistory, wants_history
from tinygpt.checkpoint.store import Checkpoint
from tinygpt.checkpoint.weights import weights_bytes
from tinygpt.config.run import RunConfig
from tinygpt.data.batches import check_split_lengths
from tinygpt.data.token_cache import Corpus
from tinygpt.model import GPT
from tinygpt.model.device import autocast
from tinygpt.training import setup, stopping
from tinygpt.training.averaging import WeightAverage
from tinygpt.training.distributed import DistContext
from tinygpt.training.finetune import load_initial_weights
from tinygpt.training.planner import Deadline
from tinygpt.training.result import TrainResult
from tinygpt.training.schedule import lr_at
from tinygpt.training.speed import Slowdown, SpeedWatch
from tinygpt.training.state import RunState, restore, state_dict, write
from tinygpt.training.validation import estimate_loss

# An evaluation's training loss is the mean batch loss of the last this many steps: free, where
# a second estimate on fixed training batches cost as much as the validation one (5% of a run).
TRAIN_WINDOW = 50


class TrainerCallback:
    """Listens to a run's events; every method is a no-op until overridden."""

    def on_start(self, trainer: Trainer) -> None:
        """The loop is about to start (Ctrl-C and the stop signals are already handled)."""

    def on_step(self, trainer: Trainer, loss: float, lr: float, tokens_per_sec: float) -> None:
        """A step finished: one optimizer update, or two in the batch warmup (``trainer.step``
        counts it once)."""

    def on_evaluate(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """An evaluation's record (rank 0), before it is logged: fields may be added."""

    def on_save(self, trainer: Trainer) -> None:
        """A checkpoint was written (rank 0)."""

    def on_note(self, trainer: Trainer, message: str) -> None:
        """Something a person watching the run should know."""

    def on_slowdown(self, trainer: Trainer, slowdown: Slowdown) -> None:
        """Steps became much slower than earlier in the run (fired at most once a session)."""

    def on_end(self, trainer: Trainer) -> None:
        """The loop ended, normally or not."""


@dataclass
class _Session:
    """This invocation's timing, its ``--max-time`` deadline and how the loop ended."""

    start: float
    deadline: Deadline | None
    window_start: float = 0.0
    window_tokens: int = 0
    first_step: bool = True
    speed: SpeedWatch = field(default_factory=SpeedWatch)  # steps' own times only
    stop: stopping.Stop = field(default_factory=stopping.Stop)
    stopped_by_time: bool = False
    next_evaluation: float = math.inf  # clock reading of the next evaluation by time


class Trainer:
    """One run, fresh or resumed. Use :func:`tinygpt.training.run.train` unless you need the
    pieces."""

    def __init__(
        self,
        run: RunConfig,
        corpus: Corpus,
        resume_from: Checkpoint | None = None,
        callbacks: Sequence[TrainerCallback] = (),
        dist: DistContext | None = None,
        notes: Sequence[str] = (),
        init_from: Checkpoint | None = None,
        val_ids: np.ndarray | None = None,
    ) -> None:
        """``notes``: said when the run starts, before the trainer's own; ``init_from``: a
        checkpoint whose weights a new run starts from; ``val_ids``: the validation tokens
        (default: the corpus's last ``val_fraction``, then the rest trains)."""
        self.run, self.cfg, self.corpus = run, run.train, corpus
        self.dist = dist or DistContext()
        self.out_dir = Path(self.cfg.out_dir)
        self.callbacks = list(callbacks)
        self.train_ids, self.val_ids = corpus.split(self.cfg.val_fraction)
        if val_ids is not None:
            self.train_ids, self.val_ids = corpus.ids, val_ids
        check_split_lengths(self.train_ids, self.val_ids, run.model.block_size, self.cfg.val_file)
        self.parts = setup.build(run, self.train_ids, corpus.tokenizer, self.dist)
        self.device, self.dtype = self.parts.device, self.parts.dtype
        self.model, self.optimizer = self.parts.model, self.parts.optimizer
        self.startup_notes = [*notes, *self.parts.notes]  # said once a display is listening
        self.state = RunState(
            total_steps=self.cfg.max_steps,
            world_size=self.dist.world_size,
            recent_losses=deque(maxlen=TRAIN_WINDOW),
        )
        if wants_history(self.cfg.weight_history, self.run.model):
            self.state.history = WeightHistory()
        if init_from is not None:
            load_initial_weights(init_from, self.model)
        if self.cfg.ema:
            self.state.average = WeightAverage(self.model, self.cfg.ema)
        if resume_from is not None:
            restore(resume_from, self.parts, self.state, self.dist, self.cfg.seed)
        wrapped = setup.wrap(self.model, self.device, self.cfg, self.dist)
        self.forward_model, self.ddp, self.compiled = wrapped.forward, wrapped.ddp, wrapped.compiled
        self.startup_notes += [wrapped.note] if wrapped.note else []
        # Wall clock for --max-time and tokens/s; tests substitute a fake one.
        self.clock: Callable[[], float] = time.perf_counter

    @property
    def step(self) -> int:
        return self.state.step

    @property
    def metrics(self) -> list[dict[str, Any]]:
        return self.state.metrics

    @property
    def eval_model(self) -> GPT:
        """The model evaluations measure and checkpoints save: the weights' average with
        ``--ema``, else the weights as trained."""
        average = self.state.average
        return average.model if average is not None else self.model

    @property
    def tokens_per_step(self) -> int:
        """Tokens per optimizer step over all ranks (the effective batch x block size)."""
        return self.cfg.effective_batch_size(self.state.world_size) * self.run.model.block_size

    def lr(self, step: int) -> float:
        """The ``lr`` group's rate at ``step`` of the schedule's current total."""
        return lr_at(step, self.cfg, self.state.total_steps)

    # -- events ------------------------------------------------------------------------------
    def emit(self, event: str, *args: Any) -> None:
        """Call ``on_<event>`` of every attached callback, in the order they were given."""
        for callback in self.callbacks:
            getattr(callback, f"on_{event}")(self, *args)

    @contextmanager
    def _events(self) -> Iterator[None]:
        self.emit("start")
        for message in self.startup_notes:
            self.emit("note", message)
        try:
            yield
        finally:
            self.emit("end")

    # -- the loop ----------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Step to the schedule's total, evaluating and saving every ``eval_every`` steps and
        at the end; a stop signal saves and stops, the ``--max-time`` deadline evaluates too."""
        session = self._session()
        with stopping.Interrupt().installed() as interrupt, self._events():
            while self.state.step < self.state.total_steps:
                loss, tokens_per_sec = self._timed_step(session)
                if session.deadline is not None:
                    self._plan(session.deadline)
                self.emit("step", loss, self.lr(self.step - 1), tokens_per_sec)
                late = session.deadline is not None and session.deadline.passed(self.clock())
                session.stop = stopping.agree(self.dist, interrupt.signum, late)
                if session.stop.interrupted:
                    self.save()
                    break
                if self._evaluation_due(session):
                    self._evaluate_and_save(session, loss, tokens_per_sec)
                if self._deadline_ended(session):
                    break
        return self._result(session)

    def _plan(self, deadline: Deadline) -> None:
        """The schedule's total for the deadline, from the speed so far."""
        self.state.total_steps = deadline.plan(
            self.clock(), self.step, self.state.total_steps, self._agree
        )
        note = deadline.take_note()
        if note is not None:
            self.emit("note", note)

    def _session(self) -> _Session:
        start = self.clock()
        deadline = (
            Deadline(self.cfg, start, self.compiled) if self.cfg.max_time is not None else None
        )
        session = _Session(start, deadline, window_start=self.clock())
        if self.cfg.eval_seconds is not None:
            session.next_evaluation = start + self.cfg.eval_seconds
        return session

    def _timed_step(self, session: _Session) -> tuple[float, float]:
        """One step, timed; returns its loss and the tokens/s since the last evaluation."""
        t0 = self.clock()
        loss, applied = self.train_step()
        seconds = self.clock() - t0
        if session.first_step and self.compiled:  # the first step carries the compilation
            self.emit("note", f"torch.compile: first step took {seconds:.1f}s")
        session.first_step = False
        self.state.elapsed += seconds
        slowdown = session.speed.add(self.step, self.tokens_per_step, seconds)
        if slowdown is not None:
            self.emit("slowdown", slowdown)
        session.window_tokens += self.tokens_per_step
        self._count_bad_step(applied)
        if math.isfinite(loss):
            self.state.recent_losses.append(loss)
        return loss, session.window_tokens / max(1e-9, self.clock() - session.window_start)

    def _count_bad_step(self, applied: bool) -> None:
        """Skipped steps are noted; ``max_bad_steps`` of them in a row end the run."""
        self.state.bad_steps = 0 if applied else self.state.bad_steps + 1
        if not self.state.bad_steps:
            return
        self.emit("note", f"step {self.step}: non-finite loss or gradients, step skipped")
        if self.state.bad_steps >= self.cfg.max_bad_steps:
            bad = f"loss or gradients were non-finite for {self.state.bad_steps} steps in a row"
            raise stopping.diverged(f"{bad} (at step {self.step})", self.out_dir)

    def _agree(self, steps: int) -> int:
        """The mean of ``steps`` over all ranks, so that every rank plans the same total."""
        return round(float(self.dist.mean(torch.tensor(float(steps)))))

    def _evaluation_due(self, session: _Session) -> bool:
        step, every = self.state.step, self.cfg.eval_steps
        if step == self.state.total_steps or session.stop.out_of_time:
            return True
        if every is not None:
            return step % every == 0
        # --max-time without --eval-every: by the clock, any rank's for all (each must reach the
        # save's collectives at the same step; their clocks and intervals differ a little)
        (due,) = self.dist.max(self.clock() >= session.next_evaluation)
        return due > 0

    def _evaluate_and_save(self, session: _Session, loss: float, tokens_per_sec: float) -> None:
        started = self.clock()
        diverged = self.dist.is_main and self.evaluate(loss, tokens_per_sec) is None
        if self.dist.max(diverged)[0]:  # every rank stops here, before the save's collectives
            raise stopping.diverged(
                f"the validation loss at step {self.step} is not finite", self.out_dir
            )
        self.save()
        session.window_start, session.window_tokens = self.clock(), 0
        if session.deadline is None:
            return
        session.deadline.evaluation_done(session.window_start - started)
        interval = session.deadline.eval_interval()
        while interval is not None and session.next_evaluation <= session.window_start:
            session.next_evaluation += interval

    def _deadline_ended(self, session: _Session) -> bool:
        """Whether --max-time ends the run now (out of time), with a note when it ends it."""
        deadline = session.deadline
        if deadline is None:
            return False
        if session.stop.out_of_time:
            session.stopped_by_time = True
            self.emit("note", deadline.reached_note(self.step))
            return True
        if deadline.ends_early(self.step, self.state.total_steps):
            session.stopped_by_time = True  # the step planned for the deadline
            self.emit("note", deadline.planned_end_note(self.step, self.clock()))
        return False

    def _result(self, session: _Session) -> TrainResult:
        return TrainResult(
            self.out_dir,
            self.step,
            self.state.best_val,
            self.state.metrics,
            session.stop.interrupted,
            session.stopped_by_time,
            self.dist.is_main,
            self.eval_model,
            signal=session.stop.signal,
            train_tokens=len(self.train_ids),
        )

    def train_step(self) -> tuple[float, bool]:
        """One step of the schedule: an optimizer step over ``grad_accum`` micro-batches, or in
        the batch warmup one on each half of the batch; returns (loss, applied)."""
        sampler, batch = self.parts.sampler, self.cfg.batch_size
        if self.step < self.batch_warmup_steps:
            sampler.batch_size = batch // 2
            first, applied = self._update()
            sampler.batch_size = batch - batch // 2
            second, also = self._update()
            loss, applied = (first + second) / 2, applied and also
        else:
            sampler.batch_size = batch
            loss, applied = self._update()
        self.state.step += 1
        self.state.tokens_seen += self.tokens_per_step
        return loss, applied

    @property
    def batch_warmup_steps(self) -> int:
        """The first steps that update on each half of their batch (``--batch-warmup-steps``):
        a count, like the rate's warmup, so no plan of the total changes it. None compiled: a
        second batch size would compile the model again mid-run."""
        whole = self.cfg.batch_size < 2 or self.compiled
        return 0 if whole else self.cfg.batch_warmup_steps

    def _update(self) -> tuple[float, bool]:
        """One optimizer step at this step's rate; returns (loss, applied)."""
        self.optimizer.set_lr(self.lr(self.step), self.cfg.lr)
        loss_sum = self._backward()
        scaler = self.parts.scaler
        scaler.unscale_(self.optimizer)
        max_norm = self.cfg.grad_clip if self.cfg.grad_clip > 0 else math.inf
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        loss = float(loss_sum)
        finite = math.isfinite(loss) and bool(torch.isfinite(norm))
        if finite or scaler.is_enabled():
            scaler.step(self.optimizer)  # GradScaler skips non-finite steps itself
            scaler.update()
        self.optimizer.zero_grad()
        applied = math.isfinite(loss) and (finite or scaler.is_enabled())
        if applied and self.state.average is not None:
            self.state.average.update()
        return loss, applied

    def _backward(self) -> torch.Tensor:
        """Gradients of the mean loss over ``grad_accum`` micro-batches; returns that loss,
        the same on every rank (so that all take the same skip decision)."""
        accum = self.cfg.grad_accum
        loss_sum = torch.zeros((), device=self.device)
        for micro in range(accum):
            x, y = self.parts.sampler.next(self.device)
            # Under DDP, gradients are all-reduced only on the last micro-batch.
            last = micro == accum - 1
            sync = self.ddp.no_sync() if self.ddp is not None and not last else nullcontext()
            with sync, autocast(self.device, self.dtype):
                _, loss = self.forward_model(x, y)
                loss = loss / accum
            loss_sum += loss.detach()
            with sync:
                self.parts.scaler.scale(loss).backward()
        return self.dist.mean(loss_sum)

    # -- evaluation and saving ---------------------------------------------------------------
    def evaluate(self, train_loss: float, tokens_per_sec: float) -> dict[str, Any] | None:
        """The evaluation's record; None, recording nothing, where the loss is not finite."""
        val = estimate_loss(self.eval_model, self.val_ids, self.cfg, self.device, self.dtype)
        if not math.isfinite(val):  # weights finite but huge: every logit inf or NaN
            return None
        recent = self.state.recent_losses
        train = sum(recent) / len(recent) if recent else train_loss
        record = {
            "step": self.step,
            "train_loss": train,
            "val_loss": val,
            "last_batch_loss": train_loss,
            "lr": self.lr(max(0, self.step - 1)),
            "tokens_per_sec": tokens_per_sec,
            "tokens_seen": self.state.tokens_seen,
            "elapsed_s": round(self.state.elapsed, 3),
            "best": val < self.state.best_val,
        }
        self.emit("evaluate", record)
        if val < self.state.best_val:
            self.state.best_val = val
            self.state.best_weights = weights_bytes(self.eval_model)
        if self.state.history is not None:
            self.state.history.add(self.eval_model, self.step)
        self.state.metrics.append(record)
        return record

    def save(self) -> None:
        """Rank 0 writes the checkpoint; the others contribute their RNG states and wait."""
        saved = state_dict(self.parts, self.state, self.dist)  # collective: every rank calls it
        if self.dist.is_main:
            write(self.out_dir, self.run, self.state, self.corpus.tokenizer, self.eval_model, saved)
            self.emit("save")
        self.dist.barrier()
