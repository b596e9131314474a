"""The token loop: a batch of rows continuing one prompt, one chosen token per row per step."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from tinygpt.config.fields import MAX_SEED
from tinygpt.config.sample import SampleConfig
from tinygpt.model import GPT
from tinygpt.sampling.choose import Alternatives, alternatives, choose
from tinygpt.sampling.decoder import Decoder


@dataclass(frozen=True)
class Step:
    """One step of every row: the chosen ids and, when asked for, the model's alternatives."""

    ids: list[int]
    alternatives: Alternatives | None = None


def make_generator(device: torch.device, seed: int | None) -> torch.Generator:
    """A generator on the device that samples (CUDA or CPU; MPS draws on the CPU)."""
    gen_device = device if device.type in ("cuda", "cpu") else torch.device("cpu")
    generator = torch.Generator(gen_device)
    generator.manual_seed(seed if seed is not None else secrets.randbits(62))
    return generator


def row_seeds(seed: int | None, rows: int) -> list[int]:
    """Row i's seed is ``seed + i``: sample i of a batch is the sample that seed gives alone."""
    base = seed if seed is not None else secrets.randbelow(MAX_SEED - rows)
    return [base + i for i in range(rows)]


@torch.inference_mode()
def sample_tokens(
    model: GPT,
    prompt_ids: list[int],
    cfg: SampleConfig,
    generators: list[torch.Generator | None],
    graph: bool | None = None,
) -> Iterator[Step]:
    """Yield ``cfg.max_new_tokens`` steps, each row continuing ``prompt_ids`` with its own
    generator (one row per generator). The caller may stop early."""
    model.eval()
    rows = len(generators)
    decoder = Decoder(model, rows, kv_cache=cfg.kv_cache, graph=graph)
    device = decoder.window.device
    prompt = torch.tensor([prompt_ids[-decoder.block :]], device=device).expand(rows, -1)
    logits = decoder.start(prompt)
    for index in range(cfg.max_new_tokens):
        ids = choose(logits, cfg, generators)
        extra = alternatives(logits, ids, cfg.alternatives) if cfg.alternatives else None
        yield Step(ids.tolist(), extra)
        if index + 1 < cfg.max_new_tokens:
            logits = decoder.advance(ids)


def stream_tokens(
    model: GPT,
    prompt_ids: list[int],
    cfg: SampleConfig,
    generator: torch.Generator | None = None,
) -> Iterator[int]:
    """One row: yield ``cfg.max_new_tokens`` new token ids continuing ``prompt_ids``."""
    for step in sample_tokens(model, prompt_ids, cfg, [generator]):
        yield step.ids[0]
