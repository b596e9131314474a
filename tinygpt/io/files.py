"""Crash-safe file writes (temp file in the same directory, fsync, rename, fsync the directory:
after a crash or a full disk the old file is intact), bounded reads, and the one content digest
used for checkpoints, the token cache and downloads."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

TEMP_PREFIX = ".tmp-"


class NotRegularFile(OSError):
    """A path that is a FIFO, a device or a socket (reading it could hang or never end)."""


class TooLarge(OSError):
    """A file larger than its reader allows."""


def file_kind(mode: int) -> str:
    """What a non-regular file is, for messages."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_regular(path: Path) -> int:
    """The size of ``path`` if it is a regular file (links followed), else NotRegularFile:
    ``/dev/zero`` or ``<(cmd)`` would make a reader hang or read forever, and a pipe can't be
    read twice (hash, then tokenize). ``stat`` never blocks, unlike opening a FIFO."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise NotRegularFile(f"{path} is {file_kind(info.st_mode)}; give a regular file")
    return info.st_size


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, refusing one over ``limit`` bytes. Opened
    non-blocking so a FIFO can't hang the open; the type is checked on the opened file (no race
    with a rename) and the read never goes past ``limit`` + 1 bytes."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(f"{path} is {file_kind(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            raise TooLarge(f"{path} has {info.st_size:,} bytes, more than the {limit:,} allowed")
        data = fh.read(limit + 1)
    if len(data) > limit:  # grew while being read
        raise TooLarge(f"{path} has more than the {limit:,} bytes allowed")
    return data


def describe_os_error(exc: OSError) -> str:
    """One line for an OSError: our own messages as they are, the system's reason otherwise."""
    if isinstance(exc, (NotRegularFile, TooLarge)):
        return str(exc)
    return exc.strerror or str(exc)


def sha256(data: bytes) -> str:
    """The hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; some filesystems don't support it, which is harmless.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Let ``write`` fill a temp file beside ``path``, then move it into place atomically. If
    ``write`` raises anything (``torch.save``: ``RuntimeError`` on a full disk), the temp file is
    removed and the original stays as it was."""
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX + path.name + ".", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(Path(path), lambda tmp: tmp.write_bytes(data))


def write_named(path: Path, data: bytes) -> None:
    """Write ``data`` to a file a user named. A regular file (or a new name) is replaced
    atomically, through a symbolic link its target (the link stays a link); a device, FIFO or
    socket is written to as it is, never renamed over (``/dev/null`` stays a device)."""
    path = Path(path)
    try:
        mode: int | None = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):  # (a folder: views.output refused it)
        with open(path, "wb") as fh:
            fh.write(data)
        return
    atomic_write_bytes(Path(os.path.realpath(path)), data)
