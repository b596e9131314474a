"""The optimizer: one object over every parameter group, each group of a kind.

``muon`` (the default) gives the blocks' weight matrices the Muon kind (tinygpt/muon.py), which
orthogonalises each matrix's momentum (Newton-Schulz) so every direction moves at a similar rate,
and the embeddings, head and scalars the AdamW kind, for which Muon is not meant. ``adamw`` is
the gpt2 recipe: every group AdamW, decay on matrices only.

Each group keeps its own peak rate; the schedule moves every group by the same factor. The one
object steps, clears, saves and loads all groups, so a GradScaler unscales and steps it as it
would any torch optimizer, and a checkpoint holds one torch-style state dict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from tinygpt.config import ModelConfig, TrainConfig
from tinygpt.model import GPT
from tinygpt.muon import Muon

# role -> (kind, which TrainConfig field holds its peak rate, weight decay applies)
MUON_ROLES: dict[str, tuple[str, str, bool]] = {
    "matrices": ("muon", "matrix_lr", True),
    "embeddings": ("adamw", "embed_lr", False),
    "head": ("adamw", "lr", False),
    "scalars": ("adamw", "lr", False),
}
KINDS = ("muon", "adamw")  # the order groups are kept in (and old checkpoints saved them in)
# Group entries this run's configuration decides, whatever a loaded state says.
RUN_DECIDES = ("kind", "peak_lr")


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


class MuonAdamW(torch.optim.Optimizer):
    """Every parameter group in one optimizer; a group's ``kind`` names its update.

    The arithmetic is torch's fused AdamW and tinygpt's Muon, each run over this object's
    groups of its kind and on this object's state, so the numbers are theirs exactly.
    ``groups`` describes each group (role, kind, peak rate) for the run header.
    """

    def __init__(
        self,
        groups: list[dict[str, Any]],
        described: list[GroupInfo],
        options: dict[str, dict[str, Any]],
    ) -> None:
        self.groups = described
        self._options = options  # per kind: the keyword arguments of its torch optimizer
        super().__init__(groups, defaults={})
        self._bind()

    def _bind(self) -> None:
        """Point one update per kind at this object's groups of that kind and at its state
        (again after a load, which replaces both)."""
        makers = {"muon": Muon, "adamw": torch.optim.AdamW}
        self._updates: list[torch.optim.Optimizer] = []
        for kind in KINDS:
            mine = [g for g in self.param_groups if g["kind"] == kind]
            if mine:
                update = makers[kind](mine, **self._options[kind])
                update.state = self.state
                self._updates.append(update)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for update in self._updates:
            update.step()
        return loss

    def set_lr(self, lr: float, reference: float) -> None:
        """Put every group on the schedule: ``lr`` is the rate of a group whose peak is
        ``reference``, and every group runs at its own peak times the same factor (computed
        as ``lr * (peak / reference)``, the rounding saved runs were trained with)."""
        for group in self.param_groups:
            group["lr"] = lr * (group["peak_lr"] / reference)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state of this shape or of the two older ones (see :func:`one_shape`)."""
        state = one_shape(state_dict)
        kinds = [g.get("kind") for g in state.get("param_groups", [])]
        if kinds != [g["kind"] for g in self.param_groups]:
            raise ValueError("the checkpoint's optimizer state was made for another optimizer")
        decided = [{k: g[k] for k in RUN_DECIDES} for g in self.param_groups]
        super().load_state_dict(state)
        for group, keys in zip(self.param_groups, decided, strict=True):
            group.update(keys)
        self._bind()


def one_shape(state: dict[str, Any]) -> dict[str, Any]:
    """A saved optimizer state as one torch-style state dict whose groups name their kind.

    Checkpoints written before the one optimizer hold either a single AdamW's state (the gpt2
    recipe) or ``{"optimizers": [muon, adamw]}``, each numbering its parameters from 0."""
    if "optimizers" not in state and all("kind" in g for g in state.get("param_groups", [])):
        return state
    merged: dict[str, Any] = {"state": {}, "param_groups": []}
    offset = 0
    for part in state.get("optimizers", [state]):
        merged["state"].update({offset + i: s for i, s in part["state"].items()})
        for group in part["param_groups"]:
            kind = "muon" if "ns_steps" in group else "adamw"
            ids = [offset + i for i in group["params"]]
            merged["param_groups"].append({**group, "kind": kind, "params": ids})
        offset += sum(len(g["params"]) for g in part["param_groups"])
    return merged


def plan_groups(model: GPT, cfg: TrainConfig) -> list[tuple[GroupInfo, list[torch.Tensor]]]:
    """Each parameter group with what it is (role, kind, peak rate, decay) and its tensors,
    Muon's first."""
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
    return sorted(plan, key=lambda item: KINDS.index(item[0].optimizer))


def describe_groups(model_cfg: ModelConfig, cfg: TrainConfig) -> list[GroupInfo]:
    """The groups a run of these configs has, from a model on the meta device (no memory)."""
    with torch.device("meta"):
        model = GPT(model_cfg)
    return [info for info, _ in plan_groups(model, cfg)]


def build_optimizer(model: GPT, cfg: TrainConfig, device: torch.device) -> MuonAdamW:
    plan = plan_groups(model, cfg)
    groups = [
        {
            "params": params,
            "kind": info.optimizer,
            "lr": info.peak_lr,
            "peak_lr": info.peak_lr,
            "weight_decay": info.weight_decay,
        }
        for info, params in plan
    ]
    # A GPU pays per kernel launch, a CPU per operation's arithmetic (tinygpt/muon.py).
    gpu = device.type == "cuda"
    muon = dict(
        batched=gpu,
        ns_dtype=torch.bfloat16 if gpu else torch.float32,
        lr=cfg.matrix_lr,
        momentum=cfg.momentum,
    )
    # One fused kernel for all AdamW parameters: ~3x faster optimizer steps than foreach on CPU.
    fused = device.type in ("cuda", "cpu")
    adamw = dict(lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=fused)
    return MuonAdamW(groups, [info for info, _ in plan], {"muon": muon, "adamw": adamw})


def groups_line(groups: list[GroupInfo]) -> str:
    """One line for the run header and ``tinygpt info``: each group's optimizer, rate, decay."""
    parts = []
    for g in groups:
        decay = f", decay {g.weight_decay:g}" if g.weight_decay else ""
        parts.append(f"{g.role} {g.optimizer} lr {g.peak_lr:g}{decay} ({g.parameters:,})")
    return "; ".join(parts)
