"""Where a training run's time goes: the README's main job, timed by part.

    python scripts/profile_run.py [--max-time 300] [--data FILE] [-- extra train flags]

Runs ``tinygpt train FILE --tokenizer char --max-time T`` in this process, as the CLI does
(progress display, evaluations, samples, snapshots, saves), with a timer around each part of the
loop, and prints a table: seconds and share of the run for forward, backward, Muon, AdamW,
gradient clipping, data, the rest of the step, evaluation (its forwards, samples and snapshots
included), saving, the per-step display and planning, and what is left (start-up and the end).

Each part's time is its own: a timed call inside another (a forward inside an evaluation)
counts to the outer part only.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from benchutil import machine

import tinygpt.training.optim as optim
import tinygpt.training.trainer as trainer_module
from tinygpt.analysis.snapshot import HeadSnapshots
from tinygpt.checkpoint.history import WeightHistory
from tinygpt.cli.app import main as cli_main
from tinygpt.data.batches import BatchSampler
from tinygpt.model import GPT
from tinygpt.training import monitors, muon

# Parts whose inner calls are theirs (an estimate's forwards are the estimate's cost).
OPAQUE = {
    "loss estimates",
    "eval sample",
    "head snapshots",
    "weight history",
    "saving",
    "display (per step)",
    "planning",
    "data",
    "clip",
    "Muon",
    "AdamW",
}


class PartTimer:
    """Each part's own seconds: a timed call inside another is taken out of the outer part's
    time, and nothing inside an opaque part is timed apart from it."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.stack: list[list[Any]] = []  # [part, seconds of timed calls inside it]

    def wrap(self, part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if any(frame[0] in OPAQUE for frame in self.stack):
                return fn(*args, **kwargs)
            self.stack.append([part, 0.0])
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - t0
                _, inner = self.stack.pop()
                self.seconds[part] += elapsed - inner
                self.calls[part] += 1
                if self.stack:
                    self.stack[-1][1] += elapsed

        return timed


def instrument(timer: PartTimer) -> None:
    """Wrap each part where the loop looks it up at call time."""
    GPT.forward = timer.wrap("forward", GPT.forward)
    torch.autograd.backward = timer.wrap("backward", torch.autograd.backward)
    muon.update = timer.wrap("Muon", muon.update)
    optim.adamw_update = timer.wrap("AdamW", optim.adamw_update)
    torch.nn.utils.clip_grad_norm_ = timer.wrap("clip", torch.nn.utils.clip_grad_norm_)
    BatchSampler.next = timer.wrap("data", BatchSampler.next)
    trainer = trainer_module.Trainer
    trainer.train_step = timer.wrap("step (rest)", trainer.train_step)
    trainer.evaluate = timer.wrap("evaluation (rest)", trainer.evaluate)
    trainer_module.estimate_loss = timer.wrap("loss estimates", trainer_module.estimate_loss)
    monitors.eval_sample = timer.wrap("eval sample", monitors.eval_sample)
    HeadSnapshots.on_evaluate = timer.wrap("head snapshots", HeadSnapshots.on_evaluate)
    WeightHistory.add = timer.wrap("weight history", WeightHistory.add)
    trainer.save = timer.wrap("saving", trainer.save)
    trainer._plan = timer.wrap("planning", trainer._plan)
    emit = trainer.emit

    def emit_timed(self: Any, event: str, *args: Any) -> None:
        if event == "step":
            return timer.wrap("display (per step)", emit)(self, event, *args)
        return emit(self, event, *args)

    trainer.emit = emit_timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        default=str(Path(__file__).resolve().parents[2] / "shared/data/tinyshakespeare.txt"),
    )
    parser.add_argument("--max-time", type=float, default=300.0)
    parser.add_argument("extra", nargs="*", help="more train flags, after --")
    args = parser.parse_args()
    print(machine(), file=sys.stderr)
    timer = PartTimer()
    instrument(timer)
    with tempfile.TemporaryDirectory() as out:
        argv = ["train", args.data, "--tokenizer", "char", "--max-time", str(args.max_time)]
        argv += ["--out", out, *args.extra]
        t0 = time.perf_counter()
        try:
            cli_main(argv)
        except SystemExit as exc:
            if exc.code:
                raise
        total = time.perf_counter() - t0
    seconds = dict(timer.seconds)
    seconds["start-up, end and loop"] = total - sum(seconds.values())
    steps = timer.calls["step (rest)"]
    print(f"\n{steps} steps in {total:.1f} s ({total / steps * 1e3:.0f} ms a step overall)\n")
    print("| part | seconds | share | calls | ms a call |\n|---|---:|---:|---:|---:|")
    for part, s in sorted(seconds.items(), key=lambda kv: -kv[1]):
        calls = timer.calls.get(part, 0)
        per = f"{s / calls * 1e3:.1f}" if calls else ""
        print(f"| {part} | {s:.1f} | {s / total:.1%} | {calls or ''} | {per} |")


if __name__ == "__main__":
    main()
