"""The stop protocol: a stop signal or the deadline ends the run, on every rank at once.

Ctrl-C, a scheduler's preemption (SLURM, Kubernetes, `docker stop`) or a closing terminal means
"stop soon" without losing the steps since the last save: the first signal becomes a flag the
loop checks after each step; a second one aborts at once.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinygpt.checkpoint.manifest import MANIFEST_FILE
from tinygpt.errors import Interrupted, Opt, TrainingDiverged
from tinygpt.training.distributed import DistContext

STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Interrupt:
    """The first stop signal received (0: none yet) while :meth:`installed`."""

    def __init__(self) -> None:
        self.signum = 0

    def _handler(self, signum: int, frame: Any) -> None:
        if self.signum:
            raise Interrupted(signum)
        self.signum = signum

    @contextmanager
    def installed(self) -> Iterator[Interrupt]:
        previous = {}
        try:
            for sig in STOP_SIGNALS:
                previous[sig] = signal.signal(sig, self._handler)
        except ValueError:  # not the main thread: leave signals alone
            pass
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


@dataclass(frozen=True)
class Stop:
    """What every rank agreed on after a step."""

    signal: int = 0  # the stop signal some rank received, or 0
    out_of_time: bool = False  # some rank's --max-time budget is spent

    @property
    def interrupted(self) -> bool:
        return self.signal > 0


def agree(dist: DistContext, signum: int, out_of_time: bool) -> Stop:
    """All ranks must agree to stop, or the others would wait for it forever; the signal one
    rank received (SIGTERM may reach only one) stops them all."""
    signum_all, timed_out = dist.max(signum, out_of_time)
    return Stop(int(signum_all), timed_out > 0)


def diverged(what: str, out_dir: Path) -> TrainingDiverged:
    """The run's end when its numbers stop being finite: nothing more is saved, so the last
    checkpoint, where there is one, is what the run leaves."""
    kept = (out_dir / MANIFEST_FILE).is_file()
    left = f". The last good checkpoint in {out_dir} is unchanged" if kept else ""
    return TrainingDiverged(f"{what}; lower ", Opt("lr"), " or use ", Opt("dtype", "float32"), left)
