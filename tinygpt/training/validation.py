"""The loss a run reports at each evaluation: the mean over fixed random batches."""

from __future__ import annotations

import numpy as np
import torch

from tinygpt.config import TrainConfig
from tinygpt.data import BatchSampler
from tinygpt.device import autocast
from tinygpt.model import GPT


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
