"""The command line end to end: train, generate and eval with their JSON, one-line errors and exit
codes, Ctrl-C, SIGTERM and SIGHUP, the checkpoint a command picks without -c, eval's progress."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import (
    MICRO_ARGS,
    SMALL_TEXT,
    TINY_ARGS,
    ctrl_c_after,
    need_encoding,
    run_cli,
    run_in_process,
    run_main,
)
from tinygpt.checkpoint.store import open_checkpoint


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _has_mps() -> bool:
    import torch

    return torch.backends.mps.is_available()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from tests.conftest import SMALL_TEXT

    root = tmp_path_factory.mktemp("cli")
    (root / "small.txt").write_text(SMALL_TEXT)
    proc = run_in_process(
        "train", "small.txt", *TINY_ARGS, "--max-steps", "40", "--eval-every", "20", cwd=root
    )
    assert proc.returncode == 0, proc.stderr
    return root


@pytest.mark.slow
def test_train_writes_default_out_dir_and_reports(trained):
    from tinygpt.checkpoint.store import open_checkpoint

    ck = open_checkpoint(trained / "checkpoints" / "small")  # named for the data file
    assert ck.step == 40 and ck.config.model.n_embd == 32
    records = [r for r in ck.metrics() if "val_loss" in r]
    assert [r["step"] for r in records] == [20, 40]  # --eval-every 20
    assert all(0 < r["val_loss"] < 10 for r in records)


@pytest.mark.slow
def test_generate_streams_prompt_first_and_is_seeded(trained):
    a = run_in_process(
        "generate", "--prompt", "All:", "--max-new-tokens", "30", "--seed", "3", cwd=trained
    )
    b = run_in_process(
        "generate", "--prompt", "All:", "--max-new-tokens", "30", "--seed", "3", cwd=trained
    )
    assert a.returncode == 0, a.stderr
    assert a.stdout.startswith("All:") and a.stdout == b.stdout
    assert len(a.stdout) >= len("All:") + 30


@pytest.mark.slow
def test_generate_json_and_stdin_prompt(trained):
    proc = run_cli(
        "generate",
        "-c",
        "checkpoints/small",
        "--prompt",
        "-",
        "--json",
        "--max-new-tokens",
        "12",
        "--num-samples",
        "2",
        "--temperature",
        "0",
        cwd=trained,
        input="First",
    )
    doc = json.loads(proc.stdout)
    assert set(doc) == {"samples", "new_tokens", "seconds", "tokens_per_sec", "sample_details"}
    assert doc["new_tokens"] == 24 and len(doc["samples"]) == 2
    assert doc["samples"][0] == doc["samples"][1] and doc["samples"][0].startswith("First")
    no_cache = run_in_process(
        "generate",
        "-c",
        "checkpoints/small",
        "--prompt",
        "First",
        "--json",
        "--max-new-tokens",
        "12",
        "--temperature",
        "0",
        "--no-kv-cache",
        cwd=trained,
    )
    assert json.loads(no_cache.stdout)["samples"][0] == doc["samples"][0]


@pytest.mark.slow
def test_eval_json(trained):
    proc = run_in_process("eval", "small.txt", "-c", "checkpoints/small", "--json", cwd=trained)
    doc = json.loads(proc.stdout)
    assert set(doc) >= {"loss", "perplexity", "bits_per_byte", "tokens"}
    assert doc["perplexity"] == pytest.approx(2.718281828 ** doc["loss"], rel=1e-6)
    # char tokenizer on ASCII: one token per byte, so bits/byte = loss / ln 2 (up to the 1st token)
    assert doc["bits_per_byte"] == pytest.approx(doc["loss"] / 0.693147, rel=0.01)


def test_python_m_and_version():
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("tinygpt ")


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["train", "missing.txt"], 2, "file not found: missing.txt"),
        (["train", "emptydir"], 2, "holds no files"),
        (["train", "empty.txt", "--tokenizer", "char"], 2, "is empty"),
        (["train", "latin.txt", "--tokenizer", "char"], 2, "offset 5"),
        (["train", "small.txt", "--tokenizer", "char", "--block-size", "5000"], 2, "--block-size"),
        (
            ["train", "small.txt", "--tokenizer", "char", "--n-embd", "30", "--n-head", "4"],
            2,
            "divisible",
        ),
        (["train", "small.txt", "--tokenizer", "char", "--lr", "-1"], 2, "--lr"),
        pytest.param(
            ["train", "small.txt", "--tokenizer", "char", "--device", "cuda"],
            2,
            "no CUDA",
            # With a GPU the run trains (into checkpoints/fresh, which later cases expect free).
            marks=pytest.mark.skipif(_has_cuda(), reason="this machine has CUDA"),
        ),
        pytest.param(
            ["train", "small.txt", "--tokenizer", "char", "--device", "mps"],
            2,
            "MPS is not",
            marks=pytest.mark.skipif(_has_mps(), reason="this machine has MPS"),
        ),
        (["train", "small.txt", "--tokenizer", "nope"], 2, "unknown --tokenizer"),
        (["train", "eot.txt", "--tokenizer", "gpt2"], 2, "endoftext"),
        (["generate", "-c", "nowhere"], 1, "no checkpoint at nowhere"),
        (["generate", "-c", "checkpoints/small", "--prompt", "日本"], 2, "lacks"),
        (["generate", "-c", "checkpoints/small", "--temperature", "-1"], 2, "--temperature"),
        (["generate", "-c", "checkpoints/small", "--top-p", "2"], 2, "--top-p"),
        (["train", "small.txt", "--tokenizer", "char"], 2, "already holds a checkpoint"),
    ],
)
@pytest.mark.slow
def test_bad_input_gives_one_line_and_exit_code(trained, args, code, message):
    if "gpt2" in args:
        need_encoding("gpt2")
    (trained / "empty.txt").write_bytes(b"")
    (trained / "emptydir").mkdir(exist_ok=True)
    (trained / "latin.txt").write_bytes(b"caf\xc3\xa9\xff!")
    (trained / "eot.txt").write_text("a<|endoftext|>b" * 50)
    if args[0] == "train" and "already" not in message:
        args = [*args, "--out", "checkpoints/fresh"]  # not the existing run
    proc = run_in_process(*args, cwd=trained)
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and message in lines[-1], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_debug_shows_the_traceback(trained):
    proc = run_cli("--debug", "generate", "-c", "nowhere", cwd=trained)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


@pytest.mark.slow
def test_failed_run_never_modifies_existing_checkpoint(trained):
    ck = trained / "checkpoints" / "small"
    before = {p.name: p.read_bytes() for p in ck.iterdir()}
    proc = run_in_process("train", "small.txt", "--resume", "--n-layer", "5", cwd=trained)
    assert proc.returncode == 2
    assert {p.name: p.read_bytes() for p in ck.iterdir()} == before


@pytest.mark.slow
def test_ctrl_c_saves_and_prints_how_to_resume(tmp_path):
    out = tmp_path / "out"
    # Wait for the run summary, printed once the Ctrl-C handler is installed (not a fixed time,
    # which a loaded machine can outlast).
    proc = _start_long_run(tmp_path, out)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err and "interrupted at step" in err
    from tinygpt.checkpoint.store import open_checkpoint

    assert open_checkpoint(out).step > 0


@pytest.mark.parametrize(
    "args",
    [
        ["info"],
        ["plot", "--json"],
        ["eval", "small.txt", "--json"],
        ["generate", "--prompt", "All:", "--max-new-tokens", "3", "--json"],
        ["inspect-attention", "--prompt", "All: speak", "--json"],
    ],
)
def test_a_picked_checkpoint_is_named_on_stderr(two_runs: Path, args: list[str]) -> None:
    code, out, err = run_main(*args, cwd=two_runs)
    assert code == 0, err
    picked = str(Path("checkpoints") / "new")
    assert f"using {picked}, the newest checkpoint under checkpoints/ (-c DIR for another)" in err
    assert "using" not in out  # stdout stays the command's output alone
    # Named with -c: nothing to say.
    code, _, err = run_main(*args, "-c", str(Path("checkpoints") / "old"), cwd=two_runs)
    assert code == 0 and "using" not in err, err


def test_eval_reports_progress_to_the_end(two_runs: Path) -> None:
    import tinygpt
    from tinygpt.analysis.evaluation import evaluate_text

    model, tokenizer, _ = tinygpt.load(two_runs / "checkpoints" / "new", device="cpu")
    seen: list[tuple[int, int]] = []
    text = (two_runs / "small.txt").read_text()
    evaluate_text(model, tokenizer, text, batch_size=4, on_progress=lambda *a: seen.append(a))
    windows = -(-(len(text) - 1) // model.config.block_size)
    assert len(seen) > 2 and seen[-1] == (windows, windows)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


@pytest.mark.slow
def test_eval_draws_a_bar_on_a_terminal_and_nothing_in_a_pipe(two_runs: Path) -> None:
    from tests.conftest import run_in_process

    args = ("eval", "small.txt", "-c", "checkpoints/new", "--device", "cpu")
    terminal = {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1"}  # rich: draw as on a terminal
    shown = run_in_process(*args, cwd=two_runs, env=terminal)
    assert shown.returncode == 0 and "eval" in shown.stderr and "windows" in shown.stderr
    assert shown.stdout.startswith("loss ")  # stdout: the result alone
    piped = run_in_process(*args, cwd=two_runs)
    assert piped.returncode == 0 and piped.stderr == ""


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


def test_the_commands_to_copy_are_quoted_for_the_shell(tmp_path, monkeypatch):
    """A glob and a folder with a space, printed bare, split or expanded when pasted."""
    for name in ("g1.txt", "g2.txt"):
        (tmp_path / name).write_text(SMALL_TEXT)
    ctrl_c_after(monkeypatch, 2)
    args = ("train", "g*.txt", "--out", "my run", *MICRO_ARGS, "--max-steps", "6")
    code, _, err = run_main(*args, "--eval-every", "3", cwd=tmp_path)
    assert code == 130, err
    resume = err.split("Resume with: ")[1].strip()
    assert resume == "tinygpt train 'g*.txt' --out 'my run' --resume"
    code, _, err = run_main(*shlex.split(resume)[1:], cwd=tmp_path)
    assert code == 0 and open_checkpoint(tmp_path / "my run").step == 6, err
    assert "Sample with: tinygpt generate --checkpoint 'my run'" in err
