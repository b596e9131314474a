"""What a checkpoint's ``config.json`` holds, and the ``--arch`` recipes expanded to switches."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from tinygpt.config.model import ModelConfig
from tinygpt.config.train import TrainConfig
from tinygpt.errors import Opt, UsageError
from tinygpt.recipe import GPT2, RECIPES

# Training settings added after runs were saved without them, and what every such run did.
BEFORE_THE_SETTING: dict[str, Any] = {
    "data_order": "random",  # each window drawn anywhere
    "ema": 0.0,  # the weights as trained were saved
    "normuon": False,  # torch's Muon
    "batch_warmup_steps": 0,  # one update a step
}


@dataclass
class RunConfig:
    """What a checkpoint's ``config.json`` holds: the model and the run that trained it."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self, world_size: int = 1) -> dict[str, Any]:
        """config.json's contents; ``world_size`` (recorded, not read back): the processes
        that trained it."""
        train = {
            **asdict(self.train),
            "world_size": world_size,
            "effective_batch_size": self.train.effective_batch_size(world_size),
        }
        return {"model": {"arch": self.model.arch, **asdict(self.model)}, "train": train}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Read a config.json; keys this version does not know (or no longer uses) are ignored."""
        if not isinstance(data, dict):
            raise ValueError("config.json must hold an object")
        model, train = data.get("model", {}), data.get("train", {})
        if not isinstance(model, dict) or not isinstance(train, dict):
            raise ValueError("config.json's model and train entries must be objects")
        model, train = dict(model), dict(train)
        if "position" not in model:
            # Written before the recipe had switches: every such run used the gpt2 recipe.
            model = {**GPT2.model_options(), **model}
            train = {**GPT2.train_options(), **train}
        elif "embed_norm" not in model:
            # Written before the embedding norm was its own switch: RMSNorm models had one.
            model["embed_norm"] = model.get("norm") == "rmsnorm"
        train = {**BEFORE_THE_SETTING, **train}
        return cls(model=_known_fields(ModelConfig, model), train=_known_fields(TrainConfig, train))


def expand_arch(options: dict[str, Any]) -> dict[str, Any]:
    """Replace an ``arch`` option by the switches it names; switches given explicitly win."""
    options = dict(options)
    name = options.pop("arch", None)
    if name is None:
        return options
    if name not in RECIPES:
        raise UsageError(Opt("arch"), f" must be one of {', '.join(RECIPES)}; got {name!r}")
    return {**RECIPES[name].options(), **options}


def _known_fields(cls: type, data: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})
