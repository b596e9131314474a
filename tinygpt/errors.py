"""The exceptions tinygpt raises for problems a user can fix.

The CLI turns each into one line on stderr and an exit code, with no traceback unless ``--debug``.
"""

from __future__ import annotations


class TinyGPTError(Exception):
    """A failure with a message meant for the user (exit code 1)."""

    exit_code = 1


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
