"""Proof that a device computes what the CPU computes: the same small model's logits,
attention weights, one training step and a greedy token on both, each against a tolerance
that fits the precision; and how fast the device trains and samples."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch

from tinygpt.analysis.capture import capture_attention
from tinygpt.config.model import ModelConfig
from tinygpt.config.sample import SampleConfig
from tinygpt.model import GPT
from tinygpt.model.device import autocast
from tinygpt.sampling.tokens import make_generator, sample_tokens

SHAPE = dict(vocab_size=65, block_size=64, n_layer=2, n_head=4, n_embd=64)
# Largest difference allowed from the CPU's float32, by the precision the device runs in.
TOLERANCE = {torch.float32: 1e-3, torch.bfloat16: 6e-2, torch.float16: 2e-2}


@dataclass(frozen=True)
class Check:
    name: str
    difference: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.difference <= self.tolerance  # NaN fails too


def prove(device: torch.device, dtype: torch.dtype, perturb: float = 0.0) -> list[Check]:
    """Compare ``device`` (in ``dtype``) with the CPU in float32. ``perturb`` shifts the device
    copy's weights: the tests' proof that a wrong device is caught."""
    reference = torch.device("cpu")
    torch.manual_seed(0)
    ref = GPT(ModelConfig(**SHAPE), attention="manual").to(reference).eval()
    dut = copy.deepcopy(ref).to(device)
    if perturb:
        with torch.no_grad():
            dut.wte.weight.add_(perturb)
    tol = TOLERANCE[dtype]
    x = torch.randint(0, SHAPE["vocab_size"], (2, SHAPE["block_size"]))
    with torch.no_grad():
        want, _ = ref(x.to(reference))
        with autocast(device, dtype):
            got, _ = dut(x.to(device))
    checks = [Check("logits", _diff(want, got), tol * max(1.0, float(want.abs().max())))]
    ids = x[0, :32].tolist()
    with autocast(device, dtype):
        got_w = capture_attention(dut, ids, [""] * len(ids)).weights
    want_w = capture_attention(ref, ids, [""] * len(ids)).weights
    checks.append(Check("attention weights", _diff(want_w, got_w), tol))
    checks.append(Check("one training step", _step(ref, dut, x, reference, device, dtype), tol))
    checks.append(Check("a greedy token", _greedy(ref, dut, ids, device, dtype), 0.0))
    return checks


def _diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().float().cpu() - b.detach().float().cpu()).abs().max())


def _step(ref: GPT, dut: GPT, x: torch.Tensor, r: torch.device, d: torch.device, dtype) -> float:
    """The largest difference in any weight after one AdamW step on the same batch."""
    for model, device in ((ref, r), (dut, d)):
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        with autocast(device, dtype if model is dut else torch.float32):
            _, loss = model(x.to(device), x.to(device))
        loss.backward()
        opt.step()
        model.eval()
    return max(_diff(a, b) for a, b in zip(ref.parameters(), dut.parameters(), strict=True))


def _greedy(ref: GPT, dut: GPT, ids: list[int], device: torch.device, dtype) -> float:
    """0 when both pick the same next token greedily, 1 when they differ (where the CPU's top
    two are closer than the precision can tell apart, either pick is right: 0)."""
    with torch.no_grad():
        want, _ = ref(torch.tensor([ids]))
        top2 = want[0, -1].topk(2).values
        if float(top2[0] - top2[1]) < TOLERANCE[dtype]:
            return 0.0
    cfg = SampleConfig(max_new_tokens=1, temperature=0)
    with autocast(device, dtype):
        step = next(sample_tokens(dut, ids, cfg, [make_generator(device, 0)]))
    return float(step.ids[0] != int(want[0, -1].argmax()))


def speed(device: torch.device, dtype: torch.dtype, seconds: float = 1.0) -> dict[str, float]:
    """Training and sampling tokens/s of the default model shape on ``device``."""
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=65)).to(device)
    block = model.config.block_size
    x = torch.randint(0, 65, (8, block), device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or steps < 2:
        with autocast(device, dtype):
            _, loss = model(x, x)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        steps += 1
    train = steps * x.numel() / (time.perf_counter() - start)
    model.eval()
    cfg = SampleConfig(max_new_tokens=64, temperature=1.0)
    start = time.perf_counter()
    with autocast(device, dtype):
        for _ in sample_tokens(model, [0], cfg, [make_generator(device, 0)]):
            pass
    return {"train": train, "sample": cfg.max_new_tokens / (time.perf_counter() - start)}
