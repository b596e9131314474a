"""The training loop: AdamW, warmup + cosine schedule, accumulation, clipping, eval, checkpoints.

``train()`` is the whole job. The loop knows nothing about how a run is shown or analysed: it
fires events (start, step, evaluate, save, note, slowdown, end) to the :class:`TrainerCallback`
objects its caller attaches; :func:`tinygpt.api.train` attaches the progress display and the head
snapshots.
Everything a run needs to continue bit-for-bit (weights, optimizer, scaler, every RNG and the
data stream's generator) goes into the checkpoint, so ``resume=True`` is exact on CPU.
"""

from __future__ import annotations

import json
import math
import random
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from tinygpt import checkpoint as ckpt
from tinygpt.config import ModelConfig, RunConfig, TrainConfig
from tinygpt.data import (
    BatchSampler,
    Corpus,
    check_encoding,
    check_split_lengths,
    prepare_corpus,
    resolve_sources,
)
from tinygpt.device import (
    autocast,
    configure_backends,
    default_compile,
    fit_cpu_threads,
    resolve_device,
    resolve_dtype,
)
from tinygpt.distributed import DistContext, launch_rank, setup, teardown
from tinygpt.errors import CheckpointError, Interrupted, TrainingDiverged, UsageError
from tinygpt.lock import directory_lock
from tinygpt.messages import ANY, Message, Opt
from tinygpt.model import GPT, ParameterCount, count_parameters
from tinygpt.optim import build_optimizers
from tinygpt.planner import DeadlinePlanner
from tinygpt.presets import resolve_options
from tinygpt.recipe import MODEL_SWITCHES
from tinygpt.schedule import horizon_free, lr_at
from tinygpt.speed import Slowdown, SpeedWatch
from tinygpt.tokenizer import Tokenizer


@dataclass
class TrainResult:
    out_dir: Path
    step: int
    best_val_loss: float
    metrics: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False
    stopped_by_time: bool = False
    is_main: bool = True  # False on data-parallel ranks other than 0 (they report nothing)
    model: GPT | None = None  # the trained model, in memory
    signal: int = 0  # the stop signal that interrupted the run (SIGINT, SIGTERM, SIGHUP), or 0

    @property
    def parameters(self) -> ParameterCount | None:
        return self.model.parameter_count() if self.model is not None else None


class TrainerCallback:
    """Listens to a run's events; every method is a no-op until overridden.

    ``on_evaluate`` runs on rank 0 before the record is logged, so it may add fields to it.
    """

    def on_start(self, trainer: Trainer) -> None:
        """The loop is about to start (Ctrl-C and the stop signals are already handled)."""

    def on_step(self, trainer: Trainer, loss: float, lr: float, tokens_per_sec: float) -> None:
        """An optimizer step finished (``trainer.step`` counts it)."""

    def on_evaluate(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """An evaluation's record, before it goes into metrics.jsonl."""

    def on_save(self, trainer: Trainer) -> None:
        """A checkpoint was written (rank 0)."""

    def on_note(self, trainer: Trainer, message: str) -> None:
        """Something a person watching the run should know."""

    def on_slowdown(self, trainer: Trainer, slowdown: Slowdown) -> None:
        """Steps became much slower than earlier in the run (fired at most once a session)."""

    def on_end(self, trainer: Trainer) -> None:
        """The loop ended, normally or not."""


# Ctrl-C, then what schedulers send on preemption (SLURM, Kubernetes, `docker stop`, `timeout`)
# and what a closing terminal sends: each means "stop soon", and none should lose the steps
# since the last save.
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class _Interrupt:
    """Turns the first stop signal into a flag the loop checks after each step (a second one
    aborts at once)."""

    def __init__(self) -> None:
        self.signum = 0

    @property
    def requested(self) -> bool:
        return self.signum != 0

    def _handler(self, signum: int, frame: Any) -> None:
        if self.signum:
            raise Interrupted(signum)
        self.signum = signum

    @contextmanager
    def installed(self):
        previous = {}
        try:
            for sig in STOP_SIGNALS:
                previous[sig] = signal.signal(sig, self._handler)
        except ValueError:  # not the main thread: leave signals alone
            pass
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _python_rng_to_tensor() -> torch.Tensor:
    version, internal, _gauss = random.getstate()
    return torch.tensor([version, *internal], dtype=torch.int64)


def _python_rng_from_tensor(t: torch.Tensor) -> None:
    values = [int(v) for v in t.tolist()]
    random.setstate((values[0], tuple(values[1:]), None))


def split_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sort keyword options into model-shape and training options; reject unknown names."""
    model_names = {f.name for f in fields(ModelConfig)}
    train_names = {f.name for f in fields(TrainConfig)}
    model_opts, train_opts = {}, {}
    for key, value in options.items():
        if value is None:  # not given: the preset, config file or dataclass default stands
            continue
        if key in model_names:
            model_opts[key] = value
        elif key in train_names:
            train_opts[key] = value
        else:
            raise UsageError(f"unknown training option {key!r}")
    return model_opts, train_opts


# Parameters per training token above which a run memorises its text: train loss falls while
# the validation loss climbs. Tiny Shakespeare's default char model has 0.8 per token; the
# issue's 35 KB file with the gpt2 tokenizer had 13.65M for 8,075 tokens, about 1,700.
DWARFS_THE_DATA = 100


def model_size_note(model: GPT, train_tokens: int, tokenizer: Tokenizer) -> str | None:
    """A warning, said when the run starts, when the model dwarfs its training text; None
    when it fits."""
    total = model.parameter_count().total
    if total <= DWARFS_THE_DATA * max(train_tokens, 1):
        return None
    # The token embedding, and the LM head when it is its own matrix: both grow with the vocabulary.
    embedding = model.wte.weight.numel() * (1 if model.config.tie_embeddings else 2)
    why = (
        (
            f", {embedding / total:.0%} of them in the embedding and head of the "
            f"{tokenizer.vocab_size:,}-token {tokenizer.name} vocabulary; ",
            Opt("tokenizer", "char"),
            " learns from the text's own characters",
        )
        if tokenizer.name != "char" and embedding * 2 > total
        else ("; a smaller model (fewer layers, a narrower width) or more text fits better",)
    )
    return Message(
        f"note: the model has {total:,} parameters for {train_tokens:,} training tokens "
        f"({total // max(train_tokens, 1):,} per token): it will memorise the text rather than "
        f"learn from it (the validation loss rises while the training loss falls)",
        *why,
    )


# Bytes of text per GPT-2 token in English prose (tiny Shakespeare: 1,115,394 bytes make
# 338,025 tokens), to size a BPE run before its text is tokenized.
BYTES_PER_BPE_TOKEN = 3.3
GPT2_VOCAB = 50257


def default_tokenizer(data: str | Path, model_opts: dict[str, Any]) -> tuple[str, str | None]:
    """The tokenizer of a new run that named none, and a note when it is not the usual one.

    TrainConfig's default (gpt2) when its model fits the text; else char, whose vocabulary is
    the text's own characters: on a small file gpt2's 50,257-token embedding and head make a
    model that memorises the text (the issue's 35 KB file: 13.65M parameters for 8,075 tokens,
    ~21 minutes for 50 steps on a CPU, train 2.03 vs val 6.82).
    """
    usual = TrainConfig.tokenizer
    size = sum(path.stat().st_size for path in resolve_sources(data))
    tokens = max(1, int(size / BYTES_PER_BPE_TOKEN * (1 - TrainConfig.val_fraction)))
    try:
        bpe = ModelConfig(**{**model_opts, "vocab_size": GPT2_VOCAB}).validate()
    except (UsageError, TypeError, ValueError):
        return usual, None  # the shape's own error comes when the run's model is checked
    params = count_parameters(bpe).total
    if usual != "gpt2" or params <= DWARFS_THE_DATA * tokens:
        return usual, None
    return "char", Message(
        "note: ",
        Opt("tokenizer", "char"),
        f" picked for this {size:,}-byte text: with ",
        Opt("tokenizer", "gpt2"),
        f" the model would have about {params / 1e6:.1f}M "
        f"parameters for about {tokens:,} training tokens and memorise them; pass ",
        Opt("tokenizer", "gpt2"),
        " to use it anyway",
    )


class Trainer:
    """One run, fresh or resumed. Use :func:`train` unless you need the pieces."""

    def __init__(
        self,
        run: RunConfig,
        corpus: Corpus,
        resume_from: ckpt.Checkpoint | None = None,
        callbacks: Sequence[TrainerCallback] = (),
        dist: DistContext | None = None,
        notes: Sequence[str] = (),
    ) -> None:
        """``notes``: said when the run starts, before the trainer's own."""
        self.run = run
        cfg, mcfg = run.train, run.model
        self.cfg = cfg
        self.dist = dist or DistContext()
        cfg.world_size = self.dist.world_size
        self.out_dir = Path(cfg.out_dir)
        self.callbacks = list(callbacks)
        self.corpus = corpus
        self.device = resolve_device(cfg.device)
        if self.device.type == "cuda" and self.dist.enabled:
            self.device = torch.device("cuda", self.dist.local_rank)
        self.dtype = resolve_dtype(cfg.dtype, self.device)
        configure_backends(self.device)
        # Said once the run starts (a display is listening by then).
        threads_note = fit_cpu_threads(self.device)
        self.startup_notes = [*notes, *([threads_note] if threads_note else [])]
        self.train_ids, self.val_ids = corpus.split(cfg.val_fraction)
        check_split_lengths(self.train_ids, self.val_ids, mcfg.block_size)

        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.model = GPT(mcfg, attention=cfg.attention).to(self.device)
        size_note = model_size_note(self.model, len(self.train_ids), corpus.tokenizer)
        self.startup_notes += [size_note] if size_note else []
        self.optimizer = build_optimizers(self.model, cfg, self.device)
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=self.dtype == torch.float16 and self.device.type == "cuda"
        )
        if self.dist.enabled:
            torch.manual_seed(cfg.seed + self.dist.rank)  # distinct dropout masks per rank
        self.sampler = BatchSampler(
            self.train_ids,
            mcfg.block_size,
            cfg.batch_size,
            cfg.seed,
            self.dist.rank,
            self.dist.world_size,
        )
        self.step = 0
        self.best_val = math.inf
        self.best_weights: bytes | None = None
        self.tokens_seen = 0
        self.elapsed = 0.0  # training seconds, summed over resumed sessions
        self.metrics: list[dict[str, Any]] = []
        if resume_from is not None:
            self._restore(resume_from)
        use_compile = cfg.compile if cfg.compile is not None else default_compile(self.device)
        wrapped: torch.nn.Module = self.model
        self.ddp: DistributedDataParallel | None = None
        if self.dist.enabled:
            # DDP broadcasts rank 0's weights now and averages gradients during backward.
            ids = [self.device.index] if self.device.type == "cuda" else None
            wrapped = self.ddp = DistributedDataParallel(self.model, device_ids=ids)
        self.compiled = bool(use_compile)
        self.forward_model = torch.compile(wrapped) if use_compile else wrapped
        # Wall clock for --max-time and tokens/s; tests substitute a fake one.
        self.clock: Callable[[], float] = time.perf_counter

    # -- events ------------------------------------------------------------------------------
    def emit(self, event: str, *args: Any) -> None:
        """Call ``on_<event>`` of every attached callback, in the order they were given."""
        for callback in self.callbacks:
            getattr(callback, f"on_{event}")(self, *args)

    @contextmanager
    def _events(self) -> Iterator[None]:
        self.emit("start")
        for message in self.startup_notes:
            self.emit("note", message)
        try:
            yield
        finally:
            self.emit("end")

    # -- state -------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "step": self.step,
            "best_val": self.best_val,
            "tokens_seen": self.tokens_seen,
            "elapsed": self.elapsed,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "python_rng": _python_rng_to_tensor(),
            "sampler_rng": self.sampler.generator.get_state(),
            "world_size": self.dist.world_size,
            "device": self.device.type,
            "dtype": str(self.dtype).removeprefix("torch."),
        }
        if self.dist.enabled:  # every rank's dropout stream, for an exact distributed resume
            state["rank_torch_rng"] = self.dist.gather(torch.get_rng_state())
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
            if self.dist.enabled and self.device.type == "cuda":
                state["rank_cuda_rng"] = self.dist.gather(torch.cuda.get_rng_state(self.device))
        return state

    def _restore(self, source: ckpt.Checkpoint) -> None:
        ckpt.load_weights(self.model, source.read_verified(ckpt.MODEL_FILE), str(source.directory))
        state = source.load_state()
        try:
            self._restore_state(state)
        except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as exc:
            # A state.pt that loads (plain tensors and values) but not the ones a run saves.
            detail = (str(exc).strip().splitlines() or [""])[-1][:120]
            raise CheckpointError(
                f"checkpoint {source.directory} is corrupt: {ckpt.STATE_FILE} does not fit "
                f"this run ({type(exc).__name__}: {detail})"
            ) from None
        if source.has(ckpt.BEST_FILE):
            self.best_weights = source.read_verified(ckpt.BEST_FILE)
        # Evaluations logged after the checkpoint's step belong to the lost part of the run.
        self.metrics = source.metrics()

    def _restore_state(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        _python_rng_from_tensor(state["python_rng"])
        self.sampler.generator.set_state(state["sampler_rng"])
        if "cuda_rng" in state and torch.cuda.is_available() and not self.dist.enabled:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        if self.dist.enabled:
            same_world = int(state.get("world_size", 1)) == self.dist.world_size
            if same_world and "rank_torch_rng" in state:
                # clone(): a row view of the stacked states crashes set_rng_state
                torch.set_rng_state(state["rank_torch_rng"][self.dist.rank].clone())
                if "rank_cuda_rng" in state and self.device.type == "cuda":
                    rank_state = state["rank_cuda_rng"][self.dist.rank].clone()
                    torch.cuda.set_rng_state(rank_state, self.device)
            else:  # a different number of ranks: resumes, but dropout masks are new
                torch.manual_seed(self.cfg.seed + self.dist.rank + int(state["step"]))
        self.step = int(state["step"])
        self.best_val = float(state["best_val"])
        self.tokens_seen = int(state["tokens_seen"])
        self.elapsed = float(state["elapsed"])

    def save(self) -> None:
        """Rank 0 writes the checkpoint; the others contribute their RNG states and wait."""
        state = self._state()  # collective under DDP: every rank must get here
        if not self.dist.is_main:
            self.dist.barrier()
            return
        files = {
            ckpt.CONFIG_FILE: json.dumps(self.run.to_dict(), indent=2).encode(),
            ckpt.TOKENIZER_FILE: json.dumps(self.corpus.tokenizer.to_dict()).encode(),
            ckpt.MODEL_FILE: ckpt.weights_bytes(self.model),
            ckpt.STATE_FILE: ckpt.state_bytes(state),
        }
        if self.best_weights is not None:
            files[ckpt.BEST_FILE] = self.best_weights
        self.out_dir.mkdir(parents=True, exist_ok=True)
        # The log commits with the checkpoint: a save that fails leaves no record of an
        # evaluation whose weights were never saved, and one that succeeds never loses it.
        log = ckpt.metrics_bytes(self.metrics)
        ckpt.write_checkpoint(self.out_dir, files, self.step, log=log)
        self.emit("save")
        self.dist.barrier()

    @property
    def tokens_per_step(self) -> int:
        """Tokens per optimizer step over all ranks (the effective batch x block size)."""
        return self.cfg.effective_batch_size * self.run.model.block_size

    # -- evaluation --------------------------------------------------------------------------
    @torch.inference_mode()
    def estimate_loss(self, ids: np.ndarray) -> float:
        """Mean loss on ``eval_batches`` fixed random batches (the same ones at every eval)."""
        self.model.eval()
        sampler = BatchSampler(
            ids, self.run.model.block_size, self.cfg.batch_size, seed=self.cfg.seed + 1
        )
        total = 0.0
        for _ in range(self.cfg.eval_batches):
            x, y = sampler.next(self.device)
            with autocast(self.device, self.dtype):
                _, loss = self.model(x, y)
            total += float(loss)
        self.model.train()
        return total / self.cfg.eval_batches

    def evaluate(self, train_loss: float, tokens_per_sec: float) -> dict[str, Any]:
        val = self.estimate_loss(self.val_ids)
        record = {
            "step": self.step,
            "train_loss": self.estimate_loss(self.train_ids),
            "val_loss": val,
            "last_batch_loss": train_loss,
            "lr": lr_at(max(0, self.step - 1), self.cfg),
            "tokens_per_sec": tokens_per_sec,
            "tokens_seen": self.tokens_seen,
            "elapsed_s": round(self.elapsed, 3),
            "best": val < self.best_val,
        }
        self.emit("evaluate", record)
        if val < self.best_val:
            self.best_val = val
            self.best_weights = ckpt.weights_bytes(self.model)
        self.metrics.append(record)
        return record

    # -- the loop ----------------------------------------------------------------------------
    def train_step(self) -> tuple[float, bool]:
        """One optimizer step over ``grad_accum`` micro-batches; returns (loss, applied)."""
        cfg = self.cfg
        self.optimizer.set_lr(lr_at(self.step, cfg), cfg)
        loss_sum = torch.zeros((), device=self.device)
        for micro in range(cfg.grad_accum):
            x, y = self.sampler.next(self.device)
            # Under DDP, gradients are all-reduced only on the last micro-batch.
            last = micro == cfg.grad_accum - 1
            sync = self.ddp.no_sync() if self.ddp is not None and not last else nullcontext()
            with sync, autocast(self.device, self.dtype):
                _, loss = self.forward_model(x, y)
                loss = loss / cfg.grad_accum
            loss_sum += loss.detach()
            with sync:
                self.scaler.scale(loss).backward()
        loss_sum = self.dist.mean(loss_sum)  # every rank takes the same skip decision
        for opt in self.optimizer.optimizers:
            self.scaler.unscale_(opt)
        max_norm = cfg.grad_clip if cfg.grad_clip > 0 else math.inf
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        loss_value = float(loss_sum)
        finite = math.isfinite(loss_value) and bool(torch.isfinite(norm))
        if finite or self.scaler.is_enabled():
            # GradScaler skips non-finite steps itself (and lowers its scale).
            for opt in self.optimizer.optimizers:
                self.scaler.step(opt)
            self.scaler.update()
        self.optimizer.zero_grad()
        self.step += 1
        self.tokens_seen += self.tokens_per_step
        return loss_value, math.isfinite(loss_value) and (finite or self.scaler.is_enabled())

    def plan_steps(self, planner: DeadlinePlanner, session_seconds: float, step_cap: int) -> None:
        """Under ``--max-time``, set ``max_steps`` so the schedule ends at the deadline.

        Only while the rate does not depend on the total yet (``horizon_free``): re-planning
        then changes nothing already done, and the total settled on is saved in config.json,
        so a resume continues the same schedule exactly. No plan before a steady step.
        """
        cfg = self.cfg
        if self.step >= horizon_free(cfg, cfg.max_steps):
            return
        left = planner.steps_left(session_seconds)
        if left is None:
            return
        # Capped first: a budget like 1e38 s must not overflow the float32 all ranks average.
        estimate = self.step + min(left, step_cap)
        # Every rank must plan the same total.
        estimate = round(float(self.dist.mean(torch.tensor(float(estimate)))))
        # --max-steps stays a cap even while the warmup outlasts it (the horizon not reached)
        cfg.max_steps = min(step_cap, max(self.step + 1, estimate))

    def fit(self) -> TrainResult:
        cfg = self.cfg
        bad_in_a_row = 0
        loss = math.nan
        interrupted = stopped_by_time = False
        stop_signal = 0
        step_cap = cfg.max_steps
        planner = DeadlinePlanner(
            cfg.max_time or 0.0,
            cfg.eval_every,
            2 * cfg.eval_batches,
            cfg.grad_accum,
            warmup_steps=2 if self.compiled else 1,  # a compiled second step may recompile
            compiled=self.compiled,
        )
        session_start = self.clock()
        window_start, window_tokens = self.clock(), 0
        tokens_per_step = self.tokens_per_step
        first_step = True
        speed = SpeedWatch()  # each step's own time: evaluations and saves don't count
        with _Interrupt().installed() as interrupt, self._events():
            while self.step < cfg.max_steps:
                t0 = self.clock()
                loss, applied = self.train_step()
                dt = self.clock() - t0
                if first_step and self.compiled:  # the first step carries the compilation
                    self.emit("note", f"torch.compile: first step took {dt:.1f}s")
                first_step = False
                self.elapsed += dt
                slowdown = speed.add(self.step, tokens_per_step, dt)
                if slowdown is not None:
                    self.emit("slowdown", slowdown)
                window_tokens += tokens_per_step
                bad_in_a_row = 0 if applied else bad_in_a_row + 1
                if bad_in_a_row:
                    self.emit(
                        "note", f"step {self.step}: non-finite loss or gradients, step skipped"
                    )
                if bad_in_a_row >= cfg.max_bad_steps:
                    raise TrainingDiverged(
                        f"loss or gradients were non-finite for {bad_in_a_row} steps in a row "
                        f"(at step {self.step}); lower ",
                        Opt("lr"),
                        " or use ",
                        Opt("dtype", "float32"),
                        f". The last good checkpoint in {self.out_dir} is unchanged",
                    )
                tok_s = window_tokens / max(1e-9, self.clock() - window_start)
                if cfg.max_time is not None:
                    session_seconds = self.clock() - session_start
                    planner.step_done(session_seconds)
                    self.plan_steps(planner, session_seconds, step_cap)
                self.emit("step", loss, lr_at(self.step - 1, cfg), tok_s)
                out_of_time = (
                    cfg.max_time is not None and self.clock() - session_start >= cfg.max_time
                )
                # All ranks must agree to stop, or the others would wait for it forever; the
                # signal one rank received (SIGTERM may reach only one) stops them all.
                signum, timed_out = self.dist.max(interrupt.signum, out_of_time)
                stop_signal, interrupted, out_of_time = int(signum), signum > 0, timed_out > 0
                if interrupted:
                    break
                if self.step % cfg.eval_every == 0 or self.step == cfg.max_steps or out_of_time:
                    eval_start = self.clock()
                    if self.dist.is_main:
                        self.evaluate(loss, tok_s)
                    self.save()
                    window_start, window_tokens = self.clock(), 0
                    planner.evaluation_done(window_start - eval_start)
                if out_of_time:
                    stopped_by_time = True
                    self.emit(
                        "note",
                        Message(
                            Opt("max_time"),
                            f" {cfg.max_time:g}s reached at step {self.step} ({planner.summary()})",
                        ),
                    )
                    break
                if cfg.max_time is not None and self.step == cfg.max_steps < step_cap:
                    stopped_by_time = True  # the step planned for the deadline
                    self.emit(
                        "note",
                        Message(
                            Opt("max_time"),
                            f" {cfg.max_time:g}s: the schedule planned for the deadline ended at "
                            f"step {self.step} ({self.clock() - session_start:.0f}s; "
                            f"{planner.summary()})",
                        ),
                    )
            if interrupted:
                self.save()
        return TrainResult(
            self.out_dir,
            self.step,
            self.best_val,
            self.metrics,
            interrupted,
            stopped_by_time,
            self.dist.is_main,
            self.model,
            signal=stop_signal,
        )


def default_out_dir(data: str | Path) -> Path:
    """checkpoints/<file stem>; for a glob, the name of the folder it searches."""
    path = Path(data)
    while any(ch in path.name for ch in "*?[") and path.name != path.parent.name:
        path = path.parent
    return Path("checkpoints") / (path.stem or "corpus")


def train(
    data: str | Path,
    *,
    out_dir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    callbacks: Sequence[TrainerCallback] = (),
    cache_dir: Path | None = None,
    preset: str | None = None,
    config: str | Path | None = None,
    **options: Any,
) -> TrainResult:
    """Train a GPT on the text file ``data`` and write a checkpoint directory.

    ``options`` are any :class:`ModelConfig` or :class:`TrainConfig` fields, e.g.
    ``train("input.txt", tokenizer="char", n_layer=2, max_steps=200)``; they override a named
    ``preset`` and a ``config`` file (TOML or JSON). With ``resume=True`` the
    run in ``out_dir`` continues (``max_steps`` is then the new total); shape options must match.
    ``callbacks`` listen to the run's events (nothing is shown without them; see
    :func:`tinygpt.api.train`).
    """
    out = Path(out_dir) if out_dir else default_out_dir(data)
    model_opts, train_opts = split_options(resolve_options(preset, config, options))
    # One writer per directory (rank 0 writes for a torchrun job); taking the lock also proves
    # that --out can be written, before any work is done.
    guard = directory_lock(out) if launch_rank() == 0 else nullcontext()
    # Switches the user did not spell out came from a recipe (--arch, a preset, a config file):
    # a message about them names the recipe, not a --position no command line has.
    from_recipe = {k for k in model_opts if k in MODEL_SWITCHES and k not in options}
    with guard as lock_note:
        notes = [lock_note] if lock_note else []
        return _train_locked(
            data,
            out,
            resume,
            overwrite,
            callbacks,
            cache_dir,
            model_opts,
            train_opts,
            from_recipe,
            notes,
        )


def _check_resume_options(
    run: RunConfig,
    step: int,
    model_opts: dict[str, Any],
    train_opts: dict[str, Any],
    from_recipe: set[str],
) -> None:
    """Refuse options a resumed run can't honour, each with the reason (never "corrupt": the
    checkpoint is sound)."""
    for key, value in model_opts.items():
        current = getattr(run.model, key)
        if current == value:
            continue
        if key in from_recipe:
            raise UsageError(
                f"the recipe asked for sets {key} {value}, but the checkpoint is a "
                f"{run.model.arch} model ({key} {current}); a resumed run keeps its model: drop "
                f"the ",
                Opt("arch"),
                ", ",
                Opt("preset"),
                " or ",
                Opt("config"),
                " that sets it",
            )
        raise UsageError(
            Opt(key, value),
            f" differs from the checkpoint's {current}; a resumed run keeps its model shape",
        )
    for key in ("tokenizer", "optimizer"):  # the ids, and the optimizer state, were made for it
        if key in train_opts and train_opts[key] != getattr(run.train, key):
            raise UsageError(
                Opt(key, train_opts[key]),
                " can't change on ",
                Opt("resume", True),
                f": the checkpoint was trained with {getattr(run.train, key)}; train elsewhere (",
                Opt("out_dir", ANY),
                f") to start over with {train_opts[key]}",
            )
    if train_opts.get("max_steps", step) < step:
        raise UsageError(
            Opt("max_steps", train_opts["max_steps"]),
            f": the run is already at step {step}; on ",
            Opt("resume", True),
            f" it is the new total, so give more than {step}",
        )


def _train_locked(
    data: str | Path,
    out: Path,
    resume: bool,
    overwrite: bool,
    callbacks: Sequence[TrainerCallback],
    cache_dir: Path | None,
    model_opts: dict[str, Any],
    train_opts: dict[str, Any],
    from_recipe: set[str],
    notes: list[str],
) -> TrainResult:
    existing = ckpt.is_checkpoint(out)
    source = None
    if resume:
        if not existing:
            raise UsageError(
                Opt("resume", True),
                f": no checkpoint in {out} to resume; drop ",
                Opt("resume", True),
                " to start",
            )
        # The writer (it holds the lock) first finishes a save a crash cut short after its
        # commit point, so the evaluations it logged are resumed with its weights.
        if launch_rank() == 0:
            ckpt.recover(out)
        source = ckpt.open_checkpoint(out)
        source.fitting_weights()  # before a model of the declared size is built
        run = source.config
        _check_resume_options(run, source.step, model_opts, train_opts, from_recipe)
        # --max-time is this invocation's budget: a stored one is not applied again (with a
        # fresh budget, on every resume) unless given again. The total it planned is kept.
        train_cfg = TrainConfig(**{**asdict(run.train), "max_time": None, **train_opts})
        model_cfg = run.model
    else:
        if existing and not overwrite:
            raise UsageError(
                f"{out} already holds a checkpoint; pass ",
                Opt("resume", True),
                " to continue it, ",
                Opt("out_dir", ANY),
                " to train elsewhere, or ",
                Opt("overwrite", True),
                " to replace it",
            )
        if existing:  # its first save would refuse a damaged manifest: say so now, not then
            ckpt.check_manifests(out)
        ckpt.check_writable_destination(out, overwrite, Opt("overwrite", True))
        if "tokenizer" not in train_opts:  # not named by a flag, a preset or a config file
            train_opts["tokenizer"], picked = default_tokenizer(data, model_opts)
            notes += [picked] if picked else []
        train_cfg = TrainConfig(**train_opts)
        model_cfg = None
    train_cfg.data = str(data)
    train_cfg.out_dir = str(out)
    train_cfg.validate()
    check_encoding(train_cfg.encoding)
    dist = setup(train_cfg.device)  # a no-op unless started by torchrun with several processes
    try:
        if not dist.is_main:
            dist.barrier()  # rank 0 tokenizes into the shared cache first; the others reuse it
        tokenizer = source.tokenizer if source is not None else train_cfg.tokenizer
        corpus = prepare_corpus(data, tokenizer, train_cfg.encoding, cache_dir, exclude=out)
        if dist.is_main:
            dist.barrier()
        if model_cfg is None:
            model_cfg = ModelConfig(**{**model_opts, "vocab_size": corpus.tokenizer.vocab_size})
        model_cfg.validate()
        run = RunConfig(model=model_cfg, train=train_cfg)
        trainer = Trainer(
            run, corpus, resume_from=source, callbacks=callbacks, dist=dist, notes=notes
        )
        result = trainer.fit()
        # Leave together: a rank tearing down while its peer is still finishing can abort it.
        # (Only on success: after an error the other ranks may never arrive.)
        dist.barrier()
        return result
    finally:
        teardown()
