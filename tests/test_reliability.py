"""Issue 13: crafted checkpoints, preemption signals, the token cache's key, --overwrite, the
writer lock, finite options, bounded reads and one-line errors for every bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import (
    MICRO_ARGS,
    SMALL_TEXT,
    one_line_error,
    run_main,
    snapshot,
)
from tinygpt.checkpoint.store import open_checkpoint

# -- 1. manifest names -----------------------------------------------------------------------


# -- 2. export never into a checkpoint -------------------------------------------------------


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


# -- 5. --overwrite keeps nothing of the old run ---------------------------------------------


# -- 6. one writer per directory -------------------------------------------------------------


# -- 8. finite numbers everywhere ------------------------------------------------------------


# -- 9. tiny contexts, unwritable outputs ----------------------------------------------------


def _train_briefly(cwd, out: str) -> tuple[int, str, str]:
    """A 3-step train of small.txt into ``out``: what the --out checks below are run on."""
    args = ("--device", "cpu", "--max-steps", "3", *MICRO_ARGS, "-q")
    return run_main("train", "small.txt", "--out", out, *args, cwd=cwd)


# == Issue 24: no user file written through a link or over without --overwrite ===============


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
