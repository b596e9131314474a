"""Writing a file the user named (``--json-file``, ``--png``, ``plot --out``...): never over a
checkpoint's own files or the text being read, never over a device, FIFO or link."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from tinygpt.checkpoint.save import check_not_checkpoint_file
from tinygpt.errors import UsageError
from tinygpt.io.files import describe_os_error, write_named


def check_output(path: Path) -> None:
    """What can be told of a file to write before the work that fills it: not a folder, not a
    checkpoint's own file, in a folder that exists (one line, exit 2)."""
    check_not_checkpoint_file(path)
    if path.is_dir():
        raise UsageError(f"cannot write {path}: {path} is a directory; give a file name")
    if not path.parent.is_dir():
        raise UsageError(f"cannot write {path}: there is no folder {path.parent}")


def write_output(path: Path, data: bytes, inputs: Sequence[Path] = ()) -> None:
    """Write ``data`` to ``path``; a path that can't or must not be written is one line (exit 2).
    ``inputs``: files the command reads, which an output must not replace."""
    check_output(path)
    for source in inputs:
        if path.exists() and Path(source).exists() and os.path.samefile(path, source):
            raise UsageError(f"{path} is the file being read; write to another file")
    try:
        write_named(path, data)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {describe_os_error(exc)}") from None
