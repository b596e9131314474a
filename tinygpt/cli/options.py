"""Typer options generated from config fields, so each option is declared once, where its field
lives (its help and default are the field's; see :func:`tinygpt.config.fields.documented`).

A generated option defaults to ``None``, so ``--resume`` can tell which options were given, and
its help names the field's default, which Typer cannot show for a ``None``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from dataclasses import MISSING, Field, fields
from pathlib import Path
from typing import Annotated, Any

import typer

# Field types (as the dataclasses declare them, without "| None") -> the option's type.
_TYPES: dict[str, Any] = {
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "tuple[str, ...]": list[str],
}


def default_text(value: Any) -> str:
    """Help text naming a default Typer cannot show itself (the option defaults to None); the
    bracket is escaped, else rich markup reads "[default: x]" as a style tag and drops it."""
    return f" \\[default: {value}]"


def output_file(value: Path | None) -> Path | None:
    """The callback of an option naming a file the command writes: checked as the flag is
    read, so a folder, a missing folder or a checkpoint's own file is one line before the work
    that fills the file, not after it."""
    if value is not None:
        from tinygpt.views.output import check_output  # here: --help imports no torch

        check_output(value)
    return value


def field_of(cls: type, name: str) -> Field[Any]:
    return next(f for f in fields(cls) if f.name == name)


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def field_help(f: Field[Any]) -> str:
    """The field's help with its default: ``default_text`` in its metadata, else the declared
    default; none for a default of None."""
    help_text = f.metadata["help"]
    shown = f.metadata.get("default_text")  # given as None: no default to show
    if "default_text" not in f.metadata and f.default not in (MISSING, None):
        shown = f.default
        if isinstance(f.default, bool):
            shown = f.name.replace("_", "-") if f.default else "no-" + f.name.replace("_", "-")
    return help_text + (default_text(shown) if shown is not None else "")


def field_parameter(cls: type, name: str) -> inspect.Parameter:
    """``name: Annotated[T | None, typer.Option(...)] = None`` for field ``name`` of ``cls``; a
    bool field becomes ``--x/--no-x``."""
    f = field_of(cls, name)
    kind = _TYPES[str(f.type).replace(" | None", "")]
    flag = f.metadata.get("flag", flag_name(name))
    decls = [f"{flag}/--no-{flag[2:]}"] if kind is bool else [flag]
    option = typer.Option(*decls, help=field_help(f), metavar=f.metadata.get("metavar"))
    annotation = Annotated[kind | None, option]
    return inspect.Parameter(
        name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=annotation, default=None
    )


def with_field_options(
    *groups: tuple[type, Iterable[str]],
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add an option for each named field of each ``(dataclass, names)`` group to a command, in
    place of its ``options`` parameter, which receives the options given as one dict (those not
    given are left out, so the dataclass defaults, or a checkpoint's on ``--resume``, apply)."""
    generated = [field_parameter(cls, name) for cls, names in groups for name in names]
    names = {p.name for p in generated}

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(func, eval_str=True)  # own annotations as objects
        params: list[inspect.Parameter] = []
        for p in signature.parameters.values():
            params += generated if p.name == "options" else [p]

        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> Any:
            given = {k: kwargs.pop(k) for k in names & kwargs.keys()}
            options = {k: v for k, v in given.items() if v is not None}
            return func(*args, options=options, **kwargs)

        command.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        return command

    return decorate
