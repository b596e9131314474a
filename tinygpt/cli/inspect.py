"""``tinygpt inspect attention|compare|ablate|trajectory``: each way of looking at attention as
a command of its own, so ``tinygpt inspect --help`` lists every way of looking inside a model
and each subcommand takes only the options it reads (another mode's is click's "No such
option"). ``inspect-attention``, the front door users know, runs the same code (inspect_modes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tinygpt.cli import inspect_modes
from tinygpt.cli import inspect_options as opt
from tinygpt.cli.app import command, inspect_app
from tinygpt.cli.common import DEVICE_DEFAULT, CheckpointOpt, DeviceOpt


@command("attention", group=inspect_app)
def attention(
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
    inspect_modes.show_attention(**ctx.params)


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
    inspect_modes.show_comparison((checkpoint_a, checkpoint_b), prompt, json_out, json_file, device)


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
    inspect_modes.show_ablation(checkpoint, heads, mode, prompt, json_out, json_file, device)


@command("trajectory", group=inspect_app)
def trajectory(
    directory: Annotated[Path, typer.Argument(help="A run's directory (its metrics.jsonl).")],
    json_out: opt.JsonOut = False,
    png_file: opt.TrajectoryPng = None,
) -> None:
    """A run's head scores, losses and role changes by step, as recorded at each evaluation."""
    inspect_modes.show_trajectory(directory, json_out, png_file)
