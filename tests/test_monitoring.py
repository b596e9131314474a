"""Watching a run: a sample at each evaluation, the overfitting note, --early-stop, --val-file."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

import tinygpt
from tests.conftest import TINY, one_line_error, run_main
from tinygpt.checkpoint.metrics import read_metrics
from tinygpt.checkpoint.store import open_checkpoint
from tinygpt.errors import UsageError
from tinygpt.training.monitors import (
    EarlyStop,
    OverfitWatch,
    evals_since_best,
    overfitting,
)
from tinygpt.training.progress import sample_line


def records(*pairs: tuple[float, float]) -> list[dict]:
    """Evaluation records from (train_loss, val_loss) pairs, ``best`` set as the trainer does."""
    out, best = [], float("inf")
    for step, (train, val) in enumerate(pairs, start=1):
        out.append({"step": 10 * step, "train_loss": train, "val_loss": val, "best": val < best})
        best = min(best, val)
    return out


class FakeTrainer:
    """What the monitors read: the logged records, the step, the schedule's total, events."""

    def __init__(self, logged: list[dict], total_steps: int = 1000) -> None:
        self.metrics = logged[:-1]
        self.step = logged[-1]["step"]
        self.state = SimpleNamespace(total_steps=total_steps)
        self.dist = SimpleNamespace(enabled=False)
        self.notes: list[str] = []

    def emit(self, event: str, message: str) -> None:
        assert event == "note"
        self.notes.append(str(message))


# -- the rules, on made-up numbers -----------------------------------------------------------
def test_overfitting_needs_val_rising_three_times_while_train_falls():
    assert not overfitting(records((2.0, 2.0), (1.8, 1.9), (1.6, 1.95), (1.5, 2.0)))  # 2 rises
    assert overfitting(records((2.0, 1.8), (1.8, 1.9), (1.6, 1.95), (1.5, 2.0)))
    # a dip breaks the run of rises
    assert not overfitting(records((2.0, 1.8), (1.8, 1.9), (1.6, 1.85), (1.5, 2.0)))
    # both rising: a diverging run, not an overfitting one
    assert not overfitting(records((1.5, 1.8), (1.6, 1.9), (1.7, 1.95), (1.8, 2.0)))
    assert not overfitting(records((2.0, 1.8), (1.8, 1.9)))


def test_evals_since_best():
    assert evals_since_best([]) is None
    assert evals_since_best(records((2.0, 2.0))) == 0
    assert evals_since_best(records((2.0, 2.0), (1.9, 2.1), (1.8, 2.2))) == 2
    assert evals_since_best(records((2.0, 2.0), (1.9, 2.1), (1.8, 1.5))) == 0


def test_the_overfitting_note_is_said_once():
    watch = OverfitWatch()
    history = records((2.0, 1.8), (1.8, 1.9), (1.6, 1.95), (1.5, 2.0), (1.4, 2.1), (1.3, 2.2))
    trainer = FakeTrainer(history[:3])
    for n in range(3, len(history) + 1):
        trainer.metrics, trainer.step = history[: n - 1], history[n - 1]["step"]
        watch.on_evaluate(trainer, history[n - 1])
    assert len(trainer.notes) == 1
    note = trainer.notes[0]
    assert "overfitting" in note and "1.8000 -> 2.0000" in note and "early_stop" in note


@pytest.mark.parametrize(("patience", "stops"), [(2, True), (3, False)])
def test_early_stop_ends_the_schedule_after_k_evaluations_without_a_best(patience, stops):
    history = records((2.0, 2.0), (1.9, 1.8), (1.8, 1.85), (1.7, 1.9))
    trainer = FakeTrainer(history, total_steps=1000)
    EarlyStop(patience).on_evaluate(trainer, history[-1])
    assert (trainer.state.total_steps == 40) is stops
    assert bool(trainer.notes) is stops
    if stops:
        assert "early stop at step 40" in trainer.notes[0] and "step 20" in trainer.notes[0]


def test_early_stop_is_refused_with_several_processes():
    trainer = FakeTrainer(records((2.0, 2.0)))
    trainer.dist.enabled = True
    with pytest.raises(UsageError, match="one process"):
        EarlyStop(2).on_start(trainer)


def test_early_stop_must_be_positive(small_text, tmp_path):
    with pytest.raises(UsageError, match="early_stop"):
        tinygpt.train(small_text, out_dir=tmp_path / "r", early_stop=0, **TINY)


# -- real runs -------------------------------------------------------------------------------
@pytest.fixture
def alternating(tmp_path: Path) -> tuple[Path, Path]:
    """A corpus that teaches a -> b and b -> a, and a validation text made of a -> a and
    b -> b: the better the model learns its corpus, the worse it does on that text."""
    train = tmp_path / "ab.txt"
    train.write_text("ab" * 2000)
    val = tmp_path / "aabb.txt"
    val.write_text(("a" * 40 + "b" * 40) * 25)
    return train, val


def test_early_stop_and_the_overfitting_note_in_a_real_run(alternating, tmp_path):
    train, val = alternating
    out = tmp_path / "run"
    code, _, err = run_main(
        "train", str(train), "--out", str(out), "--tokenizer", "char",
        "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
        "--batch-size", "8", "--eval-batches", "2", "--warmup-steps", "0",
        "--max-steps", "200", "--eval-every", "5", "--early-stop", "4",
        "--val-file", str(val), "--device", "cpu", "--no-eval-samples",
    )  # fmt: skip
    assert code == 0, err
    logged = read_metrics(out)
    assert logged[0]["best"] and not any(r["best"] for r in logged[1:]), logged
    assert [r["step"] for r in logged] == [5, 10, 15, 20, 25]  # 4 evaluations without a best
    assert "overfitting" in err and "early stop at step 25" in err, err
    assert err.count("overfitting") == 1
    ck = open_checkpoint(out)
    assert ck.step == 25 and ck.has("best.safetensors")
    best, last = ck.load_model(best=True), ck.load_model()
    assert any((a != b).any() for a, b in zip(best.parameters(), last.parameters(), strict=True))


def test_eval_samples_are_logged_and_shown_but_never_in_quiet_or_json(small_text, tmp_path):
    args = [
        "train", str(small_text), "--tokenizer", "char", "--n-layer", "1", "--n-head", "2",
        "--n-embd", "16", "--block-size", "16", "--batch-size", "4", "--max-steps", "4",
        "--eval-every", "2", "--eval-batches", "1", "--device", "cpu",
    ]  # fmt: skip
    code, out, err = run_main(*args, "--out", str(tmp_path / "shown"))
    assert code == 0, err
    logged = read_metrics(tmp_path / "shown")
    assert len(logged) == 2 and all(isinstance(r["sample"], str) and r["sample"] for r in logged)
    assert err.count("sample  ") == 2, err
    assert sample_line(logged[-1]["sample"])[:20] in err
    code, _, err = run_main(*args, "--out", str(tmp_path / "quiet"), "--quiet")
    assert code == 0 and not err, err
    code, out, _ = run_main(*args, "--out", str(tmp_path / "json"), "--json")
    assert code == 0 and "sample" not in json.loads(out), out
    for name in ("quiet", "json"):  # kept in the log all the same
        assert all("sample" in r for r in read_metrics(tmp_path / name))
    code, _, err = run_main(*args, "--out", str(tmp_path / "off"), "--no-eval-samples")
    assert code == 0 and "sample  " not in err, err
    assert not any("sample" in r for r in read_metrics(tmp_path / "off"))


def test_the_eval_sample_leaves_the_run_unchanged(small_text, tmp_path):
    """The sample draws from its own generator: with dropout, the weights are the same with
    and without it."""
    opts = {**TINY, "dropout": 0.1, "max_steps": 6, "eval_every": 2}
    runs = [
        tinygpt.train(small_text, out_dir=tmp_path / str(on), **{**opts, "eval_samples": on})
        for on in (True, False)
    ]
    a, b = (open_checkpoint(r.out_dir).load_model() for r in runs)
    assert all((x == y).all() for x, y in zip(a.parameters(), b.parameters(), strict=True))


def test_sample_line_is_one_line():
    assert sample_line("a\nb\r\nc") == "a⏎b⏎c"
    assert len(sample_line("x" * 500)) == 120


def test_val_file_is_what_validation_measures(small_text, tmp_path):
    """Validation loss is the file's (about what ``eval`` gives on it), not the split's, and
    all of FILE trains."""
    val = tmp_path / "val.txt"
    val.write_text(small_text.read_text()[::-1][:3000])  # the same characters, unlike order
    opts = {**TINY, "max_steps": 40, "eval_every": 40, "eval_batches": 16}
    result = tinygpt.train(small_text, out_dir=tmp_path / "run", val_file=str(val), **opts)
    logged = result.metrics[-1]["val_loss"]
    on_file = tinygpt.evaluate(result.out_dir, val, device="cpu").loss
    split = tmp_path / "split.txt"
    text = small_text.read_text()
    split.write_text(text[int(len(text) * 0.9) :])
    on_split = tinygpt.evaluate(result.out_dir, split, device="cpu").loss
    assert abs(logged - on_file) < 0.15 * on_file, (logged, on_file)
    assert abs(logged - on_split) > 3 * abs(logged - on_file), (logged, on_file, on_split)
    config = json.loads((result.out_dir / "config.json").read_text())
    assert config["train"]["val_file"] == str(val)


@pytest.mark.parametrize(
    "val,says",
    [
        # was "the text to train on is an empty name": the training text's words
        ("", "error: --val-file is an empty name; give a file, folder or glob"),
        # was "the smaller split has 1 tokens ...; use --block-size 1 or less", which can't fit
        ("one.txt", "error: --val-file one.txt is too short for --block-size 32: it has 1 tokens"),
    ],
)
def test_a_val_file_that_cannot_validate_is_named(small_text, tmp_path, val, says):
    (tmp_path / "one.txt").write_text("a")
    args = ("train", str(small_text), "--val-file", val, "--block-size", "32", "-q")
    code, _, err = run_main(*args, "--tokenizer", "char", "--out", "run", cwd=tmp_path)
    line = one_line_error(code, err, (2,))
    assert line.startswith(says) and "or less" not in line, line
