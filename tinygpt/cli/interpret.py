"""``tinygpt inspect predictions | attribution | lens | patch``: what the model predicted, which
component wrote the prediction, when it appeared, and which activation carries it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from tinygpt.cli import inspect_options as opt
from tinygpt.cli.app import command, inspect_app
from tinygpt.cli.common import DEVICE_DEFAULT, CheckpointOpt, DeviceOpt, read_prompt, show, wrote
from tinygpt.cli.options import default_text
from tinygpt.errors import UsageError
from tinygpt.io.console import stdout_console
from tinygpt.io.json_text import json_text


def _finish(report: Any, json_out: bool, render: Any, files: dict[str, Path | None]) -> None:
    """Notices on stderr, the view (or JSON) on stdout, then the files asked for."""
    from tinygpt.views import interpret_figures as figures
    from tinygpt.views import interpret_html as html
    from tinygpt.views.output import write_output

    for notice in report.notices:
        typer.echo(f"note: {notice}", err=True)
    show(json_out, report.to_dict, render)
    writers = {
        "json": lambda: json_text(report.to_dict()).encode(),
        "html": lambda: html.render_page(report).encode(),
        "png": lambda: figures.report_png(report),
        "svg": lambda: figures.report_svg(report).encode(),
    }
    for kind, path in files.items():
        if path is not None:
            write_output(path, writers[kind]())
            wrote(path)


@command("predictions", group=inspect_app)
def predictions(
    checkpoint: CheckpointOpt = None,
    prompt: opt.Prompt = "",
    top: Annotated[int, typer.Option(help="Next-token guesses shown per position.")] = 5,
    json_out: opt.JsonOut = False,
    json_file: opt.JsonFile = None,
    html_file: opt.Html = None,
    png_file: opt.FigurePng = None,
    svg_file: opt.Svg = None,
    best: opt.Best = False,
    device: DeviceOpt = DEVICE_DEFAULT,
) -> None:
    """What the model predicted at each position, and how surprised it was by what came next."""
    from tinygpt.analysis import commands
    from tinygpt.views.interpret_text import predictions_view

    report = commands.predictions_report(
        checkpoint, read_prompt(prompt), top=top, device=device, best=best
    )
    files = {"json": json_file, "html": html_file, "png": png_file, "svg": svg_file}
    _finish(report, json_out, lambda: predictions_view(report), files)


@command("attribution", group=inspect_app)
def attribution(
    checkpoint: CheckpointOpt = None,
    prompt: opt.Prompt = "",
    position: opt.Position = None,
    target: opt.Target = None,
    rows: Annotated[int, typer.Option(help="Components shown, largest first.")] = 20,
    json_out: opt.JsonOut = False,
    json_file: opt.JsonFile = None,
    html_file: opt.Html = None,
    png_file: opt.FigurePng = None,
    svg_file: opt.Svg = None,
    best: opt.Best = False,
    device: DeviceOpt = DEVICE_DEFAULT,
) -> None:
    """Direct logit attribution: each head's, MLP's and the embedding's share of a token's logit."""
    from tinygpt.analysis import commands
    from tinygpt.views.interpret_text import attribution_view

    if rows < 1:  # checked here: click's range check is a box of several lines
        raise UsageError(f"--rows must be at least 1, got {rows}")
    report = commands.logit_attribution(
        checkpoint, read_prompt(prompt), position=position, target=target, device=device, best=best
    )
    files = {"json": json_file, "html": html_file, "png": png_file, "svg": svg_file}
    _finish(report, json_out, lambda: attribution_view(report, rows), files)


@command("lens", group=inspect_app)
def lens(
    checkpoint: CheckpointOpt = None,
    prompt: opt.Prompt = "",
    position: opt.Position = None,
    target: opt.Target = None,
    json_out: opt.JsonOut = False,
    json_file: opt.JsonFile = None,
    html_file: opt.Html = None,
    best: opt.Best = False,
    device: DeviceOpt = DEVICE_DEFAULT,
) -> None:
    """The logit lens: the prediction read from the residual stream after each layer."""
    from tinygpt.analysis import commands
    from tinygpt.views.interpret_text import lens_view

    report = commands.logit_attribution(
        checkpoint, read_prompt(prompt), position=position, target=target, device=device, best=best
    )
    files = {"json": json_file, "html": html_file}
    _finish(report, json_out, lambda: lens_view(report), files)


@command("patch", group=inspect_app)
def patch(
    checkpoint: CheckpointOpt = None,
    clean: Annotated[str, typer.Option(help="The prompt whose prediction is restored.")] = "",
    corrupted: Annotated[
        str, typer.Option(help="The same number of tokens, changed where it matters.")
    ] = "",
    position: opt.Position = None,
    target: Annotated[
        str | None,
        typer.Option(
            help="Target token: its text (one token) or #ID."
            + default_text("the clean run's top prediction at --position")
        ),
    ] = None,
    json_out: opt.JsonOut = False,
    json_file: opt.JsonFile = None,
    html_file: opt.Html = None,
    png_file: opt.FigurePng = None,
    svg_file: opt.Svg = None,
    best: opt.Best = False,
    device: DeviceOpt = DEVICE_DEFAULT,
) -> None:
    """Activation patching: which head or layer carries the difference between two prompts."""
    from tinygpt.analysis import commands
    from tinygpt.views.interpret_text import patching_view

    report = commands.activation_patching(
        checkpoint, clean, corrupted, position=position, target=target, device=device, best=best
    )
    files = {"json": json_file, "html": html_file, "png": png_file, "svg": svg_file}
    _finish(report, json_out, lambda: patching_view(report, stdout_console().width), files)
