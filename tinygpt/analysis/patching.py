"""Activation patching: which activation carries the difference between two prompts.

The corrupted prompt runs with one activation from the clean run (a head's output at one position
or at all, a layer's residual stream at one position), a batch of rows at a time, each with its
own patch. restored = (patched - corrupted) / (clean - corrupted): 1 brings the clean prediction
back, 0 does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tinygpt.errors import Opt, UsageError
from tinygpt.model import GPT, hooks, run_with_cache

ROWS_PER_BATCH = 64  # patched copies of the prompt run together


@dataclass
class PatchingResult:
    position: int
    target: int
    clean_logprob: float
    corrupted_logprob: float
    heads: torch.Tensor  # (n_layer, n_head): the head's output at every position patched
    head_positions: torch.Tensor  # (n_layer, n_head, T): at one position
    residual: torch.Tensor  # (n_layer, T): the stream into each layer at one position

    def to_dict(self) -> dict:
        return {k: v.tolist() if torch.is_tensor(v) else v for k, v in vars(self).items()}


@torch.inference_mode()
def patched_logprobs(
    model: GPT,
    corrupted: torch.Tensor,
    point: str,
    source: torch.Tensor,
    masks: torch.Tensor,
    position: int,
    target: int,
) -> torch.Tensor:
    """The target's log-probability at ``position`` (len(masks),) of ``corrupted`` (1, T) run
    once per mask, with ``point``'s activation from ``source`` where the mask is True."""
    out = []
    for chunk in masks.split(ROWS_PER_BATCH):
        with hooks(model, [(point, _replacing(chunk.to(source.device), source))]):
            logits, _ = model(corrupted.expand(len(chunk), -1))
        out.append(F.log_softmax(logits[:, position].float(), dim=-1)[:, target].cpu())
    return torch.cat(out)


def _replacing(selected: torch.Tensor, source: torch.Tensor):
    def patch(x: torch.Tensor, name: str) -> torch.Tensor:
        return torch.where(selected, source.expand_as(x), x)

    return patch


@torch.inference_mode()
def _target_logprob(model: GPT, idx: torch.Tensor, position: int, target: int) -> float:
    logits, _ = model(idx)
    return float(F.log_softmax(logits[0, position].float(), dim=-1)[target])


def check_same_length(clean: int, corrupted: int) -> None:
    """Patching swaps activations position by position: the two prompts must line up."""
    if clean != corrupted:
        raise UsageError(
            Opt("clean"),
            " and ",
            Opt("corrupted"),
            f" must have the same number of tokens ({clean} and {corrupted})",
        )


def patch_activations(
    model: GPT, clean: list[int], corrupted: list[int], position: int, target: int
) -> PatchingResult:
    """The share of the gap each head (at all positions, at each one) and each layer's residual
    stream (at each position) restores, patched from ``clean`` into ``corrupted``."""
    check_same_length(len(clean), len(corrupted))
    model.eval()
    device = model.wte.weight.device
    clean_idx = torch.tensor([clean], device=device)
    bad_idx = torch.tensor([corrupted], device=device)
    hi = _target_logprob(model, clean_idx, position, target)
    lo = _target_logprob(model, bad_idx, position, target)
    if abs(hi - lo) < 1e-6:
        raise UsageError(
            "the two prompts give the target the same log-probability: there is nothing to restore"
        )
    with torch.inference_mode():
        _, cache = run_with_cache(model, clean_idx, lambda n: n.endswith(("hook_z", "resid_pre")))
    n_layer, n_head, t = len(model.blocks), model.config.n_head, len(clean)
    eye_h, eye_t = torch.eye(n_head, dtype=torch.bool), torch.eye(t, dtype=torch.bool)
    # head h at every position: (H, H, T, 1); head h at position j: (H*T, H, T, 1)
    every = eye_h[:, :, None, None].expand(n_head, n_head, t, 1)
    one = (eye_h[:, None, :, None, None] & eye_t[None, :, None, :, None]).reshape(-1, n_head, t, 1)
    # the stream at position j: (T, T, 1)
    stream = eye_t[:, :, None]
    heads, head_positions, residual = [], [], []
    for layer in range(n_layer):
        point = f"blocks.{layer}.attn.hook_z"
        z = cache[point]
        heads.append(patched_logprobs(model, bad_idx, point, z, every, position, target))
        grid = patched_logprobs(model, bad_idx, point, z, one, position, target)
        head_positions.append(grid.view(n_head, t))
        point = f"blocks.{layer}.hook_resid_pre"
        src = cache[point]
        residual.append(patched_logprobs(model, bad_idx, point, src, stream, position, target))

    def restored(lp: torch.Tensor) -> torch.Tensor:
        return (lp - lo) / (hi - lo)

    return PatchingResult(
        position,
        target,
        hi,
        lo,
        restored(torch.stack(heads)),
        restored(torch.stack(head_positions)),
        restored(torch.stack(residual)),
    )
