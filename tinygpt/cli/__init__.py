"""The ``tinygpt`` command line: a thin Typer layer over the library, one module per command,
each registering its commands on import (:mod:`~tinygpt.cli.app` holds the app and ``main``)."""

# The import order is the commands' order in --help.
from tinygpt.cli import train  # noqa: F401, I001
from tinygpt.cli import generate  # noqa: F401
from tinygpt.cli import inspect  # noqa: F401
from tinygpt.cli import interpret  # noqa: F401
from tinygpt.cli import runs  # noqa: F401
from tinygpt.cli import hf  # noqa: F401
from tinygpt.cli import data  # noqa: F401
from tinygpt.cli import explore  # noqa: F401
from tinygpt.cli import doctor  # noqa: F401
from tinygpt.cli.app import app, main

__all__ = ["app", "main"]
