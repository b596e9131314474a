"""Samples as text: N rows drawn as one batch, each ending on its own (a stop text or the token
limit), streamed to the reader in order, the first sample live; and an interactive session, one
prompt after another with the model loaded once (not a chat: a base model continues the text)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from tinygpt.config.sample import SampleConfig
from tinygpt.data.tokenizer import Tokenizer
from tinygpt.errors import Interrupted, Opt, TinyGPTError, UsageError
from tinygpt.model import GPT
from tinygpt.sampling.choose import Alternatives
from tinygpt.sampling.stops import StopMatcher
from tinygpt.sampling.text import StreamDecoder, encode_prompt, token_text
from tinygpt.sampling.tokens import Step, make_generator, row_seeds, sample_tokens

SEPARATOR = "\n" + "-" * 40 + "\n"  # between samples in the streamed text
# What one call may hold (the batch's logits, softmax and sort, keys and values; the records
# --alternatives keeps): beyond these, one line up front, not an allocation that fails.
MAX_BATCH_BYTES = 8 << 30
MAX_RECORDS = 2_000_000


def check_size(model: GPT, cfg: SampleConfig) -> None:
    """Refuse a batch whose tensors or whose kept records would not fit."""
    m = model.config
    per_row = 4 * (4 * m.vocab_size + 2 * m.n_layer * m.block_size * m.n_embd)
    if cfg.num_samples * per_row > MAX_BATCH_BYTES:
        most = max(1, MAX_BATCH_BYTES // per_row)
        raise UsageError(
            Opt("num_samples", cfg.num_samples),
            f" would need about {cfg.num_samples * per_row / 2**30:,.0f} GiB for one batch of "
            f"this model; at most {most:,} at once",
        )
    records = (
        cfg.num_samples * cfg.max_new_tokens * (cfg.alternatives + 1) if cfg.alternatives else 0
    )
    if records > MAX_RECORDS:
        raise UsageError(
            Opt("alternatives", cfg.alternatives),
            f" for {cfg.num_samples:,} samples of {cfg.max_new_tokens:,} tokens would keep "
            f"{records:,} records; at most {MAX_RECORDS:,} (ask for fewer samples or tokens)",
        )


@dataclass
class Sample:
    """One sample: its text (the prompt, then what was generated up to any stop text) and how
    it ended: ``"stop"`` (``stop`` says which text), ``"record"`` (a records model's
    end-of-record token) or ``"length"`` (the token limit)."""

    text: str
    seed: int
    new_tokens: int = 0
    finish: str = "length"
    stop: str | None = None
    tokens: list[dict[str, Any]] = field(default_factory=list)  # with alternatives only

    def to_dict(self) -> dict[str, Any]:
        data = {key: getattr(self, key) for key in ("seed", "new_tokens", "finish", "stop")}
        if self.tokens:
            data["tokens"] = self.tokens
        return data


@dataclass
class GenerationResult:
    details: list[Sample]
    seconds: float
    notices: list[str] = field(default_factory=list)

    @property
    def samples(self) -> list[str]:
        return [d.text for d in self.details]

    @property
    def new_tokens(self) -> int:
        return sum(d.new_tokens for d in self.details)

    @property
    def tokens_per_sec(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "new_tokens": self.new_tokens,
            "seconds": round(self.seconds, 6),
            "tokens_per_sec": round(self.tokens_per_sec, 3),
            "sample_details": [d.to_dict() for d in self.details],
        }


class Row:
    """One sample being written: bytes to characters, characters past the stop texts."""

    def __init__(self, tokenizer: Tokenizer, cfg: SampleConfig, prompt_text: str, seed: int):
        self.tokenizer = tokenizer
        self.utf8 = StreamDecoder(tokenizer)
        self.stops = StopMatcher(cfg.stop)
        # a records model's end-of-record token ends the sample, unless told to go on
        self.eor = getattr(tokenizer, "eor", None) if cfg.stop_at_record else None
        self.sample = Sample(prompt_text, seed)
        # joined once at the end: appending to a string attribute is quadratic over a sample
        self.pieces = [prompt_text]
        self.done = False

    def feed(self, step: Step, row: int) -> str:
        """Take this row's token of ``step``; return the text it releases."""
        token_id = step.ids[row]
        self.sample.new_tokens += 1
        if step.alternatives is not None:
            self.sample.tokens.append(self._record(token_id, step.alternatives, row))
        if token_id == self.eor:
            text = self.close()  # the record is whole: what the stop texts held back is kept
            self.sample.finish = "record"
            return text
        return self._release(self.utf8.feed(token_id))

    def close(self) -> str:
        """At the token limit: the last partial character and any text held back."""
        text = self._release(self.utf8.flush())
        if not self.done:
            held = self.stops.flush()
            self.pieces.append(held)
            text += held
        self.done = True
        return text

    def result(self) -> Sample:
        self.sample.text = "".join(self.pieces)
        return self.sample

    def _release(self, piece: str) -> str:
        text = self.stops.feed(piece)
        if self.stops.found is not None:
            self.done = True
            self.sample.finish, self.sample.stop = "stop", self.stops.found
        self.pieces.append(text)
        return text

    def _record(self, token_id: int, alt: Alternatives, row: int) -> dict[str, Any]:
        return {
            "id": token_id,
            "text": token_text(self.tokenizer, token_id),
            "logprob": round(alt.taken_logprob[row], 6),
            "alternatives": [
                {"id": i, "text": token_text(self.tokenizer, i), "prob": round(p, 6)}
                for i, p in zip(alt.ids[row], alt.probs[row], strict=True)
            ],
        }


class InOrder:
    """Streams sample 0 live; later samples are held until every sample before them ended, then
    shown at once and continued live."""

    def __init__(self, on_text: Callable[[str], None] | None, count: int) -> None:
        self.on_text = on_text
        self.held: list[list[str]] = [[] for _ in range(count)]
        self.ended = [False] * count
        self.current = 0

    def write(self, row: int, text: str) -> None:
        if not text or self.on_text is None:
            return
        if row == self.current:
            self.on_text(text)
        else:
            self.held[row].append(text)

    def end(self, row: int) -> None:
        self.ended[row] = True
        while self.current < len(self.ended) and self.ended[self.current]:
            self.current += 1
            if self.current < len(self.ended) and self.on_text is not None:
                self.on_text(SEPARATOR + "".join(self.held[self.current]))
                self.held[self.current] = []


def generate_text(
    model: GPT,
    tokenizer: Tokenizer,
    prompt: str,
    cfg: SampleConfig,
    on_text: Callable[[str], None] | None = None,
    graph: bool | None = None,
) -> GenerationResult:
    """Sample ``cfg.num_samples`` continuations as one batch (sample i with seed ``cfg.seed +
    i``), calling ``on_text`` with each piece, sample after sample. The time reported is the
    sampling loop's alone."""
    cfg.validate()
    check_size(model, cfg)
    device = model.wte.weight.device
    prompt_ids, notices = encode_prompt(tokenizer, prompt, model.config.block_size)
    prompt_text = tokenizer.decode(prompt_ids) if prompt else ""
    eor = getattr(tokenizer, "eor", None)
    if prompt and eor is not None and prompt_ids[0] != eor:
        # a prompt is the start of a record, as every record in training followed an eor
        prompt_ids = [eor, *prompt_ids][-model.config.block_size :]
    seeds = row_seeds(cfg.seed, cfg.num_samples)
    rows = [Row(tokenizer, cfg, prompt_text, seed) for seed in seeds]
    out = InOrder(on_text, len(rows))
    for i in range(len(rows)):
        out.write(i, prompt_text)
    generators: list[torch.Generator | None] = [make_generator(device, s) for s in seeds]
    t0 = time.perf_counter()
    for step in sample_tokens(model, prompt_ids, cfg, generators, graph=graph):
        for i, row in enumerate(rows):
            if not row.done:
                out.write(i, row.feed(step, i))
                if row.done:
                    out.end(i)
        if all(row.done for row in rows):
            break
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    for i, row in enumerate(rows):
        if not row.done:
            out.write(i, row.close())
            out.end(i)
    return GenerationResult([row.result() for row in rows], seconds, notices)


def interactive(
    model: GPT,
    tokenizer: Tokenizer,
    cfg: SampleConfig,
    read_line: Callable[[], str],
    write: Callable[[str], None],
    warn: Callable[[TinyGPTError], None] | None = None,
) -> int:
    """Answer prompts from ``read_line`` until end of input (EOFError); returns the samples
    written. Ctrl-C stops a sample; a prompt the model can't take is told to ``warn`` (else
    written) and the session goes on; SIGTERM or SIGHUP ends it as it ends any command."""
    turns = 0
    while True:
        try:
            prompt = read_line()
        except EOFError:
            write("\n")
            return turns
        except Interrupted:
            raise
        except KeyboardInterrupt:  # Ctrl-C at the prompt: a fresh prompt, as shells do
            write("\n")
            continue
        try:
            generate_text(model, tokenizer, prompt, cfg, on_text=write)
        except Interrupted:
            raise
        except KeyboardInterrupt:
            write(" [stopped]")
        except TinyGPTError as exc:
            (warn or (lambda e: write(f"error: {e}")))(exc)
            continue
        write("\n")
        turns += 1
