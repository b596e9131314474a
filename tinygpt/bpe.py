"""A byte-level BPE learned from the training text (``--tokenizer bpe:N``).

rustbpe learns the merges (the trainer nanochat uses: about 0.1 s for the 1 MB Shakespeare
training split, where Hugging Face ``tokenizers`` took 0.5 s); tiktoken encodes and decodes with
them. The ranks are stored in the checkpoint's tokenizer.json, so every command works offline.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from tinygpt.errors import UsageError
from tinygpt.messages import Opt
from tinygpt.tiktoken_codec import TiktokenCodec

PREFIX = "bpe:"
MIN_VOCAB = 256  # one token per byte: below that some bytes could not be written at all
# The largest vocabulary learned here: every id fits the token cache's uint16, and at the default
# width it is already an 8.4M-parameter embedding (ten times the whole char model). Larger
# vocabularies are what pretrained tiktoken encodings (gpt2, cl100k_base) are for.
MAX_VOCAB = 65_536


def is_bpe_spec(name: str) -> bool:
    return name.startswith(PREFIX)


def parse_bpe_spec(name: str) -> int:
    """N of ``bpe:N``, or a one-line UsageError."""
    text = name[len(PREFIX) :]
    try:
        size = int(text)
    except ValueError:
        raise UsageError(
            Opt("tokenizer", name), " is not bpe:N with a whole number N (e.g. bpe:2048)"
        ) from None
    if not MIN_VOCAB <= size <= MAX_VOCAB:
        raise UsageError(
            Opt("tokenizer", name),
            f": N must be between {MIN_VOCAB} (one token per byte) and {MAX_VOCAB:,} "
            f"(larger vocabularies are what gpt2 or cl100k_base are for)",
        )
    return size


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
        if not isinstance(data.get("pattern"), str) or not isinstance(data.get("name"), str):
            raise ValueError("bpe tokenizer without a name or split pattern")
        ranks = {base64.b64decode(t, validate=True): i for i, t in enumerate(tokens)}
        if len(ranks) != len(tokens) or any(bytes([b]) not in ranks for b in range(256)):
            raise ValueError("bpe tokenizer's tokens are repeated or lack a byte")
        return cls(data["name"], data["pattern"], ranks)


def learn_bpe(texts: Iterable[str], size: int) -> BPETokenizer:
    """Learn ``size`` tokens (256 bytes, then merges) from ``texts``; fewer when the text runs
    out of pairs to merge. The same text and size give the same tokenizer."""
    import rustbpe

    trainer = rustbpe.Tokenizer()
    trainer.train_from_iterator(iter(texts), size)
    ranks = {bytes(token): rank for token, rank in trainer.get_mergeable_ranks()}
    return BPETokenizer(f"{PREFIX}{size}", trainer.get_pattern(), ranks)
