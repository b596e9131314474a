"""The options of the inspect commands, declared once: ``inspect-attention`` and the
``tinygpt inspect`` subcommands that take an option share its flag and help.

Each parameter is named as the library's messages name it (:class:`tinygpt.errors.Opt`), so an
error about ``head`` or ``queries`` reads as the flag of whichever command raised it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

PromptOpt = Annotated[str, typer.Option("--prompt", "-p", help="Text to look at; '-' reads stdin.")]
LayerOpt = Annotated[int | None, typer.Option(help="Focus on one layer.")]
HeadOpt = Annotated[
    str | None,
    typer.Option(
        help="Focus on one head: L1H2 as the tables print it, a number with --layer, or a "
        "role (induction, previous-token, ...: the strongest such head)."
    ),
]
QueryOpt = Annotated[
    str | None, typer.Option(help="Query position (negative from the end) or token text.")
]
ExplainOpt = Annotated[
    bool, typer.Option("--explain", help="Step through the mechanism for one query of one head.")
]
InductionOpt = Annotated[
    bool,
    typer.Option("--induction", help="Run the repeated-random-tokens probe (no prompt needed)."),
]
RolloutOpt = Annotated[
    bool, typer.Option("--rollout", help="Show attention rollout across layers.")
]
WindowOpt = Annotated[
    int, typer.Option(help="Tokens shown per heatmap (long prompts are windowed).")
]
JsonOutOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout instead of the view.")
]
JsonFileOpt = Annotated[
    Path | None, typer.Option("--json-file", help="Write the same JSON document to a file.")
]
HtmlOpt = Annotated[Path | None, typer.Option("--html", help="Write a self-contained HTML page.")]
QueriesOpt = Annotated[
    str | None,
    typer.Option(help="Only queries A:B (positions; the prompt is cut after B-1, exactly)."),
]
PngOpt = Annotated[
    Path | None,
    typer.Option("--png", help="Write a PNG figure: the focused head, layer, or all heads."),
]
SvgOpt = Annotated[Path | None, typer.Option("--svg", help="Write the same figure as SVG.")]
NpzOpt = Annotated[
    Path | None, typer.Option("--npz", help="Write the raw tensors (attention, q, k, v).")
]
BestOpt = Annotated[bool, typer.Option("--best", help="Use the best-validation weights.")]
ABLATION_MODE_HELP = "zero, mean or pattern (pattern-preserving)."
TrajectoryPngOpt = Annotated[
    Path | None, typer.Option("--png", help="Write the trajectory as a PNG figure.")
]
