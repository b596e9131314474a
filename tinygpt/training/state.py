"""What changes as a run goes (:class:`RunState`), and the checkpoint that saves it with the
weights and all a resume needs to continue bit-for-bit (optimizer, scaler, every RNG, the data
stream); ``restore`` reads this version's checkpoints and older ones.
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from tinygpt.checkpoint.history import WeightHistory
from tinygpt.checkpoint.manifest import (
    BEST_FILE,
    CONFIG_FILE,
    HISTORY_FILE,
    MODEL_FILE,
    STATE_FILE,
    TOKENIZER_FILE,
)
from tinygpt.checkpoint.metrics import metrics_bytes
from tinygpt.checkpoint.save import write_checkpoint
from tinygpt.checkpoint.store import Checkpoint
from tinygpt.checkpoint.weights import load_weights, state_bytes, weights_bytes
from tinygpt.config.run import RunConfig
from tinygpt.data.tokenizer import Tokenizer
from tinygpt.errors import CheckpointError
from tinygpt.model import GPT
from tinygpt.model.device import dtype_name
from tinygpt.training.averaging import WeightAverage
from tinygpt.training.distributed import DistContext

if TYPE_CHECKING:
    from tinygpt.training.setup import Parts


@dataclass
class RunState:
    """The run's changing facts (the configuration never changes once a run starts)."""

    total_steps: int  # the schedule's length: --max-steps, or fewer planned for --max-time
    world_size: int = 1  # data-parallel processes of this session
    step: int = 0
    best_val: float = math.inf
    tokens_seen: int = 0
    elapsed: float = 0.0  # training seconds, summed over resumed sessions
    bad_steps: int = 0  # non-finite steps in a row (a session's, not saved)
    # The last steps' batch losses (the trainer's window): an evaluation's training loss.
    recent_losses: deque[float] = field(default_factory=deque)
    best_weights: bytes | None = None  # best.safetensors, once an evaluation improved
    metrics: list[dict[str, Any]] = field(default_factory=list)  # metrics.jsonl's records
    history: WeightHistory | None = None  # history.safetensors, when the run keeps one
    average: WeightAverage | None = None  # --ema: the weights evaluated, saved and sampled


def state_dict(parts: Parts, state: RunState, dist: DistContext) -> dict[str, Any]:
    """state.pt's contents. Collective under DDP: every rank must call it."""
    saved: dict[str, Any] = {
        "step": state.step,
        "best_val": state.best_val,
        "tokens_seen": state.tokens_seen,
        "elapsed": state.elapsed,
        "recent_losses": list(state.recent_losses),
        "optimizer": parts.optimizer.state_dict(),
        "scaler": parts.scaler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "sampler_rng": parts.sampler.generator.get_state(),
        "sampler_pass": parts.sampler.pass_state(),  # None: random windows, or no pass yet
        "world_size": dist.world_size,
        "device": parts.device.type,
        "dtype": dtype_name(parts.dtype),
    }
    if state.average is not None:  # model.safetensors holds the average: these train on
        saved["trained_weights"] = parts.model.state_dict()
        saved["average_updates"] = state.average.updates
    if dist.enabled:  # every rank's dropout stream, for an exact distributed resume
        saved["rank_torch_rng"] = dist.gather(torch.get_rng_state())
    if torch.cuda.is_available():
        saved["cuda_rng"] = torch.cuda.get_rng_state_all()
        if dist.enabled and parts.device.type == "cuda":
            saved["rank_cuda_rng"] = dist.gather(torch.cuda.get_rng_state(parts.device))
    return saved


def write(
    out_dir: Path,
    run: RunConfig,
    state: RunState,
    tokenizer: Tokenizer,
    model: GPT,
    saved: dict[str, Any],
) -> None:
    """Commit one checkpoint (rank 0's job): configs, tokenizer, weights, ``saved`` state."""
    # config.json holds the total the run settled on: a resume follows it.
    settled = replace(run, train=replace(run.train, max_steps=state.total_steps))
    files = {
        CONFIG_FILE: json.dumps(settled.to_dict(state.world_size), indent=2).encode(),
        TOKENIZER_FILE: json.dumps(tokenizer.to_dict()).encode(),
        MODEL_FILE: weights_bytes(model),
        STATE_FILE: state_bytes(saved),
    }
    if state.best_weights is not None:
        files[BEST_FILE] = state.best_weights
    if state.history is not None:
        files[HISTORY_FILE] = state.history.to_bytes()
    out_dir.mkdir(parents=True, exist_ok=True)
    # The log commits with the checkpoint: a save that fails leaves no record of an
    # evaluation whose weights were never saved, and one that succeeds never loses it.
    write_checkpoint(out_dir, files, state.step, log=metrics_bytes(state.metrics))


def restore(
    source: Checkpoint, parts: Parts, state: RunState, dist: DistContext, seed: int
) -> None:
    """Continue ``source``: its weights, optimizer, RNGs and counters into this run."""
    load_weights(parts.model, source.read_verified(MODEL_FILE), str(source.directory))
    saved = source.load_state()
    try:
        _restore_objects(saved, parts, dist, seed)
        state.step = int(saved["step"])
        state.best_val = float(saved["best_val"])
        state.tokens_seen = int(saved["tokens_seen"])
        state.elapsed = float(saved["elapsed"])
        recent = [float(x) for x in saved.get("recent_losses", [])]
        state.recent_losses = deque(recent, maxlen=state.recent_losses.maxlen)
        if state.average is not None:  # the saved model is the average; train on from these
            state.average.restore(parts.model.state_dict(), int(saved["average_updates"]))
            parts.model.load_state_dict(saved["trained_weights"])
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as exc:
        # A state.pt that loads (plain tensors and values) but not the ones a run saves.
        detail = (str(exc).strip().splitlines() or [""])[-1][:120]
        raise CheckpointError(
            f"checkpoint {source.directory} is corrupt: {STATE_FILE} does not fit "
            f"this run ({type(exc).__name__}: {detail})"
        ) from None
    if source.has(BEST_FILE):
        state.best_weights = source.read_verified(BEST_FILE)
    if state.history is not None:
        state.history = source.history()
    # Evaluations logged after the checkpoint's step belong to the lost part of the run.
    state.metrics = source.metrics()


def _restore_objects(saved: dict[str, Any], parts: Parts, dist: DistContext, seed: int) -> None:
    # Older checkpoints also hold "python_rng": training never drew from Python's random.
    parts.optimizer.load_state_dict(saved["optimizer"])
    parts.scaler.load_state_dict(saved["scaler"])
    torch.set_rng_state(saved["torch_rng"])
    parts.sampler.load_state(saved["sampler_rng"], saved.get("sampler_pass"))
    if "cuda_rng" in saved and torch.cuda.is_available() and not dist.enabled:
        torch.cuda.set_rng_state_all(saved["cuda_rng"])
    if not dist.enabled:
        return
    if int(saved.get("world_size", 1)) == dist.world_size and "rank_torch_rng" in saved:
        # clone(): a row view of the stacked states crashes set_rng_state
        torch.set_rng_state(saved["rank_torch_rng"][dist.rank].clone())
        if "rank_cuda_rng" in saved and parts.device.type == "cuda":
            torch.cuda.set_rng_state(saved["rank_cuda_rng"][dist.rank].clone(), parts.device)
    else:  # a different number of ranks: resumes, but dropout masks are new
        torch.manual_seed(seed + dist.rank + int(saved["step"]))
