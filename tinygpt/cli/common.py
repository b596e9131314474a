"""What several commands share: the checkpoint and device options, and small output helpers."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from tinygpt.cli.options import default_text, field_of
from tinygpt.config.train import TrainConfig
from tinygpt.errors import UsageError
from tinygpt.io.console import for_terminal, stdout_console
from tinygpt.io.json_text import json_text

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
        return utf8(prompt, "the prompt")
    text = read_text(lambda: open_stdin().read(MAX_PROMPT_CHARS + 1), "the prompt on stdin")
    if len(text) > MAX_PROMPT_CHARS:
        raise UsageError(
            f"the prompt on stdin is longer than {MAX_PROMPT_CHARS:,} characters; a prompt "
            "is what the model continues, not a corpus (eval FILE scores a whole file)"
        )
    return text.removeprefix("\ufeff")  # a byte-order mark (a file from a Windows editor)


class NotText(UsageError):
    """Text with bytes that are not UTF-8."""


def read_text(read: Callable[[], str | bytes], what: str) -> str:
    """What ``read`` returns from stdin, checked to be UTF-8 text. A UTF-8 locale reads stdin
    strictly (a bad byte raises); the C locale lets it through as a lone surrogate."""
    try:
        data = read()
        return utf8(data.decode() if isinstance(data, bytes) else data, what)
    except UnicodeDecodeError as exc:
        raise NotText(_not_utf8(what, exc.object[exc.start])) from None


def utf8(text: str, what: str) -> str:
    """``text``, or one line where it holds bytes that are not UTF-8 (Python spells them as
    lone surrogates, U+DC80-U+DCFF), which no tokenizer can encode."""
    bad = next((c for c in text if "\udc80" <= c <= "\udcff"), None)
    if bad is not None:
        raise NotText(_not_utf8(what, ord(bad) - 0xDC00))
    return text


def _not_utf8(what: str, byte: int) -> str:
    return f"{what} is not UTF-8 text (it holds the byte 0x{byte:02x}); save it as UTF-8"


def checkpoint_with_note(checkpoint: Path | None, best: bool) -> Path:
    """The checkpoint a command reads (picked once), after one line on stderr when it keeps
    better weights than its final ones and ``--best`` was not given, or none that --best asks
    for (a run not yet evaluated)."""
    from tinygpt.checkpoint.manifest import BEST_FILE
    from tinygpt.checkpoint.store import find_checkpoint

    ck = find_checkpoint(checkpoint)
    if best and not ck.has(BEST_FILE):
        typer.echo("note: this run kept no best-validation weights; using its final ones", err=True)
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
        typer.echo(json_text(document()))
    else:
        stdout_console().print(render())


def wrote(path: Path) -> None:
    typer.echo(f"wrote {path}", err=True)
