"""``tinygpt export`` and ``import-hf``: to and from Hugging Face GPT-2 directories."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tinygpt.cli.app import command
from tinygpt.cli.common import CheckpointOpt
from tinygpt.cli.options import default_text
from tinygpt.errors import UsageError
from tinygpt.io.console import printable, shell_word


@command()
def export(
    out: Annotated[Path, typer.Argument(help="Directory to write.")],
    checkpoint: CheckpointOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="Only hf (Hugging Face GPT-2).")] = "hf",
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Write into a non-empty OUT (never a checkpoint)."),
    ] = False,
) -> None:
    """Write a checkpoint as a Hugging Face GPT2LMHeadModel directory (identical logits)."""
    from tinygpt.checkpoint.hf import check_export_destination, export_hf
    from tinygpt.checkpoint.store import find_checkpoint

    if fmt != "hf":
        raise UsageError(f"--format must be hf, got {fmt!r}")
    check_export_destination(out, overwrite)  # before loading anything
    path = export_hf(find_checkpoint(checkpoint), out, overwrite)
    typer.echo(f"wrote {path}; load it with transformers.GPT2LMHeadModel.from_pretrained", err=True)


@command("import-hf")
def import_hf_command(
    source: Annotated[Path, typer.Argument(help="A local Hugging Face GPT-2 model directory.")],
    out_dir: Annotated[  # named as train's --out, so messages about it (the lock) say --out
        Path | None, typer.Option("--out", help="Checkpoint directory to write.")
    ] = None,
    tokenizer: Annotated[
        str | None,
        typer.Option(
            help="The model's BPE encoding."
            + default_text("the one `tinygpt export` stored, else gpt2")
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a checkpoint in --out.")
    ] = False,
) -> None:
    """Turn a local GPT-2 style Hugging Face model into a tinygpt checkpoint."""
    from tinygpt.checkpoint.hf import import_hf

    target = out_dir or Path("checkpoints") / source.resolve().name
    import_hf(source, target, tokenizer, overwrite)
    typer.echo(
        f"wrote {printable(str(target))}; try: tinygpt generate --checkpoint {shell_word(target)}",
        err=True,
    )
