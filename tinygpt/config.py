"""Typed configuration that travels through tinygpt: one dataclass per stage.

``ModelConfig`` fixes the network's shape, ``TrainConfig`` the optimisation run and
``SampleConfig`` the sampling controls. Each validates itself and raises ``UsageError`` with a
message that names the option to fix, so the CLI and the Python API report the same thing.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from tinygpt.errors import Opt, Piece, UsageError
from tinygpt.recipe import GPT2, RECIPES

ATTENTION_CHOICES = ("auto", "sdpa", "manual")
OPTIMIZER_CHOICES = ("muon", "adamw")
SCHEDULE_CHOICES = ("wsd", "cosine")

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")


# The tokenizer and records settings' own syntax: checked here, built in tinygpt/data.
BPE_PREFIX = "bpe:"
BPE_MIN_VOCAB = 256  # one token per byte: below that some bytes could not be written at all
# The largest vocabulary learned here: every id fits the token cache's uint16, and at the default
# width it is already an 8.4M-parameter embedding (ten times the whole char model). Larger
# vocabularies are what pretrained tiktoken encodings (gpt2, cl100k_base) are for.
BPE_MAX_VOCAB = 65_536


def is_bpe_spec(name: str) -> bool:
    return name.startswith(BPE_PREFIX)


def parse_bpe_spec(name: str) -> int:
    """N of ``bpe:N``, or a one-line UsageError."""
    text = name[len(BPE_PREFIX) :]
    try:
        size = int(text)
    except ValueError:
        raise UsageError(
            Opt("tokenizer", name), " is not bpe:N with a whole number N (e.g. bpe:2048)"
        ) from None
    if not BPE_MIN_VOCAB <= size <= BPE_MAX_VOCAB:
        raise UsageError(
            Opt("tokenizer", name),
            f": N must be between {BPE_MIN_VOCAB} (one token per byte) and {BPE_MAX_VOCAB:,} "
            f"(larger vocabularies are what gpt2 or cl100k_base are for)",
        )
    return size


RECORD_MODES = ("line", "paragraph")


def record_spec(records: str | None, separator: str | None) -> dict[str, str] | None:
    """The stored form of ``--records``/``--separator`` (None: plain text), or a UsageError."""
    if records is not None and separator is not None:
        raise UsageError("give ", Opt("records"), " or ", Opt("separator"), ", not both")
    if separator is not None:
        if not separator.strip():
            raise UsageError(Opt("separator"), " needs a text that is not only whitespace")
        return {"mode": "separator", "separator": separator}
    if records is not None:
        if records not in RECORD_MODES:
            raise UsageError(Opt("records"), f" must be line or paragraph; got {records!r}")
        return {"mode": records, "separator": "\n" if records == "line" else "\n\n"}
    return None


# Bounds on a model's size, checked before anything is allocated: a config.json (or a flag) may
# ask for a terabyte of weights or ten million layers, and should get one line instead.
MAX_PARAMETERS = 4_000_000_000  # 16 GB of float32 weights; GPT-2 XL has 1.5e9
MAX_LAYERS = 1024
MAX_WIDTH = 1 << 16
MAX_VOCAB = 1 << 24
MAX_BLOCK_SIZE = 1 << 20
MAX_KV_ELEMENTS = 1 << 32  # keys and values of one full-length sequence, all layers
MAX_ALTERNATIVES = 100  # per token in --json; more is a dump of the vocabulary, not a view
# A final validation loss worse than the run's best by more than this (nats) is said, with --best.
WORSE_THAN_BEST = 0.01
MAX_SEED = (1 << 63) - (1 << 20)  # torch takes 64-bit seeds; the run adds small offsets to it

# Declared field types -> (accepted Python types, how a message names them).
_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "int": ((int,), "an integer"),
    "float": ((int, float), "a number"),
    "bool": ((bool,), "true or false"),
    "str": ((str,), "a string"),
    "tuple[str,...]": ((tuple, list), "a list of texts"),
}


def documented(default: Any, help: str, **more: Any) -> Any:
    """A dataclass field with its help: the text the command line shows for its option
    (generated from the field by :mod:`tinygpt.cli.options`). ``more``: ``default_text`` (the
    default as ``--help`` names it), ``flag``, ``metavar``."""
    return field(default=default, metadata={"help": help, **more})


def _shape_suggestion(cfg: ModelConfig) -> tuple[Piece, ...]:
    """A width near ``n_embd`` that the head count divides, or a head count near ``n_head``
    that divides the width, either one giving a head size the position scheme accepts
    (RoPE rotates pairs of channels, so its head size must be even)."""
    step = cfg.n_head * (2 if cfg.position == "rope" else 1)
    width = step * max(1, round(cfg.n_embd / step))
    near = range(1, min(cfg.n_embd, 4 * cfg.n_head + 16) + 1)  # a width of 10**12 ends here
    heads = [
        h
        for h in near
        if cfg.n_embd % h == 0 and (cfg.position != "rope" or (cfg.n_embd // h) % 2 == 0)
    ]
    suggestion: tuple[Piece, ...] = (Opt("n_embd", width),)
    if heads:  # the nearest head count; on a tie the larger (smaller heads, as asked)
        nearest = min(heads, key=lambda h: (abs(h - cfg.n_head), -h))
        suggestion += (" or ", Opt("n_head", nearest))
    return suggestion


def _check_types(obj: Any) -> None:
    """Every field holds a value of its declared type, and every number is finite.

    Values reach the configs from TOML/JSON files and checkpoints as well as from the command
    line, so ``dropout = "0.1"`` or ``warmup_steps = inf`` must be caught here, before a
    comparison raises TypeError or an infinite number silently breaks the schedule.
    """
    for f in fields(obj):
        value = getattr(obj, f.name)
        declared = str(f.type).replace(" ", "").split("|")
        if value is None and "None" in declared:
            continue
        allowed = tuple(t for d in declared if d in _TYPES for t in _TYPES[d][0])
        # bool is an int to Python, but `n_layer = true` is a mistake, not 1.
        wrong = not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed)
        if wrong:
            kinds = " or ".join(_TYPES[d][1] for d in declared if d in _TYPES)
            raise UsageError(Opt(f.name), f" must be {kinds}, got {value!r:.40}")
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(Opt(f.name), f" must be a finite number, got {value}")


def parameter_bound(m: ModelConfig) -> int:
    """An upper bound on the parameter count of ``m`` (untied head, learned positions, biases),
    computed from the shape alone."""
    c = m.n_embd
    per_block = 12 * c * c + 13 * c if m.mlp else 4 * c * c + 6 * c
    return 2 * m.vocab_size * c + m.block_size * c + m.n_layer * per_block + 2 * c


def _check_size(m: ModelConfig) -> None:
    for name, limit in (
        ("n_layer", MAX_LAYERS),
        ("n_embd", MAX_WIDTH),
        ("vocab_size", MAX_VOCAB),
        ("block_size", MAX_BLOCK_SIZE),
    ):
        if getattr(m, name) > limit:
            raise UsageError(Opt(name), f" {getattr(m, name)} is above tinygpt's limit {limit}")
    params = parameter_bound(m)
    if params > MAX_PARAMETERS:
        raise UsageError(
            f"the model would have about {params:,} parameters, above tinygpt's limit of "
            f"{MAX_PARAMETERS:,}; make it smaller"
        )
    if 2 * m.n_layer * m.block_size * m.n_embd > MAX_KV_ELEMENTS:
        raise UsageError(
            Opt("block_size", m.block_size),
            f" with {m.n_layer} layers {m.n_embd} wide needs a key/value cache above tinygpt's "
            "limit; use a smaller ",
            Opt("block_size"),
        )


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise UsageError(Opt(name), f" must be positive, got {value}")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UsageError(Opt(name), f" must be one of {', '.join(choices)}; got {value!r}")


@dataclass
class ModelConfig:
    """Shape of the decoder-only transformer (defaults: a small char model that trains on a CPU)."""

    vocab_size: int = 65
    block_size: int = documented(128, "Context length in tokens.")
    n_layer: int = documented(4, "Transformer blocks.")
    n_head: int = documented(4, "Attention heads per block.")
    n_embd: int = documented(128, "Model width.")
    # False: attention-only blocks (no MLP, no second norm), the setting of the induction-head
    # papers, where circuits form fastest and are easiest to read (docs/benchmarks.md)
    mlp: bool = documented(True, "--no-mlp: attention-only blocks.")
    dropout: float = documented(0.0, "Dropout probability.")
    # The recipe's switches (defaults: the modern recipe; tinygpt/recipe.py names both sets).
    bias: bool = documented(False, "Biases in Linear and LayerNorm.")
    position: str = "rope"  # "rope" (rotary, on queries and keys) or "learned" (GPT-2's table)
    norm: str = "rmsnorm"  # "rmsnorm" (no parameters) or "layernorm" (gain and bias)
    embed_norm: bool = True  # normalise the token embedding before the first block (modern)
    qk_norm: bool = True  # RMSNorm each head's queries and keys before the dot product
    # "gelu" (exact, erf), "gelu_tanh" (GPT-2's approximation, for imported models) or "relu2"
    # (the speedrun's ReLU²; GELU measured better here: docs/benchmarks.md)
    activation: str = "gelu"
    tie_embeddings: bool = False  # share the LM head with the token embedding (GPT-2)
    logit_softcap: float = 15.0  # logits = c * tanh(logits / c); 0 disables

    def validate(self) -> ModelConfig:
        _check_types(self)
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise UsageError(Opt(name), f" must be a positive integer, got {value}")
        if self.n_embd % self.n_head:
            raise UsageError(
                Opt("n_embd"),
                f" ({self.n_embd}) must be divisible by ",
                Opt("n_head"),
                f" ({self.n_head}); try ",
                *_shape_suggestion(self),
            )
        if not 0.0 <= self.dropout < 1.0:
            raise UsageError(Opt("dropout"), f" must be in [0, 1), got {self.dropout}")
        check_choice("activation", self.activation, ("relu2", "gelu", "gelu_tanh"))
        check_choice("position", self.position, ("rope", "learned"))
        check_choice("norm", self.norm, ("rmsnorm", "layernorm"))
        if self.position == "rope" and self.head_dim % 2:
            raise UsageError(
                "rotary embeddings need an even head size (",
                Opt("n_embd"),
                " / ",
                Opt("n_head"),
                f"), got {self.n_embd} / {self.n_head} = {self.head_dim}; try ",
                *_shape_suggestion(self),
            )
        if not (self.logit_softcap >= 0 and math.isfinite(self.logit_softcap)):
            raise UsageError(
                Opt("logit_softcap"), f" must be >= 0 (0 disables), got {self.logit_softcap}"
            )
        _check_size(self)
        return self

    def _differences(self) -> dict[str, list[str]]:
        """For each named recipe, the switches this config sets otherwise."""
        return {
            name: [
                f"{k}={getattr(self, k)}"
                for k, v in r.model_options().items()
                if getattr(self, k) != v
            ]
            for name, r in RECIPES.items()
        }

    @property
    def arch(self) -> str:
        """``modern`` or ``gpt2`` when the switches match that set, else ``custom``."""
        return next((name for name, d in self._differences().items() if not d), "custom")

    @property
    def arch_description(self) -> str:
        """The recipe in words: ``modern``, ``gpt2``, or the nearer of the two and what
        differs from it (``modern, qk_norm=False``), and ``attention-only`` without MLPs."""
        differ = self._differences()
        base = min(differ, key=lambda name: len(differ[name]))
        parts = [base, *differ[base]] + ([] if self.mlp else ["attention-only"])
        return ", ".join(parts)

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


@dataclass(frozen=True)
class TrainConfig:
    """One training run: data, optimiser, schedule, evaluation, hardware and bookkeeping.

    Frozen: what changes as a run goes (its step, the total ``--max-time`` plans, the number
    of processes) is the run's state (tinygpt/training/state.py), not its configuration.
    """

    data: str = ""
    out_dir: str = ""
    tokenizer: str = documented(
        "gpt2",
        "char, gpt2, any tiktoken encoding, or bpe:N (an N-token BPE learned from the "
        "training split).",
        default_text="gpt2; char for a text too small for its model",
    )
    encoding: str = documented("utf-8", "Text encoding of FILE.")
    records: str | None = documented(
        None,
        "line or paragraph: one record a line, or records between blank lines; an "
        "end-of-record token goes between records.",
        default_text=None,
    )
    separator: str | None = documented(
        None,
        "Records are separated by this literal text (e.g. '<|endoftext|>').",
        default_text=None,
    )
    batch_size: int = documented(32, "Sequences per micro-batch.")
    grad_accum: int = documented(1, "Micro-batches per optimizer step.")
    optimizer: str = documented(
        "muon", "muon (Muon for the blocks' matrices, AdamW for the rest) or adamw."
    )
    lr: float = documented(8e-3, "Peak AdamW rate: head and scalars (adamw: everything).")
    matrix_lr: float = documented(0.02, "Peak Muon rate for the matrices.")
    embed_lr: float = documented(0.01, "Peak AdamW rate for the embeddings (muon).")
    # each group ends in proportion to its own rate
    min_lr: float = documented(0.0, "Learning rate at the end of the schedule.")
    warmup_steps: int = documented(20, "Linear warmup steps.")
    # "wsd": warmup, stable, then a linear decay over the last decay_fraction of the steps;
    # "cosine": warmup then cosine decay over every remaining step (the gpt2 recipe)
    schedule: str = documented("wsd", "wsd (warmup, stable, linear decay) or cosine (gpt2).")
    decay_fraction: float = documented(0.4, "wsd: share of the steps spent decaying.")
    max_steps: int = documented(2000, "Total optimizer steps (on --resume: the new total).")
    max_time: float | None = documented(
        None,
        "Time budget in seconds: the schedule is planned to end at the deadline "
        "(--max-steps caps it), then the run evaluates and saves.",
    )
    weight_decay: float = documented(0.1, "Weight decay (matrices only).")
    beta1: float = 0.9
    beta2: float = 0.99
    momentum: float = 0.95  # Muon's (Nesterov) momentum
    grad_clip: float = documented(1.0, "Clip the gradient norm; 0 disables.")
    eval_every: int = documented(250, "Evaluate and save every N steps.")
    eval_batches: int = documented(20, "Batches per loss estimate.")
    device: str = documented("auto", "auto (CUDA, then MPS, then CPU), cpu, cuda, mps.")
    dtype: str = documented(
        "auto", "auto (bf16 autocast on capable CUDA, else fp32), float32, bfloat16, float16."
    )
    attention: str = documented("auto", "auto (= sdpa), sdpa (fused) or manual (explicit).")
    compile: bool | None = documented(
        None, "torch.compile the model.", default_text="on for CUDA only"
    )
    seed: int = documented(1337, "Random seed.")
    head_snapshots: bool | None = documented(
        None,
        "Record head scores on a fixed probe at each evaluation (`inspect trajectory` reads them).",
        default_text="on while one probe's attention weights stay small",
    )
    # Consecutive non-finite steps tolerated (each skipped) before the run stops with an error.
    max_bad_steps: int = 5
    val_fraction: float = 0.1
    # Fine-tuning and watching a run (tinygpt/training/finetune.py, monitors.py).
    init_from: str | None = documented(
        None,
        "Start from this checkpoint's weights (its shape and tokenizer; a fresh optimizer "
        "and schedule); it is only read.",
        metavar="CHECKPOINT",
    )
    val_file: str | None = documented(
        None,
        "Validation loss on this text file instead of FILE's last 10% (all of FILE trains).",
        metavar="PATH",
    )
    eval_samples: bool = documented(
        True, "A short sample at each evaluation: in the progress display and metrics.jsonl."
    )
    early_stop: int | None = documented(
        None,
        "End the run after K evaluations without a new best validation loss (the best "
        "weights stay in best.safetensors: generate --best).",
        metavar="K",
    )

    def effective_batch_size(self, world_size: int = 1) -> int:
        """Sequences per optimizer step: batch x accumulation x data-parallel processes."""
        return self.batch_size * self.grad_accum * world_size

    def validate(self) -> TrainConfig:
        _check_types(self)
        for name in (
            "batch_size",
            "grad_accum",
            "max_steps",
            "eval_every",
            "eval_batches",
            "max_bad_steps",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise UsageError(Opt(name), f" must be a positive integer, got {value}")
        for name in ("lr", "matrix_lr", "embed_lr"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise UsageError(Opt(name), f" must be positive, got {value}")
        check_choice("optimizer", self.optimizer, OPTIMIZER_CHOICES)
        check_choice("schedule", self.schedule, SCHEDULE_CHOICES)
        if not 0 <= self.decay_fraction <= 1:
            raise UsageError(
                Opt("decay_fraction"), f" must be in [0, 1], got {self.decay_fraction}"
            )
        if not 0 <= self.momentum < 1:
            raise UsageError(Opt("momentum"), f" must be in [0, 1), got {self.momentum}")
        if not (0 <= self.min_lr <= self.lr) or not math.isfinite(self.min_lr):
            raise UsageError(
                Opt("min_lr"),
                " must be between 0 and ",
                Opt("lr"),
                f" ({self.lr}), got {self.min_lr}",
            )
        if self.warmup_steps < 0:
            raise UsageError(Opt("warmup_steps"), f" must be >= 0, got {self.warmup_steps}")
        if self.weight_decay < 0 or not math.isfinite(self.weight_decay):
            raise UsageError(Opt("weight_decay"), f" must be >= 0, got {self.weight_decay}")
        if self.grad_clip < 0 or not math.isfinite(self.grad_clip):
            raise UsageError(
                Opt("grad_clip"), f" must be >= 0 (0 disables clipping), got {self.grad_clip}"
            )
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise UsageError(Opt(name), f" must be in [0, 1), got {getattr(self, name)}")
        if self.max_time is not None:
            _positive("max_time", self.max_time)
        if self.early_stop is not None and self.early_stop <= 0:
            raise UsageError(
                Opt("early_stop"), f" must be a positive integer, got {self.early_stop}"
            )
        if not 0 <= self.seed <= MAX_SEED:
            raise UsageError(Opt("seed"), f" must be between 0 and {MAX_SEED}, got {self.seed}")
        if not 0 < self.val_fraction < 1:
            raise UsageError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        check_choice("device", self.device, DEVICE_CHOICES)
        check_choice("dtype", self.dtype, DTYPE_CHOICES)
        check_choice("attention", self.attention, ATTENTION_CHOICES)
        if is_bpe_spec(self.tokenizer):
            parse_bpe_spec(self.tokenizer)
        record_spec(self.records, self.separator)
        return self

    @property
    def record_spec(self) -> dict[str, str] | None:
        """The records setting as the tokenizer stores it (None: plain text)."""
        return record_spec(self.records, self.separator)


@dataclass
class SampleConfig:
    """Sampling controls for ``generate``."""

    max_new_tokens: int = documented(500, "Tokens to generate.")
    temperature: float = documented(0.8, "Softmax temperature; 0 is greedy.")
    top_k: int | None = documented(200, "Sample among the k most likely tokens.")
    top_p: float | None = documented(
        None, "Nucleus sampling: smallest set with this probability mass."
    )
    seed: int | None = documented(None, "Random seed (same seed, same sample; sample i: seed+i).")
    num_samples: int = documented(1, "Independent samples, drawn as one batch.")
    kv_cache: bool = documented(
        True, "Reuse past keys/values (--no-kv-cache recomputes every step)."
    )
    # A sample ends where one of these texts first appears (the text itself is not kept).
    stop: tuple[str, ...] = documented(
        (),
        "End a sample where this text first appears (not printed); repeatable; "
        "\\n and \\t are a newline and a tab.",
        default_text=None,
        metavar="<str>",
    )
    # On a model trained with --records/--separator, a sample is one record.
    stop_at_record: bool = documented(
        True,
        "On a records model, end a sample at its end-of-record token "
        "(--no-stop-at-record: go on to the next record).",
    )
    alternatives: int = documented(
        0,
        "With --json: for each token, this many of the model's most likely tokens "
        "with their probabilities.",
    )

    def validate(self) -> SampleConfig:
        _check_types(self)
        if self.seed is not None and not 0 <= self.seed <= MAX_SEED:
            raise UsageError(Opt("seed"), f" must be between 0 and {MAX_SEED}, got {self.seed}")
        if self.max_new_tokens < 0:
            raise UsageError(Opt("max_new_tokens"), f" must be >= 0, got {self.max_new_tokens}")
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            raise UsageError(
                Opt("temperature"), f" must be >= 0 (0 means greedy), got {self.temperature}"
            )
        if self.top_k is not None and self.top_k <= 0:
            raise UsageError(Opt("top_k"), f" must be a positive integer, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise UsageError(Opt("top_p"), f" must be in (0, 1], got {self.top_p}")
        if self.num_samples <= 0:
            raise UsageError(
                Opt("num_samples"), f" must be a positive integer, got {self.num_samples}"
            )
        if self.seed is not None and self.seed + self.num_samples - 1 > MAX_SEED:
            raise UsageError(
                Opt("seed"),
                " + ",
                Opt("num_samples"),
                f" must stay within {MAX_SEED} (sample i uses seed + i)",
            )
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise UsageError(Opt("stop"), " needs a non-empty text")
        if not 0 <= self.alternatives <= MAX_ALTERNATIVES:
            raise UsageError(
                Opt("alternatives"),
                f" must be between 0 and {MAX_ALTERNATIVES}, got {self.alternatives}",
            )
        return self


@dataclass
class RunConfig:
    """What a checkpoint's ``config.json`` holds: the model and the run that trained it."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self, world_size: int = 1) -> dict[str, Any]:
        """config.json's contents; ``world_size``: the processes that trained it (recorded with
        the batch they made, not read back)."""
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
