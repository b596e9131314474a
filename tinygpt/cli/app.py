"""The ``tinygpt`` Typer app, how a command is registered, and ``main``, which turns errors
into one line and an exit code. Nothing heavy is imported here: ``--help`` and ``--version``
answer without loading torch; each command imports what it uses.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core

from tinygpt import __version__
from tinygpt.cli.flags import command_spelling
from tinygpt.errors import Interrupted, Spell, TinyGPTError
from tinygpt.io.console import announce_picked, printable


class _PlainFlags:
    """Help that shows no value after an on/off flag: Typer's rich help names each option's
    type, which for a flag is ``--debug <bool>``, as if it took a value."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:  # --help and the completion flags included
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
        return params


class _Command(_PlainFlags, typer.core.TyperCommand):
    pass


class _Group(_PlainFlags, typer.core.TyperGroup):
    pass


app = typer.Typer(
    cls=_Group,
    name="tinygpt",
    help="Train, sample and understand a small GPT.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


# `tinygpt inspect MODE`: each way of looking inside a trained model is a command of its own.
inspect_app = typer.Typer(
    cls=_Group,
    help="Look inside a trained model: attention, predictions, attribution, lens, patching.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(inspect_app, name="inspect")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tinygpt {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full tracebacks instead of one-line errors.")
    ] = False,
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = None,
) -> None:
    """Train, sample and understand a small GPT."""


def err(message: str) -> None:
    # Messages quote paths and file contents: never let them drive the terminal.
    typer.echo(f"error: {printable(message)}", err=True)


def command(
    name: str | None = None, group: typer.Typer = app
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """``group.command`` for a command that ends in one line and 128 + signal when interrupted
    (Typer would turn Ctrl-C into a silent exit 130, and SIGTERM and SIGHUP need their codes)."""

    def register(func: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(func)
        def run(*a: Any, **k: Any) -> None:
            try:
                if isinstance(k.get("device"), str):  # a command that runs a model
                    _use_free_cores(k["device"])
                with announce_picked(_say_picked):
                    func(*a, **k)
            except KeyboardInterrupt as exc:
                signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
                err(f"interrupted ({signal.Signals(signum).name})")
                raise typer.Exit(128 + signum) from None

        return group.command(name, cls=_Command)(run)

    return register


def _use_free_cores(device: str) -> None:
    """On a CPU another job is using, run with the free cores only (more threads than free cores
    made sampling 50x slower here); the library leaves torch's thread count to its caller."""
    from tinygpt.model.device import fit_cpu_threads, resolve_device

    try:
        note = fit_cpu_threads(resolve_device(device))
    except TinyGPTError:
        return  # a bad --device: the command itself says so, in its words
    if note:
        typer.echo(f"note: {note}", err=True)


def _say_picked(path: Path) -> None:
    # On stderr, so stdout (a sample, a JSON document) stays the command's output alone.
    typer.echo(
        f"using {printable(str(path))}, the newest checkpoint under checkpoints/ (-c DIR for "
        "another)",
        err=True,
    )


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


def _stop_on_signals() -> None:
    """SIGTERM and SIGHUP end a command the way Ctrl-C does (training installs its own handlers,
    to finish the step and save first)."""
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _raise_interrupted)


@functools.cache
def click_app() -> Any:
    """The click command Typer builds from the app, once a process (70 ms; ``app()`` rebuilds it
    at each call)."""
    import typer.main

    return typer.main.get_command(app)


def _spelling(args: list[str]) -> Spell:
    """Options named in a message, spelled as the flags of the command in ``args`` (``out_dir``
    is ``--out`` to train)."""
    found = click_app()
    for name in (a for a in args if not a.startswith("-")):  # down through groups (inspect)
        commands = getattr(found, "commands", None)
        if commands is None or name not in commands:
            break
        found = commands[name]
    return command_spelling(found if not hasattr(found, "commands") else None)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: one-line errors and exit codes instead of tracebacks."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or os.environ.get("TINYGPT_DEBUG") == "1"
    for stream in (sys.stdout, sys.stderr):  # an ASCII or C-locale terminal: \u escapes, no crash
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    _stop_on_signals()
    try:
        click_app()(args=args, prog_name="tinygpt")
    except TinyGPTError as exc:
        if debug:
            raise
        err(exc.render(_spelling(args)))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:  # outside a command (they report their own)
        if debug:
            raise
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        err("interrupted")
        sys.exit(128 + signum)
    except BrokenPipeError:
        # `tinygpt generate | head`: the reader left; nothing to report.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except Exception as exc:  # a bug: still one line unless asked for the traceback
        if debug:
            raise
        bug = f"unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback)"
        err(_out_of_memory(exc) or bug)
        sys.exit(1)


def _out_of_memory(exc: Exception) -> str | None:
    """One line for an allocation the machine can't give (torch's CPU allocator says so in a
    RuntimeError; CUDA and MPS raise OutOfMemoryError), else None."""
    text = str(exc)
    if not (
        isinstance(exc, MemoryError)
        or type(exc).__name__ == "OutOfMemoryError"
        or "can't allocate memory" in text
    ):
        return None
    asked = re.search(r"allocate (\d+) bytes", text)
    size = f" (asked for {int(asked.group(1)) / 2**30:.1f} GiB)" if asked else ""
    return f"out of memory{size}: to train, a smaller --batch-size, --block-size or model fits"
