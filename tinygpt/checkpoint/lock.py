"""One writer per checkpoint directory: an ``flock`` on ``DIR/.lock``, held for the whole run.

The kernel drops the lock when its holder dies (even by ``kill -9``), so a leftover file is
simply taken over. The file names the holder's PID and host, for messages and, on a file system
without ``flock`` (NFS without a lock daemon, some FUSE mounts), as the guard: a live holder on
this host, or any on another host (which can't be checked), is refused.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from tinygpt.errors import Opt, UsageError
from tinygpt.io.console import printable

LOCK_FILE = ".lock"
# What flock fails with on a file system that has no such locks (not: another process has it).
_NO_FLOCK = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EINVAL})

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, runs are not guarded
    fcntl = None  # type: ignore[assignment]


_HOLDER = re.compile(r"pid ([0-9]{1,9}) on (.+)")


def is_lock_file(path: Path) -> bool:
    """Whether ``path`` is a regular file naming its holder as ``pid N on HOST``: a user's own
    ``.lock`` is never taken for one, and never removed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode) and bool(_HOLDER.fullmatch(_holder_text(fd)))
    finally:
        os.close(fd)


def _holder_text(fd: int) -> str:
    # Read through the descriptor already checked to be our regular file, never the path.
    try:
        return os.pread(fd, 400, 0).decode("utf-8", errors="replace").strip()
    except OSError:
        return ""


def _holder(fd: int) -> str:
    return printable(_holder_text(fd)[:100]) or "another process"


def _open_file(path: Path) -> int | None:
    """A descriptor of the lock file ``path``, a regular file with one name; else None.

    A foreign checkpoint's ``.lock`` may be a symlink (even dangling), a hard link to a user's
    file, a FIFO or a device: writing through it would overwrite that file. Such a name is
    removed instead (what it points to stays) and the caller tries again on a fresh file.
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


def _in_use(path: Path, holder: str) -> UsageError:
    return UsageError(
        f"{path.parent} is in use by another tinygpt run ({holder}); wait for it to finish or "
        f"use another ",
        Opt("out_dir"),
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    except (OSError, OverflowError):
        return False
    return True


def _check_pid_holder(fd: int, path: Path) -> None:
    """Without ``flock``: refuse when the holder the file names may still run."""
    text = _holder_text(fd)
    match = _HOLDER.fullmatch(text)
    if match is None:  # empty, or not a holder tinygpt wrote: nobody holds it
        return
    pid, host = int(match.group(1)), match.group(2)
    if host != socket.gethostname():
        raise UsageError(
            f"{path.parent} may be in use by a tinygpt run on {printable(host[:60])} (pid {pid}); "
            f"its file system has no file locks to tell, so remove {path} if no run uses it"
        )
    if pid != os.getpid() and _alive(pid):
        raise _in_use(path, _holder(fd))


def _open_locked(path: Path) -> tuple[int, bool]:
    """A descriptor of ``path`` holding its exclusive lock, and whether the kernel holds it
    (False without ``flock``: the PID in the file guards it); UsageError when another run has it."""
    while True:
        fd = _open_file(path)
        if fd is None:
            continue
        try:
            locked = fcntl is not None
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise _in_use(path, _holder(fd)) from None
                except OSError as exc:
                    if exc.errno not in _NO_FLOCK:
                        raise
                    _check_pid_holder(fd, path)
                    locked = False
            # The previous holder may have removed the file between our open and our lock:
            # a lock on a file nobody else can see; start over.
            if os.path.samestat(os.fstat(fd), os.lstat(path)):
                return fd, locked
        except FileNotFoundError:
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def in_use(directory: Path) -> bool:
    """Whether a tinygpt run holds ``directory``'s lock now (False where locks don't exist)."""
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
def directory_lock(directory: Path) -> Iterator[str | None]:
    """Hold ``directory``'s writer lock (creating it) for the ``with`` block, which gets a note
    for the user when the file system has no ``flock``. Also proves the directory writable
    before any work: a read-only or file ``--out`` fails here, not at the first save."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise UsageError(Opt("out_dir", directory), " is a file, not a directory")
    # Directories this run creates (the leaf first), removed again if it ends before saving.
    created = [d for d in (directory, *directory.parents) if not d.exists()]
    path = directory / LOCK_FILE
    fd = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, locked = _open_locked(path)
        holder = f"pid {os.getpid()} on {socket.gethostname()}"
        os.ftruncate(fd, 0)
        os.write(fd, f"{holder}\n".encode())
        if not locked:
            time.sleep(0.05)  # a run starting at the same moment has written by now
            if _holder_text(fd) != holder:  # it did, after us: it has the directory
                os.close(fd)
                fd = None
                raise _in_use(path, "it started at the same moment")
    except (UsageError, OSError) as exc:
        # Nothing of a run that could not start stays behind: no .lock, no empty --out.
        _release(path, fd, created)
        if isinstance(exc, UsageError):
            raise
        raise UsageError(
            "cannot write to ", Opt("out_dir", directory), f": {exc.strerror or exc}"
        ) from None
    note = None
    if not locked and fcntl is not None:
        note = (
            f"{directory} is on a file system without file locks: the PID in {LOCK_FILE} "
            f"guards it from other runs on this machine"
        )
    try:
        yield note
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
