"""Training (tinygpt.training and `tinygpt train`): learning, resuming, the schedule, EMA, bad
steps, --max-time, compile, the --out folder (a file, read-only, a user's folder, --overwrite,
`train .`), resume refusals, and the model-size note and default tokenizer for a small text."""

import json
import math
import os
import signal
from pathlib import Path

import pytest
import torch

import tinygpt
from tests.conftest import (
    MICRO_ARGS,
    SMALL_TEXT,
    TINY,
    TINY_GPT2,
    ctrl_c_after,
    one_line_error,
    rehash,
    run_main,
    snapshot,
)
from tinygpt.checkpoint.manifest import (
    BEST_FILE,
    CONFIG_FILE,
    MODEL_FILE,
    STAGED_PREFIX,
)
from tinygpt.checkpoint.metrics import read_metrics
from tinygpt.checkpoint.store import open_checkpoint
from tinygpt.config.train import TrainConfig
from tinygpt.errors import TrainingDiverged, UsageError
from tinygpt.training.schedule import lr_at
from tinygpt.training.trainer import TRAIN_WINDOW, Trainer, TrainerCallback


@pytest.mark.slow
def test_tiny_model_overfits_tiny_text(tmp_path):
    # A model that memorises this text predicts every character from a few before it; only the
    # first positions of a window (little context) stay uncertain, a floor of ~0.1 nats averaged
    # over the window. Untrained, the loss is ln(vocab) ~ 3.3.
    path = tmp_path / "fox.txt"
    path.write_text("the quick brown fox jumps over the lazy dog. " * 40)
    options = {**TINY, "max_steps": 200, "eval_every": 20, "lr": 3e-3, "warmup_steps": 10}
    result = tinygpt.train(path, out_dir=tmp_path / "fox", **options)
    losses = [m["train_loss"] for m in result.metrics]
    assert losses[-1] < 0.2 and losses[0] > 0.2, losses


def test_checkpoint_layout_and_metrics(tiny_run):
    result = tiny_run()
    names = {p.name for p in result.out_dir.iterdir()}
    assert {
        "config.json",
        "tokenizer.json",
        "model.safetensors",
        "best.safetensors",
        "state.pt",
        "manifest.json",
        "metrics.jsonl",
    } <= names
    metrics = read_metrics(result.out_dir)
    assert [m["step"] for m in metrics] == [15, 30]
    for key in ("step", "train_loss", "val_loss", "lr", "tokens_per_sec", "elapsed_s"):
        assert key in metrics[0]


def test_training_loss_is_the_mean_of_the_last_steps(tmp_path, small_text):
    """An evaluation's train_loss costs no forward pass: it is the mean batch loss of the last
    TRAIN_WINDOW steps (fewer at the start)."""

    class Losses(TrainerCallback):
        def __init__(self) -> None:
            self.losses: list[float] = []

        def on_step(self, trainer, loss, lr, tokens_per_sec) -> None:
            self.losses.append(loss)

    seen = Losses()
    options = {**TINY, "max_steps": 70, "eval_every": 10}
    result = tinygpt.train(small_text, out_dir=tmp_path / "a", callbacks=[seen], **options)
    for record in result.metrics:
        last = seen.losses[max(0, record["step"] - TRAIN_WINDOW) : record["step"]]
        assert record["train_loss"] == pytest.approx(sum(last) / len(last), rel=1e-12)
    assert len(seen.losses) > TRAIN_WINDOW  # the window slid (the resume test checks it is saved)


def test_save_load_gives_identical_logits(tiny_run):
    result = tiny_run()
    model, tok, ck = tinygpt.load(result.out_dir, device="cpu")
    x = torch.tensor([tok.encode("First Citizen")])
    a, _ = model(x)
    b, _ = ck.load_model("cpu")(x)
    assert torch.equal(a, b)
    assert model.lm_head.weight is not model.wte.weight  # the default recipe's untied head
    old, _, _ = tinygpt.load(tiny_run("gpt2", arch="gpt2").out_dir, device="cpu")
    assert old.lm_head.weight is old.wte.weight  # the gpt2 recipe's tie survives a load


def test_lr_schedule_warmup_then_cosine_to_min():
    cfg = TrainConfig(lr=1.0, min_lr=0.1, warmup_steps=10, max_steps=110, schedule="cosine")
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(60, cfg) == pytest.approx(0.55)
    assert lr_at(110, cfg) == pytest.approx(0.1)
    assert all(lr_at(s, cfg) >= lr_at(s + 1, cfg) for s in range(10, 110))


def test_grad_accum_matches_a_bigger_batch(small_text, tmp_path, float32_cpu):
    # One step of 2 x 8 accumulated must move the weights exactly as one step of 16: the sampler
    # draws the same 16 windows either way, and the accumulated loss is the same mean (with
    # Muon's iteration in float32, whose rounding keeps float32-sized differences that size).
    from dataclasses import fields

    from tinygpt.config.model import ModelConfig
    from tinygpt.config.run import RunConfig
    from tinygpt.data.corpus import prepare_corpus

    corpus = prepare_corpus(small_text, "char")
    shape = {k: v for k, v in TINY.items() if k in {f.name for f in fields(ModelConfig)}}
    options = {k: v for k, v in TINY.items() if k in {f.name for f in fields(TrainConfig)}}

    def one_step(batch_size: int, grad_accum: int) -> tuple[float, dict]:
        model = ModelConfig(**shape, vocab_size=corpus.tokenizer.vocab_size)
        train = TrainConfig(**{**options, "batch_size": batch_size, "grad_accum": grad_accum})
        trainer = Trainer(RunConfig(model, train), corpus)
        before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
        loss, applied = trainer.train_step()
        assert applied
        after = trainer.model.state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in after)  # the step did move
        return loss, after

    loss_a, a = one_step(16, 1)
    loss_b, b = one_step(8, 2)
    assert loss_a == pytest.approx(loss_b, rel=1e-6)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)


def _final_weights(out_dir):
    return open_checkpoint(out_dir).load_model("cpu").state_dict()


def test_resume_is_bitwise_exact_with_dropout(tiny_run, monkeypatch):
    full = tiny_run("full", dropout=0.2, max_steps=30, eval_every=10)
    ctrl_c_after(monkeypatch, 17)
    cut = tiny_run("split", dropout=0.2, max_steps=30, eval_every=10)
    monkeypatch.undo()
    assert cut.interrupted and cut.step == 17
    resumed = tiny_run("split", dropout=0.2, max_steps=30, eval_every=10, resume=True)
    assert [m["train_loss"] for m in full.metrics] == [m["train_loss"] for m in resumed.metrics]
    a, b = _final_weights(full.out_dir), _final_weights(resumed.out_dir)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # Negative control: a different seed must not match, or the comparison proves nothing.
    other = tiny_run("other", dropout=0.2, max_steps=30, eval_every=10, seed=99)
    c = _final_weights(other.out_dir)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def _updates_and_batches(monkeypatch) -> list[int]:
    """The batch size of each optimizer update the trainer makes from now on."""
    seen: list[int] = []
    real_update = Trainer._update

    def update(self):
        seen.append(self.parts.sampler.batch_size)
        return real_update(self)

    monkeypatch.setattr(Trainer, "_update", update)
    return seen


@pytest.mark.parametrize("warmup, halves", [(3, 3), (0, 0), (400, 6)])
def test_the_batch_warmup_updates_on_each_half_and_counts_one_batch(
    tiny_run, monkeypatch, warmup, halves
):
    seen = _updates_and_batches(monkeypatch)
    result = tiny_run(batch_warmup_steps=warmup, batch_size=7, max_steps=6, eval_every=6)
    # Each warmup step: two updates, on 3 and 4 of the 7 sequences; then one on all 7.
    assert seen == [3, 4] * halves + [7] * (6 - halves)
    assert result.step == 6
    assert result.metrics[-1]["tokens_seen"] == 6 * 7 * 16  # one batch a step, either way


def test_a_compiled_model_keeps_one_batch_size(tiny_run, monkeypatch):
    """A second batch size would compile the model again mid-run: no batch warmup compiled."""
    from tinygpt.training import setup

    def wrap(model, device, cfg, dist):  # reported as compiled, run as it is
        return setup.Wrapped(model, None, True, None)

    monkeypatch.setattr(setup, "wrap", wrap)
    seen = _updates_and_batches(monkeypatch)
    tiny_run(batch_warmup_steps=3, batch_size=7, max_steps=6, eval_every=6)
    assert seen == [7] * 6


def test_resume_inside_the_batch_warmup_is_bitwise_exact(tiny_run, monkeypatch):
    options = dict(batch_warmup_steps=9, max_steps=12, eval_every=4)
    full = tiny_run("full", **options)
    ctrl_c_after(monkeypatch, 5)
    cut = tiny_run("cut", **options)
    monkeypatch.undo()
    assert cut.interrupted and cut.step == 5
    resumed = tiny_run("cut", **options, resume=True)
    a, b = _final_weights(full.out_dir), _final_weights(resumed.out_dir)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [m["val_loss"] for m in full.metrics] == [m["val_loss"] for m in resumed.metrics]
    # Negative control: the same run without the warmup ends elsewhere.
    other = tiny_run("other", **{**options, "batch_warmup_steps": 0})
    c = _final_weights(other.out_dir)
    assert not all(torch.equal(a[k], c[k]) for k in a)


class _WeightsEachStep(TrainerCallback):
    def __init__(self) -> None:
        self.steps: list[dict[str, torch.Tensor]] = []

    def on_step(self, trainer, loss, lr, tokens_per_sec) -> None:
        self.steps.append({k: v.clone() for k, v in trainer.model.state_dict().items()})


def test_ema_saves_the_average_of_the_trained_weights_and_trains_on_the_weights(tiny_run):
    """--ema: the checkpoint's model is the moving average of the weights after each step
    (decay ramping up as (1 + n) / (10 + n)), computed here by hand from a run without it; the
    training itself is that run's, bit for bit, and its weights are what state.pt keeps."""
    plain, averaged = _WeightsEachStep(), _WeightsEachStep()
    # One update a step (no batch warmup), so the average's updates are the steps seen here.
    one = dict(max_steps=12, eval_every=12, batch_warmup_steps=0)
    tiny_run("plain", ema=0.0, callbacks=[plain], **one)
    result = tiny_run("ema", ema=0.9, callbacks=[averaged], **one)
    for a, b in zip(plain.steps, averaged.steps, strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    want = {k: v.clone() for k, v in plain.steps[0].items()}
    for n, weights in enumerate(plain.steps[1:], start=1):
        decay = min(0.9, (1 + n) / (10 + n))
        for k in want:
            want[k] = torch.lerp(want[k], weights[k], 1 - decay)
    saved = _final_weights(result.out_dir)
    assert all(torch.allclose(saved[k], want[k], rtol=1e-5, atol=1e-7) for k in want)
    assert not all(torch.allclose(saved[k], plain.steps[-1][k]) for k in want)
    state = open_checkpoint(result.out_dir).load_state()
    trained = state["trained_weights"]
    assert all(torch.equal(trained[k], plain.steps[-1][k]) for k in want)
    assert state["average_updates"] == 12
    assert result.model is not None and torch.equal(
        result.model.state_dict()["wte.weight"], saved["wte.weight"]
    )


@pytest.mark.parametrize("value", ["1", "-0.1", "nan"])
def test_ema_outside_zero_to_one_is_one_line_naming_the_flag(small_text, value):
    from tests.conftest import one_line_error, run_main

    code, _, err = run_main("train", str(small_text), "--ema", value)
    line = one_line_error(code, err)
    assert "--ema" in line and ("[0, 1)" in line or "finite" in line)


def test_a_negative_batch_warmup_is_one_line_naming_the_flag(small_text):
    from tests.conftest import one_line_error, run_main

    code, _, err = run_main("train", str(small_text), "--batch-warmup-steps", "-1")
    assert "--batch-warmup-steps must be >= 0, got -1" in one_line_error(code, err)


def test_a_run_never_changes_its_configuration(tiny_run, monkeypatch):
    # What moves during a run (the total --max-time plans, the step, the processes) is its
    # state: the configs it was given are the same after training, and TrainConfig is frozen.
    import copy
    import dataclasses

    seen = []
    real_init = Trainer.__init__
    ticks = iter(range(10**9))

    def watched(self, run, *args, **kwargs):
        real_init(self, run, *args, **kwargs)
        self.clock = lambda: next(ticks) * 0.01  # a steady machine: ~20 steps a second
        seen.append((run, copy.deepcopy(run)))

    monkeypatch.setattr(Trainer, "__init__", watched)
    result = tiny_run(max_steps=100000, max_time=2.0, eval_every=1000)
    ((run, before),) = seen
    assert result.stopped_by_time and result.step < 100000  # the planner did plan a total
    assert run == before and run.train.max_steps == 100000
    saved = open_checkpoint(result.out_dir).config.train
    assert saved.max_steps == result.step  # the plan is recorded, from the run's state
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.train.max_steps = 5  # type: ignore[misc]


def test_refuses_to_overwrite_and_resume_keeps_shape(tiny_run):
    tiny_run("r")
    with pytest.raises(UsageError, match="already holds a checkpoint"):
        tiny_run("r")
    with pytest.raises(UsageError, match="keeps its model shape"):
        tiny_run("r", n_layer=3, resume=True)
    with pytest.raises(UsageError, match="no checkpoint"):
        tiny_run("nothing", resume=True)


def test_max_time_stops_cleanly_and_saves(tiny_run):
    result = tiny_run(max_steps=100000, max_time=1.0, eval_every=100000)
    assert result.stopped_by_time and 0 < result.step < 100000
    assert open_checkpoint(result.out_dir).step == result.step


def test_non_finite_loss_skips_steps_then_stops_without_saving_nan(tiny_run, monkeypatch):
    before = tiny_run("nan", max_steps=15, eval_every=15)
    digest = (before.out_dir / "model.safetensors").read_bytes()
    real = torch.nn.functional.cross_entropy
    monkeypatch.setattr(
        torch.nn.functional, "cross_entropy", lambda *a, **k: real(*a, **k) * math.nan
    )
    # No evaluation before the fifth bad step: one would end the run first, its loss NaN too
    # (test_a_non_finite_validation_loss_ends_the_run_before_it_saves).
    with pytest.raises(TrainingDiverged, match="non-finite for 5 steps"):
        tiny_run("nan", max_steps=40, eval_every=40, resume=True)
    assert (before.out_dir / "model.safetensors").read_bytes() == digest
    model = open_checkpoint(before.out_dir).load_model()
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_non_finite_validation_loss_ends_the_run_before_it_saves(tiny_run, tmp_path, monkeypatch):
    """Weights finite but huge (--lr 1e20 under AdamW) train on with finite losses while every
    validation logit is NaN: such an evaluation must not become the checkpoint."""
    from tinygpt.training import trainer

    real = trainer.estimate_loss
    monkeypatch.setattr(trainer, "estimate_loss", lambda *a: math.nan)
    with pytest.raises(TrainingDiverged, match="validation loss at step 15 is not finite") as e:
        tiny_run("fresh", max_steps=30, eval_every=15)
    assert "unchanged" not in str(e.value)  # there was no checkpoint to keep
    assert not (tmp_path / "fresh" / "model.safetensors").exists()
    monkeypatch.setattr(trainer, "estimate_loss", real)
    kept = tiny_run("kept", max_steps=15, eval_every=15)
    digest = (kept.out_dir / "model.safetensors").read_bytes()
    monkeypatch.setattr(trainer, "estimate_loss", lambda *a: math.inf)
    with pytest.raises(TrainingDiverged, match="at step 30 is not finite.*is unchanged"):
        tiny_run("kept", max_steps=30, eval_every=15, resume=True)
    assert (kept.out_dir / "model.safetensors").read_bytes() == digest
    assert open_checkpoint(kept.out_dir).step == 15


def test_a_single_non_finite_step_is_skipped(tiny_run, monkeypatch):
    real = torch.nn.functional.cross_entropy
    calls = {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        loss = real(*a, **k)
        return loss * math.inf if calls["n"] == 3 else loss

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", flaky)
    result = tiny_run(max_steps=10, eval_every=10)
    assert result.step == 10 and math.isfinite(result.best_val_loss)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"lr": -1}, "^lr must"),  # from Python: the argument's name, not the CLI flag
        # rates outside float32's normal range: 1e100 overflowed in Muon's step (an unexpected
        # RuntimeError), 5e-324 made every step NaN with a message to lower the rate
        ({"matrix_lr": 1e100}, "^matrix_lr must be positive, from 1.2e-38 to 3.4e.38"),
        ({"lr": 5e-324}, "^lr must be positive, from"),
        # work a step does without bound: 2**63 spun for ever, 1e30 overflowed in torch
        ({"batch_size": 2**63}, "^batch_size must be at most 1,048,576"),
        ({"grad_accum": 10**30}, "^grad_accum must be at most"),
        ({"eval_batches": 2**63}, "^eval_batches must be at most"),
        ({"min_lr": 1.0}, "^min_lr must"),
        ({"batch_size": 0}, "^batch_size must"),
        ({"weight_decay": -0.1}, "^weight_decay must"),
        ({"grad_clip": -1}, "^grad_clip must"),
        ({"device": "tpu"}, "^device must"),
        ({"attention": "flash"}, "^attention must"),
    ],
)
def test_invalid_optimiser_values(tiny_run, change, message):
    with pytest.raises(UsageError, match=message):
        tiny_run(**change)


def test_bpe_training_works(tiny_run, gpt2_encoding):
    result = tiny_run(tokenizer="gpt2", n_embd=16, max_steps=3, eval_every=3, block_size=8)
    ck = open_checkpoint(result.out_dir)
    assert ck.config.model.vocab_size == 50257 and ck.tokenizer.name == "gpt2"


def test_where_compile_cannot_work_training_goes_on_with_one_note(tmp_path, monkeypatch):
    import tinygpt
    from tinygpt.training import setup
    from tinygpt.training.trainer import TrainerCallback

    said: list[str] = []

    class Notes(TrainerCallback):
        def on_note(self, trainer, message):
            said.append(message)

    monkeypatch.setattr(setup, "compile_problem", lambda device: "torch.compile needs Triton")
    monkeypatch.setattr(torch, "compile", lambda *a, **k: pytest.fail("compiled anyway"))
    (tmp_path / "t.txt").write_text(SMALL_TEXT)
    run = tinygpt.train(
        tmp_path / "t.txt", out_dir=tmp_path / "ck", callbacks=[Notes()],
        **{**TINY, "max_steps": 2, "compile": True},
    )  # fmt: skip
    assert run.step == 2
    assert said.count("torch.compile needs Triton: training without it") == 1


def test_compile_problem_names_what_is_missing(monkeypatch):
    import importlib.util
    import shutil

    from tinygpt.model import device

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert "Triton" in device.compile_problem(torch.device("cuda"))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert "C++ compiler" in device.compile_problem(torch.device("cpu"))
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/" + name)
    assert device.compile_problem(torch.device("cpu")) is None


@pytest.mark.parametrize(
    "flags, on, warmup",
    [([], True, 400), (["--no-normuon", "--batch-warmup-steps", "0"], False, 0)],
)
def test_normuon_is_a_flag_the_header_names_and_the_run_records(tmp_path, flags, on, warmup):
    import json

    from tests.conftest import MICRO_ARGS, run_in_process

    (tmp_path / "t.txt").write_text(SMALL_TEXT)
    args = [*MICRO_ARGS, "--max-steps", "2", "--device", "cpu", "--out", "ck", *flags]
    proc = run_in_process("train", "t.txt", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    optim_line = next(line for line in proc.stderr.splitlines() if line.startswith("optim "))
    assert ("evened out per neuron (--normuon)" in optim_line) is on
    # ... and the form of Muon's iteration this process chose (in this process: the same choice)
    from tinygpt.training.muon import newton_schulz_for

    dtype = str(newton_schulz_for(torch.device("cpu"))[1]).removeprefix("torch.")
    assert f"Muon's Newton-Schulz in {dtype}" in optim_line
    saved = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert saved["train"]["normuon"] is on
    # The batch warmup too (a flag on the schedule's line)
    schedule = next(line for line in proc.stderr.splitlines() if line.startswith("schedule "))
    assert ("400 steps update on each half batch (--batch-warmup-steps)" in schedule) is on
    assert saved["train"]["batch_warmup_steps"] == warmup


@pytest.mark.parametrize("order, words", [(None, "shuffled passes"), ("random", "random windows")])
def test_the_data_order_is_a_flag_the_header_names_and_the_run_records(tmp_path, order, words):
    import json

    from tests.conftest import run_in_process

    (tmp_path / "t.txt").write_text(SMALL_TEXT)
    args = ["--tokenizer", "char", "--block-size", "16", "--max-steps", "2", "--device", "cpu"]
    args += ["--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--out", "ck"]
    proc = run_in_process("train", "t.txt", *args, *(["--data-order", order] if order else []),
                          cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run_line = next(line for line in proc.stderr.splitlines() if line.startswith("run "))
    assert words in run_line
    saved = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert saved["train"]["data_order"] == (order or "passes")
    bad = run_in_process("train", "t.txt", *args[:-2], "--data-order", "sorted", cwd=tmp_path)
    assert bad.returncode == 2 and "--data-order" in bad.stderr and "passes" in bad.stderr


# A tiny run in the gpt2 recipe, so `export` works on it too (the shared one).
RUN = TINY_GPT2


TEXT = "small.txt"


def test_overwrite_leaves_no_file_of_the_replaced_run(ck, tmp_path):
    from tinygpt.training.trainer import TrainerCallback

    class StopAtOnce(TrainerCallback):
        def on_step(self, trainer, loss, lr, tokens_per_sec):
            os.kill(os.getpid(), signal.SIGINT)  # stop before the first evaluation

    assert (ck / BEST_FILE).exists()
    result = tinygpt.train(
        tmp_path / "small.txt",
        out_dir=ck,
        overwrite=True,
        callbacks=[StopAtOnce()],
        **{**RUN, "max_steps": 50, "eval_every": 50},
    )
    assert result.interrupted and result.step == 1
    opened = open_checkpoint(ck)
    assert not opened.has(BEST_FILE) and not (ck / BEST_FILE).exists()
    assert read_metrics(ck) == []
    # eval --best falls back to the new run's weights, not the old run's best
    code, best, err = run_main("eval", "small.txt", "-c", str(ck), "--best", "--json", cwd=tmp_path)
    code2, latest, _ = run_main("eval", "small.txt", "-c", str(ck), "--json", cwd=tmp_path)
    assert code == code2 == 0, err
    assert json.loads(best)["loss"] == json.loads(latest)["loss"]


def test_block_size_one_trains_and_saves(tmp_path, small_text):
    result = tinygpt.train(
        small_text,
        out_dir=tmp_path / "b1",
        **{**TINY, "block_size": 1, "max_steps": 4, "eval_every": 2},
    )
    assert result.step == 4 and open_checkpoint(tmp_path / "b1").step == 4


def _train_briefly(cwd, out: str) -> tuple[int, str, str]:
    """A 3-step train of small.txt into ``out``: what the --out checks below are run on."""
    args = ("--device", "cpu", "--max-steps", "3", *MICRO_ARGS, "-q")
    return run_main("train", "small.txt", "--out", out, *args, cwd=cwd)


def test_an_out_that_is_a_file_fails_before_training(tmp_path):
    (tmp_path / "small.txt").write_text(SMALL_TEXT)
    (tmp_path / "taken").write_text("not a directory")
    code, _, err = _train_briefly(tmp_path, "taken")
    assert "is a file" in one_line_error(code, err, (2,))
    assert (tmp_path / "taken").read_text() == "not a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_out_fails_before_training(tmp_path):
    (tmp_path / "small.txt").write_text(SMALL_TEXT)
    (tmp_path / "ro").mkdir(mode=0o555)
    code, _, err = _train_briefly(tmp_path, "ro/run")
    assert "cannot write" in one_line_error(code, err, (2,))


def test_train_refuses_a_non_empty_folder_that_is_not_a_checkpoint(tmp_path):
    (tmp_path / "small.txt").write_text(SMALL_TEXT)
    mine = tmp_path / "mine"
    mine.mkdir()
    for name in ("config.json", "metrics.jsonl", "state.pt"):
        (mine / name).write_text(f"the user's own {name}\n")
    before = snapshot(mine)
    code, _, err = _train_briefly(tmp_path, "mine")
    line = one_line_error(code, err, (2,))
    assert "not empty" in line and "--overwrite" in line
    assert snapshot(mine) == before and not (mine / ".lock").exists()
    args = ("--device", "cpu", "--max-steps", "3", *MICRO_ARGS, "-q")
    code, _, err = run_main(
        "train", "small.txt", "--out", "mine", "--overwrite", *args, cwd=tmp_path
    )
    assert code == 0, err  # asked for: the folder becomes a checkpoint
    assert open_checkpoint(mine).step == 3


def test_train_dot_never_reads_its_own_checkpoints_as_text(tmp_path):
    from tinygpt.data.sources import resolve_sources

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "small.txt").write_text(SMALL_TEXT)
    args = ("--device", "cpu", "--max-steps", "2", *MICRO_ARGS, "-q")
    code, _, err = run_main("train", ".", *args, cwd=corpus)  # writes ./checkpoints/corpus
    assert code == 0, err
    assert (corpus / "checkpoints" / "corpus" / MODEL_FILE).exists()
    assert resolve_sources(corpus) == [corpus / "small.txt"]
    code, _, err = run_main("train", ".", "--out", "again", *args, cwd=corpus)
    assert code == 0, err
    first = open_checkpoint(corpus / "checkpoints" / "corpus").tokenizer_spec
    assert open_checkpoint(corpus / "again").tokenizer_spec == first
    code, _, err = run_main(
        "train", ".", "--out", "checkpoints/corpus", "--resume", "-q", cwd=corpus
    )
    assert code == 0, err  # the same corpus as the first run: resumes


def test_a_resume_on_another_text_is_said(tmp_path):
    """--resume took any text without a word, and compared its validation losses (best,
    --early-stop) with the first text's."""
    (tmp_path / "a.txt").write_text(SMALL_TEXT)
    (tmp_path / "b.txt").write_text("\n".join(reversed(SMALL_TEXT.splitlines())) + "\n")
    first = ("train", "a.txt", "--out", "run", *MICRO_ARGS, "--max-steps", "2")
    assert run_main(*first, cwd=tmp_path)[0] == 0
    code, _, err = run_main(
        "train", "./a.txt", "--out", "run", "--resume", "--max-steps", "4", cwd=tmp_path
    )
    assert code == 0 and "trained on" not in err, err  # the same file, spelled otherwise
    code, _, err = run_main(
        "train", "b.txt", "--out", "run", "--resume", "--max-steps", "6", cwd=tmp_path
    )
    assert code == 0 and "resuming on b.txt, but the run trained on a.txt" in err, err


@pytest.mark.parametrize("out", [".", ".."])
def test_an_out_that_is_or_holds_the_corpus_folder_is_refused(tmp_path, out):
    """Files inside --out are never read: the corpus folder as --out left only a link out of
    it to train on, without a word (or, with no link, said the folder held no files)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text(SMALL_TEXT)
    (tmp_path / "elsewhere.txt").write_text(SMALL_TEXT[:500])
    (corpus / "link.txt").symlink_to(tmp_path / "elsewhere.txt")
    args = ("train", ".", "--out", out, "--overwrite", *MICRO_ARGS, "--max-steps", "2")
    code, _, err = run_main(*args, cwd=corpus)
    error = one_line_error(code, err, (2,))
    assert f"--out {out} " in error and "the corpus folder" in error
    assert sorted(p.name for p in corpus.iterdir()) == ["a.txt", "link.txt"]


def test_train_out_never_takes_a_users_dot_files_for_its_own(tmp_path):
    (tmp_path / TEXT).write_text(SMALL_TEXT)
    mine = {".tmp-thesis.tex": "x", ".staged-notes.txt": "y", ".lock": "z"}
    for name, text in mine.items():
        folder = tmp_path / f"ud{name}"
        folder.mkdir()
        (folder / name).write_text(text)
        args = ("train", TEXT, "--out", folder.name, *MICRO_ARGS, "--max-steps", "2", "-q")
        code, _, err = run_main(*args, cwd=tmp_path)
        error = one_line_error(code, err, (2,))
        assert "is not empty" in error and "would be replaced" not in error, name
        assert [p.name for p in folder.iterdir()] == [name] and (folder / name).read_text() == text
    # A Hugging Face model's folder: --overwrite would replace its config.json, and says so.
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text('{"model_type": "gpt2"}')
    code, _, err = run_main("train", TEXT, "--out", "hf", *MICRO_ARGS, cwd=tmp_path)
    assert "(its config.json would be replaced)" in one_line_error(code, err, (2,))
    # What a killed save of tinygpt's own leaves is recognised, and swept by the next run.
    left = tmp_path / "left"
    left.mkdir()
    leftovers = [".tmp-model.safetensors.k2x_9abc", f"{STAGED_PREFIX}config.json"]
    for name in leftovers:
        (left / name).write_bytes(b"half a save")
    (left / ".lock").write_text("pid 1 on elsewhere\n")
    code, _, err = run_main(
        "train", TEXT, "--out", "left", *MICRO_ARGS, "--max-steps", "2", "-q", cwd=tmp_path
    )
    assert code == 0, err
    assert not any((left / name).exists() for name in leftovers)
    # ... and in a checkpoint, a user's file that only looks like a leftover stays.
    (left / ".tmp-notes.txt").write_text("mine")
    code, _, err = run_main(
        "train", TEXT, "--out", "left", "--resume", "--max-steps", "3", "-q", cwd=tmp_path
    )
    assert code == 0, err
    assert (left / ".tmp-notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "extra,expected,unexpected",
    [
        (["--optimizer", "muon"], "can't change on --resume", "corrupt"),
        (["--arch", "modern"], "drop the --arch", "--position"),
        (["--max-steps", "4"], "already at step 10", "done"),
        # each was ignored: the run went on as it was
        (["--preset", "shakespeare-char"], "the recipe sets n_layer 6", "--n-layer"),
        (["--records", "line"], "--records line can't change on --resume", "corrupt"),
        (["--separator", "@@"], "--separator @@ can't change on --resume", "corrupt"),
        (["--overwrite"], "give --resume or --overwrite, not both", "corrupt"),
    ],
)
def test_resume_refusals_say_what_is_wrong(ck, tmp_path, extra, expected, unexpected):
    before = snapshot(ck)
    args = ("train", "small.txt", "--out", "ck", "--resume", "-q", *extra)
    code, _, err = run_main(*args, cwd=tmp_path)
    line = one_line_error(code, err, (2,))
    assert expected in line and unexpected not in line
    assert snapshot(ck) == before


def test_max_time_is_one_commands_budget(ck, tmp_path):
    config = json.loads((ck / CONFIG_FILE).read_text())
    config["train"]["max_time"] = 600.0  # the first run had a budget
    rehash(ck, CONFIG_FILE, json.dumps(config).encode())
    result = tinygpt.train(tmp_path / "small.txt", out_dir=ck, resume=True, max_steps=12)
    assert result.step == 12 and not result.stopped_by_time
    assert open_checkpoint(ck).config.train.max_time is None  # not applied again
    tinygpt.train(tmp_path / "small.txt", out_dir=ck, resume=True, max_steps=13, max_time=900.0)
    assert open_checkpoint(ck).config.train.max_time == 900.0  # given again: applies


@pytest.mark.parametrize("budget", ["1e38", "100"])
def test_a_huge_max_time_trains_and_max_steps_stays_a_cap(tmp_path, budget):
    (tmp_path / TEXT).write_text(SMALL_TEXT)
    code, _, err = run_main(  # the warmup (20 steps) outlasts --max-steps: still 3 steps
        "train", TEXT, "--max-time", budget, "--max-steps", "3", *MICRO_ARGS, "-q", cwd=tmp_path
    )
    assert code == 0, err
    assert open_checkpoint(tmp_path / "checkpoints" / "small").step == 3


def test_a_bpe_model_that_dwarfs_its_text_is_named_with_its_embedding() -> None:
    from types import SimpleNamespace

    from tinygpt.config.model import ModelConfig
    from tinygpt.model import GPT
    from tinygpt.training.sizing import model_size_note

    # A newcomer's run: the default shape with GPT-2's vocabulary, for 8,075 tokens of text.
    model = GPT(ModelConfig(vocab_size=50257))
    gpt2 = SimpleNamespace(name="gpt2", vocab_size=50257)
    note = model_size_note(model, 8075 * 9 // 10, gpt2)
    total = sum(p.numel() for p in model.parameters())
    assert note is not None and "\n" not in note
    assert note.startswith(f"note: the model has {total:,} parameters for 7,267 training tokens")
    assert (
        "memorise" in note
        and "94% of them in the embedding and head of the 50,257-token gpt2" in note
    )
    assert "tokenizer='char'" in note  # Python's spelling here; the CLI's is --tokenizer char
    # Tiny Shakespeare's char model: under one parameter per token, nothing to say.
    char_model = GPT(ModelConfig(vocab_size=65))
    assert (
        model_size_note(char_model, 1_003_854, SimpleNamespace(name="char", vocab_size=65)) is None
    )


@pytest.mark.slow
def test_train_warns_at_start_when_the_model_dwarfs_the_text(tmp_path: Path) -> None:
    from tests.conftest import SMALL_TEXT, run_in_process

    (tmp_path / "short.txt").write_text(SMALL_TEXT[:600])
    args = ("--tokenizer", "char", "--block-size", "16", "--batch-size", "2", "--max-steps", "1")
    proc = run_in_process("train", "short.txt", *args, "--device", "cpu", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if line.startswith("note: the model has")]
    assert len(notes) == 1 and "training tokens" in notes[0] and "smaller model" in notes[0]
    assert proc.stderr.index("note: the model has") < proc.stderr.index("done:")


@pytest.mark.slow
def test_a_small_file_with_no_tokenizer_named_trains_on_characters(tmp_path: Path) -> None:
    """A newcomer's trap (gpt2's embedding for a small file) is not the default."""
    from tests.conftest import SMALL_TEXT, run_in_process

    text = SMALL_TEXT * 10  # 35 KB, the size of that newcomer's file
    (tmp_path / "mine.txt").write_text(text)
    args = ("--block-size", "16", "--batch-size", "2", "--max-steps", "1", "--device", "cpu")
    proc = run_in_process("train", "mine.txt", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    config = json.loads((tmp_path / "checkpoints" / "mine" / "config.json").read_text())
    assert config["train"]["tokenizer"] == "char"
    note = next(line for line in proc.stderr.splitlines() if "picked" in line)
    assert note.startswith(f"note: --tokenizer char picked for this {len(text):,}-byte text")
    assert "pass --tokenizer gpt2 to use it anyway" in note
    assert "note: the model has" not in proc.stderr  # the char model fits


def test_the_default_stays_gpt2_where_its_model_fits(tmp_path: Path) -> None:
    from tinygpt.training.sizing import default_tokenizer

    big = tmp_path / "big.txt"
    big.write_text("To be, or not to be, that is the question.\n" * 30_000)  # 1.3 MB
    assert default_tokenizer(big, {}) == ("gpt2", None)
    small = tmp_path / "small.txt"
    small.write_text("To be, or not to be, that is the question.\n" * 800)  # 35 KB, the newcomer's
    name, note = default_tokenizer(small, {})
    assert name == "char" and note is not None and "\n" not in note
    assert default_tokenizer(small, {"n_embd": 8, "n_head": 2, "n_layer": 1})[0] == "gpt2"


@pytest.mark.slow
def test_a_named_tokenizer_is_kept_with_the_warning(tmp_path: Path, gpt2_encoding) -> None:
    from tests.conftest import SMALL_TEXT, run_in_process

    (tmp_path / "mine.txt").write_text(SMALL_TEXT)
    args = ("--block-size", "8", "--batch-size", "1", "--max-steps", "1", "--device", "cpu")
    proc = run_in_process("train", "mine.txt", "--tokenizer", "gpt2", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    config = json.loads((tmp_path / "checkpoints" / "mine" / "config.json").read_text())
    assert config["train"]["tokenizer"] == "gpt2" and "picked" not in proc.stderr
    assert "note: the model has" in proc.stderr and "50,257-token gpt2" in proc.stderr
