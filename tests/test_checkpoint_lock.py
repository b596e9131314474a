"""The writer lock (tinygpt.checkpoint.lock): one writer per directory, a stale lock taken over,
a hostile .lock file never written through, file systems without flock, and the default
checkpoint that is not one still training."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import tinygpt
from tests.conftest import TINY, one_line_error, run_main, snapshot
from tinygpt.checkpoint.store import open_checkpoint
from tinygpt.errors import UsageError


def test_a_second_writer_is_refused_and_a_stale_lock_taken_over(ck, tmp_path):
    assert run_main("export", "hf", "-c", "ck", cwd=tmp_path)[0] == 0
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "os.write(fd, b'pid %d' % os.getpid())\n"
            "print('locked', flush=True)\n"
            "time.sleep(120)\n",
            str(ck / ".lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = snapshot(ck)
        for extra in (["--resume"], ["--overwrite", "--tokenizer", "char", "--n-layer", "1"]):
            code, _, err = run_main(
                "train",
                "small.txt",
                "--out",
                "ck",
                *extra,
                "-q",
                "--max-steps",
                "11",
                "--device",
                "cpu",
                cwd=tmp_path,
            )
            line = one_line_error(code, err, (2,))
            assert "in use" in line and f"pid {holder.pid}" in line
            assert line.endswith("or use another --out")
        code, _, err = run_main("import-hf", "hf", "--out", "ck", "--overwrite", cwd=tmp_path)
        assert one_line_error(code, err, (2,)).endswith("or use another --out")  # was --out-dir
        assert snapshot(ck) == before
    finally:
        holder.kill()
        holder.wait()
    # kill -9 left the lock file behind: the next run takes it over
    assert (ck / ".lock").exists()
    code, _, err = run_main(
        "train", "small.txt", "--out", "ck", "--resume", "--max-steps", "11", "-q", cwd=tmp_path
    )
    assert code == 0, err
    assert open_checkpoint(ck).step == 11 and not (ck / ".lock").exists()


def test_the_default_checkpoint_is_not_one_still_training(tiny_run, tmp_path):
    """generate/inspect without --checkpoint take the newest run, but not one whose training is
    still going (it saves every few minutes and would always look newest)."""
    import time

    from tinygpt.checkpoint.lock import directory_lock, in_use
    from tinygpt.checkpoint.store import latest_checkpoint

    older = tiny_run("older", max_steps=2, eval_every=2).out_dir
    time.sleep(0.05)
    newer = tiny_run("newer", max_steps=2, eval_every=2).out_dir
    assert latest_checkpoint(tmp_path) == newer and not in_use(newer)
    with directory_lock(newer):  # as a training run holds it
        assert in_use(newer)
        assert latest_checkpoint(tmp_path) == older
    assert latest_checkpoint(tmp_path) == newer
    with directory_lock(newer), directory_lock(older):  # every one training: still the newest
        assert latest_checkpoint(tmp_path) == newer


def _lock_attack(ck: Path, victim: Path, kind: str) -> None:
    """Put a hostile ``.lock`` in ``ck``, as a shared checkpoint could carry."""
    lock = ck / ".lock"
    if kind == "symlink":
        victim.write_text("precious\n")
        lock.symlink_to(victim)
    elif kind == "dangling":
        lock.symlink_to(victim)  # victim does not exist: following it would create it
    elif kind == "hardlink":
        victim.write_text("precious\n")
        os.link(victim, lock)
    else:
        os.mkfifo(lock)


@pytest.mark.parametrize("kind", ["symlink", "dangling", "hardlink", "fifo"])
def test_the_lock_never_writes_through_a_hostile_lock_file(ck, tmp_path, kind):
    from tinygpt.checkpoint.lock import directory_lock, in_use

    victim = tmp_path / "victim.txt"
    _lock_attack(ck, victim, kind)
    before = victim.read_bytes() if victim.exists() else None
    with directory_lock(ck):
        assert in_use(ck)
        lock = ck / ".lock"
        assert lock.is_file() and not lock.is_symlink() and lock.stat().st_nlink == 1
        assert "pid" in lock.read_text()
    assert (victim.read_bytes() if victim.exists() else None) == before
    assert not (ck / ".lock").exists()


def test_resume_with_a_lock_linked_to_a_user_file_leaves_the_file_alone(ck, tmp_path):
    victim = tmp_path / "victim.txt"
    _lock_attack(ck, victim, "symlink")
    code, _, err = run_main(
        "train", "small.txt", "--out", "ck", "--resume", "--max-steps", "11", "-q", cwd=tmp_path
    )
    assert code == 0, err
    assert victim.read_text() == "precious\n"
    assert open_checkpoint(ck).step == 11


def test_a_failed_lock_write_leaves_no_out_directory(tmp_path, monkeypatch):
    import errno

    from tinygpt.checkpoint import lock

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lock.os, "write", full)
    with pytest.raises(UsageError, match="No space left"), lock.directory_lock(tmp_path / "new"):
        pass
    assert not (tmp_path / "new").exists()


def test_a_stray_rank_does_not_turn_the_writer_lock_off(small_text, tmp_path, monkeypatch):
    from tinygpt.checkpoint.lock import in_use
    from tinygpt.training.trainer import TrainerCallback

    held = []

    class Watch(TrainerCallback):
        def on_start(self, trainer):
            held.append(in_use(trainer.out_dir))

    monkeypatch.setenv("RANK", "1")  # left over from another job; no WORLD_SIZE: one process
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    result = tinygpt.train(
        small_text, out_dir=tmp_path / "run", callbacks=[Watch()], **{**TINY, "max_steps": 2}
    )
    assert held == [True] and result.step == 2 and result.is_main


def test_a_file_system_without_flock_still_trains_guarded_by_the_pid(
    small_text, tmp_path, monkeypatch
):
    import errno
    import socket

    from tinygpt.checkpoint import lock
    from tinygpt.training.trainer import TrainerCallback

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(lock.fcntl, "flock", no_locks)
    notes = []

    class Notes(TrainerCallback):
        def on_note(self, trainer, message):
            notes.append(message)

    out = tmp_path / "run"
    result = tinygpt.train(small_text, out_dir=out, callbacks=[Notes()], **{**TINY, "max_steps": 2})
    assert result.step == 2 and any("without file locks" in n for n in notes)
    assert not (out / ".lock").exists()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:  # a live run on this machine holds it: refused
        (out / ".lock").write_text(f"pid {holder.pid} on {socket.gethostname()}\n")
        with pytest.raises(UsageError, match=f"in use.*pid {holder.pid}"), lock.directory_lock(out):
            pass
    finally:
        holder.kill()
        holder.wait()
    with lock.directory_lock(out) as note:  # that run is gone: its lock is stale, taken over
        assert "without file locks" in note
        assert (out / ".lock").read_text() == f"pid {os.getpid()} on {socket.gethostname()}\n"
    (out / ".lock").write_text("pid 1 on another-machine\n")  # can't be checked from here
    with (
        pytest.raises(UsageError, match="remove .*lock if no run uses it"),
        lock.directory_lock(out),
    ):
        pass
    assert (out / ".lock").read_text() == "pid 1 on another-machine\n"
