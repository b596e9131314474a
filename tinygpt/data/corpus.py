"""Reading a corpus, tokenizing it once, and slicing random training batches.

A corpus (a file, a directory of files or a glob) is read in pieces and tokenized once into a
flat binary file of ids (uint16 when the vocabulary fits, else uint32), cached under the content
hash and the tokenizer. Training memory-maps it: memory stays flat as the corpus grows, a second
run skips tokenization, and batches are gathered with one vectorised index, no Python loop.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from tinygpt.config import is_bpe_spec, parse_bpe_spec
from tinygpt.data.bpe import BPETokenizer, learn_bpe
from tinygpt.data.records import RecordsTokenizer, record_chunks, split_records
from tinygpt.data.tiktoken_codec import TiktokenCodec
from tinygpt.data.tokenizer import (
    CharTokenizer,
    Tokenizer,
    build_tokenizer,
    tokenizer_from_dict,
)
from tinygpt.errors import Opt, TinyGPTError, UsageError
from tinygpt.io.files import (
    NotRegularFile,
    atomic_write,
    atomic_write_bytes,
    check_regular,
    read_bounded,
    sha256,
)

# Corpora are read in pieces of this size: memory stays flat however large the files are, and
# tiktoken encodes several pieces at once on its own threads.
_READ_CHUNK_BYTES = 1 << 23
_META_LIMIT = 64 << 20  # a cache entry's JSON (a char vocabulary of every code point fits)


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """Read one whole text file (a prompt, a file to evaluate), with the corpus reader's errors."""
    check_encoding(encoding)
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{p} is a directory; give a text file")
    return "".join(iter_text(resolve_sources(p), encoding))


def check_encoding(encoding: str) -> str:
    """The canonical name of a text encoding (``latin-1`` -> ``iso8859-1``), or a UsageError.

    Checked before any cache lookup, so a bad name fails the same way with a cached corpus as
    with a fresh one; codecs such as ``rot13`` or ``base64`` are not text encodings.
    """
    try:
        info = codecs.lookup(encoding)
    except (LookupError, TypeError, ValueError):
        raise UsageError(
            "unknown ", Opt("encoding"), f" {encoding!r}; try utf-8 or latin-1"
        ) from None
    if not getattr(info, "_is_text_encoding", True):
        raise UsageError(Opt("encoding", encoding), " is not a text encoding; try utf-8 or latin-1")
    return info.name


def default_cache_dir() -> Path:
    env = os.environ.get("TINYGPT_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "tinygpt"


@dataclass
class Corpus:
    """A tokenized corpus: the tokenizer and the ids (memory-mapped)."""

    tokenizer: Tokenizer
    ids: np.ndarray
    from_cache: bool = False
    # A learned BPE's corpus: the tokens of exactly the text it learned from (see _train_chars)
    train_tokens: int | None = None

    def split(self, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """First (1 - val_fraction) of the tokens for training, the rest for validation; with a
        learned BPE, the tokens of the text it learned from, so validation is text it never saw."""
        n_train = int(len(self.ids) * (1 - val_fraction))
        if self.train_tokens is not None:
            n_train = self.train_tokens
        return self.ids[:n_train], self.ids[n_train:]


def _dtype_for(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= np.iinfo(np.uint16).max + 1 else np.dtype(np.uint32)


def _is_utf8(encoding: str) -> bool:
    return encoding.lower().replace("_", "-") in ("utf-8", "utf8")


def resolve_sources(spec: str | Path, exclude: Path | None = None) -> list[Path]:
    """A file, a directory (every non-hidden file below it) or a glob pattern, in sorted order.

    Each real file is read once (a symbolic link to a file already listed adds nothing, and
    ``**`` does not descend into linked directories, so a link loop can't repeat or hang the
    listing). Checkpoint directories below the corpus, and ``exclude`` (the run's own ``--out``),
    are left out: ``tinygpt train .`` must not read its own weights as text on the next run.
    """
    text = str(spec)
    path = Path(spec)
    if path.is_dir():
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


def _glob_files(pattern: str, exclude: Path | None) -> list[Path]:
    """The files a glob pattern matches, through pathlib's glob (whose ``**`` does not follow
    linked directories; ``glob.glob`` loops on ``dir/self -> .``) from the pattern's fixed
    leading folders. Hidden names match only when the pattern spells a leading dot."""
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
    """A tinygpt checkpoint (its weights are no text to train on)."""
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
    """Stream the sources' text in pieces that end at a newline, never holding a whole file.

    Files are joined with a newline when one does not end with it. Errors name the file and the
    byte offset of the first byte that is not valid in ``encoding``. ``digest`` (a hashlib
    object, see :func:`_new_digest`) is fed exactly the bytes read, as ``_sources_digest`` is.
    """
    total = 0
    for path in sources:
        try:
            decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        except LookupError:
            raise UsageError("unknown ", Opt("encoding"), f" {encoding!r}") from None
        carry, consumed, first, ends_newline = "", 0, True, True
        try:
            fh = open(path, "rb")  # noqa: SIM115 (closed below, errors mapped to one line)
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
        if digest is not None:
            digest.update(f"\0{path.name}\0".encode())
        with fh:
            while True:
                try:
                    raw = fh.read(chunk_bytes)
                except OSError as exc:
                    raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
                if digest is not None:
                    digest.update(raw)
                if first and _is_utf8(encoding) and raw.startswith(b"\xef\xbb\xbf"):
                    raw, consumed = raw[3:], 3  # a UTF-8 byte-order mark is not text
                first = False
                pending = len(decoder.getstate()[0])
                try:
                    text = decoder.decode(raw, final=not raw)
                except UnicodeDecodeError as exc:
                    offset = consumed - pending + exc.start
                    raise UsageError(
                        f"{path} is not valid {encoding}: byte 0x{exc.object[exc.start]:02x} at "
                        f"offset {offset}; pass ",
                        Opt("encoding"),
                        " (for example latin-1) if the file uses another encoding",
                    ) from None
                except UnicodeError as exc:  # e.g. utf-16 without a byte-order mark
                    raise UsageError(f"{path} is not valid {encoding}: {exc}") from None
                consumed += len(raw)
                if on_bytes:
                    on_bytes(len(raw))
                text = carry + text
                cut = text.rfind("\n")
                if not raw or (cut < 0 and len(text) > 4 * chunk_bytes):
                    cut = len(text) - 1  # end of file, or a giant line: let it go as it is
                if cut >= 0:
                    piece, carry = text[: cut + 1], text[cut + 1 :]
                    if piece:
                        ends_newline = piece.endswith("\n")
                        total += len(piece)
                        yield piece
                else:
                    carry = text
                if not raw:
                    break
        if not ends_newline and path is not sources[-1]:
            yield "\n"
    if total == 0:
        what = f"{sources[0]} is empty" if len(sources) == 1 else "the corpus files are empty"
        raise UsageError(f"{what}; give a file with some text")


def encode_text(tokenizer: Tokenizer, text: str) -> np.ndarray:
    """Ids of ``text`` as a compact array (char vocabularies through a vectorised lookup)."""
    dtype = _dtype_for(tokenizer.vocab_size)
    if isinstance(tokenizer, CharTokenizer) and tokenizer.sorted:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        table = tokenizer.codepoints
        ids = np.searchsorted(table, codes)
        ids = np.minimum(ids, len(table) - 1)
        if not np.array_equal(table[ids], codes):
            tokenizer.encode(text)  # raises the one-line error listing the missing characters
        return ids.astype(dtype)
    return np.asarray(tokenizer.encode(text), dtype=dtype)


def _new_digest(encoding: str) -> Any:
    return hashlib.sha256(f"encoding={encoding}".encode())


def _check_unchanged(digest: Any, content: str, sources: list[Path]) -> None:
    """Refuse text that is not what was hashed: a file rewritten while it was being read would
    otherwise be cached under the old content's key, and every later run on the pristine
    file would train on the mixture."""
    if digest.hexdigest()[:24] != content:
        names = ", ".join(str(p) for p in sources[:3]) + (", ..." if len(sources) > 3 else "")
        raise UsageError(
            f"the corpus changed while it was being read ({names}); run again once nothing "
            f"writes to it"
        )


def _sources_digest(sources: list[Path], encoding: str) -> str:
    """Everything the ids depend on besides the tokenizer: the text encoding, the files' names
    and their bytes (a latin-1 reading of a file is another token stream than a UTF-8 one)."""
    digest = _new_digest(encoding)
    for path in sources:
        digest.update(f"\0{path.name}\0".encode())
        try:
            with open(path, "rb") as fh:
                while block := fh.read(1 << 24):
                    digest.update(block)
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    return digest.hexdigest()[:24]


def _tokenizer_keys(tokenizer: Tokenizer | str) -> list[str]:
    """Cache keys for a tokenizer, to try in order; the first is the one written.

    A name and the tokenizer it builds share a key, so a resumed run (which passes its
    checkpoint's tokenizer object) finds the ids the first run cached under the name: a tiktoken
    encoding is its name, and ``char`` is the vocabulary of the text itself. A char vocabulary
    given as an object may be another text's, so it is written under its own hash and matches
    the ``char`` entry only when the cached vocabulary is the same (checked on reading).
    """
    if isinstance(tokenizer, str):
        return ["char" if tokenizer == "char" else f"tiktoken-{tokenizer}"]
    spec = tokenizer.to_dict()
    if spec.get("type") == "tiktoken":
        return [f"tiktoken-{spec['name']}"]
    own = f"{spec.get('type')}-{sha256(json.dumps(spec, sort_keys=True).encode())[:12]}"
    # A learned BPE or a records tokenizer is built before the cache is looked at: its own key.
    return [own, "char"] if spec.get("type") == "char" else [own]


def _cached(ids_path: Path, meta_path: Path, tokenizer: Tokenizer | str, key: str) -> Corpus | None:
    """The cached corpus, when the entry is whole and holds this tokenizer's ids.

    Nothing in the entry is trusted: the ids must have the width this vocabulary is written
    with, fill the file exactly, all be in the vocabulary (an id beyond it fails every later
    run deep inside the embedding; a wrong width trains on garbage), and the sha256 recorded
    when the entry was written must cover both the ids and every other field (a flipped byte in
    the vocabulary would train under the wrong characters). An entry that does not hold up is
    rebuilt.
    """
    if not (ids_path.exists() and meta_path.exists()):
        return None
    try:
        meta = json.loads(read_bounded(meta_path, _META_LIMIT))
        if not isinstance(tokenizer, str) and meta["tokenizer"] != tokenizer.to_dict():
            return None
        tok = tokenizer_from_dict(meta["tokenizer"])
        dtype = _dtype_for(tok.vocab_size)
        num_tokens = meta["num_tokens"]
        if (
            key not in _tokenizer_keys(tok)
            or meta["dtype"] != dtype.name
            or type(num_tokens) is not int
            or check_regular(ids_path) != num_tokens * dtype.itemsize
        ):
            return None
        ids = np.memmap(ids_path, dtype=dtype, mode="r")
        if _entry_digest(meta, _ids_digest(ids, tok.vocab_size)) == meta["sha256"]:
            train_tokens = meta.get("train_tokens")
            if train_tokens is not None and not (
                type(train_tokens) is int and 0 < train_tokens < num_tokens
            ):
                return None
            return Corpus(tok, ids, from_cache=True, train_tokens=train_tokens)
    except (OSError, ValueError, KeyError, TypeError, RecursionError, TinyGPTError):
        pass  # a damaged cache entry is rebuilt
    return None


def _ids_digest(ids: np.ndarray, vocab_size: int) -> str | None:
    """The sha256 of the ids' bytes (a flipped bit turns one token into another, which no
    range check sees), or None when an id lies outside the vocabulary. Read in slices: memory
    stays flat."""
    digest = hashlib.sha256()
    step = 1 << 24
    for i in range(0, len(ids), step):
        part = np.ascontiguousarray(ids[i : i + step])
        if int(part.max()) >= vocab_size:
            return None
        digest.update(part.tobytes())
    return digest.hexdigest()


def _entry_digest(meta: dict[str, Any], ids_digest: str | None) -> str | None:
    """The checksum of a whole cache entry: every field of its JSON but the checksum itself,
    and the ids' digest. None when the ids fail their range check."""
    if ids_digest is None:
        return None
    fields = {k: v for k, v in meta.items() if k != "sha256"}
    text = json.dumps(fields, sort_keys=True, ensure_ascii=True) + "\0" + ids_digest
    return hashlib.sha256(text.encode()).hexdigest()


def _char_vocabulary(sources: list[Path], encoding: str, content: str) -> CharTokenizer:
    seen: set[int] = set()
    digest = _new_digest(check_encoding(encoding))
    for piece in iter_text(sources, encoding, digest=digest):
        codes = np.frombuffer(piece.encode("utf-32-le"), dtype=np.uint32)
        seen.update(np.flatnonzero(np.bincount(codes)).tolist())  # linear, unlike np.unique
    _check_unchanged(digest, content, sources)
    return CharTokenizer([chr(c) for c in sorted(seen)])


def _train_chars(sources: list[Path], encoding: str, val_fraction: float) -> int:
    """Where a learned BPE's training split ends: after the first 1 - val_fraction of the
    characters. The token split lands exactly there (Corpus.train_tokens)."""
    return int(sum(len(piece) for piece in iter_text(sources, encoding)) * (1 - val_fraction))


def _is_learned(tokenizer: Tokenizer | str) -> bool:
    if isinstance(tokenizer, str):
        return is_bpe_spec(tokenizer)
    return isinstance(getattr(tokenizer, "inner", tokenizer), BPETokenizer)


def _cut_at(pieces: Iterable[str], cut: int | None) -> Iterator[str | None]:
    """The pieces, split at character ``cut`` with a None between the two halves."""
    seen = 0
    for piece in pieces:
        if cut is not None and seen <= cut < seen + len(piece):
            yield from (piece[: cut - seen], None, piece[cut - seen :])
        else:
            yield piece
        seen += len(piece)


def _training_text(
    sources: list[Path], encoding: str, cut: int, records: dict[str, str] | None
) -> Iterator[str]:
    """The text of the training split (the first ``cut`` characters) in pieces, without
    separators when the corpus holds records: what a BPE may learn from."""
    left = cut
    for piece in iter_text(sources, encoding):
        if left <= 0:
            return
        piece, left = piece[:left], left - len(piece)
        yield from (split_records(records, piece) if records else [piece])


def _new_tokenizer(
    name: str,
    sources: list[Path],
    encoding: str,
    content: str,
    records: dict[str, str] | None,
    val_fraction: float,
) -> Tokenizer:
    """A tokenizer that must exist before its cache key does: a BPE learned from the training
    split (never the validation split), or any tokenizer with an end-of-record token."""
    if name == "char":
        tok: Tokenizer = _char_vocabulary(sources, encoding, content)
    elif is_bpe_spec(name):
        size = parse_bpe_spec(name)
        cut = _train_chars(sources, encoding, val_fraction)
        tok = learn_bpe(_training_text(sources, encoding, cut, records), size)
    else:
        tok = build_tokenizer(name)
    return RecordsTokenizer(tok, records) if records else tok


def prepare_corpus(
    spec: str | Path,
    tokenizer: Tokenizer | str,
    encoding: str = "utf-8",
    cache_dir: Path | None = None,
    exclude: Path | None = None,
    records: dict[str, str] | None = None,
    val_fraction: float = 0.1,
) -> Corpus:
    """Tokenize a file, directory or glob once into a memory-mapped token file, streaming.

    ``tokenizer`` is a name (``char`` builds its vocabulary from the text in a first pass) or a
    tokenizer object (a resumed run keeps its checkpoint's). The ids are cached under the
    sources' content hash and the tokenizer, so an unchanged corpus is never tokenized twice.
    ``exclude`` is a directory never read (the run's ``--out``). ``records`` (see
    records.py) puts an end-of-record token between records; ``bpe:N`` learns its merges from
    the first ``1 - val_fraction`` of the text.
    """
    codec = check_encoding(encoding)
    sources = resolve_sources(spec, exclude)
    content = _sources_digest(sources, codec)
    if isinstance(tokenizer, str) and (records or is_bpe_spec(tokenizer)):
        tokenizer = _new_tokenizer(tokenizer, sources, encoding, content, records, val_fraction)
    cache = (cache_dir or default_cache_dir()) / "tokens"
    keys = _tokenizer_keys(tokenizer)
    for key in keys:
        found = _cached(
            cache / f"{content}-{key}.bin", cache / f"{content}-{key}.json", tokenizer, key
        )
        if found is not None:
            return found
    ids_path, meta_path = cache / f"{content}-{keys[0]}.bin", cache / f"{content}-{keys[0]}.json"
    if isinstance(tokenizer, str):
        tok = (
            _char_vocabulary(sources, encoding, content)
            if tokenizer == "char"
            else build_tokenizer(tokenizer)
        )
    else:
        tok = tokenizer
    try:
        cache.mkdir(parents=True, exist_ok=True)
        # A folder where the entry goes can't be replaced by a file
        usable = not any(p.is_dir() and not p.is_symlink() for p in (ids_path, meta_path))
    except OSError:
        usable = False
    if not usable:  # caching is an optimisation: a broken cache dir must not stop training
        workdir = Path(tempfile.mkdtemp(prefix="tinygpt-tokens-"))
        ids_path, meta_path = workdir / ids_path.name, workdir / meta_path.name
    total_bytes = sum(p.stat().st_size for p in sources)
    num_tokens = 0
    ids_digest = hashlib.sha256()  # checked on every later use of the entry

    cut = _train_chars(sources, encoding, val_fraction) if _is_learned(tok) else None
    train_tokens = None

    def write(tmp: Path) -> None:
        nonlocal num_tokens, train_tokens
        threads = max(1, os.cpu_count() or 1)
        batch: list[str] = []
        # tqdm draws only on a terminal (disable=None), so logs and tests stay clean.
        with (
            open(tmp, "wb") as out,
            tqdm(
                total=total_bytes, unit="B", unit_scale=True, desc="tokenize", disable=None
            ) as bar,
        ):

            def flush() -> None:
                nonlocal num_tokens
                if isinstance(tok, TiktokenCodec):  # gpt2 and a learned bpe: batched
                    arrays = [
                        np.asarray(ids, dtype=_dtype_for(tok.vocab_size))
                        for ids in tok.encode_batch(batch, num_threads=threads)
                    ]
                else:
                    arrays = [encode_text(tok, piece) for piece in batch]
                for arr in arrays:
                    arr.tofile(out)
                    ids_digest.update(arr.tobytes())
                    num_tokens += len(arr)
                batch.clear()

            digest = _new_digest(codec)
            pieces = iter_text(sources, encoding, on_bytes=bar.update, digest=digest)
            if isinstance(tok, RecordsTokenizer):
                pieces = record_chunks(pieces, tok)
            for piece in _cut_at(pieces, cut):
                if piece is None:  # the end of a learned BPE's training text
                    flush()
                    train_tokens = num_tokens
                    continue
                batch.append(piece)
                if len(batch) >= threads:
                    flush()
            flush()
            _check_unchanged(digest, content, sources)  # else no cache entry is kept
            if num_tokens == 0:  # records that are all blank: nothing to learn, nothing cached
                raise UsageError(f"{spec} holds no text to train on: every record is blank")

    atomic_write(ids_path, write)
    meta = {
        "tokenizer": tok.to_dict(),
        "dtype": _dtype_for(tok.vocab_size).name,
        "num_tokens": num_tokens,
        **({"train_tokens": train_tokens} if train_tokens is not None else {}),
    }
    meta["sha256"] = _entry_digest(meta, ids_digest.hexdigest())
    atomic_write_bytes(meta_path, json.dumps(meta).encode())
    ids = np.memmap(ids_path, dtype=_dtype_for(tok.vocab_size), mode="r")
    return Corpus(tok, ids, train_tokens=train_tokens)


def check_split_lengths(train: np.ndarray, val: np.ndarray, block_size: int) -> None:
    need = block_size + 1
    shortest = min(len(train), len(val))
    if shortest < need:
        # Both splits must hold one full window plus its shifted target.
        fit = max(1, shortest - 1)
        raise UsageError(
            "the text is too short for ",
            Opt("block_size", block_size),
            f": the smaller split has {shortest} tokens and needs {need}; use ",
            Opt("block_size", fit),
            " or less, or more text",
        )


class BatchSampler:
    """Random windows of ``block_size + 1`` tokens, drawn with a dedicated ``torch.Generator``.

    Owning the generator (instead of the global RNG) makes the data stream's position part of
    the checkpoint: restoring its state resumes at exactly the batch an uninterrupted run would
    have drawn next.

    With several data-parallel ranks, every rank draws the same global batch of
    ``batch_size * world_size`` windows and keeps its own slice: the ranks see distinct data,
    and together exactly what one process with the combined batch would see.
    """

    def __init__(
        self,
        ids: np.ndarray,
        block_size: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.ids = ids
        self.block_size = block_size
        self.batch_size = batch_size
        self.rank, self.world_size = rank, world_size
        self.generator = torch.Generator().manual_seed(seed)
        self._offsets = np.arange(block_size + 1)

    def next(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets (B, T): the rows below, and the same shifted by one."""
        window = self.rows(device)
        return window[:, :-1], window[:, 1:]

    def rows(self, device: torch.device) -> torch.Tensor:
        """The next batch as (B, T + 1) windows of token ids."""
        high = len(self.ids) - self.block_size
        global_batch = self.batch_size * self.world_size
        starts = torch.randint(high, (global_batch,), generator=self.generator).numpy()
        starts = starts[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]
        window = torch.from_numpy(self.ids[starts[:, None] + self._offsets].astype(np.int64))
        if device.type == "cuda":
            window = window.pin_memory().to(device, non_blocking=True)
        else:
            window = window.to(device)
        return window
