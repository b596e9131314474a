"""Checkpoints that survive crashes and can't carry code.

A checkpoint is a directory:

    config.json          model + training configuration (JSON)
    tokenizer.json       the tokenizer, so generation needs nothing else
    model.safetensors    the latest weights (the tied LM head is stored once, as the embedding)
    best.safetensors     the weights with the best validation loss so far
    state.pt             optimizer, scaler, RNG and data-stream state for --resume: only tensors
                         and plain values, read with torch.load(weights_only=True)
    manifest.json        format version and the sha256 of every file above, written last
    metrics.jsonl        one JSON object per evaluation (a log, not part of the manifest)

Saving is a small redo log. Every file is first written in full beside its final name
(``.staged-NAME``) and fsynced; then ``manifest.pending.json`` is written atomically: that is the
commit point. Only then are the staged files renamed over the old ones and the pending manifest
becomes ``manifest.json``. A crash before the commit point leaves the old checkpoint untouched
(the staged files are swept later); a crash after it is finished by the next save, and readers
(which never modify the directory) find each file under its staged or final name meanwhile.
Every load checks each file against the manifest's sha256, because torch and safetensors both
accept a flipped bit without complaint.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import safetensors.torch
import torch

from tinygpt.config import RunConfig
from tinygpt.errors import CheckpointError, TinyGPTError
from tinygpt.fileio import atomic_write_bytes, fsync_dir, remove_stale_temps, sha256
from tinygpt.model import GPT
from tinygpt.tokenizer import Tokenizer, tokenizer_from_dict

FORMAT = "tinygpt-checkpoint"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
MODEL_FILE = "model.safetensors"
BEST_FILE = "best.safetensors"
STATE_FILE = "state.pt"
MANIFEST_FILE = "manifest.json"
PENDING_FILE = "manifest.pending.json"
METRICS_FILE = "metrics.jsonl"
STAGED_PREFIX = ".staged-"
TIED_KEY = "lm_head.weight"  # same tensor as wte.weight; safetensors refuses shared storage
_WRAPPER_PREFIXES = ("_orig_mod.", "module.")  # torch.compile and DistributedDataParallel


def clean_state_dict(
    state: dict[str, torch.Tensor], tied: bool = True
) -> dict[str, torch.Tensor]:
    """Plain names (no compile/DDP prefixes), on the CPU; a tied LM head is dropped."""
    out = {}
    for key, value in state.items():
        for prefix in _WRAPPER_PREFIXES:
            while key.startswith(prefix):
                key = key[len(prefix) :]
        if key != TIED_KEY or not tied:
            out[key] = value.detach().to("cpu").contiguous()
    return out


def _is_tied(model: torch.nn.Module) -> bool:
    inner = getattr(model, "_orig_mod", getattr(model, "module", model))
    return inner.lm_head.weight is inner.wte.weight


def weights_bytes(model: torch.nn.Module) -> bytes:
    """The model's weights as safetensors bytes; refuses non-finite values."""
    state = clean_state_dict(model.state_dict(), _is_tied(model))
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise TinyGPTError(f"refusing to save non-finite weights (in {', '.join(bad[:3])})")
    return safetensors.torch.save(state, metadata={"format": "pt"})


def state_bytes(state: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def write_checkpoint(directory: Path, files: dict[str, bytes], step: int) -> None:
    """Commit ``files`` into ``directory`` as one atomic checkpoint (see the module docstring).

    Files whose content equals what the current manifest already records are not rewritten.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    recover(directory)
    sweep(directory)
    old = _read_manifest(directory) if (directory / MANIFEST_FILE).exists() else None
    hashes = dict(old["files"]) if old else {}
    staged: list[Path] = []
    try:
        for name, data in files.items():
            digest = sha256(data)
            if hashes.get(name) == digest and (directory / name).exists():
                continue
            target = directory / (STAGED_PREFIX + name)
            atomic_write_bytes(target, data)
            staged.append(target)
            hashes[name] = digest
        manifest = {"format": FORMAT, "version": FORMAT_VERSION, "step": step, "files": hashes}
        atomic_write_bytes(directory / PENDING_FILE, json.dumps(manifest, indent=1).encode())
    except (OSError, RuntimeError) as exc:
        for path in staged:
            with contextlib.suppress(OSError):
                path.unlink()
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise TinyGPTError(
            f"could not write the checkpoint to {directory} ({reason}); the previous checkpoint "
            f"there is unchanged"
        ) from exc
    recover(directory)


def recover(directory: Path) -> None:
    """Finish a save that passed its commit point before a crash (idempotent)."""
    pending = directory / PENDING_FILE
    if not pending.exists():
        return
    manifest = json.loads(pending.read_bytes())
    for name in manifest["files"]:
        with contextlib.suppress(FileNotFoundError):  # already moved
            os.replace(directory / (STAGED_PREFIX + name), directory / name)
    fsync_dir(directory)
    with contextlib.suppress(FileNotFoundError):
        os.replace(pending, directory / MANIFEST_FILE)
    fsync_dir(directory)


def sweep(directory: Path) -> None:
    """Remove leftovers of saves that died before their commit point."""
    remove_stale_temps(directory)
    for stale in directory.glob(STAGED_PREFIX + "*"):
        with contextlib.suppress(OSError):
            stale.unlink()


def _read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise CheckpointError(
            f"{directory} is not a tinygpt checkpoint (no {MANIFEST_FILE}); point --checkpoint "
            f"at a directory written by `tinygpt train`"
        ) from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {directory} is corrupt: unreadable manifest") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{directory} does not hold a tinygpt checkpoint manifest")
    version = manifest.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {directory} has format version {version}, newer than this tinygpt "
            f"reads ({FORMAT_VERSION}); upgrade tinygpt"
        )
    if not isinstance(manifest.get("files"), dict):
        raise CheckpointError(f"checkpoint {directory} is corrupt: manifest lists no files")
    return manifest


@dataclass
class Checkpoint:
    """An opened, verified checkpoint directory."""

    directory: Path
    config: RunConfig
    tokenizer_spec: dict[str, Any]  # tokenizer.json, verified
    manifest: dict[str, Any]

    @property
    def tokenizer_name(self) -> str:
        return str(self.tokenizer_spec.get("name", self.tokenizer_spec.get("type")))

    @cached_property
    def tokenizer(self) -> Tokenizer:
        """Built on first use: a BPE encoding may need loading, which listing never should."""
        try:
            tokenizer = tokenizer_from_dict(self.tokenizer_spec)
        except (ValueError, TypeError, KeyError) as exc:
            raise CheckpointError(f"checkpoint {self.directory} is incompatible: {exc}") from None
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
        return _read_verified(self.directory, self.manifest, name)

    def load_model(
        self, device: torch.device | str = "cpu", attention: str = "auto", best: bool = False
    ) -> GPT:
        """Build the model and load its weights (``best`` for the best-validation weights)."""
        name = BEST_FILE if best and self.has(BEST_FILE) else MODEL_FILE
        model = GPT(self.config.model, attention=attention)
        load_weights(model, self.read_verified(name), f"{self.directory / name}")
        return model.to(device)

    def load_state(self) -> dict[str, Any]:
        data = self.read_verified(STATE_FILE)
        try:
            # weights_only passed explicitly so TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD can't turn it off;
            # there is no fallback to an unsafe load.
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(
                f"refusing to load {self.directory / STATE_FILE}: it holds something other than "
                f"tensors and plain values ({type(exc).__name__}), which could run code"
            ) from None


def load_weights(model: GPT, data: bytes, source: str) -> None:
    try:
        state = safetensors.torch.load(data)
    except Exception as exc:
        raise CheckpointError(f"{source} is corrupt: not a safetensors file ({exc})") from None
    tied = model.config.tie_embeddings
    state = clean_state_dict(state, tied)
    if tied:
        state[TIED_KEY] = state.get("wte.weight", torch.empty(0))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = str(exc).strip().splitlines()[-1].strip()
        raise CheckpointError(
            f"{source} does not fit the model in its config.json: {detail}"
        ) from None
    if tied:
        model.lm_head.weight = model.wte.weight  # load_state_dict copies; make sure the tie holds


def _read_verified(directory: Path, manifest: dict[str, Any], name: str) -> bytes:
    """The bytes of ``name`` that match the manifest's sha256.

    While a save is between its commit point and its renames (``pending`` in the manifest), a
    file may still sit under its staged name: the staged copy is tried first, then the final
    name (a concurrent rename moves it from one to the other, never away).
    """
    expected = manifest["files"].get(name)
    if expected is None:
        raise CheckpointError(f"checkpoint {directory} is incomplete: it has no {name}")
    candidates = [directory / name]
    if manifest.get("pending"):
        candidates.insert(0, directory / (STAGED_PREFIX + name))
    found = False
    for path in candidates:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise CheckpointError(f"cannot read {path}: {exc.strerror}") from None
        found = True
        if sha256(data) == expected:
            return data
    if not found:
        raise CheckpointError(f"checkpoint {directory} is incomplete: {name} is missing")
    raise CheckpointError(
        f"checkpoint {directory} is corrupt: {name} does not match the sha256 in its "
        f"manifest (truncated, damaged or modified); restore it from a copy or retrain"
    )


def _current_manifest(directory: Path) -> dict[str, Any]:
    """The committed manifest: a pending one (commit point passed, renames not finished yet)
    wins over the previous ``manifest.json``. Reading never changes the directory."""
    pending = directory / PENDING_FILE
    try:
        manifest = json.loads(pending.read_bytes())
        if isinstance(manifest, dict) and isinstance(manifest.get("files"), dict):
            return {**manifest, "pending": True}
    except (FileNotFoundError, ValueError):
        pass  # no save in flight (or it just finished): the ordinary manifest
    return _read_manifest(directory)


def open_checkpoint(directory: str | Path) -> Checkpoint:
    """Open and verify a checkpoint directory (the tokenizer is built when first used)."""
    d = Path(directory)
    if not d.exists():
        raise CheckpointError(f"no checkpoint at {d}; train one with `tinygpt train FILE`")
    if not d.is_dir():
        raise CheckpointError(f"{d} is a file; --checkpoint takes a checkpoint directory")
    manifest = _current_manifest(d)
    try:
        config = RunConfig.from_dict(json.loads(_read_verified(d, manifest, CONFIG_FILE)))
        config.model.validate()
        spec = json.loads(_read_verified(d, manifest, TOKENIZER_FILE))
        if not isinstance(spec, dict) or spec.get("type") not in ("char", "tiktoken"):
            raise ValueError(f"unknown tokenizer {spec!r:.60}")
    except CheckpointError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"checkpoint {d} is incompatible: {exc}") from None
    return Checkpoint(d, config, spec, manifest)


def is_checkpoint(directory: Path) -> bool:
    return (directory / MANIFEST_FILE).exists() or (directory / PENDING_FILE).exists()


def latest_checkpoint(root: Path = Path("checkpoints")) -> Path:
    """The most recently saved checkpoint under ``root`` (what generate uses by default)."""
    candidates = [p.parent for p in root.glob(f"*/{MANIFEST_FILE}")] if root.is_dir() else []
    if not candidates:
        raise CheckpointError(
            f"no checkpoints under {root}/; train one with `tinygpt train FILE` "
            f"or pass --checkpoint"
        )
    return max(candidates, key=lambda p: (p / MANIFEST_FILE).stat().st_mtime)


def find_checkpoint(directory: str | Path | None = None) -> Checkpoint:
    """Open ``directory``, or the newest checkpoint under ``checkpoints/`` when it is None."""
    return open_checkpoint(directory if directory is not None else latest_checkpoint())


def write_metrics(directory: Path, records: list[dict[str, Any]]) -> None:
    """Rewrite metrics.jsonl atomically with ``records`` (small: one line per evaluation)."""
    text = "".join(json.dumps(r) + "\n" for r in records)
    atomic_write_bytes(directory / METRICS_FILE, text.encode())


def read_metrics(directory: Path) -> list[dict[str, Any]]:
    path = Path(directory) / METRICS_FILE
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            records.append(json.loads(line))
    return records
