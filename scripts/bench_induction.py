"""How long the induction run of docs/induction.md takes to grow its circuit, over several seeds.

For each seed, in a fresh directory, runs that page's two commands as a user would
(`tinygpt data repeats --seed S`, then `tinygpt train data/repeats.txt --preset induction
--seed S`) and timestamps the progress note that says a layer-1+ head became an induction head:
the wall time from typing the first command to seeing that line. After the run it reports, from
the run's own records, the phase change (the repeat loss's steepest drop, the two heads), the
best final induction score next to its chance level, and the repeat-loss change from ablating
that head.

    python scripts/bench_induction.py --seeds 1 2 3

With ``--variants`` it measures instead what each choice of the preset buys: for the preset and
for one change at a time (QK-norm on, MLPs on, 2 heads, a 64-character block), the step at which
a layer-1 head first becomes an induction head (deterministic for a seed, so no quiet machine
needed), on the default corpus and on harder ones of the same kind.

    python scripts/bench_induction.py --variants --seeds 1 2

Wall times need a quiet machine (other processes on the cores slow every step).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from tinygpt import api
from tinygpt.analysis import commands
from tinygpt.analysis.labels import head_label, parse_head_label
from tinygpt.analysis.snapshot import first_crossings, phase_change
from tinygpt.config.model import ModelConfig
from tinygpt.data.repeats import RepeatsConfig, write_repeats
from tinygpt.model import GPT
from tinygpt.training.presets import PRESETS
from tinygpt.training.trainer import Trainer, TrainerCallback

NOTE = re.compile(r"^(L(\d+)H\d+) became an induction head at step (\d+)")


def run_seed(seed: int, extra: list[str]) -> dict:
    env = {**os.environ, "NO_COLOR": "1"}
    tinygpt = [sys.executable, "-m", "tinygpt"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        subprocess.run(
            [*tinygpt, "data", "repeats", "--seed", str(seed)], cwd=work, env=env, check=True
        )
        train = [*tinygpt, "train", "data/repeats.txt", "--preset", "induction"]
        proc = subprocess.Popen(
            [*train, "--seed", str(seed), *extra],
            cwd=work,
            env=env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        seen: tuple[float, int, str] | None = None
        assert proc.stderr is not None
        for line in proc.stderr:
            match = NOTE.match(line.strip())
            if seen is None and match and int(match.group(2)) >= 1:
                seen = (time.perf_counter() - start, int(match.group(3)), match.group(1))
        if proc.wait() != 0:
            raise SystemExit(f"seed {seed}: training failed")
        total = time.perf_counter() - start
        run = work / "checkpoints" / "repeats"
        metrics = api.trajectory(run)
        change = phase_change(metrics)
        last = metrics[-1]
        best_head, best = max(
            ((h, s["induction"]) for h, s in last["heads"].items() if parse_head_label(h)[0] >= 1),
            key=lambda item: item[1],
        )
        layer, head = parse_head_label(best_head)
        os.chdir(work)  # the run recorded its training text as data/repeats.txt
        try:
            ablation = commands.ablation_report(run, [f"{layer}.{head}"], device="cpu")
        finally:
            os.chdir(Path(__file__).resolve().parents[1])
    return {
        "seed": seed,
        "seconds_to_induction": seen[0] if seen else None,
        "step": seen[1] if seen else None,
        "head": seen[2] if seen else None,
        "total_seconds": total,
        "drop": change.drop,
        "previous_token": change.previous_token,
        "best_head": head_label(layer, head),
        "best_score": best,
        "chance": last["chance"]["induction"],
        "ablation": ablation["repeat"],
    }


VARIANTS: dict[str, dict] = {
    "preset": {},
    "QK-norm on": {"qk_norm": True},
    "MLPs on": {"mlp": True},
    "2 heads": {"n_head": 2},
    "block 64": {"block_size": 64},
}
# name -> (what it is, the corpus): the generator's defaults and harder corpora of the same kind
CORPORA: dict[str, tuple[str, RepeatsConfig]] = {
    "default": ("26 letters, 6-16, gaps 0-24", RepeatsConfig()),
    "short": ("26 letters, 2-4, gaps 0-6", RepeatsConfig(min_length=2, max_length=4, max_gap=6)),
    "few-letters": ("'abc def.,;', 4-12, gaps 1-30", RepeatsConfig("abc def.,;", 4, 12, 1, 30)),
    "long": (
        "62 letters, 10-30, gaps 5-40",
        RepeatsConfig(string.ascii_letters + string.digits, 10, 30, 5, 40),
    ),
}


class Crossed(Exception):
    """Raised at the first layer-1+ induction head: the rest of a run can't change that step."""


class StopAtInduction(TrainerCallback):
    def on_evaluate(self, trainer: Trainer, record: dict) -> None:
        for head, role, step, _ in first_crossings([*trainer.metrics, record]):
            if role == "induction" and parse_head_label(head)[0] >= 1:
                raise Crossed(step)


def induction_step(data: Path, seed: int, overrides: dict) -> int | None:
    """The step of the first layer-1+ induction head under the preset with ``overrides``."""
    with tempfile.TemporaryDirectory() as out:
        try:
            api.train(
                data,
                out_dir=out,
                overwrite=True,
                preset="induction",
                seed=seed,
                device="cpu",
                callbacks=[StopAtInduction()],
                **overrides,
            )
        except Crossed as crossed:
            return int(crossed.args[0])
    return None


def step_times(repeats: int = 7, steps: int = 10) -> None:
    """Forward + backward of the preset's shape with and without MLPs, interleaved, medians."""
    shape = {k: v for k, v in PRESETS["induction"].items() if k in ModelConfig.__annotations__}
    x = torch.randint(0, 27, (PRESETS["induction"]["batch_size"], shape["block_size"]))
    models = {m: GPT(ModelConfig(**{**shape, "vocab_size": 27, "mlp": m})) for m in (False, True)}
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(repeats):
        for mlp, model in models.items():
            start = time.perf_counter()
            for _ in range(steps):
                model(x, x)[1].backward()
            times[mlp].append((time.perf_counter() - start) / steps)
    off, on = (statistics.median(times[k]) * 1000 for k in (0, 1))
    print(
        f"ms per forward+backward: attention-only {off:.1f}, with MLPs {on:.1f} ({on / off:.2f}x)"
    )


def variants(seeds: list[int], corpora: list[str]) -> None:
    step_times()
    with tempfile.TemporaryDirectory() as tmp:
        for corpus in corpora:
            what, cfg = CORPORA[corpus]
            data = write_repeats(Path(tmp) / "corpus.txt", cfg)
            for name, overrides in VARIANTS.items():
                steps = [induction_step(data, seed, overrides) for seed in seeds]
                shown = " ".join("never" if s is None else str(s) for s in steps)
                print(f"{what:30} {name:12} first induction head at step: {shown}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--variants", action="store_true", help="what each preset choice buys")
    parser.add_argument(
        "--corpora", nargs="+", choices=list(CORPORA), default=list(CORPORA), help="--variants on"
    )
    parser.add_argument("extra", nargs="*", help="more `tinygpt train` options (after --)")
    args = parser.parse_args()
    if args.variants:
        variants(args.seeds, args.corpora)
        return
    rows = [run_seed(seed, args.extra) for seed in args.seeds]
    for r in rows:
        d, p = r["drop"], r["previous_token"]
        print(
            f"seed {r['seed']}: induction note after {r['seconds_to_induction']:.1f} s "
            f"(step {r['step']}, {r['head']}); previous-token {p.head} at step {p.step}; repeat "
            f"loss fell fastest {d.start_step}->{d.end_step} ({d.before:.2f} -> {d.after:.2f}; "
            f"first {d.first:.2f}, last {d.last:.2f}); end: {r['best_head']} induction "
            f"{r['best_score']:.2f} (chance {r['chance']:.3f}); ablating it (mean): repeat loss "
            f"{r['ablation']['loss']:.2f} -> {r['ablation']['ablated']:.2f}; whole run "
            f"{r['total_seconds']:.0f} s"
        )
    times = [r["seconds_to_induction"] for r in rows if r["seconds_to_induction"] is not None]
    if len(times) < len(rows):
        print(f"{len(rows) - len(times)} seed(s) never showed an induction head")
    if times:
        print(
            f"median wall time to the induction head: {statistics.median(times):.1f} s over "
            f"{len(times)} seeds (target: at most 180 s)"
        )


if __name__ == "__main__":
    main()
