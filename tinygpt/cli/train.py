"""``tinygpt train``: its options are the config fields' own (see :mod:`tinygpt.cli.options`)."""

from __future__ import annotations

import math
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tinygpt.checkpoint.metrics import better_earlier
from tinygpt.cli.app import command
from tinygpt.cli.flags import command_spelling
from tinygpt.cli.options import default_text, with_field_options
from tinygpt.config.model import ModelConfig
from tinygpt.config.train import TrainConfig
from tinygpt.errors import Spell, UsageError
from tinygpt.io.console import printable, shell_word
from tinygpt.io.json_text import json_text

if TYPE_CHECKING:  # torch is imported when a run starts, not for --help
    from tinygpt.training.result import TrainResult

MODEL_OPTIONS = ("n_layer", "n_head", "n_embd", "block_size", "dropout", "bias", "mlp")
TRAIN_OPTIONS = (
    "batch_size",
    "grad_accum",
    "batch_warmup_steps",
    "data_order",
    "optimizer",
    "lr",
    "matrix_lr",
    "embed_lr",
    "schedule",
    "decay_fraction",
    "min_lr",
    "warmup_steps",
    "max_steps",
    "max_time",
    "head_snapshots",
    "weight_history",
    "weight_decay",
    "grad_clip",
    "ema",
    "normuon",
    "eval_every",
    "eval_batches",
    "device",
    "dtype",
    "attention",
    "compile",
    "seed",
    "init_from",
    "val_file",
    "eval_samples",
    "early_stop",
)


@command()
@with_field_options(
    (TrainConfig, ("tokenizer", "encoding", "records", "separator")),
    (ModelConfig, MODEL_OPTIONS),
    (TrainConfig, TRAIN_OPTIONS),
)
def train(
    ctx: typer.Context,
    file: Annotated[
        Path | None,
        typer.Argument(
            help="Text to train on: a file, a folder (every file below it but hidden ones) or "
            "a quoted glob ('notes/**/*.md'); UTF-8 unless --encoding."
            + default_text("data/tinyshakespeare.txt")
        ),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Checkpoint directory." + default_text("checkpoints/<file stem>")
        ),
    ] = None,
    arch: Annotated[
        str | None,
        typer.Option(
            help="Recipe: modern (RoPE, QK-norm, GELU, RMSNorm, untied soft-capped head, Muon) "
            "or gpt2 (the 2019 recipe; Hugging Face export)." + default_text("modern")
        ),
    ] = None,
    options: dict[str, Any] | None = None,  # the config fields' options go here
    preset: Annotated[
        str | None,
        typer.Option(
            help="Start from a named configuration: tiny, shakespeare-char, induction, gpt2-small."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="Options from a TOML or JSON file (a checkpoint's config.json works)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out exactly where it stopped.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a checkpoint already in --out.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print a JSON summary of the run on stdout.")
    ] = False,
) -> None:
    """Train a GPT on a text file and write a checkpoint directory."""
    # Typer builds the command from the signature above; the run itself is _run's.
    _run(
        file,
        command_spelling(ctx.command),
        quiet=quiet,
        json_out=json_out,
        out_dir=out_dir,
        resume=resume,
        overwrite=overwrite,
        preset=preset,
        config=config,
        **({"arch": arch} if arch is not None else {}),
        **(options or {}),
    )


def _run(file: Path | None, spell: Spell, *, quiet: bool, json_out: bool, **settings: Any) -> None:
    """Train on ``file`` (the default corpus when None) with ``settings``, the rest of
    api.train's keyword arguments, then report how the run ended."""
    from tinygpt.api import train as run_training
    from tinygpt.data.datasets import default_corpus

    if file is None:
        file = default_corpus()
        if not file.exists():
            raise UsageError(
                "give a text FILE to train on, or run `tinygpt data shakespeare` first"
            )
    result = run_training(file, quiet=quiet, spell=spell, **settings)
    _report(result, file, quiet, json_out)


def _report(result: Any, file: Path, quiet: bool, json_out: bool) -> None:
    resume_cmd = f"tinygpt train {shell_word(file)} --out {shell_word(result.out_dir)} --resume"
    # 128 + the signal, as a shell reports a process that signal ended (Ctrl-C: 130).
    interrupted_code = 128 + (result.signal or signal.SIGINT)
    if not result.is_main:  # other data-parallel ranks: rank 0 speaks for the job
        raise typer.Exit(interrupted_code if result.interrupted else 0)
    if json_out:
        best = result.best_val_loss if math.isfinite(result.best_val_loss) else None
        summary = {
            "out_dir": str(result.out_dir),
            "step": result.step,
            "best_val_loss": best,
            "interrupted": result.interrupted,
            "stopped_by_time": result.stopped_by_time,
            **(result.parameters.to_dict() if result.parameters else {}),
        }
        typer.echo(json_text(summary))
    if result.interrupted:  # a clean stop the user asked for: said plainly, not as an error
        name = signal.Signals(result.signal or signal.SIGINT).name
        typer.echo(
            f"interrupted at step {result.step} ({name}); saved the checkpoint in "
            f"{result.out_dir}. Resume with: {resume_cmd}",
            err=True,
        )
        raise typer.Exit(interrupted_code)
    if not quiet:
        for line in done_lines(result):
            typer.echo(line, err=True)


def done_lines(result: TrainResult) -> list[str]:
    """The run's last words: where it got, how often it read its text, and which weights to
    sample (the best ones, when the final weights are worse on validation)."""
    out, word = printable(str(result.out_dir)), shell_word(result.out_dir)
    lines = [
        f"done: step {result.step} ({result.passes:.1f} passes over the training text), best "
        f"val loss {result.best_val_loss:.4f}; checkpoint in {out}. Sample with: tinygpt "
        f"generate --checkpoint {word}"
    ]
    better = better_earlier(result.metrics)
    if better:
        val, step, last = better
        lines.append(
            f"the final weights are worse on validation ({last:.4f}) than at step {step} "
            f"({val:.4f}), which the checkpoint keeps: tinygpt generate --checkpoint {word} --best"
        )
    return lines
