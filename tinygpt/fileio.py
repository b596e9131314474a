"""Crash-safe file writes (temp file in the same directory, fsync, rename, fsync the
directory) and the one content digest used for checkpoints, the token cache and downloads.

A reader never sees a half-written file: after a crash or a full disk the old file is intact.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

TEMP_PREFIX = ".tmp-"


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
    """Let ``write`` fill a temp file beside ``path``, then move it into place atomically.

    ``write`` may raise anything (``torch.save`` raises ``RuntimeError`` on a full disk); the temp
    file is removed and the original stays as it was.
    """
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


def remove_stale_temps(directory: Path) -> None:
    """Delete temp files a killed process left behind (they were never renamed into place)."""
    for stale in Path(directory).glob(TEMP_PREFIX + "*"):
        with contextlib.suppress(OSError):
            stale.unlink()
