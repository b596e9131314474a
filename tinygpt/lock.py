"""One writer per checkpoint directory: an advisory lock file that names its holder.

``train`` holds ``DIR/.lock`` for the whole run. The lock is an ``flock`` on that file, so the
kernel drops it when the holder dies, even by ``kill -9``: a lock file left behind is stale by
construction and the next run simply takes it over. The file holds the holder's PID and host,
so a refused writer can say who has the directory.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

from tinygpt.console import printable
from tinygpt.errors import UsageError
from tinygpt.spelling import option

LOCK_FILE = ".lock"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, runs are not guarded
    fcntl = None  # type: ignore[assignment]


def _holder(fd: int) -> str:
    # Read through the descriptor already checked to be our regular file, never the path.
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 200, 0).decode("utf-8", errors="replace").strip()
        if text:
            return printable(text[:100])
    return "another process"


def _open_file(path: Path) -> int | None:
    """A descriptor of the lock file ``path``: a regular file with one name, inside the folder.

    A checkpoint may come from someone else, and its ``.lock`` may be a symbolic link (even a
    dangling one), a hard link to one of the user's files, a FIFO or a device: writing the
    holder's name through it would overwrite that file. Such a ``.lock`` is never opened or
    written; its name is removed (which leaves what it points to alone) and None is returned
    so the caller tries again on a fresh file.
    """
    flags = os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.EMLINK):
            raise
        _remove_foreign(path)
        return None
    info = os.fstat(fd)
    if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
        return fd
    os.close(fd)
    _remove_foreign(path)
    return None


def _remove_foreign(path: Path) -> None:
    """Remove a ``.lock`` that no tinygpt run made (a link, a FIFO, a device)."""
    try:
        if path.is_dir() and not path.is_symlink():
            path.rmdir()  # only an empty one: a folder with files in it is the user's
        else:
            path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise UsageError(
            f"{path} is in the way of tinygpt's lock file ({exc.strerror or exc}); remove it"
        ) from None


def _open_locked(path: Path) -> int:
    """A descriptor of ``path`` holding its exclusive lock; UsageError when another has it."""
    while True:
        fd = _open_file(path)
        if fd is None:
            continue
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise UsageError(
                        f"{path.parent} is in use by another tinygpt run ({_holder(fd)}); wait "
                        f"for it to finish or use another {option('out_dir')}"
                    ) from None
            # The previous holder may have removed the file between our open and our lock:
            # then we hold a lock on a file nobody else can see, so start over.
            if os.path.samestat(os.fstat(fd), os.lstat(path)):
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
    try:  # never through a link, never blocking on a FIFO put in its place
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
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
    path = directory / LOCK_FILE
    fd = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = _open_locked(path)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
    except (UsageError, OSError) as exc:
        # Nothing of a run that could not start stays behind: no .lock, no empty --out.
        _release(path, fd, created)
        if isinstance(exc, UsageError):
            raise
        raise UsageError(
            f"cannot write to {option('out_dir', directory)}: {exc.strerror or exc}"
        ) from None
    try:
        yield
    finally:
        _release(path, fd, created)


def _release(path: Path, fd: int | None, created: list[Path]) -> None:
    if fd is not None:
        # Remove the file while still holding the lock (a waiting run then starts over on a
        # fresh file, see _open_locked); closing releases the lock.
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)
    for d in created:  # a run that failed before its first save leaves no empty directory
        with contextlib.suppress(OSError):  # not empty (a checkpoint is in it): kept
            d.rmdir()
