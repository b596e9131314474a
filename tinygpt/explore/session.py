"""One loaded model and everything the page asks of it, each answer a plain dict for JSON.
Every number comes from the analysis package and the sampler ``tinygpt generate`` runs: the page
is a view of those, not a second implementation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
from collections.abc import Iterator
from typing import Any

from tinygpt.analysis.ablation import ablated, parse_heads, reference_rows, reference_statistics
from tinygpt.analysis.attribution import direct_logit_attribution
from tinygpt.analysis.capture import capture_attention
from tinygpt.analysis.explain import explain
from tinygpt.analysis.labels import head_label
from tinygpt.analysis.lens import logit_lens
from tinygpt.analysis.patching import patch_activations
from tinygpt.analysis.predictions import Prediction, predictions
from tinygpt.analysis.scores import all_head_scores
from tinygpt.checkpoint.store import Checkpoint
from tinygpt.checkpoint.weights import load_weights
from tinygpt.config.model import ModelConfig, parameter_bound
from tinygpt.config.sample import SampleConfig
from tinygpt.data.tokenizer import Tokenizer
from tinygpt.errors import Opt, UsageError
from tinygpt.model import GPT
from tinygpt.sampling import encode_prompt
from tinygpt.sampling.stops import StopMatcher
from tinygpt.sampling.tokens import make_generator, sample_tokens

MAX_TEXT = 1 << 16  # tokens a page may send (its text; the model sees one block of it)
TOP_K = 5  # next-token candidates shown per position and per streamed token


def memory_needed(config: ModelConfig, history_bytes: int) -> int:
    """About the bytes a page's model takes at most: its float32 weights twice (the saved ones
    are kept aside while a slider shows a past step), the kept steps, and one click's
    activations (every head's block x block attention, a few copies, and the residuals)."""
    layers, heads, block, width = config.n_layer, config.n_head, config.block_size, config.n_embd
    activations = 4 * (4 * layers * heads * block * block + 16 * layers * block * width)
    return 8 * parameter_bound(config) + history_bytes + activations


class Explorer:
    """The model a page explores; built once when ``tinygpt explore`` starts."""

    def __init__(self, model: GPT, tokenizer: Tokenizer, checkpoint: Checkpoint) -> None:
        self.model, self.tokenizer, self.checkpoint = model.eval(), tokenizer, checkpoint
        cfg = checkpoint.config.train
        rows = reference_rows(model, tokenizer, (cfg.data, cfg.encoding)) if cfg.data else None
        self.rows = rows
        # Mean ablation replaces a head's output by its mean over the training text, as
        # `inspect ablate` does (8 windows, seed 0); without the text only zero ablation.
        self.stats = reference_statistics(model, rows) if rows is not None else None
        self.history = checkpoint.history()  # the weights at earlier evaluations, if kept
        # The saved weights, put back after an answer at a past step (none kept: never needed).
        now = model.state_dict() if self.history.steps else {}
        self._now = {k: v.clone() for k, v in now.items()}
        self._past_stats: dict[int, dict[str, Any]] = {}

    @contextlib.contextmanager
    def at_step(self, step: int | None) -> Iterator[None]:
        """The model as it was at ``step`` (a step the run kept; None: as saved), for one
        answer: the server holds one lock around each answer and each sampled token."""
        if step is None or step == self.checkpoint.step:
            yield
            return
        if step not in self.history.by_step:
            raise UsageError(f"the run kept no weights of step {step}")
        source = f"{self.checkpoint.directory} (step {step})"
        now_stats = self.stats
        try:
            load_weights(self.model, self.history.weights(step), source)
            if self.rows is not None:
                if step not in self._past_stats:
                    self._past_stats[step] = reference_statistics(self.model, self.rows)
                self.stats = self._past_stats[step]
            yield
        finally:
            self.model.load_state_dict(self._now)
            self.stats = now_stats

    def info(self) -> dict[str, Any]:
        m = self.model.config
        return {
            "name": f"{self.checkpoint.directory} (step {self.checkpoint.step})",
            "n_layer": m.n_layer,
            "n_head": m.n_head,
            "block_size": m.block_size,
            "vocab_size": m.vocab_size,
            "modes": self._modes(),
            "steps": sorted({*self.history.steps, self.checkpoint.step}),
            "step": self.checkpoint.step,
        }

    def _modes(self) -> list[str]:
        """Zero ablation always; mean ablation where the training text gave its means."""
        return ["zero", "mean"] if self.stats is not None else ["zero"]

    def tokens(self, text: str) -> list[int]:
        """The ids of a text the page shows: all of it (the model reads one block of it at a
        time; the sampler continues from the last block)."""
        if not text:
            raise UsageError(Opt("prompt"), " is empty; give some text")
        ids = encode_prompt(self.tokenizer, text, sys.maxsize)[0]  # all of it: no cut
        if len(ids) > MAX_TEXT:  # said, not cut: the page would show text the model never saw
            raise UsageError(
                f"the text is {len(ids):,} tokens; the page takes {MAX_TEXT:,} at most"
            )
        return ids

    def stream(self, prompt: str, cfg: SampleConfig) -> Iterator[dict[str, Any]]:
        """The prompt's tokens, then each sampled token with its probability and the model's
        top alternatives at that step: the sampler `generate` runs, one row."""
        ids = self.tokens(prompt)
        for i in ids:
            yield {"kind": "prompt", "id": i, "text": self._text(i)}
        cfg = dataclasses.replace(cfg, alternatives=TOP_K, num_samples=1).validate()
        generator = make_generator(self.model.wte.weight.device, cfg.seed)
        stops = StopMatcher(cfg.stop)  # generate's: a stop text found across tokens, no rescans
        for step in sample_tokens(self.model, ids, cfg, [generator]):
            token, alt = step.ids[0], step.alternatives
            assert alt is not None
            text, *top = self.token_texts([token, *alt.ids[0]])
            yield {
                "kind": "sample",
                "id": token,
                "text": text,
                "prob": math.exp(alt.taken_logprob[0]),
                "top": [{"text": t, "prob": p} for t, p in zip(top, alt.probs[0], strict=True)],
            }
            stops.feed(text)
            if stops.found is not None:
                return

    def analyse(self, ids: list[int], position: int, off: list[str], mode: str) -> dict[str, Any]:
        """Everything the page shows for the token at ``position``, with the heads in ``off``
        ablated (``mode``) for the predictions. A text longer than the block is seen through
        the window the model had when it wrote that token (``offset``: where it starts)."""
        offset, ids, position = self._window(ids, position)
        tokens = self.token_texts(ids)
        run = capture_attention(self.model, ids, tokens)
        weights = run.weights  # (L, H, T, T)
        scores = all_head_scores(weights, ids)
        heads = [
            {
                "label": head_label(s.layer, s.head),
                "roles": s.roles,
                # Unrounded: the page rounds once, as `inspect attention` shows (rounding here
                # too turned 0.1212505 into 0.12125 and then 0.1212).
                "row": weights[s.layer, s.head, position, : position + 1].tolist(),
            }
            for s in scores
        ]
        target = ids[position + 1] if position + 1 < len(ids) else None
        base = predictions(self.model, ids, k=TOP_K)  # the model as it is: one forward pass
        shown = target if target is not None else base[position].top[0][0]
        return {
            "offset": offset,
            "position": position,
            "tokens": tokens,
            "chance": 1 / (position + 1),
            "heads": heads,
            "predictions": self._predicted(ids, position, off, mode, base),
            "target": self._text(shown),
            "target_is_next": target is not None,
            "lens": [dataclasses.asdict(r) for r in logit_lens(self.model, ids, position, shown)],
            "attribution": direct_logit_attribution(self.model, ids, position, shown).to_dict(),
        }

    def explanation(self, ids: list[int], position: int, label: str) -> dict[str, Any]:
        """One head's step-by-step computation for the query at ``position`` (as --explain)."""
        offset, ids, position = self._window(ids, position)
        ((layer, head),) = parse_heads([label], self.model.config.n_layer, self.model.config.n_head)
        tokens = self.token_texts(ids)
        run = capture_attention(self.model, ids, tokens)
        steps = dataclasses.asdict(explain(self.model, run, layer, head, position))
        return {**steps, "offset": offset, "tokens": tokens}

    def patch(self, ids: list[int], position: int, corrupted: str) -> dict[str, Any]:
        """Each head's output patched from the text the model sees at ``position`` into
        ``corrupted`` (as many tokens): the share of the gap in the target's log-probability it
        restores, as ``inspect patch``; the target is the model's top guess there."""
        _, clean, at = self._window(ids, position)
        bad = self.tokens(corrupted)
        if len(bad) != len(clean):
            raise UsageError(
                f"the second text is {len(bad)} tokens; it must be {len(clean)}, as many as the "
                "text the model sees at this token (change it, don't add or remove)"
            )
        target = predictions(self.model, clean, k=1)[at].top[0][0]
        result = patch_activations(self.model, clean, bad, at, target)
        m = self.model.config
        heads = [
            {"label": head_label(layer, head), "restored": float(result.heads[layer, head])}
            for layer in range(m.n_layer)
            for head in range(m.n_head)
        ]
        return {
            "target": self._text(target),
            "clean_logprob": result.clean_logprob,
            "corrupted_logprob": result.corrupted_logprob,
            "heads": heads,
            "residual": [float(r) for r in result.residual[:, at]],
        }

    def _predicted(
        self, ids: list[int], position: int, off: list[str], mode: str, base: list[Prediction]
    ) -> dict[str, Any]:
        """The top next tokens at ``position`` and the mean loss over the prompt: ``base``
        (the model as it is) when no head is off, else with ``off`` ablated in ``mode``."""
        chosen = parse_heads(off, self.model.config.n_layer, self.model.config.n_head)
        if chosen and mode not in self._modes():
            why = " needs the run's training text" if mode == "mean" else " is not a mode here"
            raise UsageError(Opt("mode", mode), f"{why}; use zero")
        if not chosen:
            return self._summary(base, position)
        with ablated(self.model, chosen, mode, self.stats or {}):
            return self._summary(predictions(self.model, ids, k=TOP_K), position)

    def _summary(self, preds: list[Prediction], position: int) -> dict[str, Any]:
        here = preds[position]
        losses = [p.loss for p in preds if p.loss is not None]
        return {
            "top": [{"text": self._text(i), "prob": p} for i, p in here.top],
            "next_prob": here.next_prob,
            "loss": here.loss,
            "prompt_loss": sum(losses) / len(losses) if losses else None,
        }

    def _window(self, ids: list[int], position: int) -> tuple[int, list[int], int]:
        """The block of ``ids`` that ends at ``position`` (or starts the text), its offset in
        ``ids`` and the position within it."""
        vocab, block = self.model.config.vocab_size, self.model.config.block_size
        if not ids or len(ids) > MAX_TEXT or any(not 0 <= i < vocab for i in ids):
            raise UsageError(f"the page sent {len(ids)} tokens; 1 to {MAX_TEXT} ids below {vocab}")
        if not 0 <= position < len(ids):
            raise UsageError(f"position {position} is outside the {len(ids)} tokens")
        start = max(0, position + 1 - block)
        return start, ids[start : start + block], position - start

    def token_texts(self, ids: list[int]) -> list[str]:
        return self.tokenizer.token_strings(ids)

    def _text(self, token: int) -> str:
        return self.tokenizer.token_strings([token])[0]
