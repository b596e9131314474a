"""The library entry points the CLI is a thin layer over: load, generate, evaluate.

``tinygpt.train`` lives in :mod:`tinygpt.trainer`; everything here starts from a checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tinygpt.attention.scores import (
    AttentionRun,
    all_head_scores,
    capture_attention,
    copying_scores,
    direct_copying,
    induction_chance,
    induction_probe,
    js_divergence,
    rollout,
)
from tinygpt.checkpoint import Checkpoint, latest_checkpoint, open_checkpoint
from tinygpt.config import SampleConfig
from tinygpt.data import read_text
from tinygpt.device import resolve_device
from tinygpt.errors import TinyGPTError, UsageError
from tinygpt.evaluation import EvalResult, evaluate_text
from tinygpt.model import GPT
from tinygpt.sampling import GenerationResult, encode_prompt, generate_text
from tinygpt.tokenizer import Tokenizer


def load(
    checkpoint: str | Path | None = None,
    device: str = "auto",
    attention: str = "auto",
    best: bool = False,
) -> tuple[GPT, Tokenizer, Checkpoint]:
    """Open a checkpoint (default: the newest under ``checkpoints/``) and build its model."""
    ck = open_checkpoint(checkpoint if checkpoint is not None else latest_checkpoint())
    model = ck.load_model(resolve_device(device), attention=attention, best=best)
    return model.eval(), ck.tokenizer, ck


def generate(
    checkpoint: str | Path | None = None,
    prompt: str = "",
    *,
    device: str = "auto",
    attention: str = "auto",
    on_text: Callable[[str], None] | None = None,
    **sample_options: object,
) -> GenerationResult:
    """Sample from a checkpoint; ``sample_options`` are :class:`SampleConfig` fields."""
    cfg = SampleConfig(**sample_options).validate()  # type: ignore[arg-type]
    model, tokenizer, _ = load(checkpoint, device, attention)
    return generate_text(model, tokenizer, prompt, cfg, on_text=on_text)


def attention_report(
    checkpoint: str | Path | None,
    prompt: str,
    *,
    device: str = "auto",
    best: bool = False,
    induction_length: int | None = None,
) -> tuple[dict[str, Any], AttentionRun, GPT]:
    """Every layer's and head's attention on ``prompt``, with head-role scores and rollout.

    The report is what ``inspect-attention --json`` writes (see :func:`report_json`):
    ``tokens``, ``attention`` [layer][head][query][key] and ``rollout`` (tensors here),
    ``scores`` (one dict per head) and ``induction``.
    """
    model, tokenizer, ck = load(checkpoint, device, attention="manual", best=best)
    if not prompt:
        raise UsageError("--prompt is empty; give some text (or use --induction)")
    ids, notices = encode_prompt(tokenizer, prompt, model.config.block_size)
    run = capture_attention(model, ids, tokenizer.token_strings(ids))
    weights = run.weights
    scores = all_head_scores(weights, ids)
    induction, n = induction_probe(model, induction_length)
    copying = copying_scores(model)
    direct = direct_copying(model, run)
    for s in scores:
        s.copying_direct = float(direct[s.layer, s.head])
        s.induction = float(induction[s.layer, s.head])
        s.chance["induction"] = induction_chance(n)
        s.copying = float(copying[s.layer, s.head])
    report = {
        "model": f"{ck.directory} (step {ck.step})",
        "tokens": run.tokens,
        "attention": weights,  # a tensor until written: long prompts make it large
        "scores": [s.to_dict() for s in scores],
        "rollout": rollout(weights),
        "induction": {
            "repeated_length": n,
            "scores": induction.tolist(),
            "chance": induction_chance(n),
            # A perfect induction head puts all of a second-copy query's weight on the token
            # after the earlier occurrence: it scores 1 per scored query here. Tools that
            # average over both copies (the first cannot be predicted) report about half.
            "convention": "mean over second-copy queries; perfect head = 1",
        },
        "notices": notices,
    }
    return report, run, model


def report_json(report: dict[str, Any]) -> str:
    """The report as JSON, tensors as nested lists."""
    return json.dumps({k: v.tolist() if hasattr(v, "tolist") else v for k, v in report.items()})


def compare_attention(
    checkpoint_a: str | Path, checkpoint_b: str | Path, prompt: str, *, device: str = "cpu"
) -> list[dict[str, Any]]:
    """Per-head score changes from A to B on ``prompt``, and the Jensen-Shannon divergence of
    their patterns (mean over queries, nats; 0 for identical heads)."""
    report_a, run_a, _ = attention_report(checkpoint_a, prompt, device=device)
    report_b, run_b, _ = attention_report(checkpoint_b, prompt, device=device)
    if run_a.ids != run_b.ids:
        raise UsageError("--compare needs two checkpoints with the same tokenizer")
    wa, wb = run_a.weights, run_b.weights
    if wa.shape[:2] != wb.shape[:2]:
        raise UsageError(
            f"--compare needs the same layers x heads: {tuple(wa.shape[:2])} vs "
            f"{tuple(wb.shape[:2])}"
        )
    divergence = js_divergence(wa, wb).mean(-1)  # (layers, heads)
    keys = ("previous_token", "self_attention", "sink", "induction", "entropy_normalised")
    deltas = []
    for sa, sb in zip(report_a["scores"], report_b["scores"], strict=True):
        deltas.append(
            {
                "head": f"L{sa['layer']} H{sa['head']}",
                **{k: sb[k] - sa[k] for k in keys},
                "js_divergence": float(divergence[sa["layer"], sa["head"]]),
            }
        )
    return deltas


def ablation_report(
    checkpoint: str | Path | None,
    heads: list[str],
    mode: str = "mean",
    prompt: str = "",
    *,
    device: str = "cpu",
    samples: int = 8,
) -> dict[str, Any]:
    """Loss with and without the given heads (``"L.H"``) on the prompt, a sample of the
    training text and the repeated-random-tokens probe. See :mod:`tinygpt.attention.ablation`."""
    import torch

    from tinygpt.attention.ablation import ablated, loss_on, parse_heads, reference_statistics
    from tinygpt.attention.scores import induction_loss
    from tinygpt.data import BatchSampler, prepare_corpus

    model, tokenizer, ck = load(checkpoint, device, attention="manual")
    cfg = model.config
    chosen = parse_heads(heads, cfg.n_layer, cfg.n_head)
    dev = model.wte.weight.device
    text_rows, text_source = None, None
    try:  # the training text, when it is still where the run read it
        corpus = prepare_corpus(ck.config.train.data, tokenizer, ck.config.train.encoding)
        if len(corpus.ids) > cfg.block_size + 1:
            text_rows = BatchSampler(corpus.ids, cfg.block_size, samples, seed=0).rows(dev)
            text_source = ck.config.train.data
    except TinyGPTError:
        pass
    prompt_rows = None
    if prompt:
        ids, _ = encode_prompt(tokenizer, prompt, cfg.block_size)
        prompt_rows = torch.tensor([ids], device=dev) if len(ids) > 1 else None
    reference = text_rows if text_rows is not None else prompt_rows
    if reference is None:
        raise UsageError("--ablate needs a --prompt (or the run's training text) to measure on")
    if text_rows is None and mode == "pattern":
        # One sequence is its own position-wise mean: the ablation would change nothing.
        raise UsageError(
            f"--ablation pattern needs reference text other than the prompt, and the run's "
            f"training text {ck.config.train.data!r} was not found; use zero or mean"
        )
    stats = reference_statistics(model, reference)
    measures = {"prompt": prompt_rows, "text": text_rows}
    result: dict[str, Any] = {"heads": heads, "mode": mode, "text_source": text_source}
    for name, rows in measures.items():
        if rows is None:
            continue
        base = loss_on(model, rows)
        with ablated(model, chosen, mode, stats):
            after = loss_on(model, rows)
        result[name] = {"loss": base, "ablated": after, "delta": after - base}
    base = induction_loss(model)
    with ablated(model, chosen, mode, stats):
        after = induction_loss(model)
    result["probe"] = {"loss": base, "ablated": after, "delta": after - base}
    return result


def evaluate(
    checkpoint: str | Path | None,
    file: str | Path,
    *,
    device: str = "auto",
    encoding: str = "utf-8",
    best: bool = False,
) -> EvalResult:
    """Loss, perplexity and bits per byte of a checkpoint on a whole text file."""
    model, tokenizer, _ = load(checkpoint, device, best=best)
    return evaluate_text(model, tokenizer, read_text(file, encoding))
