"""Tokenizers: a character vocabulary, any tiktoken encoding, or a BPE learned from the text
(bpe.py), any of them with an end-of-record token (records.py). Each decodes to bytes (a BPE
token can hold part of a character) and serialises to a small dict kept in the checkpoint.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

import numpy as np

from tinygpt.config.specs import RECORD_MODES, is_bpe_spec
from tinygpt.data.bpe import BPETokenizer, TiktokenCodec
from tinygpt.data.records import RecordsTokenizer
from tinygpt.errors import Opt, TinyGPTError, UsageError

# tiktoken names its GPT-2 encoding "gpt2" but ships the identical ranks, pattern and special
# token as "r50k_base"; accepting either lets a cache holding only r50k_base serve "gpt2".
_ALIASES = {"gpt2": "r50k_base"}
ENDOFTEXT = "<|endoftext|>"


class Tokenizer(Protocol):
    name: str
    vocab_size: int

    def encode(self, text: str) -> list[int]: ...

    def decode_bytes(self, ids: list[int]) -> bytes: ...

    def decode(self, ids: list[int]) -> str: ...

    def token_strings(self, ids: list[int]) -> list[str]: ...

    def to_dict(self) -> dict[str, Any]: ...


class CharTokenizer:
    """One id per distinct character of the training text, in sorted order."""

    def __init__(self, chars: list[str]) -> None:
        self.chars = chars
        self.stoi = {c: i for i, c in enumerate(chars)}
        # Code points in id order (ids follow sorted order), for vectorised encoding of corpora.
        self.codepoints = np.array([ord(c) for c in chars], dtype=np.uint32)
        self.sorted = bool(np.all(np.diff(self.codepoints.astype(np.int64)) > 0))
        self.name = "char"
        self.vocab_size = len(chars)

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        return cls(sorted(set(text)))

    def encode(self, text: str) -> list[int]:
        try:
            return [self.stoi[c] for c in text]
        except KeyError:
            missing = sorted({c for c in text if c not in self.stoi})
            shown = ", ".join(repr(c) for c in missing[:20])
            more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
            raise UsageError(
                f"the text has {len(missing)} character(s) the model's vocabulary lacks: "
                f"{shown}{more}; remove them or train with a BPE ",
                Opt("tokenizer"),
                " such as gpt2",
            ) from None

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i] for i in ids)

    def decode_bytes(self, ids: list[int]) -> bytes:
        return self.decode(ids).encode("utf-8")

    def token_strings(self, ids: list[int]) -> list[str]:
        return [self.chars[i] for i in ids]

    def to_dict(self) -> dict[str, Any]:
        return {"type": "char", "chars": self.chars}


class TiktokenTokenizer(TiktokenCodec):
    """A tiktoken encoding such as ``gpt2`` (r50k_base) or ``cl100k_base``."""

    def __init__(self, name: str, saved: bool = False) -> None:
        """``saved``: the name comes from a checkpoint, which no other tokenizer can read."""
        self.name = name
        self._enc = _load_tiktoken(name, saved)
        self.vocab_size = self._enc.n_vocab
        self.eot_token = self._enc.eot_token

    def encode(self, text: str) -> list[int]:
        _refuse_special(text)
        return super().encode(text)

    def encode_batch(self, texts: list[str], num_threads: int = 4) -> list[list[int]]:
        for text in texts:
            _refuse_special(text)
        return super().encode_batch(texts, num_threads)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "tiktoken", "name": self.name}


def _refuse_special(text: str) -> None:
    # A literal "<|endoftext|>" in user text is refused rather than silently turned into the
    # special token (which would split documents) or into ordinary text (surprising).
    if ENDOFTEXT in text:
        raise UsageError(
            f"the text contains the literal special token {ENDOFTEXT!r} (at character "
            f"{text.index(ENDOFTEXT)}); remove it or train with ",
            Opt("tokenizer", "char"),
        )


def _load_tiktoken(name: str, saved: bool) -> Any:
    import tiktoken

    cache = os.environ.get("TIKTOKEN_CACHE_DIR")
    where = f"TIKTOKEN_CACHE_DIR={cache}" if cache else "tiktoken's default cache"
    try:
        return tiktoken.get_encoding(_ALIASES.get(name, name))
    except ValueError as exc:
        if "Unknown encoding" in str(exc):
            known = ", ".join(["char", *sorted({"gpt2", *tiktoken.list_encoding_names()})])
            raise UsageError(
                "unknown ", Opt("tokenizer"), f" {name!r}; choose one of: {known}"
            ) from None
        raise
    except Exception as exc:  # network errors come in many types (requests, urllib, OSError)
        encoding = _ALIASES.get(name, name)
        what = name if encoding == name else f"{name} (tiktoken's {encoding})"
        fetch = f"set TIKTOKEN_CACHE_DIR to a directory that holds {encoding}"
        # Training can switch to characters; a checkpoint's model reads only its own ids.
        advice = (
            (
                "the checkpoint's model reads only these ids: connect to the internet once, "
                f"or {fetch}",
            )
            if saved
            else (f"connect to the internet once, {fetch}, or use ", Opt("tokenizer", "char"))
        )
        raise TinyGPTError(
            f"could not load the tiktoken encoding {what} from {where} nor download it "
            f"({type(exc).__name__}); ",
            *advice,
        ) from exc


def build_tokenizer(name: str, text: str | None = None) -> Tokenizer:
    """Make the tokenizer named on the command line; ``char`` needs the training text."""
    if name == "char":
        if text is None:
            raise ValueError("a char tokenizer is built from the training text")
        return CharTokenizer.from_text(text)
    if is_bpe_spec(name):
        raise ValueError("a bpe tokenizer is learned from the training text (tinygpt.data.corpus)")
    return TiktokenTokenizer(name)


def tokenizer_from_dict(data: dict[str, Any]) -> Tokenizer:
    if not isinstance(data, dict):
        raise ValueError("a tokenizer is described by a JSON object")
    kind = data.get("type")
    if kind == "char":
        chars = data.get("chars")
        if not isinstance(chars, list) or not all(isinstance(c, str) for c in chars):
            raise ValueError("char tokenizer without a list of characters")
        return CharTokenizer(chars)
    if kind == "tiktoken":
        return TiktokenTokenizer(str(data["name"]), saved=True)
    if kind == "bpe":
        return BPETokenizer.from_dict(data)
    if kind == "records":
        inner = data.get("inner")
        if not isinstance(inner, dict) or inner.get("type") == "records":
            raise ValueError("records tokenizer without a tokenizer inside")
        mode, separator = data.get("mode"), data.get("separator")
        known = (*RECORD_MODES, "separator")
        if mode not in known or not isinstance(separator, str) or not separator:
            raise ValueError("records tokenizer without a mode and separator")
        return RecordsTokenizer(tokenizer_from_dict(inner), {"mode": mode, "separator": separator})
    raise ValueError(f"unknown tokenizer type {kind!r}")
