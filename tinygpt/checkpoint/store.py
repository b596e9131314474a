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

A checkpoint may come from someone else, so nothing in it is trusted: a manifest may only name
the five files above (no path is ever built from a name it holds), files must be regular files
of the size the manifest declares (or a bound derived from the model's size, for manifests
written before sizes were recorded), and a committed save lists exactly the files it wrote,
so nothing of a replaced run (``--overwrite``) survives it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import safetensors.torch
import torch

from tinygpt.checkpoint.lock import LOCK_FILE, in_use, is_lock_file
from tinygpt.checkpoint.metrics import METRICS_FILE, better_earlier, read_metrics
from tinygpt.config import ModelConfig, RunConfig, parameter_bound
from tinygpt.data.tokenizer import Tokenizer, tokenizer_from_dict
from tinygpt.errors import CheckpointError, Opt, TinyGPTError, UsageError
from tinygpt.io.console import printable, tell_picked
from tinygpt.io.files import (
    TEMP_PREFIX,
    atomic_write_bytes,
    describe_os_error,
    fsync_dir,
    read_bounded,
    sha256,
)
from tinygpt.model import GPT
from tinygpt.model.meta import meta_model

FORMAT = "tinygpt-checkpoint"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
MODEL_FILE = "model.safetensors"
BEST_FILE = "best.safetensors"
STATE_FILE = "state.pt"
MANIFEST_FILE = "manifest.json"
PENDING_FILE = "manifest.pending.json"
STAGED_PREFIX = ".staged-"
# The only names a manifest may list; anything else makes the checkpoint corrupt.
KNOWN_FILES = (CONFIG_FILE, TOKENIZER_FILE, MODEL_FILE, BEST_FILE, STATE_FILE)
MANIFEST_LIMIT = 1 << 20
JSON_LIMIT = 64 << 20  # config.json, tokenizer.json (a char vocabulary of every code point fits)
_SHA256 = re.compile(r"[0-9a-f]{64}")
TIED_KEY = "lm_head.weight"  # same tensor as wte.weight; safetensors refuses shared storage
_WRAPPER_PREFIXES = ("_orig_mod.", "module.")  # torch.compile and DistributedDataParallel


def clean_state_dict(state: dict[str, torch.Tensor], tied: bool = True) -> dict[str, torch.Tensor]:
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


def write_checkpoint(
    directory: Path, files: dict[str, bytes], step: int, log: bytes | None = None
) -> None:
    """Commit ``files`` into ``directory`` as one atomic checkpoint (see the module docstring).

    The new manifest lists exactly ``files``: a file of the previous checkpoint that is not
    among them is removed once the save is committed. Files whose content equals what the
    current manifest already records are not rewritten. ``log``, the new metrics.jsonl, is
    staged with them and moved into place by the same redo step: a crash right after the
    commit point can't lose the evaluation that the committed weights come with.
    """
    unknown = sorted(set(files) - set(KNOWN_FILES))
    if unknown:
        raise ValueError(f"not checkpoint files: {unknown}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    recover(directory)
    sweep(directory)
    old = _read_manifest(directory) if (directory / MANIFEST_FILE).exists() else None
    old_hashes = old["files"] if old else {}
    hashes: dict[str, str] = {}
    staged: list[Path] = []
    try:
        for name, data in files.items():
            digest = hashes[name] = sha256(data)
            if old_hashes.get(name) == digest and (directory / name).is_file():
                continue
            target = directory / (STAGED_PREFIX + name)
            atomic_write_bytes(target, data)
            staged.append(target)
        if log is not None:
            staged.append(directory / (STAGED_PREFIX + METRICS_FILE))
            atomic_write_bytes(staged[-1], log)
        sizes = {name: len(data) for name, data in files.items()}
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "step": step,
            "files": hashes,
            "sizes": sizes,
        }
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
    """Finish a save that passed its commit point before a crash (idempotent).

    The pending manifest is checked first: only the known file names are ever moved, and
    known files it does not list (left by a replaced run) are removed.
    """
    pending = directory / PENDING_FILE
    if not pending.exists():
        return
    manifest = _load_manifest(directory, PENDING_FILE)
    try:
        for name in KNOWN_FILES:
            if name in manifest["files"]:
                with contextlib.suppress(FileNotFoundError):  # already moved
                    os.replace(directory / (STAGED_PREFIX + name), directory / name)
            else:
                with contextlib.suppress(FileNotFoundError):
                    (directory / name).unlink()
        with contextlib.suppress(FileNotFoundError):  # the log staged with this save, if any
            os.replace(directory / (STAGED_PREFIX + METRICS_FILE), directory / METRICS_FILE)
        fsync_dir(directory)
        with contextlib.suppress(FileNotFoundError):
            os.replace(pending, directory / MANIFEST_FILE)
    except OSError as exc:
        raise CheckpointError(
            f"could not finish the save in {directory}: {describe_os_error(exc)}"
        ) from None
    fsync_dir(directory)


def check_manifests(directory: Path) -> None:
    """Raise CheckpointError unless every manifest in ``directory`` is valid (changes nothing);
    a writer calls it before training, not 100 steps later at its first save."""
    for name in (PENDING_FILE, MANIFEST_FILE):
        if (directory / name).exists():
            _load_manifest(directory, name)


def sweep(directory: Path) -> None:
    """Remove leftovers of saves that died before their commit point: only the temp and staged
    files a save names (a user's ``.tmp-notes.txt`` beside them stays)."""
    for stale in directory.iterdir():
        if _save_leftover(stale.name):
            with contextlib.suppress(OSError):
                stale.unlink()


def _read_manifest(directory: Path) -> dict[str, Any]:
    return _load_manifest(directory, MANIFEST_FILE)


def _load_manifest(directory: Path, file: str) -> dict[str, Any]:
    """Read and check ``file`` (the manifest or the pending one); FileNotFoundError only for a
    missing pending manifest (a save finishing meanwhile), CheckpointError for anything else."""
    path = directory / file
    try:
        manifest = json.loads(read_bounded(path, MANIFEST_LIMIT))
    except FileNotFoundError:
        if file == PENDING_FILE:
            raise
        raise CheckpointError(
            f"{directory} is not a tinygpt checkpoint (no {MANIFEST_FILE}); point ",
            Opt("checkpoint"),
            " at a directory written by `tinygpt train`",
        ) from None
    except OSError as exc:
        raise CheckpointError(
            f"checkpoint {directory} is corrupt: {file}: {describe_os_error(exc)}"
        ) from None
    except (ValueError, RecursionError):
        raise CheckpointError(f"checkpoint {directory} is corrupt: unreadable {file}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{directory} does not hold a tinygpt checkpoint manifest")
    version = manifest.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"checkpoint {directory} is corrupt: {file} has no valid version")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {directory} has format version {version}, newer than this tinygpt "
            f"reads ({FORMAT_VERSION}); upgrade tinygpt"
        )
    problem = _manifest_problem(manifest)
    if problem:
        raise CheckpointError(f"checkpoint {directory} is corrupt: {file} {problem}")
    return manifest


def _manifest_problem(manifest: dict[str, Any]) -> str | None:
    """What is wrong with a manifest's contents, or None."""
    files = manifest.get("files")
    if not isinstance(files, dict):
        return "lists no files"
    for name, digest in files.items():
        if name not in KNOWN_FILES:
            return f"lists {name!r:.80}, which is not a checkpoint file"
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            return f"has no valid sha256 for {name}"
    step = manifest.get("step", 0)
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        return "has no valid step"
    sizes = manifest.get("sizes", {})
    if not isinstance(sizes, dict) or any(
        name not in files or not isinstance(n, int) or isinstance(n, bool) or n < 0
        for name, n in sizes.items()
    ):
        return "has invalid sizes"
    return None


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

    @cached_property
    def tokenizer(self) -> Tokenizer:
        """Built on first use: a BPE encoding may need loading, which listing never should."""
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
        """The bytes of ``name`` as the manifest records them.

        A save may commit between opening the checkpoint and reading a file: the file then
        holds the new content, which only the new manifest describes. So on a mismatch the
        current manifest is read again, and the read retried if it records another digest.
        """
        for _ in range(3):
            try:
                return _read_verified(self.directory, self.manifest, name, self._limit(name))
            except CheckpointError:
                fresh = _current_manifest(self.directory)
                if fresh["files"].get(name) == self.manifest["files"].get(name):
                    raise
                self.manifest = fresh
        return _read_verified(self.directory, self.manifest, name, self._limit(name))

    def _limit(self, name: str) -> int:
        """The most bytes ``name`` may have when the manifest does not declare its size:
        float32 weights (or float64, generously) and optimizer moments for this model."""
        params = parameter_bound(self.config.model)
        if name in (MODEL_FILE, BEST_FILE):
            return 8 * params + (16 << 20)
        if name == STATE_FILE:
            return 32 * params + (64 << 20)
        return JSON_LIMIT

    def metrics(self) -> list[dict[str, Any]]:
        """The evaluations this checkpoint's step includes, oldest first (from the log staged
        with a save that passed its commit point but has not been finished yet, if any)."""
        if self.manifest.get("pending"):
            staged = STAGED_PREFIX + METRICS_FILE
            with contextlib.suppress(FileNotFoundError):
                (self.directory / staged).lstat()
                return read_metrics(self.directory, up_to_step=self.step, name=staged)
        return read_metrics(self.directory, up_to_step=self.step)

    def better_weights(self) -> tuple[float, int, float] | None:
        """(best val loss, its step, the last val loss) when the best-validation weights it
        keeps beat its final ones (an overfitted run), else None."""
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
        """The verified bytes of a weights file whose tensors have the shapes config.json
        declares: checked before a model is built, so a config.json declaring billions of
        parameters beside a small file can't allocate them."""
        data = self.read_verified(name)
        shapes = safetensors_shapes(data, str(self.directory / name))
        check_weight_shapes(self.config.model, shapes, str(self.directory))
        return data

    def load_state(self) -> dict[str, Any]:
        data = self.read_verified(STATE_FILE)
        try:
            # weights_only passed explicitly so TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD can't turn it off;
            # there is no fallback to an unsafe load.
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
    """Raise CheckpointError unless ``shapes`` (a weights file's, wrapper prefixes and the
    tied head allowed) are exactly those of a model built from ``config``."""
    model = meta_model(config)  # the shapes alone: no memory
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if config.tie_embeddings:
        expected.pop(TIED_KEY, None)
    found = {}
    for key, shape in shapes.items():
        for prefix in _WRAPPER_PREFIXES:
            while key.startswith(prefix):
                key = key[len(prefix) :]
        if key != TIED_KEY or not config.tie_embeddings:
            found[key] = shape
    if found == expected:
        return
    wrong = sorted(k for k in expected if found.get(k) != expected[k]) or sorted(found)
    name = wrong[0]
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
    tied = model.config.tie_embeddings
    state = clean_state_dict(state, tied)
    if tied:
        state[TIED_KEY] = state.get("wte.weight", torch.empty(0))
    # Saving refuses non-finite weights, so a checkpoint holding them was tampered with (and
    # sampling from them would fail deep inside torch).
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


def _read_verified(
    directory: Path, manifest: dict[str, Any], name: str, limit: int = JSON_LIMIT
) -> bytes:
    """The bytes of ``name`` that match the manifest's sha256.

    Only a regular file is read, and never more than the size the manifest declares (or
    ``limit`` when it declares none). While a save is between its commit point and its renames
    (``pending`` in the manifest), a file may still sit under its staged name: the staged copy
    is tried first, then the final name (a concurrent rename moves it from one to the other,
    never away).
    """
    if name not in KNOWN_FILES:
        raise ValueError(f"not a checkpoint file: {name!r}")
    expected = manifest["files"].get(name)
    if expected is None:
        raise CheckpointError(f"checkpoint {directory} is incomplete: it has no {name}")
    size = manifest.get("sizes", {}).get(name)
    candidates = [directory / name]
    if manifest.get("pending"):
        candidates.insert(0, directory / (STAGED_PREFIX + name))
    found = False
    for path in candidates:
        try:
            data = read_bounded(path, limit if size is None else size)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise CheckpointError(
                f"checkpoint {directory} is corrupt: {describe_os_error(exc)}"
            ) from None
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
    try:
        return {**_load_manifest(directory, PENDING_FILE), "pending": True}
    except FileNotFoundError:
        pass  # no save in flight (or it just finished): the ordinary manifest
    return _read_manifest(directory)


def check_tokenizer_spec(spec: Any, config: RunConfig) -> None:
    """Raise ValueError unless ``spec`` is a tokenizer this model can use (a char vocabulary
    must be distinct single characters, one per row of the embedding)."""
    _check_spec(spec, config.model.vocab_size)


def _check_spec(spec: Any, vocab_size: int) -> None:
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
        _check_spec(inner, vocab_size - (inner.get("type") in ("char", "bpe")))
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
    manifest = _current_manifest(d)
    try:
        config = RunConfig.from_dict(json.loads(_read_verified(d, manifest, CONFIG_FILE)))
        config.model.validate()
        config.train.validate()
    except CheckpointError:
        raise
    except (ValueError, TypeError, KeyError, RecursionError, UsageError) as exc:
        # str(): the Python spelling, config.json's own field names (n_embd, not --n-embd)
        detail = str(exc)
        raise CheckpointError(f"checkpoint {d} has an invalid {CONFIG_FILE}: {detail}") from None
    try:
        spec = json.loads(_read_verified(d, manifest, TOKENIZER_FILE))
        check_tokenizer_spec(spec, config)
    except CheckpointError:
        raise
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"checkpoint {d} has an invalid {TOKENIZER_FILE}: {exc}") from None
    return Checkpoint(d, config, spec, manifest)


def is_checkpoint(directory: Path) -> bool:
    return (directory / MANIFEST_FILE).exists() or (directory / PENDING_FILE).exists()


def check_not_checkpoint_file(path: Path) -> None:
    """Refuse to write a report (``--json-file``, ``--npz``, a plot) over a file a checkpoint
    owns: ``inspect-attention --json-file ck/config.json`` would destroy the checkpoint."""
    path = Path(path)
    owned = path.name in (*_SAVED, LOCK_FILE) or _save_leftover(path.name)
    if owned and is_checkpoint(path.parent):
        raise UsageError(
            f"{path} is part of the checkpoint in {path.parent}; writing there would destroy "
            f"it. Give another file name"
        )


# Every name a save writes: its files, staged under STAGED_PREFIX until the commit point, each
# written through a temp file ``.tmp-NAME.XXXXXXXX`` (tempfile's eight characters).
_SAVED = (*KNOWN_FILES, MANIFEST_FILE, PENDING_FILE, METRICS_FILE)
_STAGED = frozenset(STAGED_PREFIX + name for name in _SAVED)
_TEMP = re.compile(re.escape(TEMP_PREFIX) + r"(.+)\.[a-z0-9_]{8}")


def _save_leftover(name: str) -> bool:
    """A temp or staged file of a save that died before its commit point."""
    temp = _TEMP.fullmatch(name)
    return name in _STAGED or (temp is not None and (temp[1] in _SAVED or temp[1] in _STAGED))


def _own_leftover(directory: Path, name: str) -> bool:
    """A name only tinygpt writes in a directory it is saving to: a save's leftovers, or the
    lock holding a tinygpt run's ``pid N on HOST``. Anything else is the user's."""
    return _save_leftover(name) or (name == LOCK_FILE and is_lock_file(directory / name))


def check_writable_destination(directory: Path, overwrite: bool, force: Opt) -> None:
    """Refuse to write a new checkpoint into a non-empty directory that is not a checkpoint
    unless ``overwrite``: its ``config.json`` or ``model.safetensors`` may be the user's own
    (a Hugging Face model has files of those very names). ``force`` names the option."""
    directory = Path(directory)
    if overwrite or is_checkpoint(directory) or not directory.is_dir():
        return
    try:
        foreign = sorted(
            p.name for p in directory.iterdir() if not _own_leftover(directory, p.name)
        )
    except OSError as exc:
        raise UsageError(f"cannot read {directory}: {describe_os_error(exc)}") from None
    if foreign:
        raise UsageError(
            f"{directory} is not empty ({printable(foreign[0][:60])}"
            f"{', ...' if len(foreign) > 1 else ''}) and holds no tinygpt checkpoint; "
            "write to a new directory, or pass ",
            force,
            " to replace checkpoint files in it",
        )


def latest_checkpoint(root: Path = Path("checkpoints")) -> Path:
    """The most recently saved checkpoint under ``root`` that no run is training right now
    (what generate and inspect-attention use by default)."""
    candidates = [p.parent for p in root.glob(f"*/{MANIFEST_FILE}")] if root.is_dir() else []
    if not candidates:
        raise CheckpointError(
            f"no checkpoints under {root}/; train one with `tinygpt train FILE` or pass ",
            Opt("checkpoint"),
        )
    # A run still training saves every few minutes and would always look newest; prefer the
    # newest one that is finished (or interrupted), unless every one is still training.
    settled = [p for p in candidates if not in_use(p)] or candidates
    return max(settled, key=lambda p: (p / MANIFEST_FILE).stat().st_mtime)


def find_checkpoint(directory: str | Path | None = None) -> Checkpoint:
    """Open ``directory``, or the newest checkpoint under ``checkpoints/`` when it is None."""
    if directory is not None:
        return open_checkpoint(directory)
    picked = latest_checkpoint()
    tell_picked(picked)
    return open_checkpoint(picked)
