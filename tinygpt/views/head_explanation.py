"""One head's attention for one query, explained step by step with the model's own numbers:
q and k, QK-norm and RoPE when the model has them, the scaled scores, the mask, the softmax,
each key's contribution and the head's share of the residual update."""

from __future__ import annotations

import math

from rich.console import Group
from rich.table import Table
from rich.text import Text

from tinygpt.analysis.explain import AFTER_COPY, Explanation
from tinygpt.analysis.labels import visible
from tinygpt.views.attention_map import LABEL


def explanation(e: Explanation, tokens: list[str], n_embd: int, limit: int = 12) -> Group:
    """The mechanism for one query, with the model's own numbers."""
    q_tok = visible(tokens[e.query])
    steps = _steps(e)
    header = Text.assemble(
        (f"Layer {e.layer}, head {e.head}, query {e.query} ({q_tok!r})\n", "bold"),
        *(f"{n}. {text}\n" for n, text in enumerate(steps, 1)),
    )
    # The output steps go on numbering from where the attention steps stopped.
    footer = _output_steps(e, tokens, n_embd, first=len(steps) + 1)
    return Group(header, _contribution_table(e, tokens, limit), footer)


def _steps(e: Explanation) -> list[str]:
    """From q and k to the weights, QK-norm and RoPE only where the model has them."""
    steps = [
        f"query q = x·W_Q for this token: a {e.head_dim}-dim vector, ‖q‖ = "
        f"{e.projected_q_norm:.3f}; each key k_j = x_j·W_K likewise"
    ]
    if e.qk_norm:
        steps.append(
            f"QK-norm: q and every k are rescaled to unit RMS (‖q‖ = √d_k = "
            f"{math.sqrt(e.head_dim):.3f}), so |q·k_j| ≤ d_k = {e.head_dim} whatever the "
            f"weights learn"
        )
    if e.rotary:
        steps.append(
            "RoPE: each pair of channels of q (at position i) and k_j (at j) is rotated by an "
            "angle proportional to the position, so q·k_j depends on the distance i - j, not "
            f"on where the pair sits (‖q‖ stays {e.q_norm:.3f}; column 'unrotated' below is "
            "q·k_j without it)"
        )
    steps += [
        f"scores q·k_j for the {e.query + 1} visible keys j ≤ {e.query}; the scaled score "
        f"divides by √d_k = {math.sqrt(e.head_dim):.3f} so the softmax does not saturate",
        f"causal mask: the {e.masked} later position(s) get -inf and so weight exactly 0",
        "softmax turns the scaled scores into weights that sum to 1",
    ]
    return steps


def _contribution_table(e: Explanation, tokens: list[str], limit: int) -> Table:
    """The ``limit`` keys that contribute most (an 'unrotated' column for RoPE models)."""
    table = Table(
        pad_edge=False,
        title_justify="left",
        title=f"keys (largest {min(limit, e.query + 1)} contributions)",
    )
    columns = ["key", "token", "q·k", "÷√d_k", "weight", "‖w·v‖", "key is"]
    if e.unrotated_scores is not None:
        columns.insert(2, "unrotated")
    for name in columns:
        table.add_column(name, justify="left" if name in ("key", "token") else "right")
    for j, w, norm in e.contributions[:limit]:
        unrotated = [] if e.unrotated_scores is None else [f"{e.unrotated_scores[j]:.3f}"]
        table.add_row(
            str(j),
            visible(tokens[j])[:LABEL],
            *unrotated,
            f"{e.raw_scores[j]:.3f}",
            f"{e.scaled_scores[j]:.3f}",
            f"{w:.3f}",
            f"{norm:.3f}",
            e.relations[j] if j < len(e.relations) else "",
        )
    return table


def _output_steps(e: Explanation, tokens: list[str], n_embd: int, first: int) -> Text:
    """After the weights: the most-attended key, the output (step ``first``), its way into the
    residual stream, and whether the recomputed weights match the model's."""
    n_head = len(e.head_shares)
    shares = "  ".join(f"H{h} {s:.2f}" for h, s in enumerate(e.head_shares))
    return Text.assemble(
        _top_key_line(e, tokens),
        f"{first}. output o = Σ_j weight_j · v_j, ‖o‖ = {e.output_norm:.3f}\n",
        f"{first + 1}. the {n_head} heads' outputs ({e.head_dim} dims each) are "
        f"concatenated into {n_embd} dims and projected by W_O back into the residual "
        f"stream. Size of each head's part of that update, ‖W_O[:, head]·o_head‖: {shares}\n",
        (
            "check: these weights equal the model's own softmax output"
            if e.weights_match_model
            else "warning: recomputed weights differ from the model's"
        ),
    )


def _top_key_line(e: Explanation, tokens: list[str]) -> str:
    """What the most-attended key is, in words (the induction pattern spelled out)."""
    j = e.top_key
    what = e.relations[j] if j < len(e.relations) else ""
    line = f"most weight ({e.weights[j]:.2f}) on key {j} ({visible(tokens[j])!r})"
    if what == AFTER_COPY:
        return (
            f"{line}: the token right after the earlier copy of {visible(tokens[e.query])!r} "
            f"(at {j - 1}), the induction pattern: it reads what followed last time, to "
            f"predict {visible(tokens[j])!r} next\n"
        )
    return f"{line}: {what}\n" if what else f"{line}\n"
