"""A byte-level BPE learned from the training text (``--tokenizer bpe:N``): rustbpe learns the
merges (nanochat's trainer, 5x faster than Hugging Face ``tokenizers`` here), tiktoken encodes
with them (:class:`TiktokenCodec`, shared with tiktoken's own encodings), and tokenizer.json
stores the ranks, so every command works offline.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from tinygpt.config.specs import BPE_PREFIX

# How text is split before merging (GPT-4's pattern, rustbpe's default). A saved pattern must be
# this one: tiktoken runs it in Rust, where one matching "" panics past Python's error handling,
# one that backtracks hits a limit, and one that doesn't cover the text drops some.
SPLIT_PATTERN = (
    r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*"
    r"|\s*[\r\n]|\s+(?!\S)|\s+"
)


class TiktokenCodec:
    """What the tokenizers tiktoken runs share (a pretrained encoding, or a BPE learned here):
    encoding and decoding through ``self._enc``, a ``tiktoken.Encoding`` set by the subclass."""

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


class BPETokenizer(TiktokenCodec):
    """A learned byte-level BPE: its merge ranks and split pattern, encoded by tiktoken."""

    def __init__(self, name: str, pattern: str, ranks: dict[bytes, int]) -> None:
        import tiktoken

        self.name = name
        self.pattern = pattern
        self.ranks = ranks
        self._enc = tiktoken.Encoding(
            name="tinygpt-bpe", pat_str=pattern, mergeable_ranks=ranks, special_tokens={}
        )
        self.vocab_size = len(ranks)

    def to_dict(self) -> dict[str, Any]:
        by_rank = sorted(self.ranks, key=self.ranks.__getitem__)
        return {
            "type": "bpe",
            "name": self.name,
            "pattern": self.pattern,
            "tokens": [base64.b64encode(t).decode("ascii") for t in by_rank],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BPETokenizer:
        tokens = data.get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise ValueError("bpe tokenizer without a list of tokens")
        if not isinstance(data.get("name"), str):
            raise ValueError("bpe tokenizer without a name")
        if data.get("pattern") != SPLIT_PATTERN:
            raise ValueError("bpe tokenizer's split pattern is not the one tinygpt learns with")
        ranks = {base64.b64decode(t, validate=True): i for i, t in enumerate(tokens)}
        if len(ranks) != len(tokens) or any(bytes([b]) not in ranks for b in range(256)):
            raise ValueError("bpe tokenizer's tokens are repeated or lack a byte")
        return cls(data["name"], data["pattern"], ranks)


def learn_bpe(texts: Iterable[str], size: int) -> BPETokenizer:
    """Learn ``size`` tokens (256 bytes, then merges) from ``texts``; fewer when the text runs
    out of pairs to merge. Deterministic."""
    import rustbpe

    trainer = rustbpe.Tokenizer()
    trainer.train_from_iterator(iter(texts), size, pattern=SPLIT_PATTERN)
    ranks = {bytes(token): rank for token, rank in trainer.get_mergeable_ranks()}
    return BPETokenizer(f"{BPE_PREFIX}{size}", SPLIT_PATTERN, ranks)
