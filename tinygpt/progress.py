"""What a training run shows: a one-screen summary, a progress bar, a line per evaluation.

Everything goes to stderr (stdout stays free for data); ``quiet`` shows nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from tinygpt.optim import groups_line
from tinygpt.schedule import describe as describe_schedule

if TYPE_CHECKING:
    from tinygpt.trainer import Trainer


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def stdout_console() -> Console:
    return Console(highlight=False)


class TrainProgress:
    def __init__(self, total: int, start: int, quiet: bool = False) -> None:
        self.quiet = quiet
        self.console = stderr_console()
        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  lr {task.fields[lr]:.2e}"),
            TextColumn("{task.fields[tok_s]:,.0f} tok/s"),
            TimeRemainingColumn(),
            console=self.console,
            disable=quiet,
            transient=False,
        )
        self.task = self.progress.add_task(
            "train", total=total, completed=start, loss=0.0, lr=0.0, tok_s=0.0
        )

    def __enter__(self) -> TrainProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def update(self, step: int, loss: float, lr: float, tok_s: float, total: int) -> None:
        self.progress.update(self.task, completed=step, total=total, loss=loss, lr=lr, tok_s=tok_s)

    def note(self, message: str) -> None:
        if not self.quiet:
            self.progress.console.print(message)

    def eval_line(self, record: dict[str, Any]) -> None:
        best = "  [green]best[/green]" if record["best"] else ""
        self.note(
            f"step {record['step']:>6}  train {record['train_loss']:.4f}  "
            f"val {record['val_loss']:.4f}  {record['tokens_per_sec']:,.0f} tok/s  "
            f"{record['elapsed_s']:.0f}s{best}"
        )


def describe_run(trainer: Trainer) -> None:
    """One block at start-up: data, model, hardware and where the checkpoint goes."""
    m, t = trainer.run.model, trainer.cfg
    console = stderr_console()
    resumed = f" (resuming at step {trainer.step})" if trainer.step else ""
    per_rank = (
        f" ({t.world_size} processes x {t.batch_size * t.grad_accum})" if t.world_size > 1 else ""
    )
    console.print(
        f"data     {t.data}: {len(trainer.corpus.ids):,} tokens "
        f"({'cached' if trainer.corpus.from_cache else 'tokenized'}), tokenizer {t.tokenizer} "
        f"(vocab {trainer.corpus.tokenizer.vocab_size:,}); train {len(trainer.train_ids):,} / "
        f"val {len(trainer.val_ids):,}\n"
        f"model    {m.arch}: {m.n_layer} layers, {m.n_head} heads, {m.n_embd} wide, "
        f"block {m.block_size}: {trainer.model.num_params() / 1e6:.2f}M parameters\n"
        f"optim    {groups_line(trainer.optimizer.groups)}\n"
        f"schedule {describe_schedule(t)}\n"
        f"run      {t.max_steps} steps x {t.effective_batch_size} sequences{per_rank}, "
        f"device {trainer.device.type}, "
        f"{str(trainer.dtype).removeprefix('torch.')}, attention {trainer.model.attention}"
        f"{', compiled' if trainer.compiled else ''}\n"
        f"output   {t.out_dir}{resumed}"
    )
