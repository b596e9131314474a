"""Choosing where and in which precision to run: CUDA, then MPS, then CPU."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import shutil
import time
from pathlib import Path

import torch

from tinygpt.config.fields import DEVICE_CHOICES, check_choice
from tinygpt.errors import Opt, UsageError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


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
            Opt("device", "cuda"),
            " was asked for, but no CUDA GPU is available; use ",
            Opt("device", "auto"),
        )
    if name == "mps" and not _mps_available():
        raise UsageError(
            Opt("device", "mps"),
            " was asked for, but MPS is not available; use ",
            Opt("device", "auto"),
        )
    return torch.device(name)


def free_memory(device: torch.device) -> int | None:
    """Bytes that ``device`` can still hand out (None where that can't be known)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "mps":
        return torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory()
    with contextlib.suppress(ValueError, OSError, AttributeError):  # Linux and most Unixes
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return None


def dtype_name(dtype: torch.dtype) -> str:
    """``dtype`` as ``--dtype`` names it: ``"bfloat16"``."""
    return str(dtype).removeprefix("torch.")


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto``: bf16 autocast where the matmuls run natively and faster in bf16 (CUDA GPUs
    that support it, CPUs where :func:`cpu_bfloat16_pays`), else full fp32."""
    if name == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False):
            return torch.bfloat16
        if device.type == "cpu" and cpu_bfloat16_pays():
            return torch.bfloat16
        return torch.float32
    if name not in DTYPES:
        raise UsageError(Opt("dtype"), f" must be auto, float32, bfloat16 or float16; got {name!r}")
    if name == "float16" and device.type == "cpu":
        raise UsageError(
            Opt("dtype", "float16"), " needs a GPU; on the CPU use float32 or bfloat16"
        )
    return DTYPES[name]


def cpu_has_bfloat16() -> bool:
    """AVX-512 BF16 or AMX; other CPUs emulate bfloat16, 20x slower than float32."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


# bfloat16 must be clearly faster: a near tie stays on float32.
BF16_MARGIN = 0.9


@functools.cache  # once a process: every run in it does the same arithmetic
def cpu_bfloat16_pays() -> bool:
    """Whether this CPU multiplies in bfloat16 under ``BF16_MARGIN`` of its float32 time, timed
    on batched products of the default model's widest matrices (tens of ms, once a process).
    The flags alone do not tell: with AVX-512 BF16 an AMD CPU trains 1.5x faster in bf16 and
    an Intel one without AMX slower (docs/benchmarks.md)."""
    if not cpu_has_bfloat16():
        return False
    m = torch.randn(4, 128, 512, generator=torch.Generator().manual_seed(0))

    def fastest(dtype: torch.dtype) -> float:
        times = []
        for _ in range(4):  # the first call allocates: the best of the others counts
            start = time.perf_counter()
            _newton_schulz_products(m.to(dtype))
            times.append(time.perf_counter() - start)
        return min(times[1:])

    return fastest(torch.bfloat16) < BF16_MARGIN * fastest(torch.float32)


def _newton_schulz_products(x: torch.Tensor) -> None:
    """The matrix products of Muon's five Newton-Schulz steps (the probe's work)."""
    for _ in range(5):
        gram = x @ x.mT
        torch.baddbmm(x, gram @ gram, x)


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


def compile_problem(device: torch.device) -> str | None:
    """Why ``torch.compile`` can't work on ``device`` here (no Triton for the GPU, no C++
    compiler for the CPU), or None."""
    if device.type == "cuda" and importlib.util.find_spec("triton") is None:
        return "torch.compile needs Triton for the GPU, and this torch build has none"
    if device.type == "cpu" and not any(shutil.which(c) for c in ("c++", "g++", "clang++", "cl")):
        return "torch.compile needs a C++ compiler for the CPU, and none is on PATH"
    return None


def default_compile(device: torch.device) -> bool:
    # Compilation pays off on CUDA; on CPU and MPS the minutes of compile time rarely do.
    return device.type == "cuda"


# Environment variables through which a user chooses the thread count: then tinygpt doesn't.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
BUSY_SAMPLE_S = 0.25  # how long the machine is watched at start-up


def busy_cores(interval: float = BUSY_SAMPLE_S) -> float | None:
    """Cores' worth of CPU that other processes used over ``interval`` seconds (Linux's
    /proc/stat, less this process's own time); None where that can't be read."""

    def sample() -> tuple[float, float]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields[:8]) - idle, time.process_time()

    try:
        (busy0, own0), start = sample(), time.perf_counter()
        time.sleep(interval)
        (busy1, own1), elapsed = sample(), time.perf_counter() - start
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    return max(0.0, ((busy1 - busy0) / ticks - (own1 - own0)) / elapsed)


def threads_for(cores: int, busy: float, current: int) -> int:
    """Torch threads: at most the cores other processes leave free (at least one). More makes
    every step wait on a descheduled thread (10x slower training with one core taken)."""
    free = max(1, cores - round(busy))
    return max(1, min(current, free))


def fit_cpu_threads(device: torch.device) -> str | None:
    """On the CPU, unless the user chose (OMP_NUM_THREADS), use only the free cores; a note
    when it lowered the thread count."""
    if device.type != "cpu" or any(os.environ.get(v) for v in THREAD_VARIABLES):
        return None
    cores = os.cpu_count() or 1
    current = torch.get_num_threads()
    if current <= 1:
        return None
    busy = busy_cores()
    if busy is None:
        return None
    threads = threads_for(cores, busy, current)
    if threads >= current:
        return None
    torch.set_num_threads(threads)
    return (
        f"other processes are using about {busy:.1f} of the {cores} CPU cores: running with "
        f"{threads} torch thread{'s' if threads > 1 else ''} instead of {current} "
        f"(set OMP_NUM_THREADS to choose)"
    )
