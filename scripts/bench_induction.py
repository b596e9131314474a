"""How long the README's induction run takes to grow its circuit, over several seeds.

For each seed, in a fresh directory, runs the README section's two commands as a user would
(`tinygpt data repeats --seed S`, then `tinygpt train data/repeats.txt --preset induction
--seed S`) and timestamps the progress note that says a layer-1+ head became an induction head:
the wall time from typing the first command to seeing that line. After the run it reports, from
the run's own records, the phase change (the repeat loss's steepest drop, the two heads), the
best final induction score next to its chance level, and the repeat-loss change from ablating
that head.

    python scripts/bench_induction.py --seeds 1 2 3

Wall times need a quiet machine (other processes on the cores slow every step).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tinygpt import api
from tinygpt.attention.labels import head_label, parse_head_label
from tinygpt.attention.snapshot import phase_change

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
            ablation = api.ablation_report(run, [f"{layer}.{head}"], device="cpu")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("extra", nargs="*", help="more `tinygpt train` options (after --)")
    args = parser.parse_args()
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
