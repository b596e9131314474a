"""``tinygpt inspect attention|compare|ablate|trajectory``: each way of looking at attention as
a command of its own, with only the options it reads.

Subcommands of one group, so ``tinygpt inspect --help`` lists every way of looking inside a
model and each subcommand's ``--help`` exactly what it takes (another mode's option is click's
"No such option"). ``tinygpt inspect-attention`` stays as the front door users know; both run
:mod:`tinygpt.cli.inspect_modes`, so they print the same output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tinygpt.cli import inspect_modes
from tinygpt.cli.app import command, inspect_app
from tinygpt.cli.common import DEVICE_DEFAULT, CheckpointOpt, DeviceOpt
from tinygpt.cli.inspect_options import (
    ABLATION_MODE_HELP,
    BestOpt,
    ExplainOpt,
    HeadOpt,
    HtmlOpt,
    InductionOpt,
    JsonFileOpt,
    JsonOutOpt,
    LayerOpt,
    NpzOpt,
    PngOpt,
    PromptOpt,
    QueriesOpt,
    QueryOpt,
    RolloutOpt,
    SvgOpt,
    TrajectoryPngOpt,
    WindowOpt,
)


@command("attention", group=inspect_app)
def attention(
    ctx: typer.Context,
    checkpoint: CheckpointOpt = None,
    prompt: PromptOpt = "",
    layer: LayerOpt = None,
    head: HeadOpt = None,
    query: QueryOpt = None,
    explain: ExplainOpt = False,
    induction: InductionOpt = False,
    show_rollout: RolloutOpt = False,
    window: WindowOpt = 24,
    queries: QueriesOpt = None,
    json_out: JsonOutOpt = False,
    json_file: JsonFileOpt = None,
    html_file: HtmlOpt = None,
    png_file: PngOpt = None,
    svg_file: SvgOpt = None,
    npz_file: NpzOpt = None,
    best: BestOpt = False,
    device: DeviceOpt = DEVICE_DEFAULT,
) -> None:
    """Show what each layer and head attends to on a prompt (or the induction probe), and why."""
    inspect_modes.show_attention(**ctx.params)


@command("compare", group=inspect_app)
def compare(
    checkpoint_a: Annotated[Path, typer.Argument(help="The checkpoint to compare from.")],
    checkpoint_b: Annotated[Path, typer.Argument(help="The checkpoint to compare to.")],
    prompt: PromptOpt = "",
    json_out: JsonOutOpt = False,
    json_file: JsonFileOpt = None,
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
    prompt: PromptOpt = "",
    mode: Annotated[str, typer.Option("--mode", help=ABLATION_MODE_HELP)] = "mean",
    json_out: JsonOutOpt = False,
    json_file: JsonFileOpt = None,
    device: DeviceOpt = DEVICE_DEFAULT,
) -> None:
    """Knock heads out: the loss change on the prompt, the training text and the probe."""
    inspect_modes.show_ablation(checkpoint, heads, mode, prompt, json_out, json_file, device)


@command("trajectory", group=inspect_app)
def trajectory(
    directory: Annotated[Path, typer.Argument(help="A run's directory (its metrics.jsonl).")],
    json_out: JsonOutOpt = False,
    png_file: TrajectoryPngOpt = None,
) -> None:
    """A run's head scores, losses and role changes by step, as recorded at each evaluation."""
    inspect_modes.show_trajectory(directory, json_out, png_file)
