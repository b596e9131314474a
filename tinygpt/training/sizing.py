"""Whether a model fits its text: the start-up warning, and the tokenizer a new run picks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tinygpt.config.model import ModelConfig
from tinygpt.config.train import TrainConfig
from tinygpt.data.sources import resolve_sources
from tinygpt.data.tokenizer import Tokenizer
from tinygpt.errors import Message, Opt, UsageError
from tinygpt.model import GPT, count_parameters

# Parameters per training token above which a run memorises its text (tiny Shakespeare's char
# model: 0.8; the 35 KB file with the gpt2 tokenizer: about 1,700).
DWARFS_THE_DATA = 100


def model_size_note(model: GPT, train_tokens: int, tokenizer: Tokenizer) -> str | None:
    """The start-up warning when the model dwarfs its training text; None when it fits."""
    total = count_parameters(model.config).total
    if total <= DWARFS_THE_DATA * max(train_tokens, 1):
        return None
    # The token embedding, and the LM head when untied: both grow with the vocabulary.
    embedding = model.wte.weight.numel() * (1 if model.config.tie_embeddings else 2)
    why = (
        (
            f", {embedding / total:.0%} of them in the embedding and head of the "
            f"{tokenizer.vocab_size:,}-token {tokenizer.name} vocabulary; ",
            Opt("tokenizer", "char"),
            " learns from the text's own characters",
        )
        if tokenizer.name != "char" and embedding * 2 > total
        else ("; a smaller model (fewer layers, a narrower width) or more text fits better",)
    )
    return Message(
        f"note: the model has {total:,} parameters for {train_tokens:,} training tokens "
        f"({total // max(train_tokens, 1):,} per token): it will memorise the text rather than "
        f"learn from it (the validation loss rises while the training loss falls)",
        *why,
    )


# Bytes of text per GPT-2 token in English prose (tiny Shakespeare: 1,115,394 bytes make
# 338,025 tokens), to size a BPE run before its text is tokenized.
BYTES_PER_BPE_TOKEN = 3.3
GPT2_VOCAB = 50257


def default_tokenizer(data: str | Path, model_opts: dict[str, Any]) -> tuple[str, str | None]:
    """The tokenizer of a new run that named none, and a note when it is not the usual one:
    gpt2 when its model fits the text, else char (on a small file gpt2's 50,257-token
    embedding and head make a model that memorises the text)."""
    usual = TrainConfig.tokenizer
    size = sum(path.stat().st_size for path in resolve_sources(data))
    tokens = max(1, int(size / BYTES_PER_BPE_TOKEN * (1 - TrainConfig.val_fraction)))
    try:
        bpe = ModelConfig(**{**model_opts, "vocab_size": GPT2_VOCAB}).validate()
    except (UsageError, TypeError, ValueError):
        return usual, None  # the shape's own error comes when the run's model is checked
    params = count_parameters(bpe).total
    if usual != "gpt2" or params <= DWARFS_THE_DATA * tokens:
        return usual, None
    return "char", Message(
        "note: ",
        Opt("tokenizer", "char"),
        f" picked for this {size:,}-byte text: with ",
        Opt("tokenizer", "gpt2"),
        f" the model would have about {params / 1e6:.1f}M "
        f"parameters for about {tokens:,} training tokens and memorise them; pass ",
        Opt("tokenizer", "gpt2"),
        " to use it anyway",
    )
