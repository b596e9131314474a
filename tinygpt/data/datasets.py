"""Fetching the standard small corpora from their public sources, with a checksum: for now tiny
Shakespeare (the corpus of Karpathy's char-rnn, public domain).
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from tinygpt.errors import Opt, TinyGPTError, UsageError
from tinygpt.io.console import printable, shell_word, stderr_console
from tinygpt.io.files import TooLarge, atomic_write_bytes, describe_os_error, read_bounded, sha256


@dataclass(frozen=True)
class Dataset:
    filename: str
    url: str
    sha256: str
    size: int


DATASETS = {
    "shakespeare": Dataset(
        filename="tinyshakespeare.txt",
        url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        size=1115394,
    )
}
DATA_DIR = Path("data")
_CHUNK = 1 << 16
DOWNLOAD_DEADLINE_S = 300.0  # the whole download (about 1 MB)


def default_corpus() -> Path:
    return DATA_DIR / DATASETS["shakespeare"].filename


def fetch(
    name: str, directory: Path = DATA_DIR, url: str | None = None, quiet: bool = False
) -> Path:
    """Download dataset ``name`` into ``directory`` (kept if already there and intact)."""
    if name not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")
    ds = DATASETS[name]
    if Path(directory).exists() and not Path(directory).is_dir():  # before a download, not after
        raise UsageError(Opt("directory", directory), " is not a directory")
    target = Path(directory) / ds.filename
    if target.exists():
        # Never replaced: a file there that is not the published one was put there by hand.
        found = _existing_digest(target, ds.size)
        if found == ds.sha256:
            return target
        raise TinyGPTError(
            f"{target.resolve()} exists but its sha256 is {found}, expected {ds.sha256} (it is "
            f"not {name} as published at {ds.url}); delete it to download again, or train on "
            f"it as it is with `tinygpt train {shell_word(target)}`"
        )
    source = url or ds.url
    try:
        data = _download(source, ds.size, quiet)
    except ValueError as exc:  # urllib's word for a URL it can't parse
        raise UsageError(Opt("url"), f" {source!r} is not a URL ({exc})") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc
        # Name the public source once: again only when a mirror (--url) was what failed.
        what = "that file" if source == ds.url else ds.url
        raise TinyGPTError(
            f"could not download {name} from {source} ({reason}); on a machine without network, "
            f"get {what} elsewhere and copy it to {target.resolve()}"
        ) from None
    digest = sha256(data)
    if digest != ds.sha256:
        raise TinyGPTError(
            f"the download of {name} from {source} has sha256 {digest[:16]}..., expected "
            f"{ds.sha256[:16]}...; nothing was written"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, data)
    return target


def _existing_digest(target: Path, size: int) -> str:
    """The sha256 of the file already at ``target``, read bounded (a FIFO or device must not
    hang it; a larger file is not the published one)."""
    try:
        return sha256(read_bounded(target, size))
    except TooLarge:
        return "of a larger file"
    except OSError as exc:
        raise UsageError(f"cannot read {target}: {describe_os_error(exc)}") from None


def _download(url: str, expected_size: int, quiet: bool) -> bytes:
    """The bytes at ``url``: never more than ``expected_size`` (``file:///dev/zero`` would fill
    the memory) and within ``DOWNLOAD_DEADLINE_S`` in all (the socket timeout is per read, so a
    trickling server would hang forever; ``read1`` lets the deadline be checked as bytes come)."""
    deadline = time.monotonic() + DOWNLOAD_DEADLINE_S
    chunks: list[bytes] = []
    received = 0
    with urllib.request.urlopen(url, timeout=30) as response:
        declared = _content_length(response.headers.get("Content-Length"))
        if declared is not None and declared > expected_size:
            raise _too_large(url, expected_size)
        columns = (TextColumn("download"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
        with Progress(*columns, console=stderr_console(), disable=quiet) as progress:
            task = progress.add_task("download", total=declared or expected_size)
            while chunk := response.read1(min(_CHUNK, expected_size + 1 - received)):
                chunks.append(chunk)
                received += len(chunk)
                progress.advance(task, len(chunk))
                if received > expected_size:
                    raise _too_large(url, expected_size)
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"not complete after {DOWNLOAD_DEADLINE_S:.0f}s ({received:,} bytes)"
                    )
    return b"".join(chunks)


def _content_length(header: str | None) -> int | None:
    """The declared size, or None when absent or not a number."""
    try:
        return int(header) if header is not None else None
    except ValueError:
        return None


def _too_large(url: str, size: int) -> TinyGPTError:
    return TinyGPTError(
        f"{printable(url)} serves more than the {size:,} bytes of the published file; "
        f"nothing was written"
    )
