"""The library entry points the CLI is a thin layer over: load, generate, evaluate.

``tinygpt.train`` lives in :mod:`tinygpt.trainer`; everything here starts from a checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tinygpt.checkpoint import Checkpoint, latest_checkpoint, open_checkpoint
from tinygpt.config import SampleConfig
from tinygpt.data import read_text
from tinygpt.device import resolve_device
from tinygpt.evaluate import EvalResult, evaluate_text
from tinygpt.model import GPT
from tinygpt.sampling import GenerationResult, generate_text
from tinygpt.tokenizer import Tokenizer


def load(
    checkpoint: str | Path | None = None,
    device: str = "auto",
    attention: str = "auto",
    best: bool = False,
) -> tuple[GPT, Tokenizer, Checkpoint]:
    """Open a checkpoint (default: the newest under ``checkpoints/``) and build its model."""
    ck = open_checkpoint(checkpoint if checkpoint is not None else latest_checkpoint())
    model = ck.load_model(resolve_device(device), attention=attention, best=best)
    return model.eval(), ck.tokenizer, ck


def generate(
    checkpoint: str | Path | None = None,
    prompt: str = "",
    *,
    device: str = "auto",
    attention: str = "auto",
    on_text: Callable[[str], None] | None = None,
    **sample_options: object,
) -> GenerationResult:
    """Sample from a checkpoint; ``sample_options`` are :class:`SampleConfig` fields."""
    cfg = SampleConfig(**sample_options).validate()  # type: ignore[arg-type]
    model, tokenizer, _ = load(checkpoint, device, attention)
    return generate_text(model, tokenizer, prompt, cfg, on_text=on_text)


def evaluate(
    checkpoint: str | Path | None,
    file: str | Path,
    *,
    device: str = "auto",
    encoding: str = "utf-8",
    best: bool = False,
) -> EvalResult:
    """Loss, perplexity and bits per byte of a checkpoint on a whole text file."""
    model, tokenizer, _ = load(checkpoint, device, best=best)
    return evaluate_text(model, tokenizer, read_text(file, encoding))
