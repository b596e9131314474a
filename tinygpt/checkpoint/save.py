"""Saving a checkpoint as a small redo log, and what a save may write over.

Each file is written and fsynced as ``.staged-NAME``; writing ``manifest.pending.json``
atomically is the commit point; then the staged files are renamed into place and the pending
manifest becomes ``manifest.json``. A crash before the commit point leaves the old checkpoint
untouched; one after it is finished by the next save (readers find each file under either
name meanwhile). A save lists exactly its files: nothing of a replaced run survives it.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from tinygpt.checkpoint.lock import LOCK_FILE, is_lock_file
from tinygpt.checkpoint.manifest import (
    FORMAT,
    FORMAT_VERSION,
    KNOWN_FILES,
    MANIFEST_FILE,
    PENDING_FILE,
    SAVED,
    STAGED_PREFIX,
    is_checkpoint,
    load_manifest,
    save_leftover,
)
from tinygpt.checkpoint.metrics import METRICS_FILE
from tinygpt.errors import CheckpointError, Opt, TinyGPTError, UsageError
from tinygpt.io.console import printable
from tinygpt.io.files import atomic_write_bytes, describe_os_error, fsync_dir, sha256


def write_checkpoint(
    directory: Path, files: dict[str, bytes], step: int, log: bytes | None = None
) -> None:
    """Commit ``files`` into ``directory`` as one atomic checkpoint; files the old manifest
    already records unchanged are not rewritten. ``log``, the new metrics.jsonl, moves into
    place with them, so a crash can't lose the evaluation the committed weights come with."""
    unknown = sorted(set(files) - set(KNOWN_FILES))
    if unknown:
        raise ValueError(f"not checkpoint files: {unknown}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    recover(directory)
    sweep(directory)
    old = load_manifest(directory, MANIFEST_FILE) if (directory / MANIFEST_FILE).exists() else None
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
    """Finish a save that passed its commit point before a crash (idempotent): only known
    names are moved, and known files the checked pending manifest does not list are removed."""
    pending = directory / PENDING_FILE
    if not pending.exists():
        return
    manifest = load_manifest(directory, PENDING_FILE)
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
    """Raise CheckpointError unless every manifest in ``directory`` is valid (before training,
    not at the first save)."""
    for name in (PENDING_FILE, MANIFEST_FILE):
        if (directory / name).exists():
            load_manifest(directory, name)


def sweep(directory: Path) -> None:
    """Remove the temp and staged files of saves that died before their commit point (only
    names a save writes: a user's ``.tmp-notes.txt`` stays)."""
    for stale in directory.iterdir():
        if save_leftover(stale.name):
            with contextlib.suppress(OSError):
                stale.unlink()


def check_not_checkpoint_file(path: Path) -> None:
    """Refuse to write a report (``--json-file``, ``--npz``, a plot) over a checkpoint's file,
    named or reached through a link (a report is written through a link to its target)."""
    path = Path(path)
    for target in (path, Path(os.path.realpath(path))):
        owned = target.name in (*SAVED, LOCK_FILE) or save_leftover(target.name)
        if owned and is_checkpoint(target.parent):
            shown = path if target == path else f"{path} (a link to {target})"
            raise UsageError(
                f"{shown} is part of the checkpoint in {target.parent}; writing there would "
                "destroy it. Give another file name"
            )


def _own_leftover(directory: Path, name: str) -> bool:
    """A save's leftover or tinygpt's lock file; anything else is the user's."""
    return save_leftover(name) or (name == LOCK_FILE and is_lock_file(directory / name))


def check_writable_destination(directory: Path, overwrite: bool, force: Opt) -> None:
    """Refuse a non-empty directory that is not a checkpoint unless ``overwrite`` (``force``
    names the option): its ``config.json`` may be the user's own (a Hugging Face model's)."""
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
        clash = [name for name in foreign if name in SAVED]  # a checkpoint would replace these
        replaced = f" (its {printable(', '.join(clash))} would be replaced)" if clash else ""
        raise UsageError(
            f"{directory} is not empty ({printable(foreign[0][:60])}"
            f"{', ...' if len(foreign) > 1 else ''}) and holds no tinygpt checkpoint; "
            "write to a new directory, or pass ",
            force,
            f" to write the checkpoint in it{replaced}",
        )
