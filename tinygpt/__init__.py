"""tinygpt: train, sample and understand a small GPT.

Python use mirrors the command line::

    import tinygpt
    run = tinygpt.train("input.txt", tokenizer="char", max_steps=500, n_layer=4)
    print(tinygpt.generate(run.out_dir, "ROMEO:", max_new_tokens=200, seed=1).samples[0])
    print(tinygpt.evaluate(run.out_dir, "input.txt").bits_per_byte)

The names below are imported on first use (PEP 562), so ``import tinygpt`` and the CLI's
``--help`` and ``--version`` do not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "GPT": "tinygpt.model",
    "CheckpointError": "tinygpt.errors",
    "ModelConfig": "tinygpt.config",
    "RunConfig": "tinygpt.config",
    "SampleConfig": "tinygpt.config",
    "TinyGPTError": "tinygpt.errors",
    "TrainConfig": "tinygpt.config",
    "UsageError": "tinygpt.errors",
    "evaluate": "tinygpt.api",
    "generate": "tinygpt.api",
    "interactive_session": "tinygpt.api",
    "load": "tinygpt.api",
    "train": "tinygpt.api",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tinygpt' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
