"""The whole terminal view of an attention report, put together from the other views."""

from __future__ import annotations

import torch
from rich.console import Group
from rich.text import Text

from tinygpt.analysis.attention_report import AttentionReport
from tinygpt.analysis.labels import head_label
from tinygpt.views.attention_map import (
    LABEL,
    first_key,
    heatmap,
    overview,
    top_keys,
    window_note,
    window_range,
)
from tinygpt.views.head_explanation import explanation
from tinygpt.views.head_tables import chance_note, head_table


def report_view(
    report: AttentionReport,
    layer: int | None,
    head: int | None,
    query: str | None,
    window: int,
    width: int,
    show_rollout: bool = False,
) -> Group:
    """The whole terminal view of a report: heatmaps (one head, or an overview), the head
    table with chance levels, rollout and the explanation when the report carries one."""
    tokens, weights, first = report.tokens, report.weights, report.first_query
    t = len(tokens)
    n_layer, n_head = report.shape
    focus = report.query_position(query) if query is not None else None
    start, end = window_range(t, window, focus, first)
    scores = [s for s in report.scores if layer is None or s.layer == layer]
    parts: list = [Text(f"{report.model}: {t} tokens, {n_layer} layers x {n_head} heads")]
    if layer is not None and head is not None:
        # One map: its keys may reach back as far as the line allows.
        keys_from = first_key(weights[layer, head], start, end, width - LABEL - 1)
        parts.append(window_note(start, end, t, keys_from))
        label = head_label(layer, head)
        parts.append(
            heatmap(weights[layer, head], tokens, start, end, label, keys=True, keys_from=keys_from)
        )
        parts.append(top_keys(weights[layer, head], tokens, start, end))
    else:
        shown = weights if layer is None else weights[layer : layer + 1]
        parts.append(overview(shown, tokens, window, min(width, 200), focus, layer or 0, first))
    parts.append(head_table(scores))
    parts.append(chance_note(scores[0], report.induction.length))
    if show_rollout:
        full = torch.zeros(t, t)
        full[first:] = report.rollout
        parts.append(heatmap(full, tokens, start, end, "Rollout", keys=True))
    if report.explanation is not None:
        n_embd = n_head * report.run.captures[0].q.size(-1)
        parts.append(explanation(report.explanation, tokens, n_embd))
    return Group(*parts)
