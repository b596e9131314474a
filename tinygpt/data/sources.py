"""Where a corpus's text comes from: a file, a folder or a glob resolved to files, read as a
stream of text pieces in one encoding, and hashed (the token cache's key)."""

from __future__ import annotations

import codecs
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from tinygpt.errors import Opt, UsageError
from tinygpt.io.files import NotRegularFile, check_regular

# Memory stays flat however large the files, and tiktoken encodes several pieces at once.
_READ_CHUNK_BYTES = 1 << 23


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """Read one whole text file (a prompt, a file to evaluate), with the corpus reader's errors."""
    check_encoding(encoding)
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{p} is a directory; give a text file")
    return "".join(iter_text(resolve_sources(p), encoding))


def check_encoding(encoding: str) -> str:
    """The canonical name of a text encoding (``latin-1`` -> ``iso8859-1``), or a UsageError
    (before any cache lookup, so a cached corpus fails alike; ``rot13`` is no text encoding)."""
    try:
        info = codecs.lookup(encoding)
    except (LookupError, TypeError, ValueError):
        raise UsageError(
            "unknown ", Opt("encoding"), f" {encoding!r}; try utf-8 or latin-1"
        ) from None
    if not getattr(info, "_is_text_encoding", True):
        raise UsageError(Opt("encoding", encoding), " is not a text encoding; try utf-8 or latin-1")
    return info.name


def _is_utf8(encoding: str) -> bool:
    return encoding.lower().replace("_", "-") in ("utf-8", "utf8")


def resolve_sources(spec: str | Path, exclude: Path | None = None) -> list[Path]:
    """A file, a directory (every non-hidden file below it) or a glob pattern, in sorted order.

    Each real file once (``**`` does not follow linked directories, so a link loop can't hang
    the listing); checkpoints below the corpus and ``exclude`` (the run's ``--out``) are left
    out, so ``tinygpt train .`` never reads its own weights as text.
    """
    text = str(spec)
    if not text:  # Path("") is ".": every file here
        raise UsageError("the text to train on is an empty name; give a file, folder or glob")
    path = Path(spec)
    try:
        path.exists()
    except OSError as exc:  # a name longer than the system allows (text given as a file name?)
        shown = text if len(text) <= 60 else f"{text[:60]}..."
        raise UsageError(f"cannot read {shown!r}: {exc.strerror or exc}") from None
    if path.is_dir():
        if _is_checkpoint_dir(path):
            raise UsageError(f"{path} is a checkpoint, not text to train on")
        _check_out_outside(path, exclude)
        files = _corpus_files(path, path.rglob("*"), exclude)
        if not files:
            raise UsageError(f"the directory {path} holds no files to train on")
        return files
    if not path.exists() and any(ch in text for ch in "*?["):
        files = _glob_files(text, exclude)
        if not files:
            raise UsageError(f"no files match {text!r}")
        return files
    if not path.exists():
        if text == "-":  # the shell's name for standard input
            raise UsageError(
                "tinygpt reads its text twice, so not from standard input; save it to a file first"
            )
        raise UsageError(f"file not found: {path}")
    try:
        check_regular(path)
    except NotRegularFile as exc:
        raise UsageError(
            f"{exc}: tinygpt reads its input twice (to hash it, then to tokenize it); save it "
            f"to a file first"
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    return [path]


def _check_out_outside(corpus: Path, out: Path | None) -> None:
    """Files inside the run's ``--out`` are never read: an ``--out`` that is the corpus folder
    or holds it would leave nothing (or only links out of it) to train on."""
    if out is None:
        return
    real, target = corpus.resolve(), out.resolve()
    if real == target or target in real.parents:
        where = "is" if real == target else "holds"
        raise UsageError(
            Opt("out_dir", str(out)), f" {where} the corpus folder {corpus}; write outside it"
        )


def _glob_files(pattern: str, exclude: Path | None) -> list[Path]:
    """The files a glob pattern matches, through pathlib's glob (``glob.glob``'s ``**`` loops on
    ``dir/self -> .``). Hidden names match only when the pattern spells a leading dot."""
    parts = Path(pattern).parts
    fixed = next(i for i, part in enumerate(parts) if any(ch in part for ch in "*?["))
    root = Path(*parts[:fixed]) if fixed else Path(".")
    rest = parts[fixed:]
    if rest[-1] == "**":  # glob.glob's "dir/**" lists files too; pathlib's only folders
        rest = (*rest, "*")
    try:
        matches = list(root.glob(str(Path(*rest))))
    except (ValueError, OSError) as exc:
        raise UsageError(f"bad glob pattern {pattern!r}: {exc}") from None
    hidden_ok = any(part.startswith(".") for part in rest)
    return _corpus_files(root, matches, exclude, hidden_ok)


def _corpus_files(
    root: Path, candidates: Iterable[Path], exclude: Path | None, hidden_ok: bool = False
) -> list[Path]:
    """The regular files among ``candidates`` (below ``root``), sorted, each real file once,
    without hidden names, checkpoint directories or anything inside ``exclude``."""
    skip = exclude.resolve() if exclude is not None else None
    seen: set[tuple[int, int]] = set()
    checkpoints: dict[Path, bool] = {}  # each folder looked at once, however many files
    files = []
    for f in sorted(candidates):
        rel = f.relative_to(root).parts
        if not hidden_ok and any(part.startswith(".") for part in rel):
            continue
        try:
            if not f.is_file():
                continue
            info = f.stat()
            real = f.resolve()
        except (OSError, RuntimeError):  # vanished, unreadable, or a link loop
            continue
        if (info.st_dev, info.st_ino) in seen:
            continue
        if skip is not None and (real == skip or skip in real.parents):
            continue
        folders = [root.joinpath(*rel[:i]) for i in range(1, len(rel))]
        for d in folders:
            if d not in checkpoints:
                checkpoints[d] = _is_checkpoint_dir(d)
        if any(checkpoints[d] for d in folders):
            continue
        seen.add((info.st_dev, info.st_ino))
        files.append(f)
    return files


def _is_checkpoint_dir(directory: Path) -> bool:
    has_manifest = (directory / "manifest.json").is_file() or (
        directory / "manifest.pending.json"
    ).is_file()
    return has_manifest and (directory / "model.safetensors").exists()


def iter_text(
    sources: list[Path],
    encoding: str = "utf-8",
    chunk_bytes: int = _READ_CHUNK_BYTES,
    on_bytes: Callable[[int], None] | None = None,
    digest: Any = None,
) -> Iterator[str]:
    """Stream the sources' text in pieces that end at a newline, never holding a whole file;
    files are joined with a newline. Errors name the file and the offset of the first invalid
    byte. ``digest`` (:func:`new_digest`) is fed the bytes read, as ``sources_digest`` is."""
    total = 0
    for path in sources:
        piece = ""
        for piece in file_pieces(path, encoding, on_bytes, digest, chunk_bytes):
            total += len(piece)
            yield piece
        if piece and not piece.endswith("\n") and path is not sources[-1]:
            yield "\n"
    if total == 0:
        what = f"{sources[0]} is empty" if len(sources) == 1 else "the corpus files are empty"
        raise UsageError(f"{what}; give a file with some text")


def file_pieces(
    path: Path,
    encoding: str,
    on_bytes: Callable[[int], None] | None = None,
    digest: Any = None,
    chunk_bytes: int = _READ_CHUNK_BYTES,
) -> Iterator[str]:
    """One file's text in pieces ending at a newline (a giant line goes as it is; an empty file
    yields nothing)."""
    decoder = _decoder(encoding)
    carry, consumed, first = "", 0, True
    if digest is not None:
        digest.update(file_header(path))
    for raw in _chunks(path, chunk_bytes):
        if digest is not None:
            digest.update(raw)
        if first and _is_utf8(encoding) and raw.startswith(b"\xef\xbb\xbf"):
            raw, consumed = raw[3:], 3  # a UTF-8 byte-order mark is not text
        first = False
        pending = len(decoder.getstate()[0])
        text = carry + _decode(decoder, raw, path, encoding, consumed - pending)
        consumed += len(raw)
        if on_bytes:
            on_bytes(len(raw))
        cut = text.rfind("\n")
        if not raw or (cut < 0 and len(text) > 4 * chunk_bytes):
            cut = len(text) - 1  # end of file, or a giant line: let it go as it is
        piece, carry = text[: cut + 1], text[cut + 1 :]
        if piece:
            yield piece


def _decoder(encoding: str) -> codecs.IncrementalDecoder:
    try:
        return codecs.getincrementaldecoder(encoding)(errors="strict")
    except LookupError:
        raise UsageError("unknown ", Opt("encoding"), f" {encoding!r}") from None


def _chunks(path: Path, chunk_bytes: int) -> Iterator[bytes]:
    """The file's bytes in chunks, then one empty chunk (the decoder's final call)."""
    try:
        with open(path, "rb") as fh:
            while raw := fh.read(chunk_bytes):
                yield raw
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    yield b""


def _decode(
    decoder: codecs.IncrementalDecoder, raw: bytes, path: Path, encoding: str, at: int
) -> str:
    """``raw`` decoded; an error names the file and the offset of the bad byte (``raw``'s
    decoding starts at offset ``at``)."""
    try:
        return decoder.decode(raw, final=not raw)
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{path} is not valid {encoding}: byte 0x{exc.object[exc.start]:02x} at "
            f"offset {at + exc.start}; pass ",
            Opt("encoding"),
            " (for example latin-1) if the file uses another encoding",
        ) from None
    except UnicodeError as exc:  # e.g. utf-16 without a byte-order mark
        raise UsageError(f"{path} is not valid {encoding}: {exc}") from None


def new_digest(encoding: str) -> Any:
    return hashlib.sha256(f"encoding={encoding}".encode())


def check_unchanged(digest: Any, content: str, sources: list[Path]) -> None:
    """Refuse text that is not what was hashed: a file rewritten while read would be cached
    under the old content's key, and later runs on the pristine file train on the mixture."""
    if digest.hexdigest()[:24] != content:
        names = ", ".join(str(p) for p in sources[:3]) + (", ..." if len(sources) > 3 else "")
        raise UsageError(
            f"the corpus changed while it was being read ({names}); run again once nothing "
            f"writes to it"
        )


def file_header(path: Path) -> bytes:
    """What the digest reads before a file's bytes: its name (UTF-8 or not) and its size, so
    that no split of the same bytes into other files hashes the same."""
    return b"\0" + os.fsencode(path.name) + b"\0" + str(path.stat().st_size).encode() + b"\0"


def sources_digest(sources: list[Path], encoding: str) -> str:
    """Everything the ids depend on besides the tokenizer: the encoding, the files' names and
    their bytes."""
    digest = new_digest(encoding)
    for path in sources:
        digest.update(file_header(path))
        for block in _chunks(path, 1 << 24):
            digest.update(block)
    return digest.hexdigest()[:24]
