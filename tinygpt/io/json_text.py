"""JSON as every parser reads it: Python writes NaN and Infinity, which are not JSON
(``JSON.parse`` and strict parsers reject the document); a score with nothing to score is null."""

from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with NaN and infinities, at any depth, as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def json_text(value: Any, **options: Any) -> str:
    """``json.dumps`` of ``value`` with non-finite numbers as null."""
    return json.dumps(finite(value), allow_nan=False, **options)
