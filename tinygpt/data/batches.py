"""Training batches: windows of a token array, pass by pass or drawn independently, and the
check that each split holds one."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from tinygpt.errors import Opt, UsageError


def check_split_lengths(
    train: np.ndarray, val: np.ndarray, block_size: int, val_file: str | None = None
) -> None:
    """Both splits must hold one full window plus its shifted target; the message names the
    --val-file when that is the short one, and a smaller block only where one would fit."""
    need = block_size + 1
    shortest = min(len(train), len(val))
    if shortest >= need:
        return
    short_val = val_file is not None and len(val) == shortest
    what = (Opt("val_file", val_file), " is") if short_val else ("the text is",)
    split = "it has" if short_val else "the smaller split has"
    advice = (
        (Opt("block_size", shortest - 1), " or less, or more text")
        if shortest > 1
        else ("more text",)
    )
    raise UsageError(
        *what,
        " too short for ",
        Opt("block_size", block_size),
        f": {split} {shortest} tokens and needs {need}; use ",
        *advice,
    )


class BatchSampler:
    """Windows of ``block_size + 1`` tokens, drawn with a dedicated ``torch.Generator`` (so the
    stream's position is part of the checkpoint, and a resumed run draws the same batches).

    ``order``: ``passes`` tiles the text from a random phase each pass, windows shuffled, so
    every token is a target once a pass; ``random`` draws every start independently (nanoGPT).
    Each data-parallel rank draws the same global batch and keeps its own slice.
    """

    def __init__(
        self,
        ids: np.ndarray,
        block_size: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        order: str = "random",
    ) -> None:
        self.ids = ids
        self.block_size = block_size
        self.batch_size = batch_size
        self.rank, self.world_size = rank, world_size
        self.order = order
        self.generator = torch.Generator().manual_seed(seed)
        self._offsets = np.arange(block_size + 1)
        self._high = len(ids) - block_size  # a window starting here or later would overrun
        self.pass_rng: torch.Tensor | None = None  # the generator's state the pass was drawn at
        self.starts = np.empty(0, dtype=np.int64)  # this pass's windows, in its order
        self.taken = 0  # of them

    def next(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets (B, T): the rows below, and the same shifted by one."""
        window = self.rows(device)
        return window[:, :-1], window[:, 1:]

    def rows(self, device: torch.device) -> torch.Tensor:
        """The next batch as (B, T + 1) windows of token ids."""
        starts = self._starts(self.batch_size * self.world_size)
        starts = starts[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]
        window = torch.from_numpy(self.ids[starts[:, None] + self._offsets].astype(np.int64))
        if device.type == "cuda":
            return window.pin_memory().to(device, non_blocking=True)
        return window.to(device)

    def _starts(self, count: int) -> np.ndarray:
        if self.order == "random":
            return torch.randint(self._high, (count,), generator=self.generator).numpy()
        parts = []
        while count > 0:
            if self.taken >= len(self.starts):
                self.pass_rng, self.taken = self.generator.get_state(), 0
                self._draw_pass()
            part = self.starts[self.taken : self.taken + count]
            self.taken += len(part)
            count -= len(part)
            parts.append(part)
        return np.concatenate(parts)

    def _draw_pass(self) -> None:
        phase = int(torch.randint(min(self.block_size, self._high), (1,), generator=self.generator))
        tiling = torch.arange(phase, self._high, self.block_size)
        self.starts = tiling[torch.randperm(len(tiling), generator=self.generator)].numpy()

    def pass_state(self) -> dict[str, Any] | None:
        """Where the pass stands (with :attr:`generator`'s state, what resumes the stream)."""
        if self.pass_rng is None:
            return None
        return {"rng": self.pass_rng, "taken": self.taken}

    def load_state(self, rng: torch.Tensor, pass_state: dict[str, Any] | None = None) -> None:
        if self.order == "passes" and pass_state is not None:
            self.generator.set_state(pass_state["rng"])
            self._draw_pass()  # the same pass again, from the state it was drawn at
            self.pass_rng, self.taken = pass_state["rng"], int(pass_state["taken"])
        self.generator.set_state(rng)
