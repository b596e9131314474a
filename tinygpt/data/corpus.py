"""Tokenizing a corpus once: the tokenizer it needs (a char vocabulary of its text, a BPE
learned from its training split), and the streaming pass that writes the token cache's entry.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
from tqdm import tqdm

from tinygpt.config.specs import is_bpe_spec, parse_bpe_spec
from tinygpt.data.bpe import BPETokenizer, TiktokenCodec, learn_bpe
from tinygpt.data.holdout import file_cuts, halves, joined, training_pieces
from tinygpt.data.records import RecordsTokenizer, record_chunks, split_records
from tinygpt.data.sources import (
    check_encoding,
    check_unchanged,
    iter_text,
    new_digest,
    resolve_sources,
    sources_digest,
)
from tinygpt.data.token_cache import (
    Corpus,
    default_cache_dir,
    dtype_for,
    entry_paths,
    read_entry,
    tokenizer_keys,
    write_meta,
)
from tinygpt.data.tokenizer import CharTokenizer, Tokenizer, build_tokenizer
from tinygpt.errors import UsageError
from tinygpt.io.files import atomic_write, sha256


def encode_text(tokenizer: Tokenizer, text: str) -> np.ndarray:
    """Ids of ``text`` as a compact array (char vocabularies through a vectorised lookup)."""
    dtype = dtype_for(tokenizer.vocab_size)
    if isinstance(tokenizer, CharTokenizer) and tokenizer.sorted:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        table = tokenizer.codepoints
        ids = np.searchsorted(table, codes)
        ids = np.minimum(ids, len(table) - 1)
        if not np.array_equal(table[ids], codes):
            tokenizer.encode(text)  # raises the one-line error listing the missing characters
        return ids.astype(dtype)
    return np.asarray(tokenizer.encode(text), dtype=dtype)


def _char_vocabulary(sources: list[Path], encoding: str, content: str) -> CharTokenizer:
    seen: set[int] = set()
    digest = new_digest(check_encoding(encoding))
    for piece in iter_text(sources, encoding, digest=digest):
        codes = np.frombuffer(piece.encode("utf-32-le"), dtype=np.uint32)
        seen.update(np.flatnonzero(np.bincount(codes)).tolist())  # linear, unlike np.unique
    check_unchanged(digest, content, sources)
    return CharTokenizer([chr(c) for c in sorted(seen)])


def _train_chars(sources: list[Path], encoding: str, val_fraction: float) -> int:
    """Where a learned BPE's training split ends: after the first 1 - val_fraction of the
    characters (Corpus.train_tokens lands exactly there)."""
    return int(sum(len(piece) for piece in iter_text(sources, encoding)) * (1 - val_fraction))


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
    sources: list[Path], encoding: str, val_fraction: float, records: dict[str, str] | None
) -> Iterator[str]:
    """The training split's text in pieces (records without their separators): what a BPE may
    learn from."""
    if len(sources) > 1:
        pieces: Iterable[str | None] = training_pieces(sources, encoding, val_fraction)
    else:
        cut = _train_chars(sources, encoding, val_fraction)
        pieces = _cut_at(iter_text(sources, encoding), cut)  # read no further than the cut
    for piece in itertools.takewhile(lambda piece: piece is not None, pieces):
        yield from (split_records(records, piece) if records else [piece])


def _new_tokenizer(
    name: str,
    sources: list[Path],
    encoding: str,
    content: str,
    records: dict[str, str] | None,
    val_fraction: float,
) -> Tokenizer:
    """The tokenizer ``name`` builds for this corpus (a BPE learns from the training split, never
    the validation split), with an end-of-record token when it holds ``records``."""
    if name == "char":
        tok: Tokenizer = _char_vocabulary(sources, encoding, content)
    elif is_bpe_spec(name):
        size = parse_bpe_spec(name)
        tok = learn_bpe(_training_text(sources, encoding, val_fraction, records), size)
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

    ``tokenizer`` is a name or an object (a resumed run keeps its checkpoint's). The ids are
    cached under the sources' content hash and the tokenizer. ``exclude`` is never read (the
    run's ``--out``); ``records`` puts an end-of-record token between records.
    """
    codec = check_encoding(encoding)
    sources = resolve_sources(spec, exclude)
    content = sources_digest(sources, codec)
    # The entry's name: where the training part ends (several files, or a BPE learned from
    # one file's training part) depends on the share held out.
    entry = sha256(f"{content}\0held out {val_fraction!r}".encode())[:24]
    if isinstance(tokenizer, str) and (records or is_bpe_spec(tokenizer)):
        # built before its cache key can be known
        tokenizer = _new_tokenizer(tokenizer, sources, encoding, content, records, val_fraction)
    cache = (cache_dir or default_cache_dir()) / "tokens"
    keys = tokenizer_keys(tokenizer)
    for key in keys:
        found = read_entry(
            cache / f"{entry}-{key}.bin", cache / f"{entry}-{key}.json", tokenizer, key
        )
        if found is not None:
            return found
    tok = tokenizer
    if isinstance(tok, str):  # char or a tiktoken encoding
        tok = _new_tokenizer(tok, sources, encoding, content, None, val_fraction)
    ids_path, meta_path, uncached = entry_paths(cache, entry, keys[0])
    writer = _TokenWriter(tok, codec)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as out:
            if len(sources) > 1:
                writer.write_held_out(out, sources, encoding, val_fraction)
            else:
                learned = isinstance(getattr(tok, "inner", tok), BPETokenizer)
                cut = _train_chars(sources, encoding, val_fraction) if learned else None
                writer.write(out, sources, encoding, cut)
        check_unchanged(writer.digest, content, sources)  # else no cache entry is kept
        if writer.num_tokens == 0:  # records that are all blank: nothing to learn, nothing cached
            raise UsageError(f"{spec} holds no text to train on: every record is blank")

    atomic_write(ids_path, write)
    write_meta(meta_path, tok, writer.num_tokens, writer.train_tokens, writer.ids.hexdigest())
    ids = np.memmap(ids_path, dtype=dtype_for(tok.vocab_size), mode="r")
    if uncached:  # the mapping outlives the file: nothing is left behind in the temp folder
        shutil.rmtree(ids_path.parent, ignore_errors=True)
    return Corpus(tok, ids, train_tokens=writer.train_tokens, uncached=uncached)


def _bar(sources: list[Path]) -> tqdm:
    # tqdm draws only on a terminal (disable=None), so logs and tests stay clean.
    total = sum(p.stat().st_size for p in sources)
    return tqdm(total=total, unit="B", unit_scale=True, desc="tokenize", disable=None)


class _TokenWriter:
    """One streaming pass: text pieces in, ids out to a file in batches (tiktoken encodes a batch
    on its own threads), with the digests the cache entry records."""

    def __init__(self, tok: Tokenizer, codec: str) -> None:
        self.tok = tok
        self.threads = max(1, os.cpu_count() or 1)
        self.batch: list[str] = []
        self.num_tokens = 0
        self.train_tokens: int | None = None
        self.last_id: int | None = None
        self.ids = hashlib.sha256()  # of the ids: checked on every later use of the entry
        self.digest = new_digest(codec)  # of the bytes read: the text must be what was hashed

    def write(self, out: BinaryIO, sources: list[Path], encoding: str, cut: int | None) -> None:
        """One file: the text in order; ``cut`` marks where a learned BPE's training text ends."""
        with _bar(sources) as bar:
            pieces = iter_text(sources, encoding, on_bytes=bar.update, digest=self.digest)
            for piece in _cut_at(self._chunks(pieces), cut):
                if piece is None:  # the end of a learned BPE's training text
                    self.flush(out)
                    self.train_tokens = self.num_tokens
                    continue
                self.add(out, piece)
            self.flush(out)

    def write_held_out(
        self, out: BinaryIO, sources: list[Path], encoding: str, val_fraction: float
    ) -> None:
        """Several files: every file's training part, then every held-out end (holdout.py),
        written aside first and appended."""
        cuts = file_cuts(sources, encoding, val_fraction)
        held = _TokenWriter(self.tok, "utf-8")
        with _bar(sources) as bar, tempfile.TemporaryFile() as spare:
            for path, cut in zip(sources, cuts, strict=True):
                training, held_out = halves(path, encoding, cut, bar.update, self.digest)
                for piece in self._chunks(joined(training)):
                    self.add(out, piece)
                self.end_record(out)  # a file's part ends its last record, if records
                for piece in self._chunks(joined(held_out)):
                    held.add(spare, piece)
                held.end_record(spare)
            self.flush(out)
            held.flush(spare)
            self.train_tokens = self.num_tokens
            spare.seek(0)
            while block := spare.read(1 << 24):
                out.write(block)
                self.ids.update(block)
            self.num_tokens += held.num_tokens

    def _chunks(self, pieces: Iterator[str]) -> Iterator[str]:
        """Records re-cut so a separator never straddles two pieces."""
        if isinstance(self.tok, RecordsTokenizer):
            return record_chunks(pieces, self.tok)
        return pieces

    def add(self, out: BinaryIO, piece: str) -> None:
        self.batch.append(piece)
        if len(self.batch) >= self.threads:
            self.flush(out)

    def flush(self, out: BinaryIO) -> None:
        if isinstance(self.tok, TiktokenCodec):  # gpt2 and a learned bpe: batched
            dtype = dtype_for(self.tok.vocab_size)
            encoded = self.tok.encode_batch(self.batch, num_threads=self.threads)
            arrays = [np.asarray(ids, dtype=dtype) for ids in encoded]
        else:
            arrays = [encode_text(self.tok, piece) for piece in self.batch]
        for arr in arrays:
            self.write_ids(out, arr)
        self.batch.clear()

    def write_ids(self, out: BinaryIO, arr: np.ndarray) -> None:
        arr.tofile(out)
        self.ids.update(arr.tobytes())
        self.num_tokens += len(arr)
        self.last_id = int(arr[-1]) if len(arr) else self.last_id

    def end_record(self, out: BinaryIO) -> None:
        """An end-of-record id unless the last record ended (records only)."""
        if not isinstance(self.tok, RecordsTokenizer):
            return
        self.flush(out)
        if self.last_id not in (None, self.tok.eor):
            self.write_ids(out, np.asarray([self.tok.eor], dtype=dtype_for(self.tok.vocab_size)))
