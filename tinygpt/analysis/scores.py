"""Head scores and roles, and the one table (:data:`SCORES`) that names them everywhere.

From a head's (T, T) weights A (query i to key j), averaged over queries i >= 1 (and >= A when
cut to ``--queries A:B``): previous-token A[i, i-1], self A[i, i], sink A[i, 0], duplicate-token
the weight on earlier copies of the query's token, entropy -sum_j A[i, j] ln A[i, j] in nats
(normalised: over its maximum ln(i + 1)). Induction and copying come from probes.py. A head earns
each role whose score clears its threshold and CHANCE_MULTIPLE x chance; else ``broad`` when the
normalised entropy is at least BROAD_ENTROPY; else ``mixed``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch

ROLE_THRESHOLD = 0.5
INDUCTION_THRESHOLD = 0.3
BROAD_ENTROPY = 0.8
CHANCE_MULTIPLE = 3.0  # a role also needs its score at least this many times its chance level
LOCAL_WINDOW = 3  # "local" share: the token itself and the two before it


@dataclass(frozen=True)
class Score:
    """One head score: its key (HeadScores field, JSON and metrics name) and where it shows."""

    key: str
    column: str | None  # the head table's column, None: JSON and HTML only
    role: str | None = None  # the role label it earns by clearing ``threshold`` and chance
    threshold: float = ROLE_THRESHOLD
    snapshot: bool = False  # recorded for every head at every evaluation during training
    headline: bool = False  # shown where space is short: comparisons, the trajectory (roles)


# The order is the order of roles in a label, of table columns and of comparison columns.
SCORES = (
    Score("previous_token", "prev", "previous-token", snapshot=True, headline=True),
    Score("induction", "induct", "induction", INDUCTION_THRESHOLD, snapshot=True, headline=True),
    Score("duplicate_token", "dup", "duplicate-token", snapshot=True),
    Score("sink", "sink", "sink", snapshot=True, headline=True),
    Score("self_attention", "self", "self", snapshot=True, headline=True),
    Score("copying", "copy"),
    Score("copying_direct", None),
    Score("entropy_normalised", "ent", snapshot=True, headline=True),
)
ROLE_SCORES = tuple(s for s in SCORES if s.role)
BY_ROLE = {s.role: s for s in ROLE_SCORES}  # "induction" -> its Score (key, threshold)
TABLE_SCORES = tuple(s for s in SCORES if s.column)
SNAPSHOT_KEYS = tuple(s.key for s in SCORES if s.snapshot)
HEADLINE_SCORES = tuple(s for s in SCORES if s.headline)


def clears(score: Score, value: float | None, chance: float) -> bool:
    """Whether ``value`` earns ``score``'s role: its threshold and CHANCE_MULTIPLE x chance."""
    if value is None or not math.isfinite(value) or value < score.threshold:
        return False
    return value >= CHANCE_MULTIPLE * chance


@dataclass
class HeadScores:
    layer: int
    head: int
    previous_token: float
    self_attention: float
    sink: float
    entropy: float
    entropy_normalised: float
    local: float = float("nan")
    mean_distance: float = float("nan")
    duplicate_token: float | None = None
    induction: float | None = None
    copying: float | None = None
    copying_direct: float | None = None
    # Each score's value for a head that spreads its attention evenly over the visible tokens.
    chance: dict[str, float] = field(default_factory=dict)

    @property
    def roles(self) -> list[str]:
        """The role labels of the head (see the module docstring)."""
        chance, entropy = self.chance, self.entropy_normalised
        roles = [
            s.role for s in ROLE_SCORES if clears(s, getattr(self, s.key), chance.get(s.key, 0.0))
        ]
        if not roles and math.isfinite(entropy) and entropy >= BROAD_ENTROPY:
            roles.append("broad")
        return roles or ["mixed"]

    def to_dict(self) -> dict:
        return {**asdict(self), "roles": self.roles}


def _targeted(a: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor) -> tuple[float, float]:
    """Mean over ``rows`` of the weight on ``targets`` keys, and the same for uniform attention."""
    t = a.size(0)
    positions = torch.arange(t, dtype=torch.float64)
    targets = targets & torch.ones(t, t, dtype=torch.bool).tril()
    hit = (a * targets).sum(-1)[rows]
    uniform = targets.sum(-1).double()[rows] / (positions[rows] + 1)
    return float(hit.mean()), float(uniform.mean())


def head_scores(
    a: torch.Tensor,
    layer: int = 0,
    head: int = 0,
    ids: list[int] | None = None,
    first_query: int = 0,
) -> HeadScores:
    """Scores of one head's (T, T) weights over queries ``max(1, first_query)`` .. T - 1."""
    t = a.size(0)
    if t - max(1, first_query) < 1:  # no query that can attend anywhere but itself
        nan = float("nan")
        return HeadScores(layer, head, nan, nan, nan, nan, nan)
    a = a.double()
    rows = torch.arange(max(1, first_query), t)
    i, j = torch.arange(t)[:, None], torch.arange(t)[None, :]
    prev, prev_chance = _targeted(a, j == i - 1, rows)
    self_, self_chance = _targeted(a, j == i, rows)
    sink, sink_chance = _targeted(a, j == 0, rows)
    local, local_chance = _targeted(a, (i - j >= 0) & (i - j < LOCAL_WINDOW), rows)
    entropy = -(a[rows] * torch.log(a[rows].clamp_min(1e-30))).sum(-1)
    distance = (a * (i - j).clamp_min(0)).sum(-1)[rows]
    scores = HeadScores(
        layer=layer,
        head=head,
        previous_token=prev,
        self_attention=self_,
        sink=sink,
        entropy=float(entropy.mean()),
        entropy_normalised=float((entropy / torch.log(rows.double() + 1)).mean()),
        local=local,
        mean_distance=float(distance.mean()),
        chance={
            "previous_token": prev_chance,
            "self_attention": self_chance,
            "sink": sink_chance,
            "local": local_chance,
            "mean_distance": float((rows.double() / 2).mean()),
            "entropy_normalised": 1.0,
        },
    )
    if ids is not None:
        tok = torch.tensor(ids)
        same = (tok[:, None] == tok[None, :]) & (j < i)
        dup_rows = torch.nonzero(same.any(-1)).flatten()
        dup_rows = dup_rows[dup_rows >= rows[0]]
        if len(dup_rows):
            scores.duplicate_token, scores.chance["duplicate_token"] = _targeted(a, same, dup_rows)
    return scores


def all_head_scores(
    weights: torch.Tensor, ids: list[int] | None = None, first_query: int = 0
) -> list[HeadScores]:
    """Scores for every head of (n_layer, n_head, T, T) weights, layer-major."""
    return [
        head_scores(weights[layer, head], layer, head, ids, first_query)
        for layer in range(weights.size(0))
        for head in range(weights.size(1))
    ]
