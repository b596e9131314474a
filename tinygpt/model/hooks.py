"""Named hook points: one identity module at each activation worth reading or changing.

As in TransformerLens, a hook on ``blocks.0.attn.hook_pattern`` can record the attention weights
or return new ones, which the rest of the forward pass uses. Hooks are torch forward hooks: they
stack, and each comes off when its ``with`` block ends. Shapes (B batch, T tokens, H heads,
D head size, C width):

* ``hook_embed`` and per block ``blocks.{i}.``: ``hook_resid_pre``, ``hook_attn_out``,
  ``hook_resid_mid``, ``hook_mlp_out`` (blocks with an MLP), ``hook_resid_post``: (B, T, C).
* per attention ``blocks.{i}.attn.``: ``hook_q``, ``hook_k``, ``hook_v``, and ``hook_rot_q``,
  ``hook_rot_k`` after QK-norm and rotation: (B, H, T, D); ``hook_attn_scores`` (before the
  softmax) and ``hook_pattern`` (after): (B, H, T, T_keys); ``hook_z``: (B, H, T, D).

Hooking the scores or the pattern runs that layer's explicit attention; :meth:`GPT.step` has no
hook points.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

# (activation, hook point name) -> a replacement, or None to leave it as it is
HookFn = Callable[[torch.Tensor, str], torch.Tensor | None]
# which hook points: a name, or a test on the name
Names = str | Callable[[str], bool]


class HookPoint(nn.Module):
    """The identity, where a hook can see or replace one named activation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    @property
    def active(self) -> bool:
        """A hook is attached (the layer must then form what this point shows)."""
        return bool(self._forward_hooks)


def hook_points(model: nn.Module) -> dict[str, HookPoint]:
    """Every hook point of ``model`` by its name (``blocks.0.attn.hook_pattern``)."""
    return {name: m for name, m in model.named_modules() if isinstance(m, HookPoint)}


def _matches(names: Names, name: str) -> bool:
    return names(name) if callable(names) else name == names


@contextmanager
def hooks(model: nn.Module, pairs: Iterable[tuple[Names, HookFn]]) -> Iterator[None]:
    """Within the block, each ``fn`` runs at the hook points ``names`` selects."""
    points = hook_points(model)
    pairs = list(pairs)
    for names, _ in pairs:
        if isinstance(names, str) and names not in points:
            raise KeyError(f"the model has no hook point {names!r}")
    handles = []
    try:
        for names, fn in pairs:
            for name, point in points.items():
                if _matches(names, name):
                    handles.append(point.register_forward_hook(_adapt(fn, name)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _adapt(fn: HookFn, name: str) -> Callable[..., torch.Tensor | None]:
    def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
        return fn(output, name)

    return hook


def run_with_cache(
    model: nn.Module, idx: torch.Tensor, names: Names = lambda name: True
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The logits for ``idx`` and the activation at every hook point ``names`` selects."""
    cache: dict[str, torch.Tensor] = {}

    def keep(x: torch.Tensor, name: str) -> None:
        cache[name] = x.detach()

    with hooks(model, [(names, keep)]):
        logits, _ = model(idx)
    return logits, cache
