"""What a training run shows while it runs: the speed-collapse note, the final progress line,
and train's header lines kept whole in a pipe."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import FakeClock, ctrl_c_after, use_clock
from tinygpt.training.speed import SpeedRule, SpeedWatch
from tinygpt.training.trainer import Trainer, TrainerCallback

RULE = SpeedRule(warmup_steps=5, window=4, ratio=1 / 3)
TOKENS = 1000  # per step


def feed(watch: SpeedWatch, seconds: list[float]) -> list:
    """Each step's seconds in turn; the slowdowns reported, with their steps."""
    return [s for step, dt in enumerate(seconds, 1) if (s := watch.add(step, TOKENS, dt))]


def test_a_sustained_collapse_is_reported_once_with_both_rates():
    # 10,000 tok/s, then 1,000 tok/s: a tenfold slowdown from step 21 on.
    reported = feed(SpeedWatch(RULE), [0.1] * 20 + [1.0] * 30)
    assert len(reported) == 1
    (slowdown,) = reported
    # The window's median drops once most of its 4 steps are slow: the 3rd slow step.
    assert slowdown.step == 23
    assert slowdown.best == pytest.approx(10_000) and slowdown.recent == pytest.approx(1_000)


def test_steady_or_noisy_runs_are_not_reported():
    assert not feed(SpeedWatch(RULE), [0.1] * 100)
    # A single slow step per window (a save, a garbage collection) moves no median.
    assert not feed(SpeedWatch(RULE), ([0.1] * 3 + [5.0]) * 25)
    # Half the speed is a slower machine, not a collapse.
    assert not feed(SpeedWatch(RULE), [0.1] * 20 + [0.2] * 50)
    # Steps a fake clock times at zero are not measurements.
    assert not feed(SpeedWatch(RULE), [0.1] * 20 + [0.0] * 20)


def test_the_first_steps_of_a_session_are_not_the_baseline():
    # The warm-up steps are fast here (as if cached); after them the run is steady.
    assert not feed(SpeedWatch(RULE), [0.001] * 5 + [0.1] * 40)
    # Without a warm-up the same timings would read as a collapse.
    assert feed(SpeedWatch(SpeedRule(warmup_steps=0, window=4)), [0.001] * 5 + [0.1] * 40)


def _timed_run(tiny_run, monkeypatch, step_seconds, **options):
    clock, real_step = FakeClock(), Trainer.train_step  # moved by the steps alone

    def timed_step(self):
        clock.now += step_seconds(self.step)
        return real_step(self)

    use_clock(monkeypatch, clock)
    monkeypatch.setattr(Trainer, "train_step", timed_step)
    seen = []

    class Listen(TrainerCallback):
        def on_slowdown(self, trainer, slowdown):
            seen.append(slowdown)

    tiny_run(callbacks=[Listen()], quiet=False, **options)
    return seen


@pytest.mark.slow
def test_training_says_once_when_its_speed_collapses(tiny_run, monkeypatch, capsys):
    # 0.01 s a step, then 0.1 s from step 60 on: what another job on the cores does.
    seen = _timed_run(tiny_run, monkeypatch, lambda step: 0.01 if step < 60 else 0.1, max_steps=120)
    assert len(seen) == 1 and 60 < seen[0].step < 80
    err = " ".join(capsys.readouterr().err.split())  # the note wraps at the console's width
    assert err.count("training slowed to") == 1
    note = err[err.index("note: training slowed to") :]
    assert f"at step {seen[0].step}, from 12,800 tok/s" in note  # 128 tokens a step
    assert "other processes on the CPU cores, or more torch threads" in note, note


@pytest.mark.slow
def test_a_steady_run_with_slow_evaluations_says_nothing(tiny_run, monkeypatch, capsys):
    real_evaluate = Trainer.evaluate

    def slow_evaluate(self, *args, **kwargs):  # each evaluation as long as 100 steps
        self.clock.now += 1.0
        return real_evaluate(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "evaluate", slow_evaluate)
    seen = _timed_run(tiny_run, monkeypatch, lambda step: 0.01, max_steps=120, eval_every=10)
    assert not seen and "slowed" not in capsys.readouterr().err


def test_readme_states_the_rule_the_code_uses():
    from tests.docs import documentation  # README.md and docs/ (docs/training.md says it)

    readme = " ".join(documentation().split())
    rule = SpeedRule()
    assert rule.ratio == pytest.approx(1 / 3)
    assert (
        f"the median tokens/s of the last {rule.window} steps falls under a third of the best "
        f"earlier window, not counting the first {rule.warmup_steps} steps" in readme
    )


def test_the_final_progress_line_shows_no_time_left(tiny_run, capsys):
    import re

    tiny_run(quiet=False, max_steps=6, eval_every=3)
    bars = [x for x in capsys.readouterr().err.splitlines() if x.startswith("train ")]
    assert bars and "6/6" in bars[-1] and "tok/s" in bars[-1], bars
    assert not re.search(r"\d+:\d\d:\d\d|-:--:--", bars[-1]), bars[-1]


def test_paths_that_look_like_markup_are_shown_as_they_are(tmp_path):
    """rich markup in a file or folder name: ``[/b]`` once ended the run in a MarkupError,
    ``[bold]`` would vanish from the summary."""
    from tests.conftest import SMALL_TEXT, TINY_ARGS, run_main

    (tmp_path / "a[bold]b.txt").write_text(SMALL_TEXT)
    out = "ck/a[/b]c"
    args = ("train", "a[bold]b.txt", "--out", out, *TINY_ARGS, "--max-steps=2")
    code, _, err = run_main(*args, cwd=tmp_path)
    assert code == 0, err
    assert "data     a[bold]b.txt:" in err and f"output   {out}" in err, err


def test_ctrl_c_is_reported_as_a_clean_stop_not_an_error(tmp_path, monkeypatch):

    from tests.conftest import SMALL_TEXT, TINY_ARGS, run_main

    (tmp_path / "small.txt").write_text(SMALL_TEXT)
    ctrl_c_after(monkeypatch, 3)
    code, _, err = run_main("train", "small.txt", "--out", "run", *TINY_ARGS, cwd=tmp_path)
    assert code == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted at step 3 (SIGINT); saved the checkpoint in run"), last
    assert "error" not in err and "--resume" in last


# -- fitting torch's threads to the free cores -------------------------------------------------
@pytest.mark.parametrize(
    "cores, busy, current, expected",
    [(2, 0.0, 2, 2), (2, 0.4, 2, 2), (2, 1.0, 2, 1), (2, 3.0, 2, 1), (16, 3.4, 8, 8), (8, 5, 8, 3)],
)
def test_threads_for_leaves_the_busy_cores_alone(cores, busy, current, expected):
    from tinygpt.model.device import threads_for

    assert threads_for(cores, busy, current) == expected


@pytest.fixture
def two_threads(monkeypatch):
    """torch at 2 threads on a 2-core machine (the tests otherwise run with 1), restored after."""
    import os

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_a_busy_core_lowers_the_threads_and_says_so(two_threads, monkeypatch):
    from tinygpt.model import device

    monkeypatch.setattr(device, "busy_cores", lambda: 1.0)
    note = device.fit_cpu_threads(torch.device("cpu"))
    assert torch.get_num_threads() == 1
    assert "about 1.0 of the 2 CPU cores" in note and "OMP_NUM_THREADS" in note


def test_a_quiet_machine_or_a_chosen_count_is_left_alone(two_threads, monkeypatch):
    from tinygpt.model import device

    monkeypatch.setattr(device, "busy_cores", lambda: 0.1)
    assert device.fit_cpu_threads(torch.device("cpu")) is None
    assert torch.get_num_threads() == 2
    monkeypatch.setattr(device, "busy_cores", lambda: 1.0)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the user chose
    assert device.fit_cpu_threads(torch.device("cpu")) is None
    assert torch.get_num_threads() == 2


def test_busy_cores_reads_the_machine():
    from tinygpt.model.device import busy_cores

    busy = busy_cores(0.05)
    assert busy is None or 0.0 <= busy <= (__import__("os").cpu_count() or 1) + 0.5


def test_training_says_it_lowered_the_threads_when_it_starts(two_threads, monkeypatch, tiny_run):
    from tinygpt.model import device
    from tinygpt.training.trainer import TrainerCallback

    monkeypatch.setattr(device, "busy_cores", lambda: 1.0)
    notes = []

    class Notes(TrainerCallback):
        def on_note(self, trainer, message):
            notes.append(message)

    tiny_run(max_steps=2, eval_every=2, callbacks=[Notes()])
    assert any("torch thread" in n for n in notes), notes


def test_loading_a_model_leaves_the_threads_and_the_clock_alone(two_threads, monkeypatch):
    """A library call changes nothing global: the thread count is the program's to choose
    (loading once lowered it on a busy machine, after watching it for 0.25 s)."""
    from tests.conftest import ROOT
    from tinygpt.checkpoint.store import load
    from tinygpt.model import device

    def watched() -> float:
        raise AssertionError("loading a model watched the machine")

    monkeypatch.setattr(device, "busy_cores", watched)
    model, _, _ = load(ROOT / "tests" / "fixtures" / "legacy_gpt2" / "checkpoint", "cpu")
    assert torch.get_num_threads() == 2 and not model.training


def test_a_command_that_runs_a_model_fits_the_threads_once(two_threads, monkeypatch, capsys):
    """The command line chooses the thread count (the library does not): on a busy CPU,
    generate runs with the free cores and says so on stderr."""
    from tests.conftest import ROOT, run_main
    from tinygpt.model import device

    monkeypatch.setattr(device, "busy_cores", lambda: 1.0)
    ck = ROOT / "tests" / "fixtures" / "legacy_gpt2" / "checkpoint"
    code, _, err = run_main("generate", "-c", str(ck), "--max-new-tokens", "3", "--seed", "1")
    assert code == 0, err
    assert torch.get_num_threads() == 1 and "running with 1 torch thread" in err


@pytest.mark.slow
def test_piped_train_output_is_not_cut_at_the_terminal_width(tmp_path: Path) -> None:
    """The run summary and the notes keep one line each in a pipe or a log."""
    from tests.conftest import SMALL_TEXT, run_in_process

    (tmp_path / "t.txt").write_text(SMALL_TEXT)
    args = ("--tokenizer", "char", "--block-size", "16", "--max-steps", "1", "--device", "cpu")
    proc = run_in_process("train", "t.txt", *args, cwd=tmp_path, env={"COLUMNS": "60"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    optim = next(line for line in lines if line.startswith("optim "))
    assert "embeddings adamw" in optim and "head adamw" in optim, proc.stderr
    assert any(line.startswith("run ") and "attention" in line for line in lines)
