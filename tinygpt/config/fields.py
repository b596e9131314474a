"""What the configs share: a field's help (the CLI's flags come from it), the type check, the
choices and the limits."""

from __future__ import annotations

import sys
from dataclasses import field, fields
from typing import Any

from tinygpt.errors import Opt, UsageError

ATTENTION_CHOICES = ("auto", "sdpa", "manual")
OPTIMIZER_CHOICES = ("muon", "adamw")
SCHEDULE_CHOICES = ("wsd", "cosine")
DATA_ORDER_CHOICES = ("passes", "random")

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")

# Bounds on a model's size, checked before anything is allocated: a config.json (or a flag) may
# ask for a terabyte of weights or ten million layers, and should get one line instead.
MAX_PARAMETERS = 4_000_000_000  # 16 GB of float32 weights; GPT-2 XL has 1.5e9
MAX_LAYERS = 1024
MAX_WIDTH = 1 << 16
MAX_VOCAB = 1 << 24
MAX_BLOCK_SIZE = 1 << 20
MAX_KV_ELEMENTS = 1 << 32  # keys and values of one full-length sequence, all layers
MAX_ALTERNATIVES = 100  # per token in --json; more is a dump of the vocabulary, not a view
# A final validation loss worse than the run's best by more than this (nats) is said, with --best.
WORSE_THAN_BEST = 0.01
MAX_SEED = (1 << 63) - (1 << 20)  # torch takes 64-bit seeds; the run adds small offsets to it

# Declared field types -> (accepted Python types, how a message names them).
_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "int": ((int,), "an integer"),
    "float": ((int, float), "a number"),
    "bool": ((bool,), "true or false"),
    "str": ((str,), "a string"),
    "tuple[str,...]": ((tuple, list), "a list of texts"),
}


def documented(default: Any, help: str, **more: Any) -> Any:
    """A dataclass field with the help its option shows (tinygpt.cli.options). ``more``:
    ``default_text`` (the default as ``--help`` names it), ``flag``, ``metavar``."""
    return field(default=default, metadata={"help": help, **more})


def check_types(obj: Any) -> None:
    """Every field holds a value of its declared type, and every number is finite: values
    come from TOML/JSON files and checkpoints too, where ``dropout = "0.1"`` or
    ``warmup_steps = inf`` must be caught before a comparison or the schedule meets them."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        declared = str(f.type).replace(" ", "").split("|")
        if value is None and "None" in declared:
            continue
        allowed = tuple(t for d in declared if d in _TYPES for t in _TYPES[d][0])
        # bool is an int to Python, but `n_layer = true` is a mistake, not 1.
        wrong = not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed)
        if wrong:
            kinds = " or ".join(_TYPES[d][1] for d in declared if d in _TYPES)
            raise UsageError(Opt(f.name), f" must be {kinds}, got {value!r:.40}")
        # not math.isfinite: it overflows on a 400-digit integer, which must be refused too
        if "float" in declared and not abs(value) <= sys.float_info.max:
            raise UsageError(Opt(f.name), f" must be a finite number, got {value!r:.40}")


def check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise UsageError(Opt(name), f" must be positive, got {value}")


# A rate is applied in float32: outside its normal range it rounds to 0 or to inf (NaN steps).
RATE_RANGE = (1.1754943508222875e-38, 3.4028234663852886e38)


def check_rate(name: str, value: float, off: bool = False) -> None:
    """``value`` inside float32's normal range (``off``: or 0, which turns the feature off)."""
    low, high = RATE_RANGE
    if not (low <= value <= high or (off and value == 0)):
        allowed = "0 (off) or from" if off else "positive, from"
        raise UsageError(Opt(name), f" must be {allowed} {low:.2g} to {high:.2g}; got {value}")


def check_seed(value: int) -> None:
    if not 0 <= value <= MAX_SEED:
        raise UsageError(Opt("seed"), f" must be between 0 and {MAX_SEED}, got {value}")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UsageError(Opt(name), f" must be one of {', '.join(choices)}; got {value!r}")
