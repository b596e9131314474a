"""The two terminals tinygpt writes to: stdout for data and tables, stderr for everything else."""

from __future__ import annotations

from rich.console import Console


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def stdout_console() -> Console:
    return Console(highlight=False)
