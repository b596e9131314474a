"""The sampling loop: temperature, top-k, top-p, a KV cache, and a sliding context window.

Every new token comes from ``model(context)``'s last logits. With the KV cache only the new token
is run through the model; without it the whole window is recomputed each step (for comparison).

When the sequence outgrows the block size, both paths crop it the same way: the window jumps
forward to keep the last 3/4 of a block, and the cache is refilled from those tokens once. So
the model always sees between 3/4 of a block and a full block of context, the cache is rebuilt
once per quarter-block instead of at every token, and cached and uncached runs pick identical
tokens.
"""

from __future__ import annotations

import codecs
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from tinygpt.config import SampleConfig
from tinygpt.model import GPT, KVCache
from tinygpt.tokenizer import Tokenizer


def filter_logits(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """Set to -inf every logit outside the top-k and outside the top-p (nucleus) mass."""
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = torch.softmax(sorted_logits, dim=-1)
        # Drop a token when the mass before it already reaches top_p (the first always stays).
        drop_sorted = (probs.cumsum(dim=-1) - probs) >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(
    logits: torch.Tensor, cfg: SampleConfig, generator: torch.Generator | None
) -> torch.Tensor:
    """Pick the next token id for each row of ``logits`` (B, vocab); temperature 0 is greedy."""
    if cfg.temperature == 0:
        return logits.argmax(dim=-1)
    logits = filter_logits(logits.float() / cfg.temperature, cfg.top_k, cfg.top_p)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def keep_after_crop(block_size: int) -> int:
    return max(1, (3 * block_size) // 4)


@torch.inference_mode()
def stream_tokens(
    model: GPT,
    prompt_ids: list[int],
    cfg: SampleConfig,
    generator: torch.Generator | None = None,
) -> Iterator[int]:
    """Yield ``cfg.max_new_tokens`` new token ids continuing ``prompt_ids``."""
    model.eval()
    device = model.wte.weight.device
    block = model.config.block_size
    tokens = list(prompt_ids[-block:])
    start = 0  # the model's context is tokens[start:]
    cache = KVCache(model.config, 1, device, model.wte.weight.dtype) if cfg.kv_cache else None
    fed = 0  # with a cache: how many of tokens[start:] are already in it
    for _ in range(cfg.max_new_tokens):
        if len(tokens) - start > block:
            start = len(tokens) - keep_after_crop(block)
            fed = 0
            if cache is not None:
                cache.reset()
        if cache is not None:
            new = torch.tensor([tokens[start + fed :]], device=device)
            logits, _, _ = model(new, cache=cache, last_only=True)
            fed = len(tokens) - start
        else:
            context = torch.tensor([tokens[start:]], device=device)
            logits, _, _ = model(context, last_only=True)
        next_id = int(sample_next(logits[:, -1, :], cfg, generator)[0])
        tokens.append(next_id)
        yield next_id


class StreamDecoder:
    """Turns token ids into text as they arrive; a BPE token may end mid-character."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, token_id: int) -> str:
        return self._utf8.decode(self.tokenizer.decode_bytes([token_id]))

    def flush(self) -> str:
        return self._utf8.decode(b"", final=True)


@dataclass
class GenerationResult:
    samples: list[str]
    new_tokens: int
    seconds: float
    notices: list[str] = field(default_factory=list)

    @property
    def tokens_per_sec(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "samples": self.samples,
            "new_tokens": self.new_tokens,
            "seconds": round(self.seconds, 6),
            "tokens_per_sec": round(self.tokens_per_sec, 3),
        }


def encode_prompt(
    tokenizer: Tokenizer, prompt: str, block_size: int
) -> tuple[list[int], list[str]]:
    """Prompt ids (cropped to the block size, with a notice) and notices for the user."""
    notices = []
    if prompt:
        ids = tokenizer.encode(prompt)
    else:
        # Something must start the sequence: GPT-2's document separator, or a newline.
        eot = getattr(tokenizer, "eot_token", None)
        ids = [eot] if eot is not None else tokenizer.encode("\n") if _has(tokenizer, "\n") else [0]
    if len(ids) > block_size:
        notices.append(
            f"the prompt has {len(ids)} tokens; only its last {block_size} "
            f"(the block size) are used"
        )
        ids = ids[-block_size:]
    return ids, notices


def _has(tokenizer: Tokenizer, text: str) -> bool:
    stoi = getattr(tokenizer, "stoi", None)
    return stoi is None or text in stoi


def make_generator(device: torch.device, seed: int | None) -> torch.Generator:
    gen_device = device if device.type in ("cuda", "cpu") else torch.device("cpu")
    generator = torch.Generator(gen_device)
    generator.manual_seed(seed if seed is not None else secrets.randbits(62))
    return generator


def generate_text(
    model: GPT,
    tokenizer: Tokenizer,
    prompt: str,
    cfg: SampleConfig,
    on_text: Callable[[str], None] | None = None,
) -> GenerationResult:
    """Sample ``cfg.num_samples`` continuations, calling ``on_text`` with each piece as it comes.

    The reported time covers the sampling loops only (not model loading or tokenization).
    """
    cfg.validate()
    device = model.wte.weight.device
    prompt_ids, notices = encode_prompt(tokenizer, prompt, model.config.block_size)
    prompt_text = tokenizer.decode(prompt_ids) if prompt else ""
    generator = make_generator(device, cfg.seed)
    samples, seconds, new_tokens = [], 0.0, 0
    for index in range(cfg.num_samples):
        if on_text and index:
            on_text("\n" + "-" * 40 + "\n")
        if on_text:
            on_text(prompt_text)
        decoder = StreamDecoder(tokenizer)
        pieces = [prompt_text]
        t0 = time.perf_counter()
        for token_id in stream_tokens(model, prompt_ids, cfg, generator):
            piece = decoder.feed(token_id)
            new_tokens += 1
            pieces.append(piece)
            if on_text and piece:
                on_text(piece)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds += time.perf_counter() - t0
        tail = decoder.flush()
        pieces.append(tail)
        if on_text and tail:
            on_text(tail)
        samples.append("".join(pieces))
    return GenerationResult(samples, new_tokens, seconds, notices)
