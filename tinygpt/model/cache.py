"""The KV cache generation runs on: every layer's keys and values of the tokens seen so far."""

from __future__ import annotations

import torch

from tinygpt.config.model import ModelConfig


class KVCache:
    """Preallocated keys and values for every layer, filled left to right. :meth:`GPT.forward`
    appends a chunk at ``length``; :meth:`GPT.step` writes one token at the tensor ``position``
    (read on the device, so one CUDA graph of the step replays at any position)."""

    def __init__(
        self,
        config: ModelConfig,
        batch_size: int,
        device: torch.device,
        dtype: torch.dtype,
        rotations: torch.Tensor | None = None,
    ) -> None:
        shape = (config.n_layer, batch_size, config.n_head, config.block_size, config.head_dim)
        # Zeros, not empty: the step masks positions not yet written, but a masked weight of 0
        # times a NaN left in uninitialised memory would still be NaN.
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0  # tokens stored so far (the same for every layer)
        self.position = torch.zeros(1, dtype=torch.long, device=device)  # the step's position
        # Row p: 0 on the keys a query at p sees (0..p), -inf on the rest (additive: attention
        # adds it instead of converting it).
        size = config.block_size
        future = torch.ones(size, size, dtype=torch.bool, device=device).triu(1)
        self.visible = torch.zeros(size, size, dtype=dtype, device=device)
        self.visible.masked_fill_(future, float("-inf"))
        # Per position, RoPE as one (head_dim x head_dim) matrix: one matmul a layer per token.
        self.rotations = rotations.to(dtype) if rotations is not None else None
        # The step's input rows where they do not depend on the position (set by the model).
        self.embeddings: torch.Tensor | None = None

    def append(
        self, layer: int, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store this step's keys/values for ``layer`` and return all keys/values so far."""
        start, end = self.length, self.length + k.size(2)
        self.k[layer, :, :, start:end] = k
        self.v[layer, :, :, start:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def reset(self) -> None:
        self.length = 0
