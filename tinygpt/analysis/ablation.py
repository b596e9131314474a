"""Does a head matter? Take it out and measure how the loss changes (on the prompt, a sample of
the training text, the repeats in it, and the repeated-random-tokens probe). Three ways out:

* ``zero``: the head's output becomes 0.
* ``mean``: its mean output over reference text: what it computes on this input is gone, its
  average contribution kept.
* ``pattern``: it keeps its own attention weights but reads each key position's mean value
  vector over the reference text: it looks where it looked, yet learns nothing of this input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from tinygpt.analysis.evaluation import token_losses
from tinygpt.analysis.labels import parse_head_spec
from tinygpt.analysis.probes import induction_loss, line_break_ids, repeat_loss
from tinygpt.data.batches import BatchSampler
from tinygpt.data.corpus import prepare_corpus
from tinygpt.data.tokenizer import Tokenizer
from tinygpt.errors import Opt, TinyGPTError, UsageError
from tinygpt.model import GPT, hooks, run_with_cache
from tinygpt.sampling import encode_prompt

MODES = ("zero", "mean", "pattern")


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise UsageError(Opt("mode"), f" must be one of {', '.join(MODES)}, got {mode!r}")


def parse_heads(specs: list[str], n_layer: int, n_head: int) -> list[tuple[int, int]]:
    heads = []
    for spec in specs:
        try:
            layer, head = parse_head_spec(spec)
        except ValueError:
            raise UsageError(
                Opt("heads"),
                f" takes a head as the tables name it, such as L1H0 (or 1.0), got {spec!r}",
            ) from None
        if not (0 <= layer < n_layer and 0 <= head < n_head):
            raise UsageError(
                Opt("heads", spec),
                f": the model has layers 0..{n_layer - 1} and heads 0..{n_head - 1}",
            )
        heads.append((layer, head))
    return heads


@torch.inference_mode()
def reference_statistics(model: GPT, rows: torch.Tensor) -> dict[int, dict[str, torch.Tensor]]:
    """Per layer: mean head outputs (n_head, hd) and position-wise mean values (n_head, T, hd),
    over the inputs of ``rows`` (B, T + 1) of reference text."""
    _, cache = run_with_cache(model, rows[:, :-1], lambda name: name.endswith(("hook_z", "hook_v")))
    return {
        layer: {
            "out": cache[f"blocks.{layer}.attn.hook_z"].mean(dim=(0, 2)),
            "values": cache[f"blocks.{layer}.attn.hook_v"].mean(dim=0),
        }
        for layer in range(len(model.blocks))
    }


@contextmanager
def ablated(
    model: GPT, heads: list[tuple[int, int]], mode: str, stats: dict[int, dict[str, torch.Tensor]]
) -> Iterator[None]:
    """Within the block, the model runs with ``heads`` ablated in ``mode``: ``zero`` and ``mean``
    replace the head's output (``hook_z``), ``pattern`` the values it reads (``hook_v``)."""
    check_mode(mode)
    point = "hook_v" if mode == "pattern" else "hook_z"

    def replace(x: torch.Tensor, name: str) -> torch.Tensor:
        layer = int(name.split(".")[1])
        x = x.clone()
        for at, h in heads:
            if at != layer:
                continue
            if mode == "zero":
                x[:, h] = 0
            elif mode == "mean":
                x[:, h] = stats[layer]["out"][h]
            else:
                x[:, h] = stats[layer]["values"][h, : x.size(2)]  # by key position
        return x

    layers = {layer for layer, _ in heads}
    with hooks(model, [(f"blocks.{layer}.attn.{point}", replace) for layer in layers]):
        yield


@torch.inference_mode()
def loss_on(model: GPT, rows: torch.Tensor) -> float:
    return float(token_losses(model, rows).mean())


def reference_rows(
    model: GPT, tokenizer: Tokenizer, text: tuple[str, str], samples: int = 8
) -> torch.Tensor | None:
    """``samples`` fixed windows (seed 0) of the training text (its path and encoding), the
    reference a mean ablation averages over; None when the text is gone or too short."""
    cfg = model.config
    try:  # the training text, when it is still where the run read it
        corpus = prepare_corpus(text[0], tokenizer, text[1])
    except TinyGPTError:
        return None
    if len(corpus.ids) <= cfg.block_size + 1:
        return None
    return BatchSampler(corpus.ids, cfg.block_size, samples, seed=0).rows(model.wte.weight.device)


def _prompt_rows(
    model: GPT, tokenizer: Tokenizer, prompt: str
) -> tuple[torch.Tensor | None, list[str]]:
    """The prompt as one row (cut to the block, with its notice); None without one."""
    if not prompt:
        return None, []
    ids, notices = encode_prompt(tokenizer, prompt, model.config.block_size)
    if len(ids) < 2:  # was left out without a word
        raise UsageError(Opt("prompt"), " is one token; a loss needs two or more")
    return torch.tensor([ids], device=model.wte.weight.device), notices


def ablation_report(
    model: GPT,
    tokenizer: Tokenizer,
    heads: list[str],
    mode: str = "mean",
    prompt: str = "",
    text: tuple[str, str] | None = None,
    samples: int = 8,
) -> dict[str, Any]:
    """Loss with and without ``heads`` on the prompt, ``samples`` windows of the training text
    (``text``: its path and encoding; skipped when gone) and the induction probe."""
    check_mode(mode)
    cfg = model.config
    chosen = parse_heads(heads, cfg.n_layer, cfg.n_head)
    text_rows = reference_rows(model, tokenizer, text, samples) if text is not None else None
    text_source = text[0] if text_rows is not None and text is not None else None
    prompt_rows, notices = _prompt_rows(model, tokenizer, prompt)
    reference = text_rows if text_rows is not None else prompt_rows
    if reference is None:
        raise UsageError(
            Opt("heads"), " needs a ", Opt("prompt"), " (or the run's training text) to measure on"
        )
    if text_rows is None and mode == "pattern":
        # One sequence is its own position-wise mean: the ablation would change nothing.
        where = text[0] if text is not None else None
        raise UsageError(
            Opt("mode", "pattern"),
            " needs reference text other than the prompt, and the run's "
            f"training text {where!r} was not found; use zero or mean",
        )
    stats = reference_statistics(model, reference)

    def change(measure: Callable[[], float | None]) -> dict[str, float] | None:
        base = measure()
        if base is None:
            return None
        with ablated(model, chosen, mode, stats):
            after = measure()
        return {"loss": base, "ablated": after, "delta": after - base}

    result: dict[str, Any] = {
        "heads": heads,
        "mode": mode,
        "text_source": text_source,
        "notices": notices,
    }
    if prompt_rows is not None:
        result["prompt"] = change(lambda: loss_on(model, prompt_rows))
    if text_rows is not None:
        result["text"] = change(lambda: loss_on(model, text_rows))
        if (repeat := change(lambda: repeat_loss(model, text_rows))) is not None:
            result["repeat"] = repeat
    avoid = line_break_ids(tokenizer, cfg.vocab_size)
    result["probe"] = change(lambda: induction_loss(model, avoid=avoid))
    return result
