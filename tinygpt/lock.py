"""One writer per checkpoint directory: an advisory lock file that names its holder.

``train`` holds ``DIR/.lock`` for the whole run. The lock is an ``flock`` on that file, so the
kernel drops it when the holder dies, even by ``kill -9``: a lock file left behind is stale by
construction and the next run simply takes it over. The file holds the holder's PID and host,
so a refused writer can say who has the directory.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from tinygpt.errors import UsageError
from tinygpt.spelling import option

LOCK_FILE = ".lock"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, runs are not guarded
    fcntl = None  # type: ignore[assignment]


def _holder(path: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        text = path.read_text(encoding="utf-8", errors="replace").strip()
        if text:
            return text[:100]
    return "another process"


def _open_locked(path: Path) -> int:
    """A descriptor of ``path`` holding its exclusive lock; UsageError when another has it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise UsageError(
                        f"{path.parent} is in use by another tinygpt run ({_holder(path)}); wait "
                        f"for it to finish or use another {option('out_dir')}"
                    ) from None
            # The previous holder may have removed the file between our open and our lock:
            # then we hold a lock on a file nobody else can see, so start over.
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                return fd
        except FileNotFoundError:
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def in_use(directory: Path) -> bool:
    """Whether a tinygpt run holds ``directory``'s writer lock right now (False where locks
    don't exist)."""
    path = Path(directory) / LOCK_FILE
    if fcntl is None or not path.is_file():
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing drops the shared lock at once, if it was taken
    return False


@contextlib.contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """Hold ``directory``'s writer lock (creating the directory) for the ``with`` block.

    Also proves the directory is writable before any work starts: a read-only ``--out`` or one
    that is a regular file fails here with one line, not at the first save.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{option('out_dir', directory)} is a file, not a directory")
    # Directories this run creates (the leaf first), removed again if it ends before saving.
    created = [d for d in (directory, *directory.parents) if not d.exists()]
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / LOCK_FILE
        fd = _open_locked(path)
    except UsageError:
        raise
    except OSError as exc:
        raise UsageError(
            f"cannot write to {option('out_dir', directory)}: {exc.strerror or exc}"
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
    except OSError as exc:
        os.close(fd)
        raise UsageError(
            f"cannot write to {option('out_dir', directory)}: {exc.strerror or exc}"
        ) from None
    try:
        yield
    finally:
        # Remove the file while still holding the lock (a waiting run then starts over on a
        # fresh file, see _open_locked); closing releases the lock.
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)
        for d in created:  # a run that failed before its first save leaves no empty directory
            with contextlib.suppress(OSError):  # not empty (a checkpoint is in it): kept
                d.rmdir()
