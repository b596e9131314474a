"""``tinygpt inspect-attention``: what each layer and head attends to, and why."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from tinygpt.cli.app import command
from tinygpt.cli.common import DEVICE_DEFAULT, CheckpointOpt, DeviceOpt, given, show, wrote
from tinygpt.errors import UsageError


@command("inspect-attention")
def inspect_attention(
    ctx: typer.Context,
    checkpoint: CheckpointOpt = None,
    prompt: Annotated[
        str, typer.Option("--prompt", "-p", help="Text to look at; '-' reads stdin.")
    ] = "",
    layer: Annotated[int | None, typer.Option(help="Focus on one layer.")] = None,
    head: Annotated[
        str | None,
        typer.Option(
            help="Focus on one head: L1H2 as the tables print it, or a number with --layer."
        ),
    ] = None,
    query: Annotated[
        str | None, typer.Option(help="Query position (negative from the end) or token text.")
    ] = None,
    explain: Annotated[
        bool,
        typer.Option("--explain", help="Step through the mechanism for one query of one head."),
    ] = False,
    induction: Annotated[
        bool,
        typer.Option(
            "--induction", help="Run the repeated-random-tokens probe (no prompt needed)."
        ),
    ] = False,
    show_rollout: Annotated[
        bool, typer.Option("--rollout", help="Show attention rollout across layers.")
    ] = False,
    window: Annotated[
        int, typer.Option(help="Tokens shown per heatmap (long prompts are windowed).")
    ] = 24,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON document on stdout instead of the view.")
    ] = False,
    json_file: Annotated[
        Path | None,
        typer.Option("--json-file", help="Write the same JSON document to a file."),
    ] = None,
    html_file: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML page.")
    ] = None,
    queries: Annotated[
        str | None,
        typer.Option(help="Only queries A:B (positions; the prompt is cut after B-1, exactly)."),
    ] = None,
    png_file: Annotated[
        Path | None,
        typer.Option("--png", help="Write a PNG figure: the focused head, layer, or all heads."),
    ] = None,
    svg_file: Annotated[
        Path | None, typer.Option("--svg", help="Write the same figure as SVG.")
    ] = None,
    npz_file: Annotated[
        Path | None, typer.Option("--npz", help="Write the raw tensors (attention, q, k, v).")
    ] = None,
    heads: Annotated[
        list[str] | None,
        typer.Option(
            "--ablate", help="Ablate a head, L1H2 (or 1.2), repeatable; report the loss change."
        ),
    ] = None,
    mode: Annotated[
        str, typer.Option("--ablation", help="zero, mean or pattern (pattern-preserving).")
    ] = "mean",
    trajectory: Annotated[
        Path | None,
        typer.Option(help="A run's head scores, losses and role changes by step (no prompt)."),
    ] = None,
    compare: Annotated[
        tuple[Path, Path] | None,
        typer.Option(help="Two checkpoints: per-head score changes and pattern divergence."),
    ] = None,
    best: Annotated[bool, typer.Option("--best", help="Use the best-validation weights.")] = False,
    device: DeviceOpt = DEVICE_DEFAULT,
) -> None:
    """Show what each layer and head attends to, and why."""
    view_mode = _inspect_mode(ctx)
    layer, head_index = _focus(layer, head)
    if prompt == "-":
        prompt = sys.stdin.read()
    from tinygpt import api
    from tinygpt.attention import view
    from tinygpt.attention.files import ReportFiles, write_bytes, write_report
    from tinygpt.console import stdout_console

    console = stdout_console()
    if view_mode == "trajectory":
        records = api.trajectory(trajectory)
        show(console, json_out, lambda: records, lambda: view.trajectory(records))
        if png_file:
            from tinygpt.attention.trajectory_figure import trajectory_png

            write_bytes(png_file, trajectory_png(records))
            wrote(png_file)
        return
    if view_mode == "ablate":
        result = api.ablation_report(checkpoint, heads, mode, prompt, device=device)
        show(console, json_out, lambda: result, lambda: view.ablation_table(result))
        if json_file:
            write_bytes(json_file, json.dumps(result).encode())
            wrote(json_file)
        return
    if view_mode == "compare":
        deltas = api.compare_attention(*compare, prompt or "\n", device=device)
        names = (compare[0].name, compare[1].name)
        show(console, json_out, lambda: deltas, lambda: view.comparison(deltas, names))
        if json_file:
            write_bytes(json_file, json.dumps(deltas).encode())
            wrote(json_file)
        return
    if window < 2:
        raise UsageError("--window must be at least 2")
    report = api.attention_report(
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
    show(
        console,
        json_out,
        report.to_dict,
        lambda: view.report_view(
            report, layer, head_index, query, window, console.width, show_rollout
        ),
    )
    files = ReportFiles(json=json_file, html=html_file, png=png_file, svg=svg_file, npz=npz_file)
    title = "".join(report.tokens)[:80]
    for path in write_report(report, files, layer, head_index, title, rollout=show_rollout):
        wrote(path)


# Which inspect-attention options each mode reads; any other option given is a usage error.
_COMMON = {"device"}
_MODE_OPTIONS = {
    "trajectory": {"trajectory", "json_out", "png_file"},
    "ablate": {"checkpoint", "prompt", "heads", "mode", "json_out", "json_file", *_COMMON},
    "compare": {"compare", "prompt", "json_out", "json_file", *_COMMON},
    "normal": {
        "checkpoint",
        "prompt",
        "layer",
        "head",
        "query",
        "explain",
        "induction",
        "show_rollout",
        "window",
        "json_out",
        "json_file",
        "html_file",
        "queries",
        "png_file",
        "svg_file",
        "npz_file",
        "best",
        *_COMMON,
    },
}
_MODE_FLAGS = {"trajectory": "--trajectory", "ablate": "--ablate", "compare": "--compare"}


def _focus(layer: int | None, head: str | None) -> tuple[int | None, int | None]:
    """The layer and head index that --layer and --head name. --head takes the label the tables
    print (L1H2, which names the layer too) or a number, which needs --layer: alone it would
    name no head, and ignoring it would show something the user did not ask for."""
    from tinygpt.attention.labels import parse_head_spec

    if head is None:
        return layer, None
    if head.strip().isdigit():
        if layer is None:
            raise UsageError(f"--head {head} needs --layer (or name the head as L1H{head.strip()})")
        return layer, int(head)
    try:
        named_layer, index = parse_head_spec(head)
    except ValueError:
        raise UsageError(f"--head takes a label such as L1H2 or a number, got {head!r}") from None
    if layer is not None and layer != named_layer:
        raise UsageError(f"--head {head} is in layer {named_layer}, not --layer {layer}")
    return named_layer, index


def _inspect_mode(ctx: typer.Context) -> str:
    """The mode the options select (--trajectory, --ablate, --compare, else the normal view);
    an option the mode does not read is refused rather than silently ignored."""
    on_line = [p for p in ctx.command.params if p.name is not None and given(ctx, p.name)]
    names = {p.name for p in on_line}
    # --ablate's parameter is "heads", as the library names it (messages name it so)
    flags = {"trajectory": "trajectory", "heads": "ablate", "compare": "compare"}
    mode = next((flags[m] for m in flags if m in names), "normal")
    for p in on_line:
        if p.name in _MODE_OPTIONS[mode]:
            continue
        if mode in _MODE_FLAGS:
            raise UsageError(f"{p.opts[0]} does not apply with {_MODE_FLAGS[mode]}")
        modes = [_MODE_FLAGS[m] for m in _MODE_FLAGS if p.name in _MODE_OPTIONS[m]]
        raise UsageError(f"{p.opts[0]} applies only with {' or '.join(modes)}")
    return mode
