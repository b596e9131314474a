"""Weights and training state as bytes: safetensors for weights (no code can ride in them), their
shapes checked against the config before anything is allocated."""

from __future__ import annotations

import io
import json
from collections import Counter
from typing import Any

import safetensors.torch
import torch

from tinygpt.config.model import ModelConfig
from tinygpt.errors import CheckpointError, TinyGPTError
from tinygpt.model import GPT
from tinygpt.model.meta import meta_model

TIED_KEY = "lm_head.weight"  # same tensor as wte.weight; safetensors refuses shared storage
_WRAPPER_PREFIXES = ("_orig_mod.", "module.")  # torch.compile and DistributedDataParallel


def plain_name(key: str) -> str:
    """A weight's name without the prefixes torch.compile and DDP wrappers add."""
    for prefix in _WRAPPER_PREFIXES:
        while key.startswith(prefix):
            key = key[len(prefix) :]
    return key


def clean_state_dict(state: dict[str, torch.Tensor], tied: bool = True) -> dict[str, torch.Tensor]:
    """Plain names (no compile/DDP prefixes), on the CPU; a tied LM head is dropped."""
    out = {}
    for key, value in state.items():
        key = plain_name(key)
        if key != TIED_KEY or not tied:
            out[key] = value.detach().to("cpu").contiguous()
    return out


def is_tied(model: torch.nn.Module) -> bool:
    inner = getattr(model, "_orig_mod", getattr(model, "module", model))
    return inner.lm_head.weight is inner.wte.weight


def weights_bytes(model: torch.nn.Module) -> bytes:
    """The model's weights as safetensors bytes; refuses non-finite values."""
    state = clean_state_dict(model.state_dict(), is_tied(model))
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise TinyGPTError(f"refusing to save non-finite weights (in {', '.join(bad[:3])})")
    return safetensors.torch.save(state, metadata={"format": "pt"})


def state_bytes(state: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def safetensors_shapes(data: bytes, source: str) -> dict[str, tuple[int, ...]]:
    """The tensor names and shapes a safetensors file's header declares (nothing allocated)."""
    try:
        length = int.from_bytes(data[:8], "little")
        if len(data) < 8 + length:
            raise ValueError("header longer than the file")
        header = json.loads(data[8 : 8 + length])
        shapes = {
            str(key): tuple(int(n) for n in value["shape"])
            for key, value in header.items()
            if key != "__metadata__"
        }
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        raise CheckpointError(f"{source} is corrupt: not a safetensors file") from None
    return shapes


def check_weight_shapes(
    config: ModelConfig, shapes: dict[str, tuple[int, ...]], source: str
) -> None:
    """Raise CheckpointError unless ``shapes`` (a weights file's, wrapper prefixes and the tied
    head allowed) are exactly those of a model built from ``config``."""
    model = meta_model(config)  # the shapes alone: no memory
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {plain_name(key): shape for key, shape in shapes.items()}
    if config.tie_embeddings:
        expected.pop(TIED_KEY, None)
        found.pop(TIED_KEY, None)
    if found == expected:
        return
    wrong = sorted(k for k in expected if found.get(k) != expected[k])
    name = (wrong or sorted(set(found) - set(expected)))[0]  # else a tensor the model lacks
    raise CheckpointError(
        f"{source} does not fit the model in its config.json: {name} is "
        f"{list(found[name]) if name in found else 'missing'}, the config declares "
        f"{list(expected[name]) if name in expected else 'no such tensor'}"
    )


def load_weights(model: GPT, data: bytes, source: str) -> None:
    try:
        state = safetensors.torch.load(data)
    except Exception as exc:
        raise CheckpointError(f"{source} is corrupt: not a safetensors file ({exc})") from None
    twice = sorted(n for n, count in Counter(map(plain_name, state)).items() if count > 1)
    if twice:  # "k" and "_orig_mod.k": which one would load is an accident of order
        raise CheckpointError(f"{source} is corrupt: it holds {twice[0]} twice")
    integers = [k for k, v in state.items() if not v.is_floating_point()]
    if integers:  # every weight tinygpt saves is floating point
        raise CheckpointError(f"{source} is corrupt: {integers[0]} holds integers, not weights")
    tied = model.config.tie_embeddings
    state = clean_state_dict(state, tied)
    if tied:
        state[TIED_KEY] = state.get("wte.weight", torch.empty(0))
    # Saving refuses non-finite weights: these were tampered with (and would fail deep in torch).
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{source} is corrupt: non-finite weights in {bad[0]}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = str(exc).strip().splitlines()[-1].strip()
        raise CheckpointError(
            f"{source} does not fit the model in its config.json: {detail}"
        ) from None
    if tied:
        model.lm_head.weight = model.wte.weight  # load_state_dict copies; make sure the tie holds
