"""``tinygpt info``, ``runs`` and ``plot``: what a checkpoint holds, the runs, the losses."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from tinygpt.cli.app import command
from tinygpt.cli.common import CheckpointOpt, JsonOpt, wrote
from tinygpt.cli.options import output_file
from tinygpt.errors import UsageError
from tinygpt.io.console import printable, stdout_console
from tinygpt.io.json_text import json_text


@command()
def info(
    checkpoint: CheckpointOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """What a checkpoint holds: size, shape, tokenizer, steps, losses, tokens, time, device."""
    from tinygpt.training.runs import checkpoint_info

    data = checkpoint_info(checkpoint)
    if json_out:
        typer.echo(json_text(data))
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(show_header=False, box=None, pad_edge=False)
    shape = data["shape"]
    best = data["best_val_loss"]
    rows = [
        ("checkpoint", data["checkpoint"]),
        ("parameters", _parameters(data).describe(exact=True)),
        (
            "shape",
            f"{shape['n_layer']} layers, {shape['n_head']} heads, {shape['n_embd']} wide, "
            f"block {shape['block_size']}, dropout {shape['dropout']}, "
            f"bias {'on' if shape['bias'] else 'off'}",
        ),
        ("recipe", data["arch"]),
        *_training_rows(data),
        ("tokenizer", f"{data['tokenizer']} (vocab {shape['vocab_size']:,}){_records(data)}"),
        (
            "steps",
            f"{data['steps']:,} of {data['max_steps']:,}"
            if data["trained_here"]
            else "none: imported (import-hf), not trained here",
        ),
        ("best val loss", "-" if best is None else f"{best:.4f}"),
        ("tokens seen", f"{data['tokens_seen']:,}"),
        ("training time", f"{data['training_seconds']:.0f}s"),
        (
            "device",
            f"{data['device'] or '-'} ({data['dtype'] or '-'}), effective batch "
            f"{data['effective_batch_size']}",
        ),
        ("data", data["data"]),
        ("saved", data["saved"]),
    ]
    for key, value in rows:
        # Text: a path like a[/b] is not markup; printable: no name can drive the terminal
        table.add_row(key, Text(printable(str(value))))
    stdout_console().print(table)


def _training_rows(data: dict[str, Any]) -> list[tuple[str, str]]:
    """The optimizer and schedule rows; none for an imported model (not trained here)."""
    from tinygpt.training.optim import GroupInfo, groups_line

    if not data["trained_here"]:
        return []
    return [
        ("optimizer", groups_line([GroupInfo(**g) for g in data["optimizer_groups"]])),
        ("schedule", data["schedule"]),
    ]


def _records(data: dict[str, Any]) -> str:
    """How the run's text was cut into records (nothing for plain text)."""
    if data.get("separator") is not None:
        return f", records separated by {repr(data['separator'])[:60]}"
    if data.get("records") is not None:
        return f", one record a {'line' if data['records'] == 'line' else 'paragraph'}"
    return ""


def _parameters(record: dict[str, Any]) -> Any:
    """The parameter count of an ``info`` or ``runs`` record, to describe it the one way."""
    from tinygpt.model import ParameterCount

    return ParameterCount(record["parameters"], record["position_embedding_parameters"])


@command()
def runs(
    root: Annotated[Path, typer.Option("--root", help="Where runs live.")] = Path("checkpoints"),
    json_out: JsonOpt = False,
) -> None:
    """The runs under checkpoints/ as a table, newest first."""
    from tinygpt.training.runs import list_runs

    if root.exists() and not root.is_dir():  # a file would list as an empty folder
        raise UsageError(f"--root {root} is not a directory")
    rows = list_runs(root)
    if json_out:
        typer.echo(json_text(rows))
        return
    if not rows:
        typer.echo(f"no runs under {root}/; start one with `tinygpt train FILE`", err=True)
        return
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(pad_edge=False, box=box.SIMPLE_HEAD)
    for name in ("run", "params", "steps", "best val", "tokens", "tokenizer", "saved"):
        table.add_column(
            name,
            justify="left" if name in ("run", "tokenizer") else "right",
            no_wrap=name != "run",
            overflow="ellipsis" if name == "run" else "fold",
            min_width=15 if name == "run" else None,
        )
    broken = []
    for r in rows:
        # Text, not str: a run named ck[red]x is shown as it is, never as markup.
        if "error" in r:
            # The reason below the table: a long cell would squeeze out the run names.
            table.add_row(Text(printable(r["name"])), "", "", "", "", "", "broken")
            broken.append(Text(f"{printable(r['name'])}: {printable(r['error'])}"))
            continue
        best = "-" if r["best_val_loss"] is None else f"{r['best_val_loss']:.4f}"
        table.add_row(
            Text(printable(r["name"])),
            _parameters(r).short(),
            f"{r['steps']:,}",
            best,
            f"{r['tokens_seen'] / 1e6:.1f}M",
            Text(printable(r["tokenizer"])),
            r["saved"][5:],
        )
    console = stdout_console()
    console.print(table)
    for line in broken:
        console.print(line)


@command()
def plot(
    checkpoint: CheckpointOpt = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", callback=output_file, help="Also write a .svg or .png file."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Train and validation loss by step, in the terminal (and as SVG or PNG with --out)."""
    from tinygpt.checkpoint.store import find_checkpoint
    from tinygpt.views.plot import check_plot_name, terminal_plot, write_plot

    if out:
        check_plot_name(out)  # before the plot is printed, not after
    ck = find_checkpoint(checkpoint)
    metrics = ck.metrics()
    typer.echo(json_text(metrics) if json_out else terminal_plot(metrics))
    if out:
        # printable: a folder name's control characters are invalid XML, its non-UTF-8 unwritable
        write_plot(out, metrics, f"{printable(ck.directory.name)}: loss by step")
        wrote(out)
