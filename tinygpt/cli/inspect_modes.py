"""What each way of inspecting attention does, once: ``tinygpt inspect attention|compare|ablate|
trajectory`` and the ``inspect-attention`` front door both call these, so both print the same."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from tinygpt.cli.common import read_prompt, show, wrote
from tinygpt.errors import UsageError
from tinygpt.io.console import stdout_console


def show_trajectory(directory: Path, json_out: bool, png_file: Path | None) -> None:
    """A run's head scores, losses and role changes by step."""
    from tinygpt import api
    from tinygpt.views.output import write_output
    from tinygpt.views.trajectory_text import trajectory

    records = api.trajectory(directory)
    show(json_out, lambda: records, lambda: trajectory(records))
    if png_file:
        from tinygpt.views.trajectory_figure import trajectory_png

        write_output(png_file, trajectory_png(records))
        wrote(png_file)


def show_ablation(
    checkpoint: Path | None,
    heads: list[str],
    mode: str,
    prompt: str,
    json_out: bool,
    json_file: Path | None,
    device: str,
) -> None:
    """The loss with and without ``heads``, on the prompt, the training text and the probe."""
    from tinygpt.analysis import commands
    from tinygpt.views.head_tables import ablation_table

    result = commands.ablation_report(checkpoint, heads, mode, read_prompt(prompt), device=device)
    show(json_out, lambda: result, lambda: ablation_table(result))
    _write_json(json_file, result)


def show_comparison(
    checkpoints: tuple[Path, Path],
    prompt: str,
    json_out: bool,
    json_file: Path | None,
    device: str,
) -> None:
    """Per-head score changes from the first checkpoint to the second, and how far apart the
    patterns are."""
    from tinygpt.analysis import commands
    from tinygpt.views.head_tables import comparison

    # No prompt: the repeated-random-tokens probe (a one-token prompt would score nothing).
    deltas = commands.compare_attention(*checkpoints, read_prompt(prompt), device=device)
    names = (checkpoints[0].name, checkpoints[1].name)
    show(json_out, lambda: deltas, lambda: comparison(deltas, names))
    _write_json(json_file, deltas)


def show_attention(
    checkpoint: Path | None,
    prompt: str,
    *,
    layer: int | None,
    head: str | None,
    query: str | None,
    explain: bool,
    induction: bool,
    show_rollout: bool,
    window: int,
    queries: str | None,
    best: bool,
    device: str,
    json_out: bool,
    json_file: Path | None,
    html_file: Path | None,
    png_file: Path | None,
    svg_file: Path | None,
    npz_file: Path | None,
) -> None:
    """Each layer's and head's attention on the prompt (or the induction probe), the head
    table, and with the focus options one head or query explained; parameters are named as the
    commands' options are (inspect-attention's mode table reads them)."""
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


def focus(layer: int | None, head: str | None) -> tuple[int | None, int | str | None]:
    """The layer and head index that --layer and --head name. --head takes the label the tables
    print (L1H2), a number, which needs --layer (alone it names no head), or a role (induction,
    previous-token, ...: the strongest such head, found once the model is loaded)."""
    from tinygpt.analysis.labels import parse_head_spec
    from tinygpt.analysis.roles import is_role

    if head is None:
        return layer, None
    if is_role(head):
        return layer, head.strip().lower()
    if head.strip().isdigit():
        if layer is None:
            raise UsageError(f"--head {head} needs --layer (or name the head as L1H{head.strip()})")
        return layer, int(head)
    try:
        named_layer, index = parse_head_spec(head)
    except ValueError:
        raise UsageError(
            f"--head takes a label such as L1H2, a number or a role (induction, "
            f"previous-token, ...), got {head!r}"
        ) from None
    if layer is not None and layer != named_layer:
        raise UsageError(f"--head {head} is in layer {named_layer}, not --layer {layer}")
    return named_layer, index


def _write_json(path: Path | None, document: object) -> None:
    if path:
        from tinygpt.views.output import write_output

        write_output(path, json.dumps(document).encode())
        wrote(path)
