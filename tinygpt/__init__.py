"""tinygpt: train, sample and understand a small GPT.

Python use mirrors the command line::

    import tinygpt
    run = tinygpt.train("input.txt", tokenizer="char", max_steps=500, n_layer=4)
    print(tinygpt.generate(run.out_dir, "ROMEO:", max_new_tokens=200, seed=1).samples[0])
    print(tinygpt.evaluate(run.out_dir, "input.txt").bits_per_byte)
"""

from tinygpt.api import evaluate, generate, load
from tinygpt.config import ModelConfig, RunConfig, SampleConfig, TrainConfig
from tinygpt.errors import CheckpointError, TinyGPTError, UsageError
from tinygpt.model import GPT
from tinygpt.trainer import train

__version__ = "0.1.0"

__all__ = [
    "GPT",
    "CheckpointError",
    "ModelConfig",
    "RunConfig",
    "SampleConfig",
    "TinyGPTError",
    "TrainConfig",
    "UsageError",
    "__version__",
    "evaluate",
    "generate",
    "load",
    "train",
]
