"""The inspect commands as library calls: a checkpoint and a prompt in, one analysis's report out
(the views render it; ``tinygpt inspect ...`` and the explore page are layers over these)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tinygpt.analysis.ablation import ablation_report as measure_ablation
from tinygpt.analysis.attention_report import AttentionReport, parse_query_range
from tinygpt.analysis.attribution import direct_logit_attribution
from tinygpt.analysis.capture import js_divergence
from tinygpt.analysis.explain import explain as explain_query
from tinygpt.analysis.inputs import resolve_position, resolve_target
from tinygpt.analysis.interpret_report import AttributionReport, PatchingReport, PredictionsReport
from tinygpt.analysis.labels import head_label
from tinygpt.analysis.lens import logit_lens
from tinygpt.analysis.patching import check_same_length, patch_activations
from tinygpt.analysis.predictions import log_probs, predictions
from tinygpt.analysis.probes import default_probe_length, induction_sequence, line_break_ids
from tinygpt.analysis.roles import is_role, role_notice, strongest
from tinygpt.analysis.scores import HEADLINE_SCORES
from tinygpt.checkpoint.store import Checkpoint, load
from tinygpt.config.fields import MAX_ALTERNATIVES
from tinygpt.data.tokenizer import Tokenizer
from tinygpt.errors import Opt, UsageError
from tinygpt.io.console import printable
from tinygpt.model import GPT
from tinygpt.sampling import encode_prompt


def attention_report(
    checkpoint: str | Path | None,
    prompt: str = "",
    *,
    device: str = "auto",
    best: bool = False,
    induction: bool = False,
    queries: str | None = None,
    layer: int | None = None,
    head: int | str | None = None,
    query: str | None = None,
    explain: bool = False,
    induction_length: int | None = None,
) -> AttentionReport:
    """Every head's attention on ``prompt`` (or, with ``induction``, on random tokens repeated
    twice), with scores, rollout and probes. ``queries`` ("A:B") cuts the report; ``explain``
    adds that ``query`` of that head step by step. ``head`` may be a label (``"L1H2"``) or a
    role (``"induction"``: the strongest such head, in ``layer`` if given); ``report.focus`` is
    the head looked at."""
    _check_text(prompt, induction)
    model, tokenizer, ck = load(checkpoint, device, attention="manual", best=best)
    avoid = line_break_ids(tokenizer, model.config.vocab_size)
    if induction:  # the probe's ids as they are: decoding and encoding again changes BPE ids
        n = default_probe_length(model, avoid)
        ids, notices = induction_sequence(model.config.vocab_size, n, avoid=avoid), []
    else:
        ids, notices = encode_prompt(tokenizer, prompt, model.config.block_size)
    name = _shown_name(ck)
    report = AttentionReport.build(
        model, ids, tokenizer.token_strings(ids), name, notices, induction_length, avoid
    )
    report.predictions = _predictions(model, tokenizer, ids, name, 5)
    if queries is not None:
        report = report.cut(*parse_query_range(queries, len(report.tokens)))
    if isinstance(head, str) and not is_role(head):
        layer, head = report.named_head(head, layer)
    elif isinstance(head, str):
        role = head.strip().lower()
        layer, head, score = strongest(model, tokenizer, role, layer)
        report.notices.append(role_notice(role, layer, head, score))
    report.check_focus(layer, head)
    report.focus = (layer, head)
    position = report.query_position(query)
    if explain:
        if head is None:  # said, not chosen silently
            report.notices.append(
                f"explaining {head_label(layer or 0, 0)}: name a head for another"
            )
        report.explanation = explain_query(model, report.run, layer or 0, head or 0, position)
    return report


def _check_text(prompt: str, induction: bool) -> None:
    if induction and prompt:
        raise UsageError(
            Opt("induction", True),
            " looks at its own random tokens; drop ",
            Opt("prompt"),
            " or ",
            Opt("induction", True),
        )
    if not induction and not prompt:
        raise UsageError(
            Opt("prompt"), " is empty; give some text (or use ", Opt("induction", True), ")"
        )


def compare_attention(
    checkpoint_a: str | Path, checkpoint_b: str | Path, prompt: str, *, device: str = "cpu"
) -> list[dict[str, Any]]:
    """Per-head score changes from A to B, and the Jensen-Shannon divergence of their patterns
    (mean over queries, nats), on ``prompt`` or else the repeated-random-tokens probe."""
    probe = not prompt
    report_a = attention_report(checkpoint_a, prompt, device=device, induction=probe)
    report_b = attention_report(checkpoint_b, prompt, device=device, induction=probe)
    if report_a.run.ids != report_b.run.ids:
        a, b = len(report_a.run.ids), len(report_b.run.ids)
        # the probe's length and a long prompt's cut follow the block size
        raise UsageError(
            "comparing needs the same tokens in both: "
            + (f"{a} and {b} (block sizes or tokenizers differ)" if a != b else "tokenizers differ")
        )
    if report_a.shape != report_b.shape:
        raise UsageError(
            f"comparing needs the same layers x heads: {report_a.shape} vs {report_b.shape}"
        )
    divergence = js_divergence(report_a.weights, report_b.weights).mean(-1)  # (layers, heads)
    return [
        {
            "head": head_label(sa.layer, sa.head),
            **{s.key: getattr(sb, s.key) - getattr(sa, s.key) for s in HEADLINE_SCORES},
            "js_divergence": float(divergence[sa.layer, sa.head]),
        }
        for sa, sb in zip(report_a.scores, report_b.scores, strict=True)
    ]


def ablation_report(
    checkpoint: str | Path | None,
    heads: list[str],
    mode: str = "mean",
    prompt: str = "",
    *,
    device: str = "cpu",
    samples: int = 8,
) -> dict[str, Any]:
    """Loss with and without ``heads`` (labels or roles): see :mod:`tinygpt.analysis.ablation`."""
    model, tokenizer, ck = load(checkpoint, device, attention="manual")
    text = (ck.config.train.data, ck.config.train.encoding) if ck.config.train.data else None
    named = [head_label(*strongest(model, tokenizer, h)[:2]) if is_role(h) else h for h in heads]
    return measure_ablation(model, tokenizer, named, mode, prompt, text, samples)


def _prompt_ids(tokenizer: Tokenizer, model: GPT, prompt: str, name: str = "prompt"):
    if not prompt:
        raise UsageError(Opt(name), " is empty; give some text")
    what = "the prompt" if name == "prompt" else f"the {name} prompt"
    try:
        return encode_prompt(tokenizer, prompt, model.config.block_size, what)
    except UsageError as exc:  # which of patch's two prompts the tokenizer refused
        if name == "prompt":
            raise
        raise UsageError(Opt(name), ": ", *exc.message.pieces) from None


def _shown_name(ck: Checkpoint) -> str:
    """How reports name a model: escaped for terminals, HTML and SVG, and writable as UTF-8 (a
    folder name's bytes need not be)."""
    return printable(f"{ck.directory} (step {ck.step})")


def _top_guess(model: GPT, ids: list[int], position: int) -> int:
    return int(log_probs(model, ids)[position].argmax())


def _names(tokenizer: Tokenizer, ids: Sequence[int]) -> dict[int, str]:
    unique = sorted(set(ids))
    return dict(zip(unique, tokenizer.token_strings(unique), strict=True))


def _predictions(
    model: GPT,
    tokenizer: Tokenizer,
    ids: list[int],
    name: str,
    top: int,
    notices: Sequence[str] = (),
) -> PredictionsReport:
    preds = predictions(model, ids, k=top)
    shown = [i for p in preds for i, _ in p.top] + ids
    tokens = tokenizer.token_strings(ids)
    return PredictionsReport(name, tokens, preds, _names(tokenizer, shown), list(notices))


def predictions_report(
    checkpoint: str | Path | None,
    prompt: str,
    *,
    top: int = 5,
    device: str = "auto",
    best: bool = False,
) -> PredictionsReport:
    """At each position of ``prompt``: the model's ``top`` next tokens and the probability and
    loss of the token that came next."""
    if not 1 <= top <= MAX_ALTERNATIVES:
        raise UsageError(Opt("top", top), f" must be between 1 and {MAX_ALTERNATIVES}")
    model, tokenizer, ck = load(checkpoint, device, best=best)
    ids, notices = _prompt_ids(tokenizer, model, prompt)
    return _predictions(model, tokenizer, ids, _shown_name(ck), top, notices)


def logit_attribution(
    checkpoint: str | Path | None,
    prompt: str,
    *,
    position: str | int | None = None,
    target: str | None = None,
    device: str = "auto",
    best: bool = False,
) -> AttributionReport:
    """Each component's direct share of the ``target`` token's logit at ``position`` (index or
    token text; the last by default), and the logit lens there. ``target`` (text or ``#ID``)
    defaults to the token that came next, at the last position the model's top prediction."""
    model, tokenizer, ck = load(checkpoint, device, best=best)
    ids, notices = _prompt_ids(tokenizer, model, prompt)
    tokens = tokenizer.token_strings(ids)
    at = resolve_position(tokens, position)
    chosen = resolve_target(tokenizer, model.config.vocab_size, target)
    source = "given" if chosen is not None else "next" if at + 1 < len(ids) else "top"
    if source == "next":
        chosen = ids[at + 1]
    elif source == "top":
        chosen = _top_guess(model, ids, at)
    attribution = direct_logit_attribution(model, ids, at, chosen)
    rows = logit_lens(model, ids, at, chosen)
    names = _names(tokenizer, [r.top_id for r in rows] + [chosen])
    name = _shown_name(ck)
    return AttributionReport(
        name, tokens, at, chosen, names[chosen], source, attribution, rows, names, notices
    )


SMALL_GAP = 0.5  # nats between the clean and corrupted runs' target log-probabilities


def activation_patching(
    checkpoint: str | Path | None,
    clean: str,
    corrupted: str,
    *,
    position: str | int | None = None,
    target: str | None = None,
    device: str = "auto",
    best: bool = False,
) -> PatchingReport:
    """How much of the gap in the target's log-probability at ``position`` each head's output and
    each layer's residual stream restores, patched from ``clean`` into ``corrupted``. ``target``
    defaults to the clean run's top prediction there."""
    model, tokenizer, ck = load(checkpoint, device, best=best)
    clean_ids, notices = _prompt_ids(tokenizer, model, clean, "clean")
    bad_ids, more = _prompt_ids(tokenizer, model, corrupted, "corrupted")
    if notices or more:  # cut to the block: the whole prompts must line up, not their ends
        check_same_length(len(tokenizer.encode(clean)), len(tokenizer.encode(corrupted)))
    tokens = tokenizer.token_strings(clean_ids)
    at = resolve_position(tokens, position)
    chosen = resolve_target(tokenizer, model.config.vocab_size, target)
    if chosen is None:
        chosen = _top_guess(model, clean_ids, at)
    result = patch_activations(model, clean_ids, bad_ids, at, chosen)
    gap = result.clean_logprob - result.corrupted_logprob
    if abs(gap) < SMALL_GAP:
        more.append(
            f"the two prompts' log-probabilities of the target differ by only {abs(gap):.3f} nats: "
            "each share restored is a ratio of small differences (choose a --target the "
            "corruption matters to)"
        )
    name, cfg = _shown_name(ck), model.config
    bad_tokens = tokenizer.token_strings(bad_ids)
    target_text = tokenizer.token_strings([chosen])[0]
    return PatchingReport(
        name, tokens, bad_tokens, target_text, cfg.n_layer, cfg.n_head, result, notices + more
    )
