"""``tinygpt inspect attention|compare|ablate|trajectory``: each way of looking at attention as
a command of its own, so ``tinygpt inspect --help`` lists every way of looking inside a model
and each subcommand takes only the options it reads (another's is click's "No such option").
``tinygpt inspect-attention``, the name users know, is the same command as ``inspect attention``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tinygpt.cli import inspect_options as opt
from tinygpt.cli.app import command, inspect_app
from tinygpt.cli.common import DEVICE_DEFAULT, CheckpointOpt, DeviceOpt, read_prompt, show, wrote
from tinygpt.errors import UsageError
from tinygpt.io.console import stdout_console
from tinygpt.io.json_text import json_text


def attention(
    checkpoint: CheckpointOpt = None,
    prompt: opt.Prompt = "",
    layer: opt.Layer = None,
    head: opt.Head = None,
    query: opt.Query = None,
    explain: opt.Explain = False,
    induction: opt.Induction = False,
    show_rollout: opt.Rollout = False,
    window: opt.Window = 24,
    queries: opt.Queries = None,
    json_out: opt.JsonOut = False,
    json_file: opt.JsonFile = None,
    html_file: opt.Html = None,
    png_file: opt.Png = None,
    svg_file: opt.Svg = None,
    npz_file: opt.Npz = None,
    best: opt.Best = False,
    device: DeviceOpt = DEVICE_DEFAULT,
) -> None:
    """Show what each layer and head attends to on a prompt (or the induction probe), and why."""
    layer, head_index = focus(layer, head)
    prompt = read_prompt(prompt)
    from tinygpt.analysis import commands
    from tinygpt.views.attention_files import ReportFiles, write_report
    from tinygpt.views.attention_view import report_view

    console = stdout_console()
    if window < 2:
        raise UsageError("--window must be at least 2")
    report = commands.attention_report(
        checkpoint,
        prompt,
        device=device,
        best=best,
        induction=induction,
        queries=queries,
        layer=layer,
        head=head_index,
        query=query,
        explain=explain,
    )
    for notice in report.notices:
        typer.echo(f"note: {notice}", err=True)
    layer, head_index = report.focus  # a role (--head induction) names a head now
    show(
        json_out,
        report.to_dict,
        lambda: report_view(report, layer, head_index, query, window, console.width, show_rollout),
    )
    files = ReportFiles(json_file, html_file, png_file, svg_file, npz_file)
    title = "".join(report.tokens)[:80]  # the prompt's start
    for path in write_report(report, files, layer, head_index, title, rollout=show_rollout):
        wrote(path)


command("attention", group=inspect_app)(attention)
command("inspect-attention")(attention)  # the name users know: the same command


@command("compare", group=inspect_app)
def compare(
    checkpoint_a: Annotated[Path, typer.Argument(help="The checkpoint to compare from.")],
    checkpoint_b: Annotated[Path, typer.Argument(help="The checkpoint to compare to.")],
    prompt: opt.Prompt = "",
    json_out: opt.JsonOut = False,
    json_file: opt.JsonFile = None,
    device: DeviceOpt = DEVICE_DEFAULT,
) -> None:
    """Two checkpoints: each head's score changes (B minus A) and how far its pattern moved."""
    from tinygpt.analysis import commands
    from tinygpt.views.head_tables import comparison

    # No prompt: the repeated-random-tokens probe (a one-token prompt would score nothing).
    deltas = commands.compare_attention(
        checkpoint_a, checkpoint_b, read_prompt(prompt), device=device
    )
    names = (checkpoint_a.name, checkpoint_b.name)
    show(json_out, lambda: deltas, lambda: comparison(deltas, names))
    _write_json(json_file, deltas)


@command("ablate", group=inspect_app)
def ablate(
    heads: Annotated[
        list[str],
        typer.Option(
            "--heads",
            help="A head to ablate, L1H2 (or 1.2) or a role (induction, previous-token: "
            "the strongest such head); repeatable for several at once.",
        ),
    ],
    checkpoint: CheckpointOpt = None,
    prompt: opt.Prompt = "",
    mode: Annotated[str, typer.Option("--mode", help=opt.ABLATION_MODE_HELP)] = "mean",
    json_out: opt.JsonOut = False,
    json_file: opt.JsonFile = None,
    device: DeviceOpt = DEVICE_DEFAULT,
) -> None:
    """Knock heads out: the loss change on the prompt, the training text and the probe."""
    from tinygpt.analysis import commands
    from tinygpt.views.head_tables import ablation_table

    result = commands.ablation_report(checkpoint, heads, mode, read_prompt(prompt), device=device)
    for notice in result["notices"]:  # a prompt cut to the block, as the other views say
        typer.echo(f"note: {notice}", err=True)
    show(json_out, lambda: result, lambda: ablation_table(result))
    read = [Path(result["text_source"])] if result["text_source"] else []
    _write_json(json_file, result, read)  # never over the training text it has just read


@command("trajectory", group=inspect_app)
def trajectory(
    checkpoint: Annotated[  # named as messages name a checkpoint, which read as RUN here
        Path, typer.Argument(metavar="RUN", help="A run's directory (its metrics.jsonl).")
    ],
    json_out: opt.JsonOut = False,
    png_file: opt.TrajectoryPng = None,
) -> None:
    """A run's head scores, losses and role changes by step, as recorded at each evaluation."""
    from tinygpt import api
    from tinygpt.views.output import write_output
    from tinygpt.views.trajectory_text import trajectory as trajectory_view

    records = api.trajectory(checkpoint)
    show(json_out, lambda: records, lambda: trajectory_view(records))
    if png_file:
        from tinygpt.views.trajectory_figure import trajectory_png

        write_output(png_file, trajectory_png(records))
        wrote(png_file)


def focus(layer: int | None, head: str | None) -> tuple[int | None, int | str | None]:
    """The layer and head that --layer and --head name. --head takes the label the tables
    print (L1H2) or a role (induction, previous-token, ...: the strongest such head), both
    resolved once the model is loaded, or a number, which needs --layer (alone it names no
    head)."""
    if head is None or not head.strip().isdecimal():
        return layer, head
    if layer is None:
        raise UsageError(f"--head {head} needs --layer (or name the head as L1H{head.strip()})")
    return layer, int(head)


def _write_json(path: Path | None, document: object, inputs: list[Path] | None = None) -> None:
    if path:
        from tinygpt.views.output import write_output

        write_output(path, json_text(document).encode(), inputs=inputs or [])
        wrote(path)
