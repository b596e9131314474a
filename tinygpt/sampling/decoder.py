"""A batch of rows fed through the model one token at a time, in a sliding context window.

When the rows outgrow the block size (all at once: they continue one prompt), the window jumps
to keep the last 3/4 of a block and the KV cache is refilled once. So the model sees 3/4 to a
full block of context, the cache is rebuilt once per quarter-block, and cached and uncached runs
pick identical tokens. Three ways to the same logits: the whole window through ``forward`` per
token (no cache); the cache filled once, then :meth:`GPT.step` per token; and (the default on
CUDA) that step replayed as a CUDA graph: one launch per token, not a few hundred kernels.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from tinygpt.model import GPT, KVCache

# Runs a step function once into fixed buffers; returns its output and a replay of it.
Capture = Callable[[Callable[[], torch.Tensor]], tuple[torch.Tensor, Callable[[], object]]]


def keep_after_crop(block_size: int) -> int:
    """How many tokens the window keeps when it jumps: the last 3/4 of a block."""
    return max(1, (3 * block_size) // 4)


def cuda_graph(fn: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, Callable[[], object]]:
    """Capture ``fn`` as a CUDA graph after warming it up on a side stream (as torch's docs do:
    lazy initialisation must not happen inside the capture)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn()
    return out, graph.replay


class EagerStep:
    """The one-token step run as ordinary torch calls (the CPU's fastest: no capture to pay)."""

    def __init__(self, model: GPT, cache: KVCache) -> None:
        self.model, self.cache = model, cache

    def __call__(self, ids: torch.Tensor, position: int) -> torch.Tensor:
        self.cache.position.fill_(position)
        return self.model.step(ids.view(-1, 1), self.cache)


class GraphedStep:
    """The one-token step captured once and replayed through fixed input and output buffers.
    Build it before anything is cached: the warm-up writes into the cache."""

    def __init__(self, model: GPT, cache: KVCache, capture: Capture | None = None) -> None:
        self.cache = cache
        self.ids = torch.zeros(cache.k.size(1), 1, dtype=torch.long, device=cache.k.device)
        capture = capture or cuda_graph
        self.logits, self.replay = capture(lambda: model.step(self.ids, cache))

    def __call__(self, ids: torch.Tensor, position: int) -> torch.Tensor:
        self.ids.copy_(ids.view(-1, 1))
        self.cache.position.fill_(position)
        self.replay()
        return self.logits


class Decoder:
    """Next-token logits for ``batch_size`` rows: :meth:`start` with the prompt, then
    :meth:`advance` with each row's token. ``graph`` (default: on CUDA) replays the step as a
    CUDA graph; ``capture`` replaces the CUDA capture (tests run it on the CPU)."""

    def __init__(
        self,
        model: GPT,
        batch_size: int,
        kv_cache: bool = True,
        graph: bool | None = None,
        capture: Capture | None = None,
    ) -> None:
        self.model = model
        self.block = model.config.block_size
        device = model.wte.weight.device
        self.window = torch.zeros(batch_size, self.block, dtype=torch.long, device=device)
        self.filled = 0  # tokens in the window
        self.cache = model.new_cache(batch_size) if kv_cache else None
        self.step: EagerStep | GraphedStep | None = None
        if self.cache is not None:
            if device.type == "cuda" if graph is None else graph:
                try:
                    self.step = GraphedStep(model, self.cache, capture)
                except RuntimeError:  # a driver or operation that cannot be captured: go eager
                    self.cache.k.zero_()  # the warm-up may have written; nothing is cached yet
                    self.cache.v.zero_()
            self.step = self.step or EagerStep(model, self.cache)

    def start(self, prompt: torch.Tensor) -> torch.Tensor:
        """Logits (B, vocab) after the prompt (B, T), T <= block size."""
        self.filled = prompt.size(1)
        self.window[:, : self.filled] = prompt
        return self._refill()

    def advance(self, ids: torch.Tensor) -> torch.Tensor:
        """Append each row's token (B,) and return the logits that follow it."""
        if self.filled == self.block:  # one more would overflow: the window jumps
            keep = keep_after_crop(self.block)
            self.window[:, : keep - 1] = self.window[:, self.filled - keep + 1 :].clone()
            self.window[:, keep - 1] = ids
            self.filled = keep
            return self._refill()
        self.window[:, self.filled] = ids
        self.filled += 1
        if self.step is None:
            return self._forward(None)
        return self.step(ids, self.filled - 1)

    def _refill(self) -> torch.Tensor:
        if self.cache is not None:
            self.cache.reset()
        return self._forward(self.cache)

    def _forward(self, cache: KVCache | None) -> torch.Tensor:
        logits, _ = self.model(self.window[:, : self.filled], cache=cache, last_only=True)
        return logits[:, -1]
