"""A model with its shapes and no memory (the meta device), to check a weights file or describe
parameter groups before anything is built."""

from __future__ import annotations

from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from tinygpt.config.model import ModelConfig
from tinygpt.model.gpt import GPT


class _ShapesOnly(TorchFunctionMode):
    """Avoids torch's Python references on the meta device, whose first call imports
    ``torch._dynamo`` (seconds of start-up): ``normal_`` is skipped (no values to draw) and
    ``arange`` runs on the CPU (RoPE's few numbers, never saved)."""

    def __torch_function__(
        self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if func in (torch.nn.init.normal_, torch.Tensor.normal_):
            tensor = args[0] if args else kwargs["tensor"]
            if tensor.is_meta:
                return tensor
        if func is torch.arange and kwargs.get("device") is None:
            kwargs = {**kwargs, "device": "cpu"}
        return func(*args, **kwargs)


def meta_model(config: ModelConfig) -> GPT:
    """``GPT(config)`` on the meta device: every parameter's shape, no storage."""
    with torch.device("meta"), _ShapesOnly():
        return GPT(config)
