"""``tinygpt generate`` (sampling, streamed or interactive) and ``tinygpt eval`` (scoring)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer

from tinygpt.cli.app import command, err
from tinygpt.cli.common import (
    DEVICE_DEFAULT,
    MAX_PROMPT_CHARS,
    CheckpointOpt,
    DeviceOpt,
    JsonOpt,
    NotText,
    checkpoint_with_note,
    open_stdin,
    read_prompt,
    read_text,
    write_stdout,
    wrote,
)
from tinygpt.cli.flags import command_spelling
from tinygpt.cli.options import output_file, with_field_options
from tinygpt.config.sample import SampleConfig
from tinygpt.config.train import TrainConfig
from tinygpt.errors import TinyGPTError, UsageError
from tinygpt.io.console import printable
from tinygpt.io.json_text import json_text

SAMPLE_OPTIONS = (
    "max_new_tokens",
    "temperature",
    "top_k",
    "top_p",
    "seed",
    "num_samples",
    "stop",
    "alternatives",
)


@command()
@with_field_options((SampleConfig, SAMPLE_OPTIONS), (SampleConfig, ("kv_cache", "stop_at_record")))
def generate(
    checkpoint: CheckpointOpt = None,
    prompt: Annotated[
        str, typer.Option("--prompt", "-p", help="Text to continue; '-' reads stdin.")
    ] = "",
    options: dict[str, Any] | None = None,  # SampleConfig's fields' options go here
    interactive: Annotated[
        bool,
        typer.Option(
            "--interactive",
            "-i",
            help="Prompt after prompt, the model loaded once (Ctrl-C stops a sample, "
            "Ctrl-D leaves).",
        ),
    ] = False,
    best: Annotated[bool, typer.Option("--best", help="Use the best-validation weights.")] = False,
    device: DeviceOpt = DEVICE_DEFAULT,
    attention: Annotated[str, typer.Option(help="auto, sdpa or manual.")] = TrainConfig.attention,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON document instead of streaming.")
    ] = False,
) -> None:
    """Sample text from a trained checkpoint, streaming it as it is produced."""
    from tinygpt.api import generate as run_generate

    options = dict(options or {})
    if "stop" in options:
        options["stop"] = tuple(_unescape(s) for s in options["stop"])
    if options.get("alternatives") and not json_out:
        raise UsageError("--alternatives goes with --json (the alternatives are listed there)")
    options.update(device=device, attention=attention, best=best)
    if interactive:
        _interactive(checkpoint, prompt, json_out, options)
        return
    prompt = read_prompt(prompt)
    checkpoint = checkpoint_with_note(checkpoint, best)
    result = run_generate(checkpoint, prompt, on_text=None if json_out else write_stdout, **options)
    for notice in result.notices:
        typer.echo(f"note: {notice}", err=True)
    if json_out:
        typer.echo(json_text(result.to_dict(), ensure_ascii=False))
    else:
        write_stdout("\n")


def _unescape(text: str) -> str:
    """``\\n``, ``\\t`` and ``\\\\`` as typed in a shell, so a stop at a blank line is
    ``--stop '\\n\\n'``."""
    escapes = {"n": "\n", "t": "\t", "\\": "\\"}
    return re.sub(r"\\([nt\\])", lambda m: escapes[m.group(1)], text)


def _line_editing() -> None:
    """Line editing and history for input(), without incremental search: GNU readline 8.2
    crashes (SIGSEGV) on Ctrl-R followed by some invalid multibyte input."""
    try:
        import readline
    except ImportError:  # no readline here: plain input()
        return
    if "libedit" not in (readline.__doc__ or ""):  # GNU readline's syntax
        for key in ("\\C-r", "\\C-s"):
            readline.parse_and_bind(f'"{key}": ""')


def _interactive(
    checkpoint: Path | None, prompt: str, json_out: bool, options: dict[str, Any]
) -> None:
    from tinygpt.api import interactive_session

    if prompt or json_out:
        flag = "--prompt" if prompt else "--json"
        raise UsageError(f"--interactive reads its prompts from the terminal; drop {flag}")
    stdin = open_stdin()
    tty = stdin.isatty()
    if tty:
        _line_editing()
        typer.echo("Type a prompt and Enter; Ctrl-C stops a sample, Ctrl-D leaves.", err=True)

    # Bytes, each line decoded alone: a bad byte costs that line, not the text read past it.
    lines = getattr(stdin, "buffer", stdin)

    def next_line() -> str | bytes:
        if tty:
            return input("> ")
        line = lines.readline(MAX_PROMPT_CHARS + 1)
        if not line:
            raise EOFError
        if len(line) > MAX_PROMPT_CHARS:  # /dev/zero would fill the memory
            raise UsageError(
                f"a line on stdin is longer than {MAX_PROMPT_CHARS:,} bytes; a prompt is what "
                "the model continues, not a corpus (eval FILE scores a whole file)"
            )
        return line

    def read_line() -> str:
        while True:  # a line that is no text is said, and the next one read
            try:
                return read_text(next_line, "the line").rstrip("\r\n")
            except NotText as exc:
                warn(exc)

    def warn(exc: TinyGPTError) -> None:  # one line, and the next prompt
        err(exc.render(command_spelling(None)))

    interactive_session(checkpoint, read_line, write_stdout, warn=warn, **options)


@command("eval")
def eval_command(
    file: Annotated[Path, typer.Argument(help="Text file to score.")],
    checkpoint: CheckpointOpt = None,
    best: Annotated[bool, typer.Option("--best", help="Use the best-validation weights.")] = False,
    device: DeviceOpt = DEVICE_DEFAULT,
    encoding: Annotated[str, typer.Option(help="Text encoding of FILE.")] = TrainConfig.encoding,
    json_out: JsonOpt = False,
    token_losses: Annotated[
        Path | None,
        typer.Option(
            "--token-losses",
            callback=output_file,
            help="Write every token's loss, and the most surprising spans, to this JSON file.",
        ),
    ] = None,
) -> None:
    """Cross-entropy, perplexity and bits per byte of a checkpoint on a whole text file."""
    from tinygpt import api

    options = dict(device=device, encoding=encoding, best=best, progress=True)
    checkpoint = checkpoint_with_note(checkpoint, best)
    if token_losses is None:
        summary = api.evaluate(checkpoint, file, **options).to_dict()
    else:
        from tinygpt.views.output import write_output

        report = api.token_loss_report(checkpoint, file, **options)
        write_output(token_losses, json_text(report).encode(), inputs=[file])
        summary = {k: report[k] for k in ("loss", "perplexity", "bits_per_byte", "tokens", "bytes")}
    if json_out:
        typer.echo(json_text(summary))
    else:
        typer.echo(
            f"loss {summary['loss']:.4f} nats/token  perplexity {summary['perplexity']:.2f}  "
            f"bits/byte {summary['bits_per_byte']:.4f}  "
            f"({summary['tokens']:,} tokens, {summary['bytes']:,} bytes)"
        )
    if token_losses is not None:
        if not json_out:
            from tinygpt.analysis.labels import visible

            typer.echo("most surprising spans (mean loss, nats/token):")
            for span in report["surprising_spans"][:5]:
                typer.echo(f"  {span['mean_loss']:6.2f}  {visible(printable(span['text']))}")
        wrote(token_losses)
