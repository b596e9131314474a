"""Records: a corpus of short texts (a name, a poem, a message) with an end-of-record token.

``--records line`` makes each line a record, ``--records paragraph`` each block between blank
lines, ``--separator TEXT`` each piece between occurrences of TEXT. The separator is never
encoded as text but as an end-of-record token (tiktoken's ``<|endoftext|>``, or one id past the
vocabulary), so a sample can end where its record ends.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

EOR_NAME = "<|endoftext|>"  # how the end-of-record token shows in token lists


def _pattern(spec: dict[str, str]) -> re.Pattern[str]:
    if spec["mode"] == "line":
        return re.compile(r"\r?\n")
    if spec["mode"] == "paragraph":
        return re.compile(r"\r?\n[ \t\r]*\n\s*")  # one blank line or several
    return re.compile(re.escape(spec["separator"]))


def split_records(spec: dict[str, str], text: str) -> list[str]:
    """The non-blank records of ``text``."""
    return [part for part in _pattern(spec).split(text) if part.strip()]


class RecordsTokenizer:
    """Another tokenizer plus an end-of-record id (``eor``) that stands for each separator."""

    def __init__(self, inner: Any, spec: dict[str, str]) -> None:
        self.inner = inner
        self.spec = spec
        self.name = inner.name
        self.pattern = _pattern(spec)
        own = getattr(inner, "eot_token", None)  # a tiktoken encoding's <|endoftext|>
        self.eor: int = own if own is not None else inner.vocab_size
        self.eot_token = self.eor  # an empty prompt starts a record
        self.vocab_size: int = max(inner.vocab_size, self.eor + 1)
        self._sep_bytes = spec["separator"].encode("utf-8")

    def encode(self, text: str) -> list[int]:
        """Each record's ids, an end-of-record id after every finished one; blank records
        (two separators in a row) add nothing."""
        parts = self.pattern.split(text)  # the last may be an unfinished record
        ids: list[int] = []
        for i, part in enumerate(parts):
            if part.strip():
                ids.extend(self.inner.encode(part))
            if i < len(parts) - 1 and ids and ids[-1] != self.eor:
                ids.append(self.eor)
        return ids

    def decode_bytes(self, ids: list[int]) -> bytes:
        out, run = [], []
        for i in ids:
            if i == self.eor:
                out.append(self.inner.decode_bytes(run) + self._sep_bytes)
                run = []
            else:
                run.append(i)
        out.append(self.inner.decode_bytes(run))
        return b"".join(out)

    def decode(self, ids: list[int]) -> str:
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def token_strings(self, ids: list[int]) -> list[str]:
        """Token texts; the end-of-record token as EOR_NAME, and ordinary text spelling the same
        (a crafted BPE may hold it) marked as text, so the two never look alike."""
        shown = [EOR_NAME if i == self.eor else self.inner.token_strings([i])[0] for i in ids]
        return [
            f"{EOR_NAME} (text)" if s == EOR_NAME and i != self.eor else s
            for i, s in zip(ids, shown, strict=True)
        ]

    def to_dict(self) -> dict[str, Any]:
        return {"type": "records", **self.spec, "inner": self.inner.to_dict()}


def record_chunks(pieces: Iterable[str], tokenizer: RecordsTokenizer) -> Iterator[str]:
    """Re-cut streamed text so each piece ends just after a separator (one straddling two pieces
    would be encoded as text)."""
    carry = ""
    for piece in pieces:
        text = carry + piece
        end = None
        for match in tokenizer.pattern.finditer(text):
            end = match.end()
        if end is None or (end == len(text) and tokenizer.spec["mode"] == "paragraph"):
            # no boundary yet, or one that more blank lines could still extend
            carry = text
            continue
        yield text[:end]
        carry = text[end:]
    if carry:
        yield carry
