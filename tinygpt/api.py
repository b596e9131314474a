"""The library entry points the CLI is a thin layer over, one per command; all but
:func:`train` start from a checkpoint (default: the newest under ``checkpoints/``)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from tinygpt.analysis.evaluation import EvalResult, evaluate_text, surprising_spans
from tinygpt.analysis.snapshot import HeadSnapshots
from tinygpt.checkpoint.store import load, open_checkpoint
from tinygpt.config.sample import SampleConfig
from tinygpt.data.sources import read_text
from tinygpt.data.tokenizer import Tokenizer
from tinygpt.errors import Opt, Spell, TinyGPTError, UsageError, python_spelling
from tinygpt.model import GPT
from tinygpt.sampling.generate import GenerationResult, generate_text, interactive
from tinygpt.training.progress import ProgressDisplay, eval_progress
from tinygpt.training.result import TrainResult
from tinygpt.training.run import train as run_training
from tinygpt.training.trainer import TrainerCallback


def train(
    data: str | Path,
    *,
    quiet: bool | None = None,
    callbacks: Sequence[TrainerCallback] = (),
    spell: Spell = python_spelling,
    **options: Any,
) -> TrainResult:
    """Train a GPT on ``data``: :func:`tinygpt.training.run.train` with head snapshots recorded
    at every evaluation and the progress display on stderr unless ``quiet`` (by default, shown
    when stderr is a terminal). ``options`` are ``out_dir``, ``resume``, ``overwrite``,
    ``preset``, ``config``, ``cache_dir`` and any ModelConfig or TrainConfig field. ``spell``
    names options in the progress display's notes (the CLI: as flags)."""
    attached: list[TrainerCallback] = [HeadSnapshots(), *callbacks]
    if quiet is None:
        quiet = not sys.stderr.isatty()
    if not quiet:
        attached.append(ProgressDisplay(spell))
    return run_training(data, callbacks=attached, **options)


def generate(
    checkpoint: str | Path | None = None,
    prompt: str = "",
    *,
    device: str = "auto",
    attention: str = "auto",
    best: bool = False,
    on_text: Callable[[str], None] | None = None,
    **sample_options: object,
) -> GenerationResult:
    """Sample from a checkpoint (``best``: its best-validation weights); ``sample_options`` are
    :class:`SampleConfig` fields (``num_samples=4, stop=["\\n\\n"], alternatives=5``, ...)."""
    cfg = sample_config(sample_options)
    if not isinstance(prompt, str):  # a list of strings, bytes or a Path would be taken apart
        raise UsageError(Opt("prompt"), f" must be text (a str), got {type(prompt).__name__}")
    model, tokenizer, _ = load(checkpoint, device, attention, best=best)
    return generate_text(model, tokenizer, prompt, cfg, on_text=on_text)


def interactive_session(
    checkpoint: str | Path | None,
    read_line: Callable[[], str],
    write: Callable[[str], None],
    *,
    warn: Callable[[TinyGPTError], None] | None = None,
    device: str = "auto",
    attention: str = "auto",
    best: bool = False,
    **sample_options: object,
) -> int:
    """Load a checkpoint once, then continue each prompt ``read_line`` returns, streaming the
    sample to ``write``, until ``read_line`` raises EOFError. Returns the number of samples."""
    cfg = sample_config(sample_options)
    model, tokenizer, _ = load(checkpoint, device, attention, best=best)
    return interactive(model, tokenizer, cfg, read_line, write, warn)


def sample_config(options: dict[str, object]) -> SampleConfig:
    """A validated :class:`SampleConfig`; stop texts may come as any sequence of strings."""
    stop = options.get("stop", ())
    if isinstance(stop, str):  # one stop text, not its characters
        stop = (stop,)
    if isinstance(stop, list | tuple):
        options = {**options, "stop": tuple(stop)}
    known = {f.name for f in dataclasses.fields(SampleConfig)}
    for key in options:
        if key not in known:
            raise UsageError(f"unknown sampling option {key!r}")
    return SampleConfig(**options).validate()  # type: ignore[arg-type]


def evaluate(
    checkpoint: str | Path | None,
    file: str | Path,
    *,
    device: str = "auto",
    encoding: str = "utf-8",
    best: bool = False,
    progress: bool = False,
    token_losses: bool = False,
) -> EvalResult:
    """Loss, perplexity and bits per byte of a checkpoint on a whole text file; ``progress``: a
    bar on stderr when it is a terminal; ``token_losses`` keeps each token's loss."""
    model, tokenizer, _ = load(checkpoint, device, best=best)
    return _score(model, tokenizer, read_text(file, encoding), progress, token_losses)


def _score(model: GPT, tokenizer: Tokenizer, text: str, progress: bool, keep: bool) -> EvalResult:
    with eval_progress() if progress else nullcontext() as on_progress:
        return evaluate_text(
            model, tokenizer, text, on_progress=on_progress, keep_token_losses=keep
        )


def token_loss_report(
    checkpoint: str | Path | None,
    file: str | Path,
    *,
    device: str = "auto",
    encoding: str = "utf-8",
    best: bool = False,
    spans: int = 10,
    progress: bool = False,
) -> dict[str, Any]:
    """:func:`evaluate` with every token's loss: the file's tokens, their losses (the first
    token has none) and the ``spans`` most surprising runs of tokens, most surprising first."""
    if type(spans) is not int or spans < 1:  # -1 or "3" listed every span
        raise UsageError(Opt("spans"), f" must be a positive integer, got {spans!r}")
    model, tokenizer, _ = load(checkpoint, device, best=best)
    result = _score(model, tokenizer, read_text(file, encoding), progress, keep=True)
    ids, losses = result.token_ids.tolist(), result.token_losses
    return {
        **result.to_dict(),
        "token_strings": tokenizer.token_strings(ids),
        "token_losses": [None, *(round(float(x), 5) for x in losses)],
        "surprising_spans": [vars(s) for s in surprising_spans(losses, ids, tokenizer, spans)],
    }


def trajectory(directory: str | Path) -> list[dict[str, Any]]:
    """The evaluations of the run in ``directory`` (head snapshots included)."""
    return open_checkpoint(directory).metrics()
