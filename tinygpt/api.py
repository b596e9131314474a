"""The library entry points the CLI is a thin layer over: load, generate, evaluate.

``tinygpt.train`` lives in :mod:`tinygpt.trainer`; everything here starts from a checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tinygpt.attention_analysis import (
    AttentionRun,
    all_head_scores,
    capture_attention,
    copying_scores,
    induction_chance,
    induction_probe,
    rollout,
)
from tinygpt.checkpoint import Checkpoint, latest_checkpoint, open_checkpoint
from tinygpt.config import SampleConfig
from tinygpt.data import read_text
from tinygpt.device import resolve_device
from tinygpt.errors import UsageError
from tinygpt.evaluate import EvalResult, evaluate_text
from tinygpt.model import GPT
from tinygpt.sampling import GenerationResult, encode_prompt, generate_text
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


def attention_report(
    checkpoint: str | Path | None,
    prompt: str,
    *,
    device: str = "auto",
    best: bool = False,
    induction_length: int | None = None,
) -> tuple[dict[str, Any], AttentionRun, GPT]:
    """Every layer's and head's attention on ``prompt``, with head-role scores and rollout.

    The report is what ``inspect-attention --json`` writes: ``tokens``, ``attention``
    [layer][head][query][key], ``scores`` (one dict per head), ``rollout`` and ``induction``.
    """
    model, tokenizer, ck = load(checkpoint, device, attention="manual", best=best)
    if not prompt:
        raise UsageError("--prompt is empty; give some text (or use --induction)")
    ids, notices = encode_prompt(tokenizer, prompt, model.config.block_size)
    run = capture_attention(model, ids, tokenizer.token_strings(ids))
    weights = run.weights
    scores = all_head_scores(weights, ids)
    induction, n = induction_probe(model, induction_length)
    copying = copying_scores(model)
    for s in scores:
        s.induction = float(induction[s.layer, s.head])
        s.chance["induction"] = induction_chance(n)
        s.copying = float(copying[s.layer, s.head])
    report = {
        "model": f"{ck.directory} (step {ck.step})",
        "tokens": run.tokens,
        "attention": weights.tolist(),
        "scores": [s.to_dict() for s in scores],
        "rollout": rollout(weights).tolist(),
        "induction": {
            "repeated_length": n,
            "scores": induction.tolist(),
            "chance": induction_chance(n),
            # A perfect induction head puts all of a second-copy query's weight on the token
            # after the earlier occurrence: it scores 1 per scored query here. Tools that
            # average over both copies (the first cannot be predicted) report about half.
            "convention": "mean over second-copy queries; perfect head = 1",
        },
        "notices": notices,
    }
    return report, run, model


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
