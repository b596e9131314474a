"""``tinygpt data``: a standard corpus downloaded, or the repeated-strings corpus written."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer

from tinygpt.cli.app import command
from tinygpt.cli.common import JsonOpt, given
from tinygpt.cli.options import flag_name, with_field_options
from tinygpt.data.repeats import RepeatsConfig
from tinygpt.errors import UsageError


@command()
@with_field_options((RepeatsConfig, [f.name for f in fields(RepeatsConfig)]))
def data(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            help="shakespeare (download) or repeats (write random strings that repeat)."
        ),
    ] = "shakespeare",
    directory: Annotated[Path, typer.Option("--dir", help="Where to put it.")] = Path("data"),
    url: Annotated[
        str | None, typer.Option(help="shakespeare: download from this mirror instead.")
    ] = None,
    options: dict[str, Any] | None = None,  # RepeatsConfig's fields' options go here
    json_out: JsonOpt = False,
) -> None:
    """Download a standard small corpus into data/ (checked against its sha256), or write the
    repeated-strings corpus for watching an induction head form (`tinygpt data repeats`)."""
    from tinygpt.data.datasets import DATASETS, fetch

    if name not in (*DATASETS, "repeats"):  # fetch knows only the downloads
        raise UsageError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}, repeats")
    if name == "repeats":
        if given(ctx, "url"):
            raise UsageError("--url applies only to downloads; repeats is written here")
        from tinygpt.data.repeats import REPEATS_FILE, write_repeats

        cfg = RepeatsConfig(**(options or {}))
        path = write_repeats(directory / REPEATS_FILE, cfg)
    else:
        if options:
            flag = flag_name(next(iter(options)))
            raise UsageError(f"{flag} applies only to `data repeats`")
        path = fetch(name, directory, url=url)
    typer.echo(json.dumps({"path": str(path)}) if json_out else str(path))
