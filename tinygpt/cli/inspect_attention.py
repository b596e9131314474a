"""``tinygpt inspect-attention``: the front door users know, every mode behind one command.

An option picks the mode (``--trajectory``, ``--ablate``, ``--compare``, else the view of a
prompt), which runs the code of ``tinygpt inspect trajectory|ablate|compare|attention``; a table
says which options each mode reads, and any other option given is refused rather than ignored.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated

import typer

from tinygpt.cli import inspect_modes
from tinygpt.cli import inspect_options as opt
from tinygpt.cli.app import command
from tinygpt.cli.common import DEVICE_DEFAULT, CheckpointOpt, DeviceOpt, given
from tinygpt.errors import UsageError


@command("inspect-attention")
def inspect_attention(
    ctx: typer.Context,
    checkpoint: CheckpointOpt = None,
    prompt: opt.Prompt = "",
    layer: opt.Layer = None,
    head: opt.Head = None,
    query: opt.Query = None,
    explain: opt.Explain = False,
    induction: opt.Induction = False,
    show_rollout: opt.Rollout = False,
    window: opt.Window = 24,
    json_out: opt.JsonOut = False,
    json_file: opt.JsonFile = None,
    html_file: opt.Html = None,
    queries: opt.Queries = None,
    png_file: opt.Png = None,
    svg_file: opt.Svg = None,
    npz_file: opt.Npz = None,
    heads: Annotated[
        list[str] | None,
        typer.Option(
            "--ablate",
            help="Ablate a head, L1H2 (or 1.2) or a role (induction: the strongest), "
            "repeatable; report the loss change.",
        ),
    ] = None,
    mode: Annotated[str, typer.Option("--ablation", help=opt.ABLATION_MODE_HELP)] = "mean",
    trajectory: Annotated[
        Path | None,
        typer.Option(help="A run's head scores, losses and role changes by step (no prompt)."),
    ] = None,
    compare: Annotated[
        tuple[Path, Path] | None,
        typer.Option(help="Two checkpoints: per-head score changes and pattern divergence."),
    ] = None,
    best: opt.Best = False,
    device: DeviceOpt = DEVICE_DEFAULT,
) -> None:
    """Show what each layer and head attends to, and why.

    Its modes are also commands of their own: tinygpt inspect attention|compare|ablate|trajectory.
    """
    _check_mode(ctx)  # the mode's option is given: the value tells which mode
    if trajectory is not None:
        inspect_modes.show_trajectory(trajectory, json_out, png_file)
    elif heads:
        inspect_modes.show_ablation(checkpoint, heads, mode, prompt, json_out, json_file, device)
    elif compare is not None:
        inspect_modes.show_comparison(compare, prompt, json_out, json_file, device)
    else:  # the view of a prompt reads exactly the options its row of the table names
        view = {name: ctx.params[name] for name in _MODE_OPTIONS["normal"]}
        inspect_modes.show_attention(**view)


# Which options each mode reads, the mode named by its option's parameter (--ablate's is "heads",
# as the library names it); any other option given is a usage error.
_MODE_OPTIONS = {
    "trajectory": {"trajectory", "json_out", "png_file"},
    "heads": {"checkpoint", "prompt", "heads", "mode", "json_out", "json_file", "device"},
    "compare": {"compare", "prompt", "json_out", "json_file", "device"},
    "normal": set(inspect.signature(inspect_modes.show_attention).parameters),
}
_MODE_FLAGS = {"trajectory": "--trajectory", "heads": "--ablate", "compare": "--compare"}


def _check_mode(ctx: typer.Context) -> None:
    """Refuse an option the mode does not read rather than silently ignore it; the mode is
    picked by --trajectory, else --ablate, else --compare, else the view of a prompt."""
    on_line = [p for p in ctx.command.params if p.name is not None and given(ctx, p.name)]
    names = {p.name for p in on_line}
    mode = next((m for m in _MODE_FLAGS if m in names), "normal")
    for p in on_line:
        if p.name in _MODE_OPTIONS[mode]:
            continue
        if mode in _MODE_FLAGS:
            raise UsageError(f"{p.opts[0]} does not apply with {_MODE_FLAGS[mode]}")
        modes = [_MODE_FLAGS[m] for m in _MODE_FLAGS if p.name in _MODE_OPTIONS[m]]
        raise UsageError(f"{p.opts[0]} applies only with {' or '.join(modes)}")
