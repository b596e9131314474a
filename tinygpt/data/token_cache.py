"""The token cache: a corpus's ids under the sources' content hash and the tokenizer, a flat
file of uint16 (or uint32) ids that training memory-maps, and a checksummed JSON beside it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinygpt.data.tokenizer import Tokenizer, tokenizer_from_dict
from tinygpt.errors import TinyGPTError
from tinygpt.io.files import (
    atomic_write_bytes,
    check_regular,
    describe_os_error,
    read_bounded,
    sha256,
)

_META_LIMIT = 64 << 20  # a cache entry's JSON (a char vocabulary of every code point fits)


@dataclass
class Corpus:
    """A tokenized corpus: the tokenizer and the ids (memory-mapped)."""

    tokenizer: Tokenizer
    ids: np.ndarray
    from_cache: bool = False
    uncached: str | None = None  # why the token cache could not keep the ids
    # A learned BPE's corpus: the tokens of exactly the text it learned from (corpus._train_chars)
    train_tokens: int | None = None

    def split(self, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """First (1 - val_fraction) of the tokens for training, the rest for validation; with a
        learned BPE, the tokens of the text it learned from (validation: text it never saw)."""
        n_train = int(len(self.ids) * (1 - val_fraction))
        if self.train_tokens is not None:
            n_train = self.train_tokens
        return self.ids[:n_train], self.ids[n_train:]


def default_cache_dir() -> Path:
    env = os.environ.get("TINYGPT_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "tinygpt"
    home = Path.home()
    if not home.is_dir():  # HOME names nothing (a service account): never create it
        user = getattr(os, "getuid", lambda: "user")()  # (Windows has no uid)
        return Path(tempfile.gettempdir()) / f"tinygpt-cache-{user}"
    return home / ".cache" / "tinygpt"


def dtype_for(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= np.iinfo(np.uint16).max + 1 else np.dtype(np.uint32)


def tokenizer_keys(tokenizer: Tokenizer | str) -> list[str]:
    """Cache keys for a tokenizer, to try in order; the first is the one written.

    A name and the tokenizer it builds share a key, so a resumed run (passing its checkpoint's
    tokenizer) finds what the first run cached. A char vocabulary object may be another text's:
    it is written under its own hash, and matches ``char`` only when the vocabularies agree.
    """
    if isinstance(tokenizer, str):
        return ["char" if tokenizer == "char" else f"tiktoken-{tokenizer}"]
    spec = tokenizer.to_dict()
    if spec.get("type") == "tiktoken":
        return [f"tiktoken-{spec['name']}"]
    own = f"{spec.get('type')}-{sha256(json.dumps(spec, sort_keys=True).encode())[:12]}"
    # A learned BPE or a records tokenizer is built before the cache is looked at: its own key.
    return [own, "char"] if spec.get("type") == "char" else [own]


def entry_paths(cache_dir: Path, content: str, key: str) -> tuple[Path, Path, str | None]:
    """Where an entry's ids and JSON go, and why not in the cache when they go to a temporary
    folder instead (a broken cache must not stop training)."""
    ids_path, meta_path = cache_dir / f"{content}-{key}.bin", cache_dir / f"{content}-{key}.json"
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        # A folder where the entry goes can't be replaced by a file
        folders = [p for p in (ids_path, meta_path) if p.is_dir() and not p.is_symlink()]
        why = f"{folders[0]} is a folder" if folders else None
    except OSError as exc:
        why = f"{cache_dir}: {describe_os_error(exc)}"
    if why is None:
        return ids_path, meta_path, None
    workdir = Path(tempfile.mkdtemp(prefix="tinygpt-tokens-"))
    return workdir / ids_path.name, workdir / meta_path.name, why


def read_entry(
    ids_path: Path, meta_path: Path, tokenizer: Tokenizer | str, key: str
) -> Corpus | None:
    """The cached corpus, when the entry is whole and holds this tokenizer's ids; else None (the
    entry is rebuilt). Nothing is trusted: the ids must have the vocabulary's width, fill the
    file, lie in the vocabulary (else every later run fails in the embedding), and the sha256
    must cover the ids and every other field (a flipped vocabulary byte trains wrong characters).
    """
    if not (ids_path.exists() and meta_path.exists()):
        return None
    try:
        meta = json.loads(read_bounded(meta_path, _META_LIMIT))
        if not isinstance(tokenizer, str) and meta["tokenizer"] != tokenizer.to_dict():
            return None
        tok = tokenizer_from_dict(meta["tokenizer"])
        dtype = dtype_for(tok.vocab_size)
        num_tokens = meta["num_tokens"]
        if (
            key not in tokenizer_keys(tok)
            or meta["dtype"] != dtype.name
            or type(num_tokens) is not int
            or check_regular(ids_path) != num_tokens * dtype.itemsize
        ):
            return None
        ids = np.memmap(ids_path, dtype=dtype, mode="r")
        if entry_digest(meta, _ids_digest(ids, tok.vocab_size)) == meta["sha256"]:
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
    """The sha256 of the ids' bytes, or None when an id lies outside the vocabulary (read in
    slices: memory stays flat)."""
    digest = hashlib.sha256()
    step = 1 << 24
    for i in range(0, len(ids), step):
        part = np.ascontiguousarray(ids[i : i + step])
        if int(part.max()) >= vocab_size:
            return None
        digest.update(part.tobytes())
    return digest.hexdigest()


def entry_digest(meta: dict[str, Any], ids_digest: str | None) -> str | None:
    """The checksum of a cache entry: its JSON's fields but the checksum, and the ids' digest
    (None when the ids fail their range check)."""
    if ids_digest is None:
        return None
    fields = {k: v for k, v in meta.items() if k != "sha256"}
    text = json.dumps(fields, sort_keys=True, ensure_ascii=True) + "\0" + ids_digest
    return hashlib.sha256(text.encode()).hexdigest()


def write_meta(
    meta_path: Path, tok: Tokenizer, num_tokens: int, train_tokens: int | None, ids_digest: str
) -> None:
    """The entry's JSON, written after its ids: the checksum covers both."""
    meta: dict[str, Any] = {
        "tokenizer": tok.to_dict(),
        "dtype": dtype_for(tok.vocab_size).name,
        "num_tokens": num_tokens,
        **({"train_tokens": train_tokens} if train_tokens is not None else {}),
    }
    meta["sha256"] = entry_digest(meta, ids_digest)
    atomic_write_bytes(meta_path, json.dumps(meta).encode())
