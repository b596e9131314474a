"""From text to prompt ids and from streamed ids back to text."""

from __future__ import annotations

import codecs

from tinygpt.data.tokenizer import Tokenizer
from tinygpt.errors import UsageError


class StreamDecoder:
    """Turns token ids into text as they arrive; a BPE token may end mid-character."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, token_id: int) -> str:
        return self._utf8.decode(self.tokenizer.decode_bytes([token_id]))

    def flush(self) -> str:
        return self._utf8.decode(b"", final=True)


def token_text(tokenizer: Tokenizer, token_id: int) -> str:
    """One token's own text (a partial UTF-8 character shows as U+FFFD)."""
    return tokenizer.decode_bytes([token_id]).decode("utf-8", errors="replace")


def encode_prompt(
    tokenizer: Tokenizer, prompt: str, block_size: int, what: str = "the prompt"
) -> tuple[list[int], list[str]]:
    """Prompt ids (cropped to the block size, with a notice naming ``what``) and notices for
    the user."""
    notices = []
    if prompt:
        ids = tokenizer.encode(prompt)
        if not ids:  # a records model drops blank text and its separator
            raise UsageError(
                f"the prompt {prompt[:40]!r} is no tokens for this model (blank, or only its "
                "record separator); give some text"
            )
    else:
        # Something must start the sequence: GPT-2's document separator, or a newline.
        eot = getattr(tokenizer, "eot_token", None)
        ids = [eot] if eot is not None else tokenizer.encode("\n") if _has(tokenizer, "\n") else [0]
    if len(ids) > block_size:
        notices.append(
            f"{what} has {len(ids)} tokens; only its last {block_size} (the block size) are used"
        )
        ids = ids[-block_size:]
    return ids, notices


def _has(tokenizer: Tokenizer, text: str) -> bool:
    stoi = getattr(tokenizer, "stoi", None)
    return stoi is None or text in stoi
