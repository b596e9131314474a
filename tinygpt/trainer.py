"""The training API under its first name: ``tinygpt.trainer`` keeps importing what
tinygpt/training/ defines (``train``, the :class:`Trainer` loop, its callbacks and result)."""

from tinygpt.training.run import default_out_dir, split_options, train
from tinygpt.training.sizing import default_tokenizer, model_size_note
from tinygpt.training.trainer import Trainer, TrainerCallback, TrainResult

__all__ = [
    "TrainResult",
    "Trainer",
    "TrainerCallback",
    "default_out_dir",
    "default_tokenizer",
    "model_size_note",
    "split_options",
    "train",
]
