"""Setting a run up: device, precision, seeds, model, optimizer, and the model the loop calls.
The order is part of the run's numbers: the model is initialised right after the seed, and a
resume restores its state between :func:`build` and :func:`wrap` (DDP broadcasts rank 0's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from tinygpt.config.run import RunConfig
from tinygpt.config.train import TrainConfig
from tinygpt.data.batches import BatchSampler
from tinygpt.data.tokenizer import Tokenizer
from tinygpt.model import GPT
from tinygpt.model.device import (
    DTYPES,
    compile_problem,
    configure_backends,
    default_compile,
    fit_cpu_threads,
    resolve_device,
    resolve_dtype,
)
from tinygpt.training.distributed import DistContext
from tinygpt.training.optim import MuonAdamW, build_optimizer
from tinygpt.training.sizing import model_size_note


@dataclass
class Parts:
    """What a run trains with."""

    device: torch.device
    dtype: torch.dtype
    model: GPT
    optimizer: MuonAdamW
    scaler: torch.amp.GradScaler
    sampler: BatchSampler  # the training batches, this rank's share
    notes: list[str]  # for a person watching: threads lowered, a model too big for its text


@dataclass
class Wrapped:
    """The model as the loop calls it."""

    forward: torch.nn.Module  # DDP-wrapped and/or compiled, or the model itself
    ddp: DistributedDataParallel | None
    compiled: bool
    note: str | None = None  # why it is not compiled though compiling was asked for


def build(run: RunConfig, train_ids: np.ndarray, tokenizer: Tokenizer, dist: DistContext) -> Parts:
    cfg = run.train
    device = resolve_device(cfg.device)
    if device.type == "cuda" and dist.enabled:
        device = torch.device("cuda", dist.local_rank)
    dtype = precision(cfg.dtype, device, dist)
    configure_backends(device)
    notes = [fit_cpu_threads(device)]
    torch.manual_seed(cfg.seed)
    model = GPT(run.model, attention=cfg.attention).to(device)
    notes.append(model_size_note(model, len(train_ids), tokenizer))
    optimizer = build_optimizer(model, cfg, device)
    fp16 = dtype == torch.float16 and device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=fp16)
    if dist.enabled:
        torch.manual_seed(cfg.seed + dist.rank)  # distinct dropout masks per rank
    block = run.model.block_size
    sampler = BatchSampler(
        train_ids, block, cfg.batch_size, cfg.seed, dist.rank, dist.world_size, cfg.data_order
    )
    return Parts(device, dtype, model, optimizer, scaler, sampler, [n for n in notes if n])


def precision(name: str, device: torch.device, dist: DistContext) -> torch.dtype:
    """``--dtype`` on ``device``. Each rank times bfloat16 for itself: all take rank 0's."""
    dtype = resolve_dtype(name, device)
    precisions = list(DTYPES.values())
    return precisions[dist.first(precisions.index(dtype))]


def wrap(model: GPT, device: torch.device, cfg: TrainConfig, dist: DistContext) -> Wrapped:
    use_compile = cfg.compile if cfg.compile is not None else default_compile(device)
    problem = compile_problem(device) if use_compile else None
    if problem:  # the run goes on uncompiled, with one note, rather than failing at step 1
        use_compile = False
    forward: torch.nn.Module = model
    ddp = None
    if dist.enabled:
        # DDP broadcasts rank 0's weights now and averages gradients during backward.
        ids = [device.index] if device.type == "cuda" else None
        forward = ddp = DistributedDataParallel(model, device_ids=ids)
    if use_compile:
        forward = torch.compile(forward)
    note = f"{problem}: training without it" if problem else None
    return Wrapped(forward, ddp, bool(use_compile), note)
