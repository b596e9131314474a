"""The syntax of the tokenizer and records settings (``bpe:N``, ``--records``, ``--separator``):
checked here, built in tinygpt/data."""

from __future__ import annotations

from tinygpt.errors import Opt, UsageError

BPE_PREFIX = "bpe:"
BPE_MIN_VOCAB = 256  # one token per byte: below that some bytes could not be written at all
# The largest vocabulary learned here: every id fits the token cache's uint16 (and it is already
# an 8.4M-parameter embedding at the default width); larger ones are what tiktoken's are for.
BPE_MAX_VOCAB = 65_536


def is_bpe_spec(name: str) -> bool:
    return name.startswith(BPE_PREFIX)


def parse_bpe_spec(name: str) -> int:
    """N of ``bpe:N``, or a one-line UsageError."""
    text = name[len(BPE_PREFIX) :]
    # One spelling a size: the name is stored, and a resume compares it ("bpe:300_0" is 3000).
    if not (text.isascii() and text.isdigit() and str(int(text)) == text):
        raise UsageError(
            Opt("tokenizer", name), " is not bpe:N with N in plain digits (e.g. bpe:2048)"
        )
    size = int(text)
    if not BPE_MIN_VOCAB <= size <= BPE_MAX_VOCAB:
        raise UsageError(
            Opt("tokenizer", name),
            f": N must be between {BPE_MIN_VOCAB} (one token per byte) and {BPE_MAX_VOCAB:,} "
            f"(larger vocabularies are what gpt2 or cl100k_base are for)",
        )
    return size


RECORD_MODES = ("line", "paragraph")
MAX_SEPARATOR = 1000


def record_spec(records: str | None, separator: str | None) -> dict[str, str] | None:
    """The stored form of ``--records``/``--separator`` (None: plain text), or a UsageError."""
    if records is not None and separator is not None:
        raise UsageError("give ", Opt("records"), " or ", Opt("separator"), ", not both")
    if separator is not None:
        if not separator.strip():
            raise UsageError(Opt("separator"), " needs a text that is not only whitespace")
        if any("\ud800" <= c <= "\udfff" for c in separator):  # argv's bytes that are no text
            raise UsageError(Opt("separator"), " is not UTF-8 text")
        if len(separator) > MAX_SEPARATOR:  # it is printed at the end of every record
            raise UsageError(
                Opt("separator"), f" is {len(separator):,} characters; at most {MAX_SEPARATOR:,}"
            )
        return {"mode": "separator", "separator": separator}
    if records is not None:
        if records not in RECORD_MODES:
            raise UsageError(Opt("records"), f" must be line or paragraph; got {records!r}")
        return {"mode": records, "separator": "\n" if records == "line" else "\n\n"}
    return None
