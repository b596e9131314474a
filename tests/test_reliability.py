"""Issue 13: crafted checkpoints, preemption signals, the token cache's key, --overwrite, the
writer lock, finite options, bounded reads and one-line errors for every bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import tinygpt
from tests.conftest import (
    MICRO_ARGS,
    SMALL_TEXT,
    TINY,
    TINY_GPT2,
    one_line_error,
    rehash,
    run_main,
    snapshot,
)
from tinygpt.checkpoint import save as saving
from tinygpt.checkpoint.manifest import (
    BEST_FILE,
    CONFIG_FILE,
    MODEL_FILE,
    PENDING_FILE,
    STATE_FILE,
    TOKENIZER_FILE,
)
from tinygpt.checkpoint.metrics import read_metrics
from tinygpt.checkpoint.save import write_checkpoint
from tinygpt.checkpoint.store import open_checkpoint
from tinygpt.checkpoint.weights import weights_bytes
from tinygpt.errors import UsageError

# A tiny run in the gpt2 recipe, so `export` works on it too (the shared one).
RUN = TINY_GPT2


# -- 1. manifest names -----------------------------------------------------------------------


# -- 2. export never into a checkpoint -------------------------------------------------------
def test_export_refuses_a_checkpoint_and_non_empty_directories(ck, trained, tmp_path):
    before = snapshot(ck)
    for target in (ck, tmp_path / "ck"):  # itself, and (another) checkpoint's directory
        for extra in ([], ["--overwrite"]):
            code, _, err = run_main("export", str(target), "-c", str(trained), *extra)
            assert "checkpoint" in one_line_error(code, err, (2,))
    assert snapshot(ck) == before
    open_checkpoint(ck).load_model()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    code, _, err = run_main("export", str(other), "-c", str(ck))
    assert "not empty" in one_line_error(code, err, (2,))
    code, _, err = run_main("export", str(other), "-c", str(ck), "--overwrite")
    assert code == 0, err
    assert (other / "model.safetensors").exists() and (other / "keep.txt").read_text() == "mine"


# -- 3. SIGTERM and SIGHUP stop like Ctrl-C --------------------------------------------------
def _start_long_run(cwd: Path, out: Path) -> subprocess.Popen:
    (cwd / "small.txt").write_text(SMALL_TEXT)
    args = [
        *MICRO_ARGS,
        "--device",
        "cpu",
    ]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tinygpt",
            "train",
            "small.txt",
            *args,
            "--out",
            str(out),
            "--max-steps",
            "1000000",
            "--eval-every",
            "1000000",
        ],
        cwd=cwd,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1", "OMP_NUM_THREADS": "1"},
    )
    deadline = time.time() + 240
    while time.time() < deadline:  # the run summary comes once the handlers are installed
        line = proc.stderr.readline()
        if not line or line.startswith("output "):
            break
    assert proc.poll() is None, "training never started"
    return proc


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
@pytest.mark.slow
def test_sigterm_and_sighup_save_and_exit_128_plus_signal(tmp_path, sig):
    out = tmp_path / "out"
    # Started: the handlers are in (a signal before the first step still finishes that step,
    # as test_cli's Ctrl-C test shows, so no wait is needed for a step > 0).
    proc = _start_long_run(tmp_path, out)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err
    assert "--resume" in err and "interrupted at step" in err
    assert f"({signal.Signals(sig).name})" in err
    assert open_checkpoint(out).step > 0


# -- 4. the token cache is keyed on the encoding ---------------------------------------------
def test_token_cache_is_keyed_on_the_encoding(tmp_path):
    latin = tmp_path / "latin.txt"
    latin.write_bytes(SMALL_TEXT.encode() + "caf\u00e9 na\u00efve\n".encode("latin-1"))
    options = {**TINY, "max_steps": 1, "eval_every": 1}
    tinygpt.train(latin, out_dir=tmp_path / "a", encoding="latin-1", **options)
    with pytest.raises(UsageError, match="not valid utf-8: byte 0xe9"):
        tinygpt.train(latin, out_dir=tmp_path / "b", **options)
    for bad in ("rot13", "../../etc", "base64"):
        with pytest.raises(UsageError, match="encoding"):
            tinygpt.train(latin, out_dir=tmp_path / "c", encoding=bad, **options)
    # the reverse: a UTF-8 cache entry is not reused for a latin-1 reading of the same file
    utf8 = tmp_path / "utf8.txt"
    utf8.write_text(SMALL_TEXT + "caf\u00e9\n", encoding="utf-8")
    a = tinygpt.train(utf8, out_dir=tmp_path / "d", **options)
    b = tinygpt.train(utf8, out_dir=tmp_path / "e", encoding="latin-1", **options)
    vocab_a = open_checkpoint(a.out_dir).tokenizer.vocab_size
    vocab_b = open_checkpoint(b.out_dir).tokenizer.vocab_size
    assert vocab_b == vocab_a + 1  # "é" is one character in UTF-8, two in latin-1


# -- 5. --overwrite keeps nothing of the old run ---------------------------------------------
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


# -- 6. one writer per directory -------------------------------------------------------------


# -- 8. finite numbers everywhere ------------------------------------------------------------


# -- 9. tiny contexts, unwritable outputs ----------------------------------------------------
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


# == Issue 24: no user file written through a link or over without --overwrite ===============


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


def test_import_hf_never_writes_over_its_source_or_a_foreign_folder(ck, tmp_path):
    code, _, err = run_main("export", "hfm", "-c", "ck", cwd=tmp_path)
    assert code == 0, err
    before = snapshot(tmp_path / "hfm")
    for extra in ([], ["--overwrite"]):
        code, _, err = run_main("import-hf", "hfm", "--out", "hfm", *extra, cwd=tmp_path)
        assert "destroy" in one_line_error(code, err, (2,))
    assert snapshot(tmp_path / "hfm") == before
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text("{}")
    code, _, err = run_main("import-hf", "hfm", "--out", "other", cwd=tmp_path)
    assert "not empty" in one_line_error(code, err, (2,))
    assert (other / "config.json").read_text() == "{}"
    code, _, err = run_main("import-hf", "hfm", "--out", "new", cwd=tmp_path)
    assert code == 0, err
    assert open_checkpoint(tmp_path / "new").step == 0


@pytest.mark.parametrize(
    "flag,name",
    [
        ("--json-file", "config.json"),
        ("--npz", "model.safetensors"),
        ("--html", "manifest.json"),
        ("--svg", "metrics.jsonl"),
        ("--png", "best.safetensors"),
    ],
)
def test_report_writers_never_overwrite_a_checkpoint_file(ck, tmp_path, flag, name):
    before = snapshot(ck)
    args = ("inspect-attention", "-c", "ck", "-p", "First", "--device", "cpu")
    code, _, err = run_main(*args, flag, f"ck/{name}", cwd=tmp_path)
    assert "part of the checkpoint" in one_line_error(code, err, (2,))
    assert snapshot(ck) == before
    code, _, err = run_main(*args, flag, f"ck/report-{name}", cwd=tmp_path)
    assert code == 0, err  # any other name in the folder is fine


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


def test_a_corpus_changed_while_tokenized_is_never_cached(tmp_path, monkeypatch):
    from tinygpt.data import corpus as data
    from tinygpt.data.tokenizer import CharTokenizer

    corpus = tmp_path / "corpus.txt"
    pristine = ("a" * 99 + "\n") * 50
    corpus.write_text(pristine)
    tok = CharTokenizer(["\n", "a", "b"])
    original = data.iter_text

    def rewritten_midway(sources, encoding="utf-8", **kwargs):
        for i, piece in enumerate(original(sources, encoding, **{**kwargs, "chunk_bytes": 1000})):
            if i == 0:  # the first piece is read: another program rewrites the file in place
                with open(corpus, "r+b") as fh:
                    fh.write(b"b" * 5000)
            yield piece

    monkeypatch.setattr(data, "iter_text", rewritten_midway)
    with pytest.raises(UsageError, match="changed while it was being read"):
        data.prepare_corpus(corpus, tok, cache_dir=tmp_path / "cache")
    monkeypatch.setattr(data, "iter_text", original)
    corpus.write_text(pristine)  # back as it was: its tokens are its own, not the mixture
    ids = data.prepare_corpus(corpus, tok, cache_dir=tmp_path / "cache").ids
    assert tok.decode([int(i) for i in ids]) == pristine


@pytest.mark.parametrize("damage", ["out-of-vocabulary", "another-token", "float64", "uint32"])
def test_a_damaged_token_cache_entry_is_rebuilt(small_text, tmp_path, damage):
    from tinygpt.data.corpus import prepare_corpus

    cache = tmp_path / "cache"
    first = prepare_corpus(small_text, "char", cache_dir=cache)
    expected = np.array(first.ids)
    (bin_path,) = (cache / "tokens").glob("*.bin")
    meta_path = bin_path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    if damage in ("out-of-vocabulary", "another-token"):  # a flipped bit, either way
        new = 60000 if damage == "out-of-vocabulary" else (int(expected[0]) + 1) % 10
        with open(bin_path, "r+b") as fh:
            fh.write(np.array([new], dtype=np.uint16).tobytes())
    else:  # another width, with a token count that fits the file's size
        meta["dtype"] = damage
        meta["num_tokens"] = bin_path.stat().st_size // np.dtype(damage).itemsize
    meta_path.write_text(json.dumps(meta))
    again = prepare_corpus(small_text, "char", cache_dir=cache)
    assert not again.from_cache and np.array_equal(np.array(again.ids), expected)
    assert prepare_corpus(small_text, "char", cache_dir=cache).from_cache  # rebuilt, whole


@pytest.mark.parametrize(
    "extra,expected,unexpected",
    [
        (["--optimizer", "muon"], "can't change on --resume", "corrupt"),
        (["--arch", "modern"], "drop the --arch", "--position"),
        (["--max-steps", "4"], "already at step 10", "done"),
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
