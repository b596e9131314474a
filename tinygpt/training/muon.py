"""Muon for the blocks' weight matrices: torch's Muon, its Newton-Schulz iteration run where
it is cheapest (one matrix at a time, a GPU pays for a dozen kernel launches per matrix):

* batched over same-shape matrices, in bfloat16 as torch's, on CUDA and on CPUs where
  bfloat16 times faster at start-up (``cpu_bfloat16_pays``, which also decides training's
  autocast; 1.8x on an AMD CPU with AVX-512 BF16, same loss);
* batched in float32 on CPUs whose bfloat16 flag does not make it faster (1.5x slower in
  bfloat16 on an Intel Xeon with AVX-512 BF16 but no AMX: docs/benchmarks.md);
* per matrix, in float32, on other CPUs, which emulate bfloat16 many times slower.

Groups, state, Nesterov momentum, the shape-dependent rate and the decoupled decay are torch's
(tests check a step against ``torch.optim.Muon``). With ``normuon_beta2`` (``--normuon``) each
row (neuron) of the update is divided by the root of its running mean square, then the update
is scaled back to its norm (NorMuon, arXiv 2510.05491): orthogonalising evens out directions,
not neurons.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from tinygpt.model import device as devices


def update(
    group: dict[str, Any],
    params: list[torch.Tensor],
    state: dict[torch.Tensor, dict[str, Any]],
    batched: bool,
    ns_dtype: torch.dtype,
) -> None:
    """One Muon step of ``params`` (``group``'s with a gradient), momentum under torch's key."""
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
    """NorMuon: ``update``'s rows evened out by their running mean square, at its own norm."""
    if "neuron_second_moment" not in state:
        state["neuron_second_moment"] = torch.zeros_like(update[:, :1])
    second = state["neuron_second_moment"]
    second.lerp_(update.square().mean(dim=1, keepdim=True), 1 - beta2)
    evened = update / (second.sqrt() + 1e-10)
    return evened * (update.norm() / evened.norm().clamp(min=1e-10))


# A resume does the arithmetic its run did whatever this process would time: the form is saved
# with the optimizer's state.
FORMS = ((True, torch.bfloat16), (True, torch.float32), (False, torch.float32))


def form_key(form: tuple[bool, torch.dtype]) -> list[Any]:
    """How a form is saved in the optimizer's state: ``[True, "float32"]``."""
    return [form[0], devices.dtype_name(form[1])]


def newton_schulz_for(device: torch.device) -> tuple[bool, torch.dtype]:
    """(batched, dtype) of the iteration on ``device``: bfloat16 where it is native and timed
    faster here, float32 batched elsewhere on such a CPU, per matrix on other CPUs. Ranks
    training together take rank 0's: each timing for itself could step the weights apart."""
    if device.type == "cuda":
        return FORMS[0]
    if device.type != "cpu" or not devices.cpu_has_bfloat16():
        form = FORMS[2]
    else:
        form = FORMS[0] if devices.cpu_bfloat16_pays() else FORMS[1]
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        index = torch.tensor([FORMS.index(form)])
        torch.distributed.broadcast(index, src=0)
        form = FORMS[int(index.item())]
    return form


def can_run(form: tuple[bool, torch.dtype], device: torch.device) -> bool:
    """Whether ``form`` runs at native speed on ``device`` (bfloat16 is emulated on a CPU
    without the flags)."""
    return form[1] != torch.bfloat16 or device.type != "cpu" or devices.cpu_has_bfloat16()


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
    Newton-Schulz iteration, batched where ``m`` is."""
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
