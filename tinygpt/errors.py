"""The exceptions tinygpt raises for problems a user can fix.

A message does not spell the options it names: it is a sequence of text and :class:`Opt`
pieces, so ``str(exc)`` reads in Python's spelling (``n_embd``, ``block_size=9``) and the CLI
renders the same pieces as its flags (``--n-embd``, ``--block-size 9``), in one line on stderr
with an exit code and no traceback unless ``--debug``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath

ANY = ...  # ``Opt("out_dir", ANY)``: a placeholder value, ``--out DIR`` / ``out_dir=...``


@dataclass(frozen=True)
class Opt:
    """An option named in a message, and the value shown with it, if any (a switch that is on:
    ``Opt("resume", True)``)."""

    name: str
    value: object = None


Piece = str | Opt
Spell = Callable[[Opt], str]


def python_spelling(opt: Opt) -> str:
    """``n_embd``, ``block_size=9``, ``tokenizer='char'``, ``resume=True``, ``out_dir=...``."""
    if opt.value is None:
        return opt.name
    if opt.value is ANY:
        return f"{opt.name}=..."
    value = str(opt.value) if isinstance(opt.value, PurePath) else opt.value  # not PosixPath(..)
    return f"{opt.name}={value!r}"


class Message(str):
    """A ``str`` in Python's spelling that keeps its pieces, so the CLI can :meth:`render` it
    in its own."""

    pieces: tuple[Piece, ...]

    def __new__(cls, *pieces: Piece) -> Message:
        text = super().__new__(cls, render(pieces, python_spelling))
        text.pieces = pieces
        return text

    @property
    def options(self) -> tuple[str, ...]:
        """The Python names of the options the message names, in order."""
        return tuple(p.name for p in self.pieces if isinstance(p, Opt))

    def render(self, spell: Spell) -> str:
        return render(self.pieces, spell)


def render(pieces: tuple[Piece, ...], spell: Spell) -> str:
    return "".join(spell(p) if isinstance(p, Opt) else p for p in pieces)


def spelled(text: str, spell: Spell) -> str:
    """``text`` in ``spell``'s spelling when it is a :class:`Message`, else as it is."""
    return text.render(spell) if isinstance(text, Message) else text


class TinyGPTError(Exception):
    """A failure with a message meant for the user (exit code 1)."""

    exit_code = 1

    def __init__(self, *pieces: Piece) -> None:
        self.message = Message(*pieces)
        super().__init__(self.message)

    @property
    def options(self) -> tuple[str, ...]:
        """The Python names of the options the message names (the fields to fix)."""
        return self.message.options

    def render(self, spell: Spell) -> str:
        """The message with its options spelled by ``spell`` (the CLI's flags, say)."""
        return self.message.render(spell)


class UsageError(TinyGPTError):
    """The user asked for something invalid: a bad option, file or value (exit code 2)."""

    exit_code = 2


class CheckpointError(TinyGPTError):
    """A checkpoint is missing, corrupt, unsafe or incompatible."""


def not_finite(what: str) -> CheckpointError:
    """A model whose weights are finite but so large that ``what`` (its outputs) is not."""
    return CheckpointError(
        f"the model's {what} not finite (its training diverged); try ",
        Opt("best"),
        " or train again with a lower ",
        Opt("lr"),
    )


class TrainingDiverged(TinyGPTError):
    """Loss or gradients stayed non-finite for too many steps in a row."""


class Interrupted(KeyboardInterrupt):
    """A stop signal (SIGINT, SIGTERM, SIGHUP) that ends the command now: a KeyboardInterrupt,
    so ``except Exception`` never swallows it; the CLI exits with 128 + signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
