"""The exceptions tinygpt raises for problems a user can fix.

Each carries its message as pieces (:class:`tinygpt.messages.Message`) naming the options it is
about by their Python names; ``str(exc)`` spells them for Python (``n_embd``), and the CLI
renders them as flags (``--n-embd``) in one line on stderr with an exit code, with no
traceback unless ``--debug``.
"""

from __future__ import annotations

from tinygpt.messages import Message, Piece, Spell


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


class TrainingDiverged(TinyGPTError):
    """Loss or gradients stayed non-finite for too many steps in a row."""


class Interrupted(KeyboardInterrupt):
    """A stop signal (SIGINT, SIGTERM, SIGHUP) that should end the command now.

    A KeyboardInterrupt, so ``except Exception`` blocks never swallow it; the CLI exits with the
    conventional 128 + signal number.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
