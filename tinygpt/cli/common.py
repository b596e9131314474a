"""What several commands share: the checkpoint and device options, and small output helpers."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from tinygpt.cli.options import default_text, field_of
from tinygpt.config.train import TrainConfig
from tinygpt.errors import UsageError
from tinygpt.io.console import for_terminal, stdout_console

CheckpointOpt = Annotated[
    Path | None,
    typer.Option(
        "--checkpoint",
        "-c",
        help="Checkpoint directory." + default_text("the newest under checkpoints/"),
    ),
]
# Every command that runs a model picks its device the one way (TrainConfig's field: auto).
DEVICE_DEFAULT: str = TrainConfig.device
DeviceOpt = Annotated[str, typer.Option(help=field_of(TrainConfig, "device").metadata["help"])]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


MAX_PROMPT_CHARS = 1 << 24  # a prompt from stdin: a page of text, not a corpus or /dev/zero


def open_stdin() -> TextIO:
    """stdin, or one line where the shell closed it (``<&-``: Python's sys.stdin is None)."""
    if sys.stdin is None:
        raise UsageError("stdin is closed: no prompt to read (pass -p TEXT, or pipe text in)")
    return sys.stdin


def read_prompt(prompt: str) -> str:
    """The prompt; ``-`` reads it from stdin, at most MAX_PROMPT_CHARS characters."""
    if prompt != "-":
        return prompt
    text = open_stdin().read(MAX_PROMPT_CHARS + 1)
    if len(text) > MAX_PROMPT_CHARS:
        raise UsageError(
            f"the prompt on stdin is longer than {MAX_PROMPT_CHARS:,} characters; a prompt "
            "is what the model continues, not a corpus (eval FILE scores a whole file)"
        )
    return text.removeprefix("\ufeff")  # a byte-order mark (a file from a Windows editor)


def checkpoint_with_note(checkpoint: Path | None, best: bool) -> Path:
    """The checkpoint a command reads (picked once), after one line on stderr when it keeps
    better weights than its final ones and ``--best`` was not given."""
    from tinygpt.checkpoint.store import find_checkpoint

    ck = find_checkpoint(checkpoint)
    better = None if best else ck.better_weights()
    if better:
        val, step, last = better
        typer.echo(
            f"note: this run's best weights (val {val:.4f} at step {step}) beat its final ones "
            f"(val {last:.4f}); add --best to use them",
            err=True,
        )
    return ck.directory


def write_stdout(text: str) -> None:
    sys.stdout.write(for_terminal(text, sys.stdout))
    sys.stdout.flush()


def given(ctx: typer.Context, name: str) -> bool:
    """Whether the option was on the command line (not its default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def show(json_out: bool, document: Callable[[], Any], render: Callable[[], Any]) -> None:
    """With --json, one JSON document is all that goes to stdout; else the terminal view."""
    if json_out:
        typer.echo(json.dumps(document()))
    else:
        stdout_console().print(render())


def wrote(path: Path) -> None:
    typer.echo(f"wrote {path}", err=True)
