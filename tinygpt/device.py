"""Choosing where and in which precision to run: CUDA, then MPS, then CPU."""

from __future__ import annotations

import contextlib

import torch

from tinygpt.config import DEVICE_CHOICES, check_choice
from tinygpt.errors import UsageError
from tinygpt.spelling import option

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def resolve_device(name: str = "auto") -> torch.device:
    """The device ``--device`` names, checked here (and only here) to be one that exists."""
    check_choice("device", name, DEVICE_CHOICES)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            f"{option('device', 'cuda')} was asked for, but no CUDA GPU is available; use "
            f"{option('device', 'auto')}"
        )
    if name == "mps" and not _mps_available():
        raise UsageError(
            f"{option('device', 'mps')} was asked for, but MPS is not available; use "
            f"{option('device', 'auto')}"
        )
    return torch.device(name)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto``: bf16 autocast on CUDA GPUs that support it natively, else full fp32."""
    if name == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False):
            return torch.bfloat16
        return torch.float32
    if name not in _DTYPES:
        raise UsageError(
            f"{option('dtype')} must be auto, float32, bfloat16 or float16; got {name!r}"
        )
    if name == "float16" and device.type == "cpu":
        raise UsageError(
            f"{option('dtype', 'float16')} needs a GPU; on the CPU use float32 or bfloat16"
        )
    return _DTYPES[name]


def autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Mixed precision: weights stay fp32, matmuls run in ``dtype``."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def configure_backends(device: torch.device) -> None:
    if device.type == "cuda":
        # TF32 matmuls: ~free speed on Ampere and newer for fp32 work.
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def default_compile(device: torch.device) -> bool:
    # Compilation pays off on CUDA; on CPU and MPS the minutes of compile time rarely do.
    return device.type == "cuda"
