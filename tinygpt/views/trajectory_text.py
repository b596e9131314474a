"""A training run's trajectory in the terminal (the figure is trajectory_figure.py)."""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from tinygpt.analysis.scores import HEADLINE_SCORES
from tinygpt.analysis.snapshot import PhaseChange, first_crossings, phase_change


def trajectory(metrics: list[dict]) -> Group:
    """Each evaluation's losses, ICL score and strongest head per role, then the phase change:
    when the repeat loss fell fastest and when heads first earned the roles."""
    records = [m for m in metrics if "heads" in m]
    if not records:
        return Group(
            Text(
                "no head snapshots in this run's metrics.jsonl (trained before "
                "tinygpt recorded them?)"
            )
        )
    return Group(
        _evaluations_table(records),
        _role_changes(records),
        phase_change_table(phase_change(records)),
        Text(
            "columns per role: the highest score over all heads and which head; rep: loss "
            "right after a repeated run of 3 tokens in the validation text; probe: loss on "
            "the second copy of random tokens; icl: loss late in the context minus early "
            "(negative = context helps)",
            style="dim",
        ),
    )


def _evaluations_table(records: list[dict]) -> Table:
    """One row per evaluation: its losses, ICL score and each role's strongest head (a "rep"
    column only when some evaluation measured the repeat loss)."""
    table = Table(
        title="Trajectory (probe: the start of the validation text)",
        title_justify="left",
        pad_edge=False,
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
    )
    roles = [(s.column, s.key) for s in HEADLINE_SCORES if s.role]
    has_repeat = any("repeat_loss" in m for m in records)
    # Short headers keep the table inside 80 columns, where rich would cut the numbers.
    losses = ["val", *(["rep"] if has_repeat else []), "probe", "icl"]
    for name in ("step", *losses):
        table.add_column(name, justify="right", no_wrap=True)
    for name, _ in roles:  # "0.25 L2H2": never cut the head's name
        table.add_column(name, justify="right", no_wrap=True, min_width=9)
    for m in records:
        cells = [_strongest_head(m["heads"], key) for _, key in roles]
        repeat = [f"{m['repeat_loss']:.2f}" if "repeat_loss" in m else "-"] if has_repeat else []
        table.add_row(
            str(m["step"]),
            f"{m['val_loss']:.3f}",
            *repeat,
            f"{m['induction_loss']:.2f}",
            f"{m['icl_score']:+.3f}",
            *cells,
        )
    return table


def _strongest_head(heads: dict[str, dict], key: str) -> str:
    """The highest score ``key`` of any head, and the head: "0.25 L2H2"."""
    head, value = max(
        ((h, s.get(key, float("nan"))) for h, s in heads.items()),
        key=lambda item: item[1],
    )
    return f"{value:.2f} {head}"


def _role_changes(records: list[dict]) -> Text:
    """When each head first earned each role, one line apiece."""
    lines = [
        f"{head} became {role} at step {step} ({score:.2f})"
        for head, role, step, score in first_crossings(records)
    ]
    return Text(
        "\n".join(lines)
        if lines
        else "no head crossed a role threshold (and 3x chance) during this run",
        style="bold",
    )


def phase_change_table(change: PhaseChange) -> Table:
    """The induction-head phase change side by side: the loss drop and the two heads."""
    table = Table(
        title="Phase change (Olsson et al. 2022: the heads appear as the loss drops)",
        title_justify="left",
        pad_edge=False,
        box=box.SIMPLE_HEAD,
    )
    for name in ("event", "step", "what"):
        table.add_column(name, justify="right" if name == "step" else "left")
    drop = change.drop
    if drop is None:
        table.add_row("loss drop", "-", "the repeat loss never fell")
    else:
        name = "repeat loss" if drop.key == "repeat_loss" else "induction-probe loss"
        table.add_row(
            f"{name} fell fastest",
            f"{drop.start_step}→{drop.end_step}",
            f"{drop.before:.2f} → {drop.after:.2f} (first {drop.first:.2f}, last {drop.last:.2f})",
        )
    for role, crossing in (
        ("previous-token", change.previous_token),
        ("induction", change.induction),
    ):
        if crossing is None:
            table.add_row(f"{role} head", "-", "no head earned this role")
            continue
        table.add_row(
            f"{role} head",
            str(crossing.step),
            f"{crossing.head} scored {crossing.score:.2f} (chance {crossing.chance:.2f})",
        )
    return table
