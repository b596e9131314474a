"""What tinygpt will use here: the torch build, the device and why, precision, the attention
path, compilation, threads, caches and folders; each a name, a value and a note."""

from __future__ import annotations

import os
import platform
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from tinygpt import __version__
from tinygpt.data.token_cache import default_cache_dir
from tinygpt.model import device as devices
from tinygpt.model.device import compile_problem, default_compile, dtype_name, resolve_dtype

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


@dataclass(frozen=True)
class Fact:
    name: str
    value: str
    note: str = ""


def device_and_why(device: torch.device) -> str:
    if device.type == "cuda":
        return f"CUDA is available: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "no CUDA; Apple's MPS is available"
    return "no CUDA GPU or MPS here: the CPU"


def precision_why(dtype: str, device: torch.device) -> str:
    """Why ``--dtype auto`` chose what it did on ``device``."""
    if dtype != "auto":
        return "as --dtype asks"
    if device.type == "cpu":
        if devices.cpu_bfloat16_pays():
            return "bf16 autocast: it timed faster than float32 on this CPU"
        if devices.cpu_has_bfloat16():
            return "bf16 timed no faster than float32 on this CPU"
        return "this CPU has no native bf16"
    if device.type == "cuda":
        return "bf16 autocast where the GPU supports it, else float32"
    return "float32 on this device"


def tiktoken_cache() -> Fact:
    """Where tiktoken keeps the encodings it downloads, read as tiktoken reads it."""
    name = next((v for v in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR") if v in os.environ), None)
    if name is None:
        return Fact("tiktoken cache", "tiktoken's default", "downloads gpt2 on first use")
    where = os.environ[name]
    if not where:  # tiktoken's way of turning its cache off
        return Fact("tiktoken cache", "off", f"{name} is empty: gpt2 downloads on every use")
    if not Path(where).is_dir():
        return Fact("tiktoken cache", where, f"{name}; no such folder yet: gpt2 downloads")
    return Fact("tiktoken cache", where, name)


def _runs(root: Path) -> str:
    if not root.is_dir():
        return "none yet"
    count = sum(1 for m in root.glob("*/manifest.json") if m.is_file())
    return f"{count} run{'' if count == 1 else 's'}"


def facts(device: torch.device, dtype: str = "auto") -> list[Fact]:
    cuda = torch.version.cuda
    build = f"CUDA {cuda}" if cuda else "CPU only" if not torch.backends.mps.is_built() else "MPS"
    compiling = default_compile(device)
    problem = compile_problem(device)
    runs = Path("checkpoints")
    browser = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    return [
        Fact("tinygpt", __version__, f"Python {platform.python_version()} on {sys.platform}"),
        Fact("torch", torch.__version__, build),
        Fact("device", device.type, device_and_why(device)),
        Fact("precision", dtype_name(resolve_dtype(dtype, device)), precision_why(dtype, device)),
        Fact("attention", "sdpa", "torch's fused kernel; inspect commands use the explicit one"),
        Fact(
            "compile",
            "on" if compiling and not problem else "off",
            problem or ("pays on CUDA" if compiling else "the default off this device (--compile)"),
        ),
        Fact("threads", str(torch.get_num_threads()), f"{os.cpu_count()} cores"),
        tiktoken_cache(),
        Fact("token cache", str(default_cache_dir()), "TINYGPT_CACHE_DIR moves it"),
        Fact("checkpoints", str(runs.resolve()), _runs(runs)),
        Fact("chromium", browser or "not found", "only the browser tests need it"),
    ]
