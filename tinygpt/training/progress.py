"""What a training run shows (rank 0, on stderr: stdout stays free for data): a one-screen
summary, a progress bar, a line per evaluation, from the trainer's events.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from tinygpt.config.train import TrainConfig
from tinygpt.data.token_cache import Corpus
from tinygpt.errors import Spell, python_spelling, spelled
from tinygpt.io.console import printable, stderr_console
from tinygpt.model import count_parameters
from tinygpt.model.device import dtype_name
from tinygpt.training.optim import groups_line
from tinygpt.training.schedule import describe as describe_schedule
from tinygpt.training.speed import Slowdown
from tinygpt.training.trainer import Trainer, TrainerCallback


class TimeLeftColumn(TimeRemainingColumn):
    """The estimated time left while the run goes on; nothing once it has stopped (an
    interrupted or timed-out run has no time left to estimate)."""

    def render(self, task: Task) -> Text:
        return Text("") if task.fields.get("done") else super().render(task)


_FIELDS = {"loss": 0.0, "lr": 0.0, "tok_s": 0.0, "done": False}
_TIME_COUNT = "{task.completed:.0f}/{task.total:g}s  step {task.fields[step]}"


class ProgressDisplay(TrainerCallback):
    """The run summary at start, then a progress bar, evaluation lines and notes (rank 0)."""

    def __init__(self, spell: Spell = python_spelling) -> None:
        self.spell = spell  # how notes name options (the CLI passes its flags)
        self.console = stderr_console()
        self.progress: Progress | None = None
        self.task: Any = None

    def on_start(self, trainer: Trainer) -> None:
        if not trainer.dist.is_main:
            return
        describe_run(trainer, self.console)
        # Under --max-time the bar counts the budget's seconds (the step total is re-planned).
        self.budget, self.started = trainer.cfg.max_time, time.monotonic()
        count = MofNCompleteColumn() if self.budget is None else TextColumn(_TIME_COUNT)
        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            count,
            TextColumn("loss {task.fields[loss]:.4f}  lr {task.fields[lr]:.2e}"),
            TextColumn("{task.fields[tok_s]:,.0f} tok/s"),
            TimeLeftColumn(),
            console=self.console,
            transient=False,
        )
        total = trainer.state.total_steps if self.budget is None else self.budget
        completed = trainer.step if self.budget is None else 0
        self.task = self.progress.add_task(
            "train", total=total, completed=completed, step=trainer.step, **_FIELDS
        )
        self.progress.start()

    def on_step(self, trainer: Trainer, loss: float, lr: float, tokens_per_sec: float) -> None:
        if self.progress is None:
            return
        if self.budget is None:
            done, total = trainer.step, trainer.state.total_steps
        else:
            done, total = min(self.budget, time.monotonic() - self.started), self.budget
        self.progress.update(
            self.task,
            completed=done,
            total=total,
            step=trainer.step,
            loss=loss,
            lr=lr,
            tok_s=tokens_per_sec,
        )

    def on_note(self, trainer: Trainer, message: str) -> None:
        # A note may quote a path (--out 'ck/a[/b]c'): plain text, never markup.
        self._print(_shown(spelled(message, self.spell)))

    def _print(self, markup: str) -> None:
        if self.progress is not None:
            # soft_wrap: one line per note, not cut at 80 columns in a log or a pipe
            self.progress.console.print(markup, soft_wrap=True)

    def on_slowdown(self, trainer: Trainer, slowdown: Slowdown) -> None:
        self._print(slowdown_note(slowdown, trainer.device.type))

    def on_evaluate(self, trainer: Trainer, record: dict[str, Any]) -> None:
        best = "  [green]best[/green]" if record["best"] else ""
        self._print(
            f"step {record['step']:>6}  train {record['train_loss']:.4f}  "
            f"val {record['val_loss']:.4f}  {record['tokens_per_sec']:,.0f} tok/s  "
            f"{record['elapsed_s']:.0f}s{best}",
        )
        if isinstance(record.get("sample"), str):  # EvalSample's (tinygpt/training/monitors.py)
            self._print(f"[dim]sample[/dim]  {_shown(sample_line(record['sample']))}")

    def on_end(self, trainer: Trainer) -> None:
        if self.progress is not None:
            self.progress.update(self.task, done=True)  # the final line: no time left
            self.progress.stop()
            self.progress = None


def sample_line(text: str, width: int = 120) -> str:
    """A sample on one line: line breaks shown as ⏎, cut at ``width`` characters."""
    line = text.replace("\r\n", "\n").replace("\n", "⏎")
    return line if len(line) <= width else line[: width - 1] + "…"


def slowdown_note(slowdown: Slowdown, device: str) -> str:
    """One line: how far the speed fell, and what usually causes it."""
    if device == "cpu":
        cause = (
            f"other processes on the CPU cores, or more torch threads ({torch.get_num_threads()}) "
            f"than free cores ({os.cpu_count()}; set OMP_NUM_THREADS)"
        )
    else:
        cause = f"other processes on the {device} device or on the CPU cores that feed it"
    return (
        f"[yellow]note:[/yellow] training slowed to {slowdown.recent:,.0f} tok/s at step "
        f"{slowdown.step}, from {slowdown.best:,.0f} tok/s earlier in the run; usually {cause}"
    )


ORDER_WORDS = {"passes": "in shuffled passes over the text", "random": "random windows"}


def _cache_word(corpus: Corpus) -> str:
    if corpus.uncached:
        return f"tokenized, not cached: {_shown(corpus.uncached)}"
    return "cached" if corpus.from_cache else "tokenized"


def describe_run(trainer: Trainer, console: Console) -> None:
    """One block at start-up: data, model, hardware and where the checkpoint goes."""
    m, t, world = trainer.run.model, trainer.cfg, trainer.state.world_size
    resumed = f" (resuming at step {trainer.step})" if trainer.step else ""
    per_rank = f" ({world} processes x {t.effective_batch_size()})" if world > 1 else ""
    console.print(
        f"data     {_shown(t.data)}: {len(trainer.corpus.ids):,} tokens "
        f"({_cache_word(trainer.corpus)}), tokenizer "
        f"{_shown(t.tokenizer)} "
        f"(vocab {trainer.corpus.tokenizer.vocab_size:,}); train {len(trainer.train_ids):,} / "
        f"val {len(trainer.val_ids):,}\n"
        f"model    {m.arch_description}: {m.n_layer} layers, {m.n_head} heads, {m.n_embd} wide, "
        f"block {m.block_size}: {count_parameters(m).describe()}\n"
        f"optim    {groups_line(trainer.optimizer.groups)}{_muon(trainer)}\n"
        f"schedule {describe_schedule(t)}{_batch_warmup(trainer)}{_averaged(t)}\n"
        f"run      {_length(t)} x {t.effective_batch_size(world)} sequences{per_rank} "
        f"({ORDER_WORDS[t.data_order]}), "
        f"device {trainer.device.type}, "
        f"{str(trainer.dtype).removeprefix('torch.')}, attention {trainer.model.attention}"
        f"{', compiled' if trainer.compiled else ''}\n"
        f"output   {_shown(t.out_dir)}{resumed}",
        soft_wrap=True,  # a line per item, as on a wide terminal, in a pipe or a log too
    )


def _averaged(t: TrainConfig) -> str:
    if not t.ema:
        return ""
    return f"; evaluated and saved: the weights' moving average (--ema {t.ema:g})"


def _batch_warmup(trainer: Trainer) -> str:
    if not trainer.batch_warmup_steps:
        return ""
    steps = f"{trainer.batch_warmup_steps:,}"
    return f"; the first {steps} steps update on each half batch (--batch-warmup-steps)"


def _muon(trainer: Trainer) -> str:
    """The form of Muon's iteration (timed on the CPU, or the resumed run's) and NorMuon."""
    t = trainer.cfg
    if t.optimizer != "muon":
        return ""
    dtype = dtype_name(trainer.optimizer.ns_dtype)
    normuon = ", its steps evened out per neuron (--normuon)" if t.normuon else ""
    return f"; Muon's Newton-Schulz in {dtype}{normuon}"


def _length(t: TrainConfig) -> str:
    """How long the run goes and how often it evaluates, as the header promises it."""
    if t.max_time is None:
        return f"{t.max_steps} steps (an evaluation every {t.eval_steps})"
    every = f"{t.eval_steps} steps"
    if t.eval_seconds is not None:  # wider where evaluating would take over EVAL_SHARE
        every = f"{t.eval_seconds:.0f}s or more"
    cap = f"at most {t.step_cap} steps; " if t.step_cap is not None else ""
    return f"{t.max_time:g}s ({cap}an evaluation every {every})"


@contextlib.contextmanager
def eval_progress() -> Iterator[Callable[[int, int], None]]:
    """A bar on stderr (a terminal only) for ``evaluate_text``'s windows: scoring a megabyte on
    a CPU takes most of a minute."""
    console = stderr_console()
    progress = Progress(
        TextColumn("[bold]eval"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("windows"),
        TimeRemainingColumn(),
        console=console,
        transient=True,  # the result line replaces it
        disable=not console.is_terminal,
    )
    task = progress.add_task("eval", total=None)
    with progress:
        yield lambda done, total: progress.update(task, completed=done, total=total)


def _shown(text: str) -> str:
    """A path or name inside the markup above: shown as it is (``ck/a[/b]c`` is no style tag),
    control characters escaped."""
    return escape(printable(str(text)))
