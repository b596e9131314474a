"""Data-parallel training: torchrun + DistributedDataParallel (NCCL between GPUs, gloo on CPU).

Each process finds its rank in the variables torchrun sets; without them everything here is a
no-op and training runs in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from tinygpt.errors import UsageError
from tinygpt.model.device import resolve_device

# Long enough for rank 0 to tokenize a large corpus or write a checkpoint while the others wait.
DEFAULT_TIMEOUT_S = 1800


@dataclass
class DistContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def max(self, *values: float) -> list[float]:
        """Element-wise maximum over all ranks (e.g. the stop signal any rank received)."""
        if not self.enabled:
            return [float(v) for v in values]
        t = torch.tensor([float(v) for v in values], device=self._comm_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return t.tolist()

    def first(self, value: int) -> int:
        """Rank 0's ``value`` on every rank: a choice each rank could time differently."""
        if not self.enabled:
            return value
        t = torch.tensor([value], device=self._comm_device())
        dist.broadcast(t, src=0)
        return int(t.item())

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of ``value`` over all ranks (SUM then divide: gloo has no AVG)."""
        if not self.enabled:
            return value
        t = value.detach().clone().to(self._comm_device())
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return (t / self.world_size).to(value.device)

    def gather(self, t: torch.Tensor) -> torch.Tensor:
        """(world_size, *t.shape): every rank's ``t`` (equal shapes), on every rank."""
        if not self.enabled:
            return t[None]
        src = t.to(self._comm_device())
        out = [torch.empty_like(src) for _ in range(self.world_size)]
        dist.all_gather(out, src)
        return torch.stack(out).to(t.device)

    def _comm_device(self) -> torch.device:
        if dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")


def _env_int(name: str, default: int | None = None, low: int = 0) -> int:
    """An integer torchrun sets, or one line naming the bad variable."""
    text = os.environ.get(name)
    if text is None:
        if default is None:
            raise UsageError(
                f"WORLD_SIZE is set but {name} is not; start data-parallel runs with torchrun"
            )
        return default
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        raise UsageError(f"{name}={text[:40]!r} is not an integer of at least {low}")
    return value


def world_size() -> int:
    """The number of processes torchrun started (1 without torchrun)."""
    return _env_int("WORLD_SIZE", 1, low=1)


def launch_rank() -> int:
    """This process's rank as torchrun announced it, before the process group exists; 0 unless
    ``WORLD_SIZE`` is above 1 (a stray ``RANK`` alone: this is the only writer, and locks)."""
    if world_size() <= 1:
        return 0
    rank = _env_int("RANK")
    if rank >= world_size():
        raise UsageError(f"RANK={rank} is not below WORLD_SIZE={world_size()}")
    return rank


def setup(device: str) -> DistContext:
    """Join the process group torchrun describes, if any (``device`` picks NCCL or gloo)."""
    world = world_size()
    if world <= 1:
        return DistContext()
    ctx = DistContext(launch_rank(), _env_int("LOCAL_RANK", 0), world)
    use_cuda = resolve_device(device).type == "cuda"
    if use_cuda:
        torch.cuda.set_device(ctx.local_rank)
    if not dist.is_initialized():
        timeout = timedelta(
            seconds=float(os.environ.get("TINYGPT_DIST_TIMEOUT", DEFAULT_TIMEOUT_S))
        )
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo",
            init_method=os.environ.get("TINYGPT_DIST_INIT_METHOD", "env://"),
            rank=ctx.rank,
            world_size=world,
            timeout=timeout,
        )
    return ctx


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
