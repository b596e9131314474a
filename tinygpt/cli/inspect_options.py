"""The options of the inspect commands, declared once (``prompt: opt.Prompt``):
``inspect-attention`` and the ``tinygpt inspect`` subcommands share each flag and its help.

Each parameter is named as the library's messages name it (:class:`tinygpt.errors.Opt`), so an
error about ``head`` or ``queries`` reads as the flag of whichever command raised it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tinygpt.cli.options import default_text, output_file

Prompt = Annotated[str, typer.Option("--prompt", "-p", help="Text to look at; '-' reads stdin.")]
Layer = Annotated[int | None, typer.Option(help="Focus on one layer.")]
Head = Annotated[
    str | None,
    typer.Option(
        help="Focus on one head: L1H2 as the tables print it, a number with --layer, or a "
        "role (induction, previous-token, ...: the strongest such head)."
    ),
]
Query = Annotated[
    str | None, typer.Option(help="Query position (negative from the end) or token text.")
]
Explain = Annotated[
    bool, typer.Option("--explain", help="Step through the mechanism for one query of one head.")
]
Induction = Annotated[
    bool,
    typer.Option("--induction", help="Run the repeated-random-tokens probe (no prompt needed)."),
]
Rollout = Annotated[bool, typer.Option("--rollout", help="Show attention rollout across layers.")]
Window = Annotated[int, typer.Option(help="Tokens shown per heatmap (long prompts are windowed).")]
JsonOut = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout instead of the view.")
]
JsonFile = Annotated[
    Path | None,
    typer.Option(
        "--json-file", callback=output_file, help="Write the same JSON document to a file."
    ),
]
Html = Annotated[
    Path | None,
    typer.Option("--html", callback=output_file, help="Write a self-contained HTML page."),
]
Queries = Annotated[
    str | None,
    typer.Option(help="Only queries A:B (positions; the prompt is cut after B-1, exactly)."),
]
Png = Annotated[
    Path | None,
    typer.Option(
        "--png",
        callback=output_file,
        help="Write a PNG figure: the focused head, layer, or all heads.",
    ),
]
Svg = Annotated[
    Path | None, typer.Option("--svg", callback=output_file, help="Write the same figure as SVG.")
]
Npz = Annotated[
    Path | None,
    typer.Option("--npz", callback=output_file, help="Write the raw tensors (attention, q, k, v)."),
]
Best = Annotated[bool, typer.Option("--best", help="Use the best-validation weights.")]
ABLATION_MODE_HELP = "zero, mean or pattern (pattern-preserving)."
TrajectoryPng = Annotated[
    Path | None,
    typer.Option("--png", callback=output_file, help="Write the trajectory as a PNG figure."),
]

# The interpret commands' own (tinygpt.cli.interpret)
Position = Annotated[
    str | None,
    typer.Option(
        help="Position to explain: an index (negative from the end) or a token's text."
        + default_text("the last")
    ),
]
Target = Annotated[
    str | None,
    typer.Option(
        help="Target token: its text (one token) or #ID."
        + default_text("the token that came next; at the last position, the model's top guess")
    ),
]
FigurePng = Annotated[
    Path | None, typer.Option("--png", callback=output_file, help="Write a PNG figure.")
]
