"""Muon for the blocks' weight matrices, costing what its arithmetic costs on each device.

torch's Muon orthogonalises each matrix's momentum with a Newton-Schulz iteration, one matrix
after another: a dozen small kernels per matrix per step. A GPU pays for the launches (58% of an
H100 step at the shakespeare-char preset), a CPU for the arithmetic. So the iteration runs:

* batched, in bfloat16 as torch's does, on CUDA and on CPUs that multiply bfloat16 natively
  (AVX-512 BF16 or AMX): once per matrix shape over the stacked same-shape matrices, the
  momentum and weight updates as one foreach kernel each. On this project's CPU that is 1.8x
  faster than per matrix in float32 for the optimizer step (``scripts/bench_muon.py``), with the
  same loss at equal steps (docs/benchmarks.md);
* per matrix, in float32, on other CPUs, which emulate bfloat16 many times slower.

Everything else is torch's Muon: its groups and state (a checkpoint of either resumes with
the other), Nesterov momentum, the shape-dependent rate (tall matrices move a bit more) and the
decoupled weight decay. Tests check a step against ``torch.optim.Muon``.

A group with ``normuon_beta2`` (``--normuon``, the modern recipe's) adds NorMuon's per-neuron
step sizes (arXiv 2510.05491): orthogonalising evens out a matrix's directions but not its
rows, and a neuron whose row keeps a large update moves faster than the rest; each row is
divided by the root of a running mean of its squares, then the whole update is scaled back to
the norm it had, so the rate means what it did. It adds one number per neuron to the state.
"""

from __future__ import annotations

import math
from typing import Any

import torch


def update(
    group: dict[str, Any],
    params: list[torch.Tensor],
    state: dict[torch.Tensor, dict[str, Any]],
    batched: bool,
    ns_dtype: torch.dtype,
) -> None:
    """One Muon step of ``params`` (those of ``group`` with a gradient), keeping each one's
    momentum in ``state`` under torch's key."""
    momentum, lr, decay = group["momentum"], group["lr"], group["weight_decay"]
    grads = [p.grad for p in params]
    buffers = [_buffer(state[p], p) for p in params]
    torch._foreach_lerp_(buffers, grads, 1 - momentum)
    directions = torch._foreach_lerp(grads, buffers, momentum) if group["nesterov"] else buffers
    if decay:
        torch._foreach_mul_(params, 1 - lr * decay)
    args = (group["ns_coefficients"], group["ns_steps"], group["eps"], ns_dtype)
    for (rows, cols), index in _by_shape(params).items():
        matrices = [directions[i] for i in index]
        if batched:
            ortho = list(orthogonalise(torch.stack(matrices), *args).to(params[0].dtype).unbind())
        else:
            ortho = [orthogonalise(m, *args).to(m.dtype) for m in matrices]
        if beta2 := group.get("normuon_beta2"):
            states = [state[params[i]] for i in index]
            ortho = [_per_neuron(o, s, beta2) for o, s in zip(ortho, states, strict=True)]
        scale = lr * math.sqrt(max(1.0, rows / cols))  # Keller Jordan's (torch's default)
        torch._foreach_add_([params[i] for i in index], ortho, alpha=-scale)


def _buffer(state: dict[str, Any], p: torch.Tensor) -> torch.Tensor:
    if "momentum_buffer" not in state:
        state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
    return state["momentum_buffer"]


def _per_neuron(update: torch.Tensor, state: dict[str, Any], beta2: float) -> torch.Tensor:
    """NorMuon: ``update``'s rows (a neuron's weights each) evened out by their running mean
    square, at ``update``'s own norm."""
    if "neuron_second_moment" not in state:
        state["neuron_second_moment"] = torch.zeros_like(update[:, :1])
    second = state["neuron_second_moment"]
    second.lerp_(update.square().mean(dim=1, keepdim=True), 1 - beta2)
    evened = update / (second.sqrt() + 1e-10)
    return evened * (update.norm() / evened.norm().clamp(min=1e-10))


def newton_schulz_for(device: torch.device) -> tuple[bool, torch.dtype]:
    """(batched, dtype) of the iteration on ``device``: what measured fastest there."""
    if device.type == "cuda" or (device.type == "cpu" and _cpu_has_bfloat16()):
        return True, torch.bfloat16
    return False, torch.float32


def _cpu_has_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices natively (AVX-512 BF16 or AMX); others
    emulate it, 20x slower than float32."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def _by_shape(params: list[torch.Tensor]) -> dict[tuple[int, int], list[int]]:
    groups: dict[tuple[int, int], list[int]] = {}
    for i, p in enumerate(params):
        groups.setdefault((p.size(0), p.size(1)), []).append(i)
    return groups


def orthogonalise(
    m: torch.Tensor,
    coefficients: tuple[float, float, float],
    steps: int,
    eps: float = 1e-7,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Push every singular value of ``m`` (..., rows, cols) towards 1: the quintic
    Newton-Schulz iteration, on a batch of same-shape matrices at once where ``m`` has one."""
    a, b, c = coefficients
    tall = m.size(-2) > m.size(-1)
    x = (m.mT if tall else m).to(dtype)
    x = x / x.norm(dim=(-2, -1), keepdim=True).clamp(min=eps)  # spectral <= Frobenius <= 1
    # The fused forms round once per product, as torch's Muon does.
    multiply_add = torch.addmm if x.dim() == 2 else torch.baddbmm
    for _ in range(steps):
        gram = x @ x.mT
        update = multiply_add(gram, gram, gram, beta=b, alpha=c)  # b * gram + c * gram @ gram
        x = multiply_add(x, update, x, beta=a)  # a * x + update @ x
    return x.mT if tall else x
