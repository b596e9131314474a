"""Fetching the standard small corpora from their public sources, with a checksum.

Only tiny Shakespeare for now: 1,115,394 bytes of Shakespeare's plays, the corpus of Karpathy's
char-rnn, in the public domain.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from tinygpt.console import stderr_console
from tinygpt.errors import TinyGPTError, UsageError
from tinygpt.fileio import atomic_write_bytes, sha256


@dataclass(frozen=True)
class Dataset:
    name: str
    filename: str
    url: str
    sha256: str
    size: int


DATASETS = {
    "shakespeare": Dataset(
        name="shakespeare",
        filename="tinyshakespeare.txt",
        url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        size=1115394,
    )
}
DATA_DIR = Path("data")
_CHUNK = 1 << 16


def default_corpus() -> Path:
    return DATA_DIR / DATASETS["shakespeare"].filename


def fetch(
    name: str, directory: Path = DATA_DIR, url: str | None = None, quiet: bool = False
) -> Path:
    """Download dataset ``name`` into ``directory`` (kept if already there and intact)."""
    if name not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")
    ds = DATASETS[name]
    target = Path(directory) / ds.filename
    if target.exists():
        # Never replaced: a file there that is not the published one was put there by hand.
        found = sha256(target.read_bytes())
        if found == ds.sha256:
            return target
        raise TinyGPTError(
            f"{target.resolve()} exists but its sha256 is {found}, expected {ds.sha256} (it is "
            f"not {name} as published at {ds.url}); delete it to download again, or train on "
            f"it as it is with `tinygpt train {target}`"
        )
    source = url or ds.url
    try:
        data = _download(source, ds.size, quiet)
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


def _download(url: str, expected_size: int, quiet: bool) -> bytes:
    chunks: list[bytes] = []
    with urllib.request.urlopen(url, timeout=30) as response:
        total = int(response.headers.get("Content-Length") or expected_size)
        columns = (TextColumn("download"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
        with Progress(*columns, console=stderr_console(), disable=quiet) as progress:
            task = progress.add_task("download", total=total)
            while chunk := response.read(_CHUNK):
                chunks.append(chunk)
                progress.advance(task, len(chunk))
    return b"".join(chunks)
