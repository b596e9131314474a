"""tinygpt: train, sample and understand a small GPT.

Python use mirrors the command line::

    import tinygpt
    run = tinygpt.train("input.txt", tokenizer="char", max_steps=500, n_layer=4)
    print(tinygpt.generate(run.out_dir, "ROMEO:", max_new_tokens=200, seed=1).samples[0])
    print(tinygpt.evaluate(run.out_dir, "input.txt").bits_per_byte)

The names below are imported on first use (PEP 562), so ``import tinygpt``, ``--help`` and
``--version`` do not pay for importing torch.

The folders, cut by the job a reader comes to do, each import only from those above them in
this list (tests/test_layout.py holds the code to it):

- ``errors.py``, ``recipe.py``, ``config/``: what everything shares: the errors (with the
  options they name), the table of model recipes, and the one typed config of a run.
- ``io/``: the terminals and crash-safe files.
- ``data/``: text to tokens (tokenizers, records, the cached corpus, batches, datasets).
- ``model/``: the GPT in one sitting, its layers, hook points, KV cache, and the device it runs on.
- ``checkpoint/``: a run on disk (the verified format, the lock, the metrics log, Hugging Face).
- ``training/``: the loop and everything it asks (optimizer, schedule, planner, distributed).
- ``sampling/`` and ``analysis/``: what a trained model writes, and what it does inside.
- ``views/``: terminal tables, pages and figures of an analysis.
- ``api.py``: the Python entry points; ``cli/``: the command line, a thin layer over them.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "GPT": "tinygpt.model",
    "CheckpointError": "tinygpt.errors",
    "ModelConfig": "tinygpt.config.model",
    "RunConfig": "tinygpt.config.run",
    "SampleConfig": "tinygpt.config.sample",
    "TinyGPTError": "tinygpt.errors",
    "TrainConfig": "tinygpt.config.train",
    "UsageError": "tinygpt.errors",
    "evaluate": "tinygpt.api",
    "generate": "tinygpt.api",
    "interactive_session": "tinygpt.api",
    "load": "tinygpt.checkpoint.store",
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
