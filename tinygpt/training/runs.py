"""What a checkpoint holds and what runs exist: ``tinygpt info`` and ``tinygpt runs``."""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tinygpt.checkpoint.manifest import MANIFEST_FILE, STATE_FILE
from tinygpt.checkpoint.store import find_checkpoint
from tinygpt.errors import TinyGPTError
from tinygpt.model import count_parameters
from tinygpt.training.optim import describe_groups
from tinygpt.training.schedule import describe as describe_schedule


def checkpoint_info(directory: str | Path | None = None, groups: bool = True) -> dict[str, Any]:
    """What ``tinygpt info`` shows about a checkpoint (default: the newest); ``groups=False``
    leaves out the optimizer groups, which take building the model (``runs`` needs none)."""
    ck = find_checkpoint(directory)
    state = ck.load_state() if ck.has(STATE_FILE) else {}  # imported models have no state
    m, t = ck.config.model, ck.config.train
    params = count_parameters(m)
    metrics = ck.metrics()
    best = float(state.get("best_val", math.inf))
    return {
        "checkpoint": str(ck.directory),
        **params.to_dict(),
        "shape": {
            k: getattr(m, k)
            for k in ("n_layer", "n_head", "n_embd", "block_size", "vocab_size", "dropout", "bias")
        },
        "arch": m.arch,
        "optimizer_groups": [asdict(g) for g in describe_groups(m, t)] if groups else [],
        "schedule": describe_schedule(t),
        "tokenizer": ck.tokenizer_name,
        **ck.record_options,  # records/separator: where the end-of-record token goes
        # An imported model (no training state) was not trained here: its schedule and step
        # counts are placeholders, which `info` says rather than shows.
        "trained_here": ck.has(STATE_FILE),
        "steps": ck.step,
        "max_steps": t.max_steps if ck.has(STATE_FILE) else 0,
        "best_val_loss": best if math.isfinite(best) else None,
        "last_val_loss": metrics[-1]["val_loss"] if metrics else None,
        "tokens_seen": int(state.get("tokens_seen", 0)),
        "training_seconds": round(float(state.get("elapsed", 0.0)), 1),
        "device": state.get("device"),
        "dtype": state.get("dtype"),
        "effective_batch_size": t.effective_batch_size(int(state.get("world_size", 1))),
        "data": t.data,
        "saved": time.strftime("%Y-%m-%d %H:%M", time.localtime(ck.saved_at)),
    }


# What `tinygpt runs` shows of each checkpoint's info.
_LISTED = (
    "parameters",
    "position_embedding_parameters",
    "steps",
    "best_val_loss",
    "tokens_seen",
    "tokenizer",
    "saved",
)


def list_runs(root: Path = Path("checkpoints")) -> list[dict[str, Any]]:
    """Every checkpoint directly under ``root``, newest first; broken ones are listed as such."""
    rows = []
    found = root.glob(f"*/{MANIFEST_FILE}") if root.is_dir() else ()
    for manifest in sorted(found, key=_mtime, reverse=True):
        directory = manifest.parent
        try:
            info = checkpoint_info(directory, groups=False)
            rows.append({"name": directory.name, **{k: info[k] for k in _LISTED}})
        except (TinyGPTError, OSError) as exc:  # one broken run must not hide the others
            rows.append({"name": directory.name, "error": str(exc)})
    return rows


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # removed (or unreadable) since it was listed
        return 0.0
