"""Checkpoint files (tinygpt.checkpoint): tampering, pickles, a full disk or a kill at any moment
of a save, the commit point, the weights format, the weight history, and a reader opened before
a save."""

import errno
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import tinygpt
from tests.conftest import one_line_error, run_main
from tinygpt.checkpoint import save as saving
from tinygpt.checkpoint.manifest import (
    BEST_FILE,
    CONFIG_FILE,
    MODEL_FILE,
    PENDING_FILE,
    STAGED_PREFIX,
    STATE_FILE,
    TOKENIZER_FILE,
)
from tinygpt.checkpoint.metrics import METRICS_FILE, read_metrics
from tinygpt.checkpoint.save import recover, sweep, write_checkpoint
from tinygpt.checkpoint.store import open_checkpoint
from tinygpt.checkpoint.weights import weights_bytes
from tinygpt.errors import CheckpointError, TinyGPTError
from tinygpt.io.files import sha256


def test_tampered_files_are_reported_corrupt(tiny_copy):
    out = tiny_copy
    original = (out / "model.safetensors").read_bytes()
    damages = {
        "truncated": original[: len(original) // 2],
        "empty": b"",
        "garbage": os.urandom(len(original)),
        "bit-flipped": original[:-100] + bytes([original[-100] ^ 0x01]) + original[-99:],
    }
    for data in damages.values():
        (out / "model.safetensors").write_bytes(data)
        with pytest.raises(CheckpointError, match="corrupt"):
            open_checkpoint(out).load_model()
    (out / "model.safetensors").write_bytes(original)
    open_checkpoint(out).load_model()


class _Trojan:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_payload_in_state_file_is_refused_and_never_runs(tiny_copy, tmp_path, monkeypatch):
    out = tiny_copy
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"step": _Trojan(str(marker))})
    (out / "state.pt").write_bytes(payload)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["files"]["state.pt"] = sha256(payload)  # an attacker can fix the hash too
    (out / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(CheckpointError, match="could run code"):
        open_checkpoint(out).load_state()
    assert not marker.exists()


def test_full_disk_during_save_leaves_old_checkpoint_loadable(tiny_run, monkeypatch):
    result = tiny_run(max_steps=15, eval_every=15)
    out = result.out_dir
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    from tinygpt.io import files as fileio

    real = fileio.atomic_write_bytes
    calls = {"n": 0}

    def disk_full(path, data):
        calls["n"] += 1
        if calls["n"] == 3:  # fail midway through the new checkpoint's files
            path.write_bytes(data[: len(data) // 3])
            raise OSError(28, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(saving, "atomic_write_bytes", disk_full)
    with pytest.raises(TinyGPTError, match="No space left on device.*unchanged"):
        tiny_run(max_steps=30, eval_every=15, resume=True)
    monkeypatch.undo()
    after = {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")}
    for name in ("model.safetensors", "state.pt", "manifest.json", "config.json"):
        assert after[name] == before[name]
    assert open_checkpoint(out).load_model() is not None
    sweep(out)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_torch_save_runtime_error_is_caught(tmp_path, monkeypatch):
    def boom(path, data):
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")

    monkeypatch.setattr(saving, "atomic_write_bytes", boom)
    with pytest.raises(TinyGPTError, match="could not write the checkpoint"):
        write_checkpoint(tmp_path / "c", {CONFIG_FILE: b"{}"}, step=1)


def test_crash_after_commit_point_is_rolled_forward(tiny_copy):
    out = tiny_copy
    # Simulate dying right after the pending manifest was written: staged file present.
    new_model = (out / "best.safetensors").read_bytes()
    (out / (STAGED_PREFIX + "model.safetensors")).write_bytes(new_model)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["files"]["model.safetensors"] = sha256(new_model)
    (out / PENDING_FILE).write_text(json.dumps(manifest))
    ck = open_checkpoint(out)  # readers see the committed save without touching files
    assert ck.read_verified("model.safetensors") == new_model
    assert (out / PENDING_FILE).exists()
    ck.load_model()
    recover(out)  # what the next save does first
    assert (out / "model.safetensors").read_bytes() == new_model
    assert not (out / PENDING_FILE).exists()
    assert open_checkpoint(out).load_model() is not None


def test_prefixes_stripped_and_tied_weight_saved_once():
    from safetensors.torch import load

    from tests.conftest import GPT2
    from tinygpt.config.model import ModelConfig
    from tinygpt.model import GPT

    shape = dict(vocab_size=10, block_size=4, n_layer=1, n_head=1, n_embd=8)
    untied = GPT(ModelConfig(**shape))  # the modern recipe: the head is its own tensor
    assert "lm_head.weight" in load(weights_bytes(untied))
    model = GPT(ModelConfig(**shape, **GPT2))
    wrapped = torch.nn.Module()
    wrapped.module = model  # what DistributedDataParallel looks like to state_dict()
    keys = set(load(weights_bytes(wrapped)).keys())
    assert "wte.weight" in keys and "lm_head.weight" not in keys
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in keys)


def test_non_finite_weights_are_never_written():
    from tinygpt.config.model import ModelConfig
    from tinygpt.model import GPT

    model = GPT(ModelConfig(vocab_size=10, block_size=4, n_layer=1, n_head=1, n_embd=8))
    with torch.no_grad():
        model.wte.weight[0, 0] = float("nan")
    with pytest.raises(TinyGPTError, match="non-finite"):
        weights_bytes(model)


def test_weights_stored_twice_or_as_integers_are_refused():
    import safetensors.torch

    from tinygpt.checkpoint.weights import load_weights
    from tinygpt.config.model import ModelConfig
    from tinygpt.model import GPT

    model = GPT(ModelConfig(vocab_size=10, block_size=4, n_layer=1, n_head=1, n_embd=8))
    state = safetensors.torch.load(weights_bytes(model))
    twice = {**state, "_orig_mod.wte.weight": state["wte.weight"] + 1}
    with pytest.raises(CheckpointError, match="holds wte.weight twice"):
        load_weights(model, safetensors.torch.save(twice), "w")
    integers = {**state, "wte.weight": state["wte.weight"].long()}
    with pytest.raises(CheckpointError, match="wte.weight holds integers"):
        load_weights(model, safetensors.torch.save(integers), "w")
    load_weights(model, safetensors.torch.save(state), "w")  # the file as saved loads


def test_missing_incompatible_and_foreign_checkpoints(tiny_copy, tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        open_checkpoint(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a tinygpt checkpoint"):
        open_checkpoint(tmp_path / "empty")
    out = tiny_copy
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["version"] = 99
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="format version 99"):
        open_checkpoint(out)


KILL_SCRIPT = """
import sys, tinygpt
tinygpt.train(sys.argv[1], out_dir=sys.argv[2], tokenizer="char", n_layer=1, n_head=1, n_embd=16,
              block_size=8, batch_size=4, max_steps=100000, eval_every=1, eval_batches=1,
              device="cpu", resume=len(sys.argv) > 3)
"""


@pytest.mark.slow
def test_kill_9_at_any_moment_leaves_a_loadable_checkpoint(small_text, tmp_path):
    out = tmp_path / "killed"
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT)
    for delay in (0.0, 0.37, 0.81):
        args = [sys.executable, str(script), str(small_text), str(out)]
        if (out / "manifest.json").exists():
            args.append("resume")
        before = open_checkpoint(out).step if (out / "manifest.json").exists() else -1
        proc = subprocess.Popen(args, env={**os.environ, "OMP_NUM_THREADS": "1"})
        # Wait until this process is saving checkpoints (start-up time varies with load), then
        # kill it at an arbitrary moment of its save-every-step loop.
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if (out / "manifest.json").exists() and open_checkpoint(out).step > before:
                break
            time.sleep(0.05)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if (out / "manifest.json").exists() or (out / PENDING_FILE).exists():
            ck = open_checkpoint(out)
            ck.load_model()
            ck.load_state()
    assert open_checkpoint(out).step > 0


def test_the_weight_history_keeps_each_evaluation_and_resumes_like_one_run(
    tiny_run, trained_tiny, tmp_path
):
    import shutil

    from tinygpt.checkpoint.manifest import HISTORY_FILE

    whole = open_checkpoint(tiny_run("whole", max_steps=45).out_dir)
    history = whole.history()
    assert history.steps == [15, 30, 45]
    final = whole.load_model("cpu").state_dict()
    for name, tensor in history.by_step[45].items():
        assert tensor.dtype == torch.float16  # half the bytes: a display's precision
        torch.testing.assert_close(tensor.float(), final[name], rtol=1e-3, atol=1e-4)
    split = shutil.copytree(trained_tiny, tmp_path / "split")  # TINY: 30 steps
    assert open_checkpoint(split).step == 30
    first = open_checkpoint(split).history()
    resumed = open_checkpoint(tiny_run("split", max_steps=45, resume=True).out_dir)
    again = resumed.history()
    assert again.steps == [15, 30, 45]  # a resume keeps the steps saved before it
    for step, source in ((15, history), (30, first)):  # (a 30-step schedule decays sooner)
        for name, tensor in source.by_step[step].items():
            assert torch.equal(again.by_step[step][name], tensor), (step, name)
    final = resumed.load_model("cpu").state_dict()
    for name, tensor in again.by_step[45].items():
        torch.testing.assert_close(tensor.float(), final[name], rtol=1e-3, atol=1e-4)
    off = open_checkpoint(tiny_run("off", weight_history=False).out_dir)
    assert not off.has(HISTORY_FILE) and off.history().steps == []


def test_a_long_history_is_thinned_evenly_and_keeps_the_newest_step():
    from tinygpt.checkpoint.history import MAX_KEPT, WeightHistory, wants_history
    from tinygpt.config.model import ModelConfig
    from tinygpt.model import GPT

    model = GPT(ModelConfig(vocab_size=8, block_size=4, n_layer=1, n_head=1, n_embd=8))
    history = WeightHistory()
    for step in range(1, 200):
        history.add(model, step)
        assert len(history.steps) <= MAX_KEPT and history.steps[-1] == step
    gaps = [b - a for a, b in zip(history.steps, history.steps[1:], strict=False)]
    assert history.steps[0] == 1 and max(gaps) <= 2 * min(gaps)  # even over the whole run
    assert wants_history(None, ModelConfig()) and not wants_history(None, ModelConfig(n_embd=768))
    assert wants_history(True, ModelConfig(n_embd=768)) and not wants_history(False, ModelConfig())


def test_a_tampered_history_is_refused(tiny_copy):
    from tinygpt.checkpoint.manifest import HISTORY_FILE

    out = tiny_copy
    data = bytearray((out / HISTORY_FILE).read_bytes())
    data[-5] ^= 0x01
    (out / HISTORY_FILE).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        open_checkpoint(out).history()


TEXT = "small.txt"


def test_a_full_disk_while_writing_metrics(ck, tmp_path, monkeypatch):
    from tinygpt.io import files as fileio

    real = fileio.atomic_write_bytes

    def full_at_the_log(path, data):  # the log is staged with the checkpoint's files
        if Path(path).name.endswith(METRICS_FILE):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(saving, "atomic_write_bytes", full_at_the_log)
    code, _, err = run_main(
        "train", TEXT, "--out", "ck", "--resume", "--max-steps", "15", "-q", cwd=tmp_path
    )
    line = one_line_error(code, err, (1,))
    assert "No space left" in line and "previous checkpoint there is unchanged" in line
    monkeypatch.undo()
    code, out, err = run_main("info", "-c", "ck", "--json", cwd=tmp_path)
    assert code == 0, err
    assert json.loads(out)["steps"] == 10


def test_info_shows_no_metrics_of_a_failed_save(ck, tmp_path, monkeypatch):
    from tinygpt.io import files as fileio

    before = {p.name: p.read_bytes() for p in ck.iterdir()}
    last_before = json.loads(run_main("info", "-c", "ck", "--json", cwd=tmp_path)[1])

    real = fileio.atomic_write_bytes

    def fail_on_pending(path, data):
        if Path(path).name == PENDING_FILE:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(saving, "atomic_write_bytes", fail_on_pending)
    code, _, err = run_main(
        "train", TEXT, "--out", "ck", "--resume", "--max-steps", "15", "-q", cwd=tmp_path
    )
    assert "previous checkpoint there is unchanged" in one_line_error(code, err, (1,))
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in ck.iterdir()} == before
    after = json.loads(run_main("info", "-c", "ck", "--json", cwd=tmp_path)[1])
    assert after["last_val_loss"] == last_before["last_val_loss"] and after["steps"] == 10


def test_a_reader_opened_before_a_save_reads_the_saved_checkpoint(ck):
    opened = open_checkpoint(ck)  # holds the old manifest
    model = opened.load_model()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)
    names = (CONFIG_FILE, TOKENIZER_FILE, STATE_FILE, BEST_FILE)
    files = {n: (ck / n).read_bytes() for n in names}
    files[MODEL_FILE] = weights_bytes(model)
    write_checkpoint(ck, files, step=opened.step + 1)
    reloaded = opened.load_model()  # the new weights, not "corrupt"
    assert opened.step == open_checkpoint(ck).step
    assert all(
        torch.equal(a, b)
        for a, b in zip(reloaded.state_dict().values(), model.state_dict().values(), strict=True)
    )


def test_a_kill_right_after_the_commit_point_loses_no_evaluation(ck, tmp_path, monkeypatch):
    from tinygpt.io import files as fileio

    class Killed(BaseException):
        """kill -9, as far as the directory can tell: nothing after this point runs."""

    real = fileio.atomic_write_bytes

    def die_after_commit(path, data):
        real(path, data)
        if Path(path).name == PENDING_FILE:
            raise Killed

    monkeypatch.setattr(saving, "atomic_write_bytes", die_after_commit)
    with pytest.raises(Killed):
        tinygpt.train(tmp_path / "small.txt", out_dir=ck, resume=True, max_steps=15)
    monkeypatch.undo()
    assert [r["step"] for r in open_checkpoint(ck).metrics()] == [5, 10, 15]
    tinygpt.train(tmp_path / "small.txt", out_dir=ck, resume=True, max_steps=20)
    assert [r["step"] for r in read_metrics(ck)] == [5, 10, 15, 20]
