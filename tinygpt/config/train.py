"""One training run's settings: data, optimiser, schedule, evaluation, hardware, bookkeeping."""

from __future__ import annotations

from dataclasses import dataclass

from tinygpt.config.fields import (
    ATTENTION_CHOICES,
    DATA_ORDER_CHOICES,
    DEVICE_CHOICES,
    DTYPE_CHOICES,
    OPTIMIZER_CHOICES,
    SCHEDULE_CHOICES,
    check_choice,
    check_positive,
    check_rate,
    check_seed,
    check_types,
    documented,
)
from tinygpt.config.specs import is_bpe_spec, parse_bpe_spec, record_spec
from tinygpt.errors import Opt, UsageError

EVAL_EVERY = 250  # steps between evaluations, without --max-time
# Sequences a step (or an evaluation) may draw, batches it may add up: 2**63 spun for ever.
MAX_PER_STEP = 2**20
EVALS_PER_BUDGET = 8  # evaluations over a --max-time budget (the last at the deadline), or
# fewer: they take at most this share of it, each one's cost / EVAL_SHARE after the last
# (8 took 3.5% of the 5-minute run on a CPU without AMX, 1.7% with it).
EVAL_SHARE = 0.02
# --max-time with no --max-steps from anywhere: the deadline alone ends the run (the default
# 2,000 steps would end a 5-minute run early on a machine faster than this project's).
NO_STEP_CAP = 1_000_000_000


@dataclass(frozen=True)
class TrainConfig:
    """One training run's settings. Frozen: what changes as a run goes (its step, the total
    ``--max-time`` plans) is the run's state (tinygpt/training/state.py)."""

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
    batch_warmup_steps: int = documented(
        400,
        "The first N steps update the weights on each half of their batch: twice the "
        "updates while the loss falls fastest, for the same tokens; 0: one update a step "
        "(the gpt2 recipe).",
    )
    data_order: str = documented(
        "passes",
        "passes (each pass over the text a shuffled set of windows tiling it: every token a "
        "target once a pass) or random (each window drawn anywhere; the gpt2 recipe).",
    )
    optimizer: str = documented(
        "muon", "muon (Muon for the blocks' matrices, AdamW for the rest) or adamw."
    )
    lr: float = documented(8e-3, "Peak AdamW rate: head and scalars (adamw: everything).")
    matrix_lr: float = documented(0.02, "Peak Muon rate for the matrices.")
    embed_lr: float = documented(0.01, "Peak AdamW rate for the embeddings (muon).")
    # each group ends in proportion to its own rate
    min_lr: float = documented(0.0, "Learning rate at the end of the schedule.")
    warmup_steps: int = documented(20, "Linear warmup steps.")
    schedule: str = documented("wsd", "wsd (warmup, stable, linear decay) or cosine (gpt2).")
    decay_fraction: float = documented(0.4, "wsd: share of the steps spent decaying.")
    max_steps: int = documented(
        2000,
        "Total optimizer steps (on --resume: the new total); with --max-time, a cap.",
        default_text="2000; with --max-time, none",
    )
    max_time: float | None = documented(
        None,
        "Time budget in seconds: the schedule is planned to end at the deadline "
        "(--max-steps caps it), then the run evaluates and saves.",
    )
    weight_decay: float = documented(0.1, "Weight decay (matrices only).")
    beta1: float = 0.9
    beta2: float = 0.99
    momentum: float = 0.95  # Muon's (Nesterov) momentum
    normuon: bool = documented(
        True,
        "NorMuon: even out Muon's step across each matrix's neurons (a running mean square a "
        "row); off: torch's Muon.",
    )
    grad_clip: float = documented(1.0, "Clip the gradient norm; 0 disables.")
    ema: float = documented(
        0.99,
        "Evaluate, save and sample an average of the weights, each step's weighing this much "
        "less (an exponential moving average); 0: the weights as trained (the gpt2 recipe).",
    )
    eval_every: int | None = documented(
        None,
        "Evaluate and save every N steps.",
        default_text=f"{EVAL_EVERY}; with --max-time, up to {EVALS_PER_BUDGET} evaluations "
        f"spread over the time (fewer where they would take over {EVAL_SHARE:.0%} of it)",
    )
    eval_batches: int = documented(20, "Batches per loss estimate.")
    device: str = documented("auto", "auto (CUDA, then MPS, then CPU), cpu, cuda, mps.")
    dtype: str = documented(
        "auto",
        "auto (bf16 autocast on capable CUDA and on CPUs where bf16 times faster, else fp32), "
        "float32, bfloat16, float16.",
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
    weight_history: bool | None = documented(
        None,
        "Keep the weights of every evaluation in the checkpoint (float16; `tinygpt explore` "
        "shows a token's attention at each kept step).",
        default_text="on for models up to 2M parameters",
    )
    # Consecutive non-finite steps tolerated (each skipped) before the run stops with an error.
    max_bad_steps: int = 5
    val_fraction: float = 0.1
    init_from: str | None = documented(
        None,
        "Start from this checkpoint's weights (its shape and tokenizer; a fresh optimizer "
        "and schedule); it is only read.",
        metavar="CHECKPOINT",
    )
    val_file: str | None = documented(
        None,
        "Validation loss on this text file instead of FILE's last 10% (of each file's, for a "
        "folder); all of FILE trains.",
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

    @property
    def step_cap(self) -> int | None:
        """With --max-time, the steps the deadline's plan may not exceed (None: no cap)."""
        return self.max_steps if self.max_steps < NO_STEP_CAP else None

    def effective_batch_size(self, world_size: int = 1) -> int:
        """Sequences per optimizer step: batch x accumulation x data-parallel processes."""
        return self.batch_size * self.grad_accum * world_size

    def validate(self) -> TrainConfig:
        check_types(self)
        if self.val_file == "":  # Path("") is "." : every file here
            raise UsageError(Opt("val_file"), " is an empty name; give a file, folder or glob")
        counts = ("batch_size", "grad_accum", "max_steps", "eval_batches", "max_bad_steps")
        for name in (*counts, "eval_every", "early_stop"):  # (the last two may be None)
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise UsageError(Opt(name), f" must be a positive integer, got {value}")
        for name in ("batch_size", "grad_accum", "eval_batches"):  # each is work done per step
            if getattr(self, name) > MAX_PER_STEP:
                raise UsageError(Opt(name), f" must be at most {MAX_PER_STEP:,}")
        self._check_optimizer()
        if self.max_time is not None:
            check_positive("max_time", self.max_time)
        check_seed(self.seed)
        if not 0 < self.val_fraction < 1:
            raise UsageError(Opt("val_fraction"), f" must be in (0, 1), got {self.val_fraction}")
        check_choice("device", self.device, DEVICE_CHOICES)
        check_choice("dtype", self.dtype, DTYPE_CHOICES)
        check_choice("attention", self.attention, ATTENTION_CHOICES)
        if is_bpe_spec(self.tokenizer):
            parse_bpe_spec(self.tokenizer)
        record_spec(self.records, self.separator)
        return self

    def _check_optimizer(self) -> None:
        for name in ("lr", "matrix_lr", "embed_lr"):
            check_rate(name, getattr(self, name))
        check_choice("optimizer", self.optimizer, OPTIMIZER_CHOICES)
        check_choice("schedule", self.schedule, SCHEDULE_CHOICES)
        check_choice("data_order", self.data_order, DATA_ORDER_CHOICES)
        if not 0 <= self.ema < 1:
            raise UsageError(Opt("ema"), f" must be in [0, 1), got {self.ema}")
        if not 0 <= self.decay_fraction <= 1:
            raise UsageError(
                Opt("decay_fraction"), f" must be in [0, 1], got {self.decay_fraction}"
            )
        if not 0 <= self.min_lr <= self.lr:
            raise UsageError(
                Opt("min_lr"),
                " must be between 0 and ",
                Opt("lr"),
                f" ({self.lr}), got {self.min_lr}",
            )
        for name in ("warmup_steps", "batch_warmup_steps"):
            if getattr(self, name) < 0:
                raise UsageError(Opt(name), f" must be >= 0, got {getattr(self, name)}")
        if self.weight_decay < 0:
            raise UsageError(Opt("weight_decay"), f" must be >= 0, got {self.weight_decay}")
        if self.grad_clip < 0:
            raise UsageError(
                Opt("grad_clip"), f" must be >= 0 (0 disables clipping), got {self.grad_clip}"
            )
        for name in ("momentum", "beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise UsageError(Opt(name), f" must be in [0, 1), got {getattr(self, name)}")

    @property
    def eval_steps(self) -> int | None:
        """Steps between evaluations; None: by time (``eval_seconds``)."""
        if self.eval_every is not None:
            return self.eval_every
        return None if self.max_time is not None else EVAL_EVERY

    @property
    def eval_seconds(self) -> float | None:
        """Seconds between evaluations of a ``--max-time`` run without ``--eval-every`` (a
        line every 30-60 s of a 5-minute run)."""
        if self.eval_steps is not None or self.max_time is None:
            return None
        return self.max_time / EVALS_PER_BUDGET

    @property
    def record_spec(self) -> dict[str, str] | None:
        """The records setting as the tokenizer stores it (None: plain text)."""
        return record_spec(self.records, self.separator)
