"""Opening a verified checkpoint, and finding the newest under ``checkpoints/``. Reading never
changes the directory (a save may be finishing)."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from tinygpt.checkpoint.history import MAX_KEPT, WeightHistory
from tinygpt.checkpoint.lock import in_use
from tinygpt.checkpoint.manifest import (
    BEST_FILE,
    CONFIG_FILE,
    HISTORY_FILE,
    JSON_LIMIT,
    MANIFEST_FILE,
    MODEL_FILE,
    PENDING_FILE,
    STAGED_PREFIX,
    STATE_FILE,
    TOKENIZER_FILE,
    current_manifest,
    read_verified,
)
from tinygpt.checkpoint.metrics import METRICS_FILE, better_earlier, read_metrics
from tinygpt.checkpoint.weights import check_weight_shapes, load_weights, safetensors_shapes
from tinygpt.config.fields import ATTENTION_CHOICES, check_choice
from tinygpt.config.model import parameter_bound
from tinygpt.config.run import RunConfig
from tinygpt.data.tokenizer import Tokenizer, tokenizer_from_dict
from tinygpt.errors import CheckpointError, Opt, UsageError
from tinygpt.io.console import tell_picked
from tinygpt.model import GPT
from tinygpt.model.device import resolve_device


@dataclass
class Checkpoint:
    """An opened, verified checkpoint directory."""

    directory: Path
    config: RunConfig
    tokenizer_spec: dict[str, Any]  # tokenizer.json, verified
    manifest: dict[str, Any]

    @property
    def tokenizer_name(self) -> str:
        spec = self.tokenizer_spec
        if spec.get("type") == "records" and isinstance(spec.get("inner"), dict):
            spec = spec["inner"]  # "char", "gpt2", "bpe:512": the records show elsewhere
        return str(spec.get("name", spec.get("type")))

    @property
    def record_options(self) -> dict[str, str | None]:
        """The run's ``records`` and ``separator`` as its tokenizer keeps them (None: text)."""
        spec = self.tokenizer_spec
        if spec.get("type") != "records":
            return {"records": None, "separator": None}
        if spec.get("mode") == "separator":
            return {"records": None, "separator": str(spec.get("separator"))}
        return {"records": str(spec.get("mode")), "separator": None}

    @cached_property
    def tokenizer(self) -> Tokenizer:
        """Built on first use: an encoding may need loading, which listing never should."""
        try:
            tokenizer = tokenizer_from_dict(self.tokenizer_spec)
        except (ValueError, TypeError, KeyError) as exc:
            raise CheckpointError(f"checkpoint {self.directory} is incompatible: {exc}") from None
        except UsageError as exc:  # an encoding name this tiktoken does not know
            raise CheckpointError(f"checkpoint {self.directory}: {exc}") from None
        if tokenizer.vocab_size > self.config.model.vocab_size:
            raise CheckpointError(
                f"checkpoint {self.directory} is incompatible: tokenizer has "
                f"{tokenizer.vocab_size} tokens, model only {self.config.model.vocab_size}"
            )
        return tokenizer

    @property
    def step(self) -> int:
        return int(self.manifest.get("step", 0))

    def has(self, name: str) -> bool:
        return name in self.manifest["files"]

    def read_verified(self, name: str) -> bytes:
        """The bytes of ``name`` as the manifest records them. A save may commit after opening:
        on a mismatch the manifest is read again, and the read retried if its digest changed."""
        for _ in range(3):
            try:
                return read_verified(self.directory, self.manifest, name, self._limit(name))
            except CheckpointError:
                fresh = current_manifest(self.directory)
                if fresh["files"].get(name) == self.manifest["files"].get(name):
                    raise
                self.manifest = fresh
        return read_verified(self.directory, self.manifest, name, self._limit(name))

    def _limit(self, name: str) -> int:
        """The most bytes ``name`` may have when the manifest declares no size: float64 weights
        and optimizer moments for this model, generously."""
        params = parameter_bound(self.config.model)
        if name in (MODEL_FILE, BEST_FILE):
            return 8 * params + (16 << 20)
        if name == STATE_FILE:
            return 32 * params + (64 << 20)
        if name == HISTORY_FILE:
            return 2 * params * MAX_KEPT + (16 << 20)
        return JSON_LIMIT

    def metrics(self) -> list[dict[str, Any]]:
        """The evaluations this checkpoint's step includes, oldest first (from the staged log of
        a committed save not yet finished, if any)."""
        if self.manifest.get("pending"):
            staged = STAGED_PREFIX + METRICS_FILE
            with contextlib.suppress(FileNotFoundError):
                (self.directory / staged).lstat()
                return read_metrics(self.directory, up_to_step=self.step, name=staged)
        return read_metrics(self.directory, up_to_step=self.step)

    def better_weights(self) -> tuple[float, int, float] | None:
        """(best val loss, its step, the last val loss) when its kept best weights beat its final
        ones (an overfitted run), else None."""
        return better_earlier(self.metrics()) if self.has(BEST_FILE) else None

    @property
    def saved_at(self) -> float:
        """When the checkpoint was last committed (the manifest's modification time)."""
        for name in (MANIFEST_FILE, PENDING_FILE):
            with contextlib.suppress(OSError):
                return (self.directory / name).stat().st_mtime
        return 0.0

    def load_model(
        self, device: torch.device | str = "cpu", attention: str = "auto", best: bool = False
    ) -> GPT:
        """Build the model and load its weights (``best`` for the best-validation weights)."""
        name = BEST_FILE if best and self.has(BEST_FILE) else MODEL_FILE
        data = self.fitting_weights(name)
        model = GPT(self.config.model, attention=attention)
        load_weights(model, data, f"{self.directory / name}")
        return model.to(device)

    def fitting_weights(self, name: str = MODEL_FILE) -> bytes:
        """The verified bytes of a weights file, its shapes checked against config.json before a
        model is built (a config declaring billions of parameters can't allocate them)."""
        data = self.read_verified(name)
        shapes = safetensors_shapes(data, str(self.directory / name))
        check_weight_shapes(self.config.model, shapes, str(self.directory))
        return data

    def history(self) -> WeightHistory:
        """The weights it kept at earlier evaluations (none when the run kept none)."""
        if not self.has(HISTORY_FILE):
            return WeightHistory()
        source = str(self.directory / HISTORY_FILE)
        return WeightHistory.from_bytes(self.read_verified(HISTORY_FILE), source)

    def load_state(self) -> dict[str, Any]:
        data = self.read_verified(STATE_FILE)
        try:
            # weights_only explicitly: TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD can't turn it off, and an
            # error is never retried as an unsafe load.
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(
                f"refusing to load {self.directory / STATE_FILE}: it holds something other than "
                f"tensors and plain values ({type(exc).__name__}), which could run code"
            ) from None
        problem = _state_problem(state)
        if problem:
            raise CheckpointError(f"checkpoint {self.directory} is corrupt: {STATE_FILE} {problem}")
        return state


# The scalars of state.pt that readers show or use, and their types.
_STATE_SCALARS: dict[str, tuple[type, ...]] = {
    "step": (int,),
    "best_val": (int, float),
    "tokens_seen": (int,),
    "elapsed": (int, float),
    "world_size": (int,),
    "device": (str,),
    "dtype": (str,),
}


def _state_problem(state: Any) -> str | None:
    if not isinstance(state, dict):
        return "does not hold a dictionary"
    for key, kinds in _STATE_SCALARS.items():
        value = state.get(key)
        if key in state and (not isinstance(value, kinds) or isinstance(value, bool)):
            return f"has an invalid {key!r}"
    return None


def check_tokenizer_spec(spec: Any, vocab_size: int) -> None:
    """Raise ValueError unless ``spec`` is a tokenizer a model of ``vocab_size`` can use (a char
    vocabulary must be distinct single characters, one per row of the embedding)."""
    kinds = ("char", "tiktoken", "bpe", "records")
    if not isinstance(spec, dict) or spec.get("type") not in kinds:
        raise ValueError(f"unknown tokenizer {spec!r:.60}")
    if spec["type"] == "tiktoken":
        if not isinstance(spec.get("name"), str):
            raise ValueError("tiktoken tokenizer without an encoding name")
        return
    if spec["type"] == "records":
        inner = spec.get("inner")
        if not isinstance(inner, dict) or inner.get("type") == "records":
            raise ValueError("records tokenizer without a tokenizer inside")
        # char and bpe vocabularies gain one id for the end-of-record token; tiktoken has its own
        check_tokenizer_spec(inner, vocab_size - (inner.get("type") in ("char", "bpe")))
        return
    if spec["type"] == "bpe":
        tokens = spec.get("tokens")
        if not isinstance(tokens, list) or len(tokens) != vocab_size:
            raise ValueError(f"bpe tokenizer without the model's {vocab_size} tokens")
        return
    chars = spec.get("chars")
    if not isinstance(chars, list) or not all(isinstance(c, str) and len(c) == 1 for c in chars):
        raise ValueError("char tokenizer without a list of single characters")
    if len(set(chars)) != len(chars):
        raise ValueError("char tokenizer lists a character twice")
    if len(chars) != vocab_size:
        raise ValueError(f"char tokenizer has {len(chars)} characters, the model {vocab_size}")


def open_checkpoint(directory: str | Path) -> Checkpoint:
    """Open and verify a checkpoint directory (the tokenizer is built when first used)."""
    d = Path(directory)
    if not d.exists():
        raise CheckpointError(f"no checkpoint at {d}; train one with `tinygpt train FILE`")
    if not d.is_dir():
        raise CheckpointError(
            f"{d} is a file; ", Opt("checkpoint"), " takes a checkpoint directory"
        )
    manifest = current_manifest(d)
    try:
        config = RunConfig.from_dict(json.loads(read_verified(d, manifest, CONFIG_FILE)))
        config.model.validate()
        config.train.validate()
    except CheckpointError:
        raise
    except (ValueError, TypeError, KeyError, RecursionError, UsageError) as exc:
        # str(exc): config.json's own field names (n_embd, not --n-embd)
        raise CheckpointError(f"checkpoint {d} has an invalid {CONFIG_FILE}: {exc}") from None
    try:
        spec = json.loads(read_verified(d, manifest, TOKENIZER_FILE))
        check_tokenizer_spec(spec, config.model.vocab_size)
    except CheckpointError:
        raise
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"checkpoint {d} has an invalid {TOKENIZER_FILE}: {exc}") from None
    return Checkpoint(d, config, spec, manifest)


def latest_checkpoint(root: Path = Path("checkpoints")) -> Path:
    """The most recently saved checkpoint under ``root`` that no run is training right now."""
    candidates = [p.parent for p in root.glob(f"*/{MANIFEST_FILE}")] if root.is_dir() else []
    if not candidates:
        raise CheckpointError(
            f"no checkpoints under {root}/; train one with `tinygpt train FILE` or pass ",
            Opt("checkpoint"),
        )
    # A run still training always looks newest: prefer a finished (or interrupted) one.
    settled = [p for p in candidates if not in_use(p)] or candidates
    return max(settled, key=lambda p: (p / MANIFEST_FILE).stat().st_mtime)


def find_checkpoint(directory: str | Path | None = None) -> Checkpoint:
    """Open ``directory``, or the newest checkpoint under ``checkpoints/`` when it is None."""
    if directory is not None:
        return open_checkpoint(directory)
    picked = latest_checkpoint()
    tell_picked(picked)
    return open_checkpoint(picked)


def load(
    checkpoint: str | Path | None = None,
    device: str = "auto",
    attention: str = "auto",
    best: bool = False,
) -> tuple[GPT, Tokenizer, Checkpoint]:
    """Open a checkpoint (default: the newest under ``checkpoints/``) and build its model.
    Nothing global changes: torch's thread count stays the caller's."""
    check_choice("attention", attention, ATTENTION_CHOICES)
    ck = find_checkpoint(checkpoint)
    model = ck.load_model(resolve_device(device), attention=attention, best=best)
    return model.eval(), ck.tokenizer, ck
