"""Training batches: random windows of a token array, and the check that each split holds one."""

from __future__ import annotations

import numpy as np
import torch

from tinygpt.errors import Opt, UsageError


def check_split_lengths(train: np.ndarray, val: np.ndarray, block_size: int) -> None:
    need = block_size + 1
    shortest = min(len(train), len(val))
    if shortest < need:
        # Both splits must hold one full window plus its shifted target.
        fit = max(1, shortest - 1)
        raise UsageError(
            "the text is too short for ",
            Opt("block_size", block_size),
            f": the smaller split has {shortest} tokens and needs {need}; use ",
            Opt("block_size", fit),
            " or less, or more text",
        )


class BatchSampler:
    """Random windows of ``block_size + 1`` tokens, drawn with a dedicated ``torch.Generator``.

    Owning the generator (instead of the global RNG) makes the data stream's position part of
    the checkpoint: restoring its state resumes at exactly the batch an uninterrupted run would
    have drawn next.

    With several data-parallel ranks, every rank draws the same global batch of
    ``batch_size * world_size`` windows and keeps its own slice: the ranks see distinct data,
    and together exactly what one process with the combined batch would see.
    """

    def __init__(
        self,
        ids: np.ndarray,
        block_size: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.ids = ids
        self.block_size = block_size
        self.batch_size = batch_size
        self.rank, self.world_size = rank, world_size
        self.generator = torch.Generator().manual_seed(seed)
        self._offsets = np.arange(block_size + 1)

    def next(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets (B, T): the rows below, and the same shifted by one."""
        window = self.rows(device)
        return window[:, :-1], window[:, 1:]

    def rows(self, device: torch.device) -> torch.Tensor:
        """The next batch as (B, T + 1) windows of token ids."""
        high = len(self.ids) - self.block_size
        global_batch = self.batch_size * self.world_size
        starts = torch.randint(high, (global_batch,), generator=self.generator).numpy()
        starts = starts[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]
        window = torch.from_numpy(self.ids[starts[:, None] + self._offsets].astype(np.int64))
        if device.type == "cuda":
            window = window.pin_memory().to(device, non_blocking=True)
        else:
            window = window.to(device)
        return window
