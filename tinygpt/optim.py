"""The optimizer: parameter groups by role, each with its own peak rate and decay.

``muon`` (the default) updates the blocks' weight matrices with Muon (tinygpt/muon.py), which
orthogonalises each matrix's momentum (Newton-Schulz) so every direction moves at a similar rate,
and the embeddings, head and scalars with AdamW, for which Muon is not meant. ``adamw`` is the
gpt2 recipe: one AdamW for everything, decay on matrices only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from tinygpt.config import ModelConfig, TrainConfig
from tinygpt.model import GPT
from tinygpt.muon import Muon

# role -> (optimizer, which TrainConfig field holds its peak rate, weight decay applies)
MUON_ROLES: dict[str, tuple[str, str, bool]] = {
    "matrices": ("muon", "matrix_lr", True),
    "embeddings": ("adamw", "embed_lr", False),
    "head": ("adamw", "lr", False),
    "scalars": ("adamw", "lr", False),
}


@dataclass
class GroupInfo:
    """One parameter group as the run header and ``tinygpt info`` show it."""

    role: str
    optimizer: str
    peak_lr: float
    weight_decay: float
    parameters: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Optimizers:
    """One or two torch optimizers stepped together; each group keeps its peak rate."""

    def __init__(self, optimizers: list[torch.optim.Optimizer], groups: list[GroupInfo]) -> None:
        self.optimizers = optimizers
        self.groups = groups

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [g for opt in self.optimizers for g in opt.param_groups]

    def set_lr(self, lr: float, cfg: TrainConfig) -> None:
        """Put every group on the schedule: ``lr`` is the ``lr`` group's rate at this step."""
        for group in self.param_groups:
            group["lr"] = lr * (group["peak_lr"] / cfg.lr)

    def zero_grad(self) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)

    def state_dict(self) -> dict[str, Any]:
        if len(self.optimizers) == 1:  # the format checkpoints had before Muon
            return self.optimizers[0].state_dict()
        return {"optimizers": [opt.state_dict() for opt in self.optimizers]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        states = state.get("optimizers", [state])
        if len(states) != len(self.optimizers):
            raise ValueError("the checkpoint's optimizer state was made for another optimizer")
        peaks = [g["peak_lr"] for g in self.param_groups]  # this run's config decides them
        for opt, s in zip(self.optimizers, states, strict=True):
            opt.load_state_dict(s)
        for group, peak in zip(self.param_groups, peaks, strict=True):
            group["peak_lr"] = peak


def plan_groups(model: GPT, cfg: TrainConfig) -> list[tuple[GroupInfo, list[torch.Tensor]]]:
    """Each parameter group with what it is (role, optimizer, peak rate, decay) and its tensors."""
    if cfg.optimizer == "adamw":
        plan = []
        for g in model.optimizer_groups(cfg.weight_decay):
            role = "decayed" if g["weight_decay"] else "not decayed"
            size = sum(p.numel() for p in g["params"])
            plan.append((GroupInfo(role, "adamw", cfg.lr, g["weight_decay"], size), g["params"]))
        return plan
    plan = []
    for role, params in model.parameter_roles().items():
        if params:
            kind, lr_field, decays = MUON_ROLES[role]
            wd = cfg.weight_decay if decays else 0.0
            size = sum(p.numel() for p in params)
            plan.append((GroupInfo(role, kind, getattr(cfg, lr_field), wd, size), params))
    return plan


def describe_groups(model_cfg: ModelConfig, cfg: TrainConfig) -> list[GroupInfo]:
    """The groups a run of these configs has, from a model on the meta device (no memory)."""
    with torch.device("meta"):
        model = GPT(model_cfg)
    return [info for info, _ in plan_groups(model, cfg)]


def build_optimizers(model: GPT, cfg: TrainConfig, device: torch.device) -> Optimizers:
    # One fused kernel for all AdamW parameters: ~3x faster optimizer steps than foreach on CPU.
    fused = device.type in ("cuda", "cpu")
    by_kind: dict[str, list[dict[str, Any]]] = {"muon": [], "adamw": []}
    plan = plan_groups(model, cfg)
    for info, params in plan:
        by_kind[info.optimizer].append(
            {
                "params": params,
                "lr": info.peak_lr,
                "peak_lr": info.peak_lr,
                "weight_decay": info.weight_decay,
            }
        )
    optimizers: list[torch.optim.Optimizer] = []
    if by_kind["muon"]:
        # A GPU pays per kernel launch, a CPU per operation's arithmetic (tinygpt/muon.py).
        gpu = device.type == "cuda"
        dtype = torch.bfloat16 if gpu else torch.float32
        optimizers.append(
            Muon(
                by_kind["muon"],
                batched=gpu,
                ns_dtype=dtype,
                lr=cfg.matrix_lr,
                momentum=cfg.momentum,
            )
        )
    if by_kind["adamw"]:
        betas = (cfg.beta1, cfg.beta2)
        optimizers.append(torch.optim.AdamW(by_kind["adamw"], lr=cfg.lr, betas=betas, fused=fused))
    return Optimizers(optimizers, [info for info, _ in plan])


def groups_line(groups: list[GroupInfo]) -> str:
    """One line for the run header and ``tinygpt info``: each group's optimizer, rate, decay."""
    parts = []
    for g in groups:
        decay = f", decay {g.weight_decay:g}" if g.weight_decay else ""
        parts.append(f"{g.role} {g.optimizer} lr {g.peak_lr:g}{decay} ({g.parameters:,})")
    return "; ".join(parts)
