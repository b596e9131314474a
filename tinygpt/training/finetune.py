"""``train --init-from CHECKPOINT``: a new run that starts from another checkpoint's weights.
The source fixes the shape and tokenizer; optimizer, schedule and step start fresh. The source
is only read (never recovered, locked or written).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from tinygpt.checkpoint.manifest import MODEL_FILE, is_checkpoint
from tinygpt.checkpoint.store import Checkpoint, open_checkpoint
from tinygpt.checkpoint.weights import load_weights
from tinygpt.config.model import ModelConfig
from tinygpt.errors import ANY, Opt, UsageError

# Model options that change how the weights are trained, not what they are.
TRAINING_ONLY = ("dropout",)
# The options the source decides, and why it does.
_RECORDS = "records (its tokenizer has the end-of-record token)"
_KEEPS = {
    "records": _RECORDS,
    "separator": _RECORDS,
    "tokenizer": "tokenizer (its weights were trained on those ids)",
}


def open_source(path: str | Path, out: Path) -> Checkpoint:
    """The verified source checkpoint, refused in one line when it is the run's own ``--out``
    or its weights do not fit its config."""
    source = Path(path)
    if source.resolve() == out.resolve():
        raise UsageError(
            Opt("init_from", source),
            " is the run's own ",
            Opt("out_dir", ANY),
            "; the source checkpoint is only read: train elsewhere",
        )
    if not is_checkpoint(source):
        raise UsageError(Opt("init_from", source), ": no tinygpt checkpoint there")
    opened = open_checkpoint(source)
    opened.fitting_weights()  # before a model of the declared size is built
    return opened


def check_options(
    source: Checkpoint, model_opts: dict[str, Any], train_opts: dict[str, Any]
) -> None:
    """Refuse a shape, records or tokenizer option that contradicts the source's."""
    model = source.config.model
    for key, value in model_opts.items():
        if key not in TRAINING_ONLY and getattr(model, key) != value:
            raise _differs(source, key, value, getattr(model, key), "model shape")
    own = {**source.record_options, "tokenizer": source.tokenizer_name}
    for key, keeps in _KEEPS.items():
        asked = train_opts.get(key)
        if asked is not None and asked != own[key]:
            raise _differs(source, key, asked, own[key] or "plain text", keeps)


def _differs(source: Checkpoint, key: str, asked: Any, own: Any, keeps: str) -> UsageError:
    return UsageError(
        Opt(key, asked),
        f" differs from {source.directory}'s {own}; ",
        Opt("init_from"),
        f" keeps the source's {keeps}",
    )


def model_config(source: Checkpoint, model_opts: dict[str, Any]) -> ModelConfig:
    """The source's model, with the training-only options given."""
    changes = {k: v for k, v in model_opts.items() if k in TRAINING_ONLY}
    return replace(source.config.model, **changes)


def load_initial_weights(source: Checkpoint, model: Any) -> None:
    """The source's weights (model.safetensors, its latest) into ``model``."""
    data = source.fitting_weights()
    load_weights(model, data, str(source.directory / MODEL_FILE))
