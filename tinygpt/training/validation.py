"""The loss a run reports at each evaluation: the mean over fixed random batches, of the
training file's last tenth or of ``--val-file``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tinygpt.checkpoint.store import Checkpoint
from tinygpt.config.train import TrainConfig
from tinygpt.data.batches import BatchSampler
from tinygpt.data.corpus import prepare_corpus
from tinygpt.data.tokenizer import Tokenizer
from tinygpt.errors import Opt, UsageError
from tinygpt.model import GPT
from tinygpt.model.device import autocast


@torch.inference_mode()
def estimate_loss(
    model: GPT, ids: np.ndarray, cfg: TrainConfig, device: torch.device, dtype: torch.dtype
) -> float:
    """Mean loss on ``eval_batches`` fixed random batches (the same ones at every eval)."""
    model.eval()
    sampler = BatchSampler(ids, model.config.block_size, cfg.batch_size, seed=cfg.seed + 1)
    total = 0.0
    for _ in range(cfg.eval_batches):
        x, y = sampler.next(device)
        with autocast(device, dtype):
            _, loss = model(x, y)
        total += float(loss)
    model.train()
    return total / cfg.eval_batches


def val_file_ids(
    cfg: TrainConfig,
    tokenizer: Tokenizer,
    cache_dir: Path | None,
    init: Checkpoint | None = None,
) -> np.ndarray | None:
    """``cfg.val_file``'s ids in the run's tokenizer (cached as a corpus is), or one line
    naming the option when that tokenizer cannot encode it; None without ``--val-file``."""
    if cfg.val_file is None:
        return None
    try:
        return prepare_corpus(
            cfg.val_file, tokenizer, cfg.encoding, cache_dir, records=cfg.record_spec
        ).ids
    except UsageError as exc:
        if "tokenizer" not in exc.options:  # not found, not text: the message names the file
            raise
        whose = f"{init.directory}'s" if init is not None else "the training file's"
        opt = Opt("val_file", cfg.val_file)
        raise tokenizer_refusal(exc, opt, f"{whose} {tokenizer.name}", "it") from None


def tokenizer_refusal(exc: UsageError, opt: Opt, whose: str, what: str) -> UsageError:
    """One line for a text the run's tokenizer cannot encode (its own advice, to pick another
    tokenizer, does not apply: the weights or the run need this one)."""
    reason = str(exc).split("; ")[0]
    return UsageError(opt, f": {whose} tokenizer cannot encode {what}: {reason}")
