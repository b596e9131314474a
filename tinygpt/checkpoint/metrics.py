"""A run's evaluation log, ``metrics.jsonl``: one JSON object per evaluation.

The manifest does not cover it, so a record without the shape the trainer writes is skipped,
never passed on to the plot, ``info`` or the trajectory view.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from tinygpt.config.fields import WORSE_THAN_BEST
from tinygpt.errors import CheckpointError
from tinygpt.io.files import describe_os_error, read_bounded

METRICS_FILE = "metrics.jsonl"
METRICS_LIMIT = 256 << 20  # about 100,000 evaluations with head snapshots
_NUMBERS = (
    "train_loss",
    "val_loss",
    "last_batch_loss",
    "lr",
    "tokens_per_sec",
    "tokens_seen",
    "elapsed_s",
    "induction_loss",
    "icl_score",
    "repeat_loss",
)
_HEAD = re.compile(r"L[0-9]{1,4}H[0-9]{1,4}")  # attention.labels.head_label's format
_SNAPSHOT_NUMBERS = ("val_loss", "induction_loss", "icl_score")  # what the trajectory shows


def _number(value: Any) -> bool:
    # NaN and infinity are numbers here: a diverging run logs them, and every reader copes; an
    # integer too large for a float is not (JSON has no limit; math.isfinite overflows on it).
    if isinstance(value, float):
        return True
    return type(value) is int and abs(value) <= sys.float_info.max


def _scores(value: Any) -> bool:
    """A mapping of names to numbers (a head's scores, the chance levels)."""
    return isinstance(value, dict) and all(
        isinstance(k, str) and _number(v) for k, v in value.items()
    )


def valid_record(record: Any) -> bool:
    """Whether ``record`` has the shape of an evaluation the trainer logs."""
    if not isinstance(record, dict):
        return False
    step = record.get("step")
    if type(step) is not int or step < 0:
        return False
    if any(key in record and not _number(record[key]) for key in _NUMBERS):
        return False
    if "best" in record and not isinstance(record["best"], bool):
        return False
    if "sample" in record and not isinstance(record["sample"], str):
        return False
    if "heads" in record:
        heads = record["heads"]
        # Head names are shown in tables: only the trainer's labels (``L1H0``), never a
        # file's terminal escapes or rich markup.
        if (
            not isinstance(heads, dict)
            or not heads
            or not all(
                isinstance(k, str) and _HEAD.fullmatch(k) and _scores(v) for k, v in heads.items()
            )
        ):
            return False
        if not _scores(record.get("chance", {})) or not all(
            key in record for key in _SNAPSHOT_NUMBERS
        ):
            return False
    return True


def metrics_bytes(records: list[dict[str, Any]]) -> bytes:
    """metrics.jsonl's content for ``records``."""
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def read_metrics(
    directory: Path, up_to_step: int | None = None, name: str = METRICS_FILE
) -> list[dict[str, Any]]:
    """The well-formed records of metrics.jsonl (or ``name``), oldest first; with ``up_to_step``,
    only those the checkpoint's step includes (not those of a save that failed)."""
    path = Path(directory) / name
    try:
        data = read_bounded(path, METRICS_LIMIT)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {describe_os_error(exc)}") from None
    records = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            continue
        if valid_record(record) and (up_to_step is None or record["step"] <= up_to_step):
            records.append(record)
    return records


def better_earlier(records: list[dict[str, Any]]) -> tuple[float, int, float] | None:
    """(best val loss, its step, the last val loss) when an earlier evaluation beat the last by
    more than WORSE_THAN_BEST (an overfitted run), else None."""
    scored = [r for r in records if isinstance(r.get("val_loss"), (int, float))]
    if not scored:
        return None
    best, last = min(scored, key=lambda r: r["val_loss"]), scored[-1]
    if best is last or last["val_loss"] <= best["val_loss"] + WORSE_THAN_BEST:
        return None
    return float(best["val_loss"]), int(best["step"]), float(last["val_loss"])
