"""Reading a corpus, tokenizing it once, and slicing random training batches.

Token ids live in a flat binary file (uint16 when the vocabulary fits, else uint32) that is
memory-mapped, so a second run of the same file with the same tokenizer skips tokenization and
batches are gathered with one vectorised index instead of a Python loop.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from tinygpt.errors import UsageError
from tinygpt.fileio import atomic_write_bytes
from tinygpt.tokenizer import Tokenizer, build_tokenizer

# Large files are encoded in pieces so tiktoken can use several threads on them.
_ENCODE_CHUNK_CHARS = 1 << 20


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """Read a corpus or prompt file, with one-line errors for every way that can go wrong."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"file not found: {p}")
    if p.is_dir():
        raise UsageError(f"{p} is a directory; give a text file")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {p}: {exc.strerror or exc}") from None
    return decode_text(raw, str(p), encoding)


def decode_text(raw: bytes, source: str, encoding: str = "utf-8") -> str:
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8") and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # a UTF-8 byte-order mark is not text
    try:
        text = raw.decode(encoding)
    except LookupError:
        raise UsageError(f"unknown --encoding {encoding!r}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{source} is not valid {encoding}: byte 0x{raw[exc.start]:02x} at offset {exc.start}; "
            f"pass --encoding (for example latin-1) if the file uses another encoding"
        ) from None
    if not text:
        raise UsageError(f"{source} is empty; give a file with some text")
    return text


def file_digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def default_cache_dir() -> Path:
    env = os.environ.get("TINYGPT_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "tinygpt"


@dataclass
class Corpus:
    """A tokenized corpus: the tokenizer, the ids (memory-mapped) and the text's size in bytes."""

    tokenizer: Tokenizer
    ids: np.ndarray
    num_bytes: int
    from_cache: bool = False

    def split(self, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """First (1 - val_fraction) of the tokens for training, the rest for validation."""
        n_train = int(len(self.ids) * (1 - val_fraction))
        return self.ids[:n_train], self.ids[n_train:]


def _dtype_for(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= np.iinfo(np.uint16).max + 1 else np.dtype(np.uint32)


def encode_text(tokenizer: Tokenizer, text: str) -> np.ndarray:
    dtype = _dtype_for(tokenizer.vocab_size)
    encode_batch = getattr(tokenizer, "encode_batch", None)
    if encode_batch is None or len(text) <= _ENCODE_CHUNK_CHARS:
        return np.asarray(tokenizer.encode(text), dtype=dtype)
    # Cut at newlines so no BPE merge spans a cut; whitespace runs are pre-split there anyway.
    pieces, start = [], 0
    while start < len(text):
        end = text.find("\n", start + _ENCODE_CHUNK_CHARS)
        end = len(text) if end < 0 else end + 1
        pieces.append(text[start:end])
        start = end
    threads = max(1, os.cpu_count() or 1)
    out: list[np.ndarray] = []
    # tqdm draws only on a terminal (disable=None), so logs and tests stay clean.
    with tqdm(total=len(text), unit="char", unit_scale=True, desc="tokenize", disable=None) as bar:
        for i in range(0, len(pieces), threads):
            group = pieces[i : i + threads]
            out.extend(np.asarray(c, dtype=dtype) for c in encode_batch(group, num_threads=threads))
            bar.update(sum(len(p) for p in group))
    return np.concatenate(out)


def load_corpus(
    path: str | Path,
    tokenizer_name: str,
    encoding: str = "utf-8",
    cache_dir: Path | None = None,
) -> Corpus:
    """Read ``path`` and tokenize it with a new tokenizer (``char`` builds its vocabulary here)."""
    text = read_text(path, encoding)
    return corpus_from_text(text, build_tokenizer(tokenizer_name, text), cache_dir)


def corpus_from_text(text: str, tokenizer: Tokenizer, cache_dir: Path | None = None) -> Corpus:
    """Tokenize ``text``, reusing ids cached under the text's and the tokenizer's hashes."""
    raw = text.encode("utf-8")
    tok_key = json.dumps(tokenizer.to_dict(), sort_keys=True).encode()
    key = f"{file_digest(raw)[:24]}-{file_digest(tok_key)[:12]}"
    ids_path = (cache_dir or default_cache_dir()) / "tokens" / f"{key}.bin"
    dtype = _dtype_for(tokenizer.vocab_size)
    if ids_path.exists():
        try:
            return Corpus(tokenizer, np.memmap(ids_path, dtype=dtype, mode="r"), len(raw), True)
        except (OSError, ValueError):
            pass  # an unreadable cache entry is rebuilt below
    ids = encode_text(tokenizer, text)
    try:
        ids_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(ids_path, ids.tobytes())
    except OSError:
        pass  # caching is an optimisation; a read-only cache dir must not stop training
    return Corpus(tokenizer, ids, len(raw))


def check_split_lengths(train: np.ndarray, val: np.ndarray, block_size: int) -> None:
    need = block_size + 1
    shortest = min(len(train), len(val))
    if shortest < need:
        # Both splits must hold one full window plus its shifted target.
        fit = max(1, shortest - 1)
        raise UsageError(
            f"the text is too short for --block-size {block_size}: the smaller split has "
            f"{shortest} tokens and needs {need}; use --block-size {fit} or less, or more text"
        )


class BatchSampler:
    """Random windows of ``block_size + 1`` tokens, drawn with a dedicated ``torch.Generator``.

    Owning the generator (instead of the global RNG) makes the data stream's position part of
    the checkpoint: restoring its state resumes at exactly the batch an uninterrupted run would
    have drawn next.
    """

    def __init__(self, ids: np.ndarray, block_size: int, batch_size: int, seed: int) -> None:
        self.ids = ids
        self.block_size = block_size
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self._offsets = np.arange(block_size + 1)

    def next(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        high = len(self.ids) - self.block_size
        starts = torch.randint(high, (self.batch_size,), generator=self.generator).numpy()
        window = torch.from_numpy(self.ids[starts[:, None] + self._offsets].astype(np.int64))
        if device.type == "cuda":
            window = window.pin_memory().to(device, non_blocking=True)
        else:
            window = window.to(device)
        return window[:, :-1], window[:, 1:]
