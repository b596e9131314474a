"""The optimizer: one object over every parameter group, each group of a kind.

``muon`` gives the blocks' matrices Muon (training/muon.py) and the embeddings, head and scalars
AdamW, for which Muon is not meant; ``adamw`` (the gpt2 recipe) gives every group AdamW. Each
group keeps its own peak rate and the schedule scales all by one factor. One object steps,
saves and loads all groups, so a GradScaler treats it as any torch optimizer.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch
from torch.optim.adamw import adamw

from tinygpt.config.model import ModelConfig
from tinygpt.config.train import TrainConfig
from tinygpt.model import GPT
from tinygpt.model.meta import meta_model
from tinygpt.training import muon

# role -> (kind, which TrainConfig field holds its peak rate, weight decay applies)
MUON_ROLES: dict[str, tuple[str, str, bool]] = {
    "matrices": ("muon", "matrix_lr", True),
    "embeddings": ("adamw", "embed_lr", False),
    "head": ("adamw", "lr", False),
    "scalars": ("adamw", "lr", False),
}
KINDS = ("muon", "adamw")  # the order groups are kept in (and old checkpoints saved them in)
NORMUON_BETA2 = 0.95  # the NorMuon paper's decay for the running mean square of a neuron's step
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


def _undecorated(method: Any) -> Any:
    """An ``Optimizer`` method without torch.compile's skip wrapper, which imports
    ``torch._dynamo`` (1-4 s of start-up) on first use; the optimizer is never compiled."""
    return getattr(method, "__wrapped__", method)


def _defaults(cls: type[torch.optim.Optimizer], **overrides: Any) -> dict[str, Any]:
    """The group entries a torch optimizer gives its groups: its constructor's defaults."""
    parameters = inspect.signature(cls.__init__).parameters.values()
    found = {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
    return {**found, **overrides}


class MuonAdamW(torch.optim.Optimizer):
    """Every parameter group in one optimizer; a group's ``kind`` names its update (torch's
    functional AdamW, or :func:`~tinygpt.training.muon.update`). Groups hold the entries
    torch's ``AdamW`` and ``Muon`` give theirs, so a checkpoint is what either would save.
    ``groups`` describes each group for the run header."""

    add_param_group = _undecorated(torch.optim.Optimizer.add_param_group)
    zero_grad = _undecorated(torch.optim.Optimizer.zero_grad)

    def __init__(
        self,
        groups: list[dict[str, Any]],
        described: list[GroupInfo],
        options: dict[str, dict[str, Any]],
        newton_schulz: tuple[bool, torch.dtype] = (False, torch.float32),
    ) -> None:
        """``options``: per kind, the group entries this run sets (rates, betas, fused);
        ``newton_schulz``: (batched, dtype) of Muon's iteration on this run's device."""
        self.groups = described
        self.batched, self.ns_dtype = newton_schulz
        kind_defaults = {
            "muon": _defaults(torch.optim.Muon),
            "adamw": _defaults(torch.optim.AdamW, decoupled_weight_decay=True),
        }
        filled = [{**kind_defaults[g["kind"]], **options[g["kind"]], **g} for g in groups]
        super().__init__(filled, defaults={})

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            if group["kind"] == "muon":
                muon.update(group, params, self.state, self.batched, self.ns_dtype)
            else:
                adamw_update(group, params, self.state)
        return loss

    def set_lr(self, lr: float, reference: float) -> None:
        """Every group at ``lr`` scaled by its peak over ``reference``, computed as
        ``lr * (peak / reference)``: the rounding saved runs were trained with."""
        for group in self.param_groups:
            group["lr"] = lr * (group["peak_lr"] / reference)

    def state_dict(self) -> dict[str, Any]:
        """torch's, with the form of Muon's iteration this run trains with."""
        state = _undecorated(torch.optim.Optimizer.state_dict)(self)
        return {**state, "newton_schulz": muon.form_key((self.batched, self.ns_dtype))}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state of this shape or of the two older ones (see :func:`one_shape`); a
        resume trains on in the saved form of Muon's iteration where it runs natively here."""
        state = dict(state_dict)
        if (form := state.pop("newton_schulz", None)) is not None:
            saved = next((f for f in muon.FORMS if muon.form_key(f) == list(form)), None)
            if saved is None:
                raise ValueError(f"unknown Newton-Schulz form {form!r}")
            if muon.can_run(saved, self.param_groups[0]["params"][0].device):
                self.batched, self.ns_dtype = saved
        state = one_shape(state)
        kinds = [g.get("kind") for g in state.get("param_groups", [])]
        if kinds != [g["kind"] for g in self.param_groups]:
            raise ValueError("the checkpoint's optimizer state was made for another optimizer")
        decided = [{k: g[k] for k in RUN_DECIDES} for g in self.param_groups]
        _undecorated(torch.optim.Optimizer.load_state_dict)(self, state)
        for group, keys in zip(self.param_groups, decided, strict=True):
            group.update(keys)


def adamw_update(
    group: dict[str, Any], params: list[torch.Tensor], state: dict[torch.Tensor, dict[str, Any]]
) -> None:
    """One AdamW step of ``params`` (``group``'s with a gradient): torch's functional AdamW,
    on state kept as torch's ``AdamW`` keeps it."""
    for p in params:
        if not state[p]:
            on = p.device if group["fused"] or group["capturable"] else "cpu"
            state[p]["step"] = torch.zeros((), dtype=torch.float32, device=on)
            state[p]["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state[p]["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
    beta1, beta2 = group["betas"]
    adamw(
        params,
        [p.grad for p in params],
        [state[p]["exp_avg"] for p in params],
        [state[p]["exp_avg_sq"] for p in params],
        [],
        [state[p]["step"] for p in params],
        foreach=group["foreach"],
        capturable=group["capturable"],
        fused=group["fused"],
        amsgrad=False,
        beta1=beta1,
        beta2=beta2,
        lr=group["lr"],
        weight_decay=group["weight_decay"],
        eps=group["eps"],
        maximize=False,
    )


def one_shape(state: dict[str, Any]) -> dict[str, Any]:
    """A saved optimizer state as one torch-style state dict whose groups name their kind.
    Older checkpoints hold a single AdamW's state or ``{"optimizers": [muon, adamw]}``, each
    numbering its parameters from 0."""
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
    plan = []
    if cfg.optimizer == "adamw":
        for g in model.optimizer_groups(cfg.weight_decay):
            role = "decayed" if g["weight_decay"] else "not decayed"
            size = sum(p.numel() for p in g["params"])
            plan.append((GroupInfo(role, "adamw", cfg.lr, g["weight_decay"], size), g["params"]))
        return plan
    for role, params in model.parameter_roles().items():
        if params:
            kind, lr_field, decays = MUON_ROLES[role]
            wd = cfg.weight_decay if decays else 0.0
            size = sum(p.numel() for p in params)
            plan.append((GroupInfo(role, kind, getattr(cfg, lr_field), wd, size), params))
    return sorted(plan, key=lambda item: KINDS.index(item[0].optimizer))


def describe_groups(model_cfg: ModelConfig, cfg: TrainConfig) -> list[GroupInfo]:
    """The groups a run of these configs has, from a model on the meta device (no memory)."""
    return [info for info, _ in plan_groups(meta_model(model_cfg), cfg)]


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
    # One fused kernel for all AdamW parameters: ~3x faster optimizer steps than foreach on CPU.
    fused = device.type in ("cuda", "cpu")
    options = {
        "muon": {"momentum": cfg.momentum, "normuon_beta2": NORMUON_BETA2 if cfg.normuon else 0.0},
        "adamw": {"betas": (cfg.beta1, cfg.beta2), "fused": fused},
    }
    described = [info for info, _ in plan]
    return MuonAdamW(groups, described, options, muon.newton_schulz_for(device))


def groups_line(groups: list[GroupInfo]) -> str:
    """One line for the run header and ``tinygpt info``: each group's optimizer, rate, decay."""
    parts = []
    for g in groups:
        decay = f", decay {g.weight_decay:g}" if g.weight_decay else ""
        parts.append(f"{g.role} {g.optimizer} lr {g.peak_lr:g}{decay} ({g.parameters:,})")
    return "; ".join(parts)
