"""Named training configurations and config files, merged under the command line's flags
(lowest first: defaults, ``--preset``, ``--config FILE``, explicit flags). A config file is TOML
or JSON, flat or with ``[model]`` / ``[train]`` tables, so a ``config.json`` can be fed back.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

from tinygpt.config.model import ModelConfig
from tinygpt.config.run import expand_arch
from tinygpt.config.train import NO_STEP_CAP, TrainConfig
from tinygpt.errors import Opt, UsageError
from tinygpt.io.files import describe_os_error, read_bounded

PRESETS: dict[str, dict[str, Any]] = {
    # Trains in about a minute on a laptop CPU; a quick check that everything works.
    "tiny": dict(
        tokenizer="char",
        n_layer=2,
        n_head=2,
        n_embd=64,
        block_size=64,
        batch_size=16,
        max_steps=300,
        warmup_steps=20,
        eval_every=100,
        eval_batches=10,
    ),
    # The well-known char-level Shakespeare shape (6 layers, 384 wide, block 256): ~10.7M
    # parameters, best on a GPU (nanoGPT's recipe reaches a val loss near 1.47 with it).
    "shakespeare-char": dict(
        tokenizer="char",
        n_layer=6,
        n_head=6,
        n_embd=384,
        block_size=256,
        dropout=0.2,
        batch_size=64,
        max_steps=5000,
        eval_every=250,
        eval_batches=200,
    ),
    # Watch an induction head form (`tinygpt data repeats`; docs/induction.md): two attention-only
    # layers, as in the induction-head papers. On four such corpora, two seeds each
    # (docs/benchmarks.md), the first induction head comes at steps 350-650 in all 8 runs;
    # QK-norm (it caps |q·k|) delays it past 1,500 steps in 7 of 8, MLPs in 2 of 8, a 64-token
    # block on long records in 2 of 2; 2 heads come as soon on average, later at worst.
    "induction": dict(
        tokenizer="char",
        n_layer=2,
        n_head=4,
        n_embd=64,
        block_size=128,
        mlp=False,
        qk_norm=False,
        ema=0.0,  # the snapshots show the weights as trained: an average blurs the change
        # torch's Muon: with NorMuon the copying spread over three heads (induction scores 0.70,
        # 0.62, 0.54 at 600 steps) and the loss ended 0.04 higher; without, one head (0.87)
        normuon=False,
        # one update a step, as the circuit's timing above was measured
        batch_warmup_steps=0,
        batch_size=32,
        max_steps=1500,
        eval_every=50,
        eval_batches=10,
    ),
    # GPT-2 small as published: 124M parameters, 1024 tokens of context, ~0.5M tokens per step,
    # the 2019 recipe (so the result exports to Hugging Face).
    "gpt2-small": dict(
        arch="gpt2",
        tokenizer="gpt2",
        n_layer=12,
        n_head=12,
        n_embd=768,
        block_size=1024,
        dropout=0.0,
        batch_size=12,
        grad_accum=40,
        max_steps=600000,
        warmup_steps=2000,
        lr=6e-4,
        min_lr=6e-5,
        beta2=0.95,
        weight_decay=0.1,
        eval_every=1000,
        eval_batches=200,
    ),
}

# Fields a config file may hold but that are not options (a checkpoint's config.json has them).
_RECORDED_ONLY = {"data", "out_dir", "world_size", "effective_batch_size", "vocab_size"}
_OPTIONS = {f.name for f in (*fields(ModelConfig), *fields(TrainConfig))} | {"arch"}
CONFIG_LIMIT = 16 << 20  # an options file (a checkpoint's config.json is a few KB)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Options from a TOML or JSON file (flat, or with model/train sections)."""
    p = Path(path)
    try:  # bounded: a FIFO would hang a plain read, /dev/zero fill the memory
        raw = read_bounded(p, CONFIG_LIMIT)
    except FileNotFoundError:
        raise UsageError(Opt("config"), f" file not found: {p}") from None
    except OSError as exc:
        raise UsageError("cannot read ", Opt("config", p), f": {describe_os_error(exc)}") from None
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(raw)
        else:
            data = tomllib.loads(raw.decode("utf-8"))
    except RecursionError:
        raise UsageError(Opt("config", p), " is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        kind = "JSON" if p.suffix.lower() == ".json" else "TOML"  # the format it was read as
        raise UsageError(Opt("config", p), f" is not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(Opt("config", p), " must hold a table of options")
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("model", "train") and isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    flat = {k.replace("-", "_"): v for k, v in flat.items() if k not in _RECORDED_ONLY}
    unknown = sorted(set(flat) - _OPTIONS)
    if unknown:
        raise UsageError(Opt("config", p), f": unknown option(s) {', '.join(unknown)}")
    return flat


def resolve_options(
    preset: str | None, config: str | Path | None, explicit: dict[str, Any]
) -> dict[str, Any]:
    """Preset, then config file, then explicit options (``None`` values are not explicit)."""
    merged: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise UsageError(
                "unknown ", Opt("preset"), f" {preset!r}; choose one of: {', '.join(PRESETS)}"
            )
        merged.update(PRESETS[preset])
    if config is not None:
        merged.update(load_config_file(config))
    explicit = {k: v for k, v in explicit.items() if v is not None}
    if "arch" in explicit:  # a recipe named on the command line replaces the file's or preset's
        for key in expand_arch({"arch": explicit["arch"]}):
            merged.pop(key, None)
        merged.pop("arch", None)
    merged.update(explicit)
    if merged.get("max_time") is not None and "max_steps" not in merged:
        merged["max_steps"] = NO_STEP_CAP
    return expand_arch(merged)
