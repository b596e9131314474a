"""Muon's step cost on this device: torch's, and tinygpt's per matrix or batched per shape, in
float32 or bfloat16, with and without NorMuon, for the block matrices of a model shape. Side by
side, medians of rounds.

    python scripts/bench_muon.py [--device auto] [--shape 4x128] [--threads 1] [--rounds 7]

What tinygpt picks (tinygpt/training/muon.py): batched bfloat16 on CUDA and on CPUs with native
bfloat16 (AVX-512 BF16 or AMX) where it times under 0.9 of float32 at start-up, batched float32
on the other such CPUs, per matrix float32 on CPUs without native bfloat16.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from benchutil import machine, sync

from tinygpt.model.device import resolve_device
from tinygpt.training.muon import newton_schulz_for
from tinygpt.training.optim import NORMUON_BETA2, MuonAdamW


def block_matrices(layers: int, width: int, device: torch.device) -> list[torch.nn.Parameter]:
    """A model's Muon parameters: per block, the QKV and output projections and the MLP."""
    shapes = [(3 * width, width), (width, width), (4 * width, width), (width, 4 * width)]
    params = []
    for _ in range(layers):
        for shape in shapes:
            p = torch.nn.Parameter(torch.randn(shape, device=device) * 0.02)
            p.grad = torch.randn_like(p) * 1e-3
            params.append(p)
    return params


def tinygpts(batched: bool, dtype: torch.dtype, normuon: bool = False) -> Callable:
    """tinygpt's one optimizer over the matrices as one Muon group, as a run builds it."""

    def make(params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        group = {"params": params, "kind": "muon", "lr": 0.02, "peak_lr": 0.02}
        options = {"muon": {"normuon_beta2": NORMUON_BETA2 if normuon else 0.0}, "adamw": {}}
        return MuonAdamW([group], [], options, (batched, dtype))

    return make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--shape", default=None, help="LAYERSxWIDTH (4x128 CPU, 6x384 GPU)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    shape = args.shape or ("6x384" if device.type == "cuda" else "4x128")
    layers, width = (int(x) for x in shape.split("x"))
    print(f"machine: {machine()}")
    variants: dict[str, Callable[[list], torch.optim.Optimizer]] = {
        "torch.optim.Muon (bf16, per matrix)": lambda p: torch.optim.Muon(p, lr=0.02),
        "tinygpt per matrix, float32": tinygpts(False, torch.float32),
        "tinygpt per matrix, float32, NorMuon": tinygpts(False, torch.float32, normuon=True),
        "tinygpt batched, float32": tinygpts(True, torch.float32),
        "tinygpt batched, bf16": tinygpts(True, torch.bfloat16),
        "tinygpt batched, bf16, NorMuon": tinygpts(True, torch.bfloat16, normuon=True),
    }
    steps = {name: make(block_matrices(layers, width, device)) for name, make in variants.items()}
    times: dict[str, list[float]] = {name: [] for name in steps}
    for opt in steps.values():
        opt.step()  # warm-up: state, kernels
    for _ in range(args.rounds):
        for name, opt in steps.items():
            sync(device)
            t0 = time.perf_counter()
            for _ in range(5):
                opt.step()
            sync(device)
            times[name].append((time.perf_counter() - t0) / 5)
    n = len(block_matrices(layers, width, torch.device("meta")))
    print(
        f"\nMuon step, {n} block matrices of a {shape} model; {device.type}, "
        f"{torch.get_num_threads()} threads:"
    )
    base = statistics.median(times["torch.optim.Muon (bf16, per matrix)"])
    for name, t in times.items():
        ms = statistics.median(t) * 1e3
        print(f"  {name:<40} {ms:9.2f} ms   {base * 1e3 / ms:5.2f}x torch's speed")
    batched, dtype = newton_schulz_for(device)
    pick = f"tinygpt {'batched' if batched else 'per matrix'}, {str(dtype).split('.')[-1]}"
    print(f"tinygpt trains with: {pick.replace('bfloat16', 'bf16')} on this {device.type}")


if __name__ == "__main__":
    main()
