"""What the tokenizers tiktoken runs share (a pretrained encoding, or a BPE learned here)."""

from __future__ import annotations

from typing import Any


class TiktokenCodec:
    """Encoding and decoding through ``self._enc`` (a ``tiktoken.Encoding`` set by the subclass)."""

    _enc: Any

    def encode(self, text: str) -> list[int]:
        return self._enc.encode_ordinary(text)

    def encode_batch(self, texts: list[str], num_threads: int = 4) -> list[list[int]]:
        """Many texts at once, on tiktoken's own threads (corpus tokenization)."""
        return self._enc.encode_ordinary_batch(texts, num_threads=num_threads)

    def decode(self, ids: list[int]) -> str:
        return self._enc.decode(ids)

    def decode_bytes(self, ids: list[int]) -> bytes:
        return self._enc.decode_bytes(ids)

    def token_strings(self, ids: list[int]) -> list[str]:
        return [self._enc.decode_single_token_bytes(i).decode("utf-8", "replace") for i in ids]
