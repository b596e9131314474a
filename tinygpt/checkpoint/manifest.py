"""The checkpoint format's manifest (its files' sha256 and sizes), and reading a file only as
the manifest records it. A checkpoint is a directory:

    config.json          model + training configuration (JSON)
    tokenizer.json       the tokenizer, so generation needs nothing else
    model.safetensors    the latest weights (the tied LM head is stored once, as the embedding)
    best.safetensors     the weights with the best validation loss so far
    state.pt             optimizer, scaler, RNG and data-stream state for --resume: only tensors
                         and plain values, read with torch.load(weights_only=True)
    history.safetensors  (optional) the weights at earlier evaluations, in float16
    manifest.json        format version and the sha256 of every file above, written last
    metrics.jsonl        one JSON object per evaluation (a log, not part of the manifest)

Every load checks the sha256 (torch and safetensors accept a flipped bit). Nothing is trusted:
a manifest may name only the six files above (no path is built from a name it holds), and each
must be a regular file of the declared size (or a bound from the model's size). Saves: save.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tinygpt.checkpoint.metrics import METRICS_FILE
from tinygpt.errors import CheckpointError, Opt
from tinygpt.io.files import TEMP_PREFIX, describe_os_error, read_bounded, sha256

FORMAT = "tinygpt-checkpoint"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
MODEL_FILE = "model.safetensors"
BEST_FILE = "best.safetensors"
STATE_FILE = "state.pt"
HISTORY_FILE = "history.safetensors"  # the weights at earlier evaluations (history.py)
MANIFEST_FILE = "manifest.json"
PENDING_FILE = "manifest.pending.json"
STAGED_PREFIX = ".staged-"
# The only names a manifest may list; anything else makes the checkpoint corrupt.
KNOWN_FILES = (CONFIG_FILE, TOKENIZER_FILE, MODEL_FILE, BEST_FILE, STATE_FILE, HISTORY_FILE)
MANIFEST_LIMIT = 1 << 20
JSON_LIMIT = 64 << 20  # config.json, tokenizer.json (a char vocabulary of every code point fits)
_SHA256 = re.compile(r"[0-9a-f]{64}")


def load_manifest(directory: Path, file: str) -> dict[str, Any]:
    """Read and check ``file``; FileNotFoundError only for a missing pending manifest (a save
    finishing meanwhile), CheckpointError for anything else."""
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
    if type(version) is not int or version < 1:
        raise CheckpointError(f"checkpoint {directory} is corrupt: {file} has no valid version")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {directory} has format version {version}, newer than this tinygpt "
            f"reads ({FORMAT_VERSION}); upgrade tinygpt"
        )
    problem = manifest_problem(manifest)
    if problem:
        raise CheckpointError(f"checkpoint {directory} is corrupt: {file} {problem}")
    return manifest


def manifest_problem(manifest: dict[str, Any]) -> str | None:
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
    if type(step) is not int or step < 0:
        return "has no valid step"
    sizes = manifest.get("sizes", {})
    if not isinstance(sizes, dict) or any(
        name not in files or type(n) is not int or n < 0 for name, n in sizes.items()
    ):
        return "has invalid sizes"
    return None


def read_verified(
    directory: Path, manifest: dict[str, Any], name: str, limit: int = JSON_LIMIT
) -> bytes:
    """The bytes of ``name`` that match the manifest's sha256: a regular file, read up to its
    declared size (else ``limit``). Between a save's commit point and its renames (``pending``)
    the staged name is tried first, then the final one (a rename moves it, never away)."""
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


def current_manifest(directory: Path) -> dict[str, Any]:
    """The committed manifest: a pending one (renames not finished) wins over manifest.json."""
    try:
        return {**load_manifest(directory, PENDING_FILE), "pending": True}
    except FileNotFoundError:
        pass  # no save in flight (or it just finished): the ordinary manifest
    return load_manifest(directory, MANIFEST_FILE)


def is_checkpoint(directory: Path) -> bool:
    return (directory / MANIFEST_FILE).exists() or (directory / PENDING_FILE).exists()


# Every name a save writes, staged under STAGED_PREFIX until the commit point, each through a
# temp file ``.tmp-NAME.XXXXXXXX`` (tempfile's eight characters).
SAVED = (*KNOWN_FILES, MANIFEST_FILE, PENDING_FILE, METRICS_FILE)
_STAGED = frozenset(STAGED_PREFIX + name for name in SAVED)
_TEMP = re.compile(re.escape(TEMP_PREFIX) + r"(.+)\.[a-z0-9_]{8}")


def save_leftover(name: str) -> bool:
    """A temp or staged file of a save that died before its commit point."""
    temp = _TEMP.fullmatch(name)
    return name in _STAGED or (temp is not None and (temp[1] in SAVED or temp[1] in _STAGED))
