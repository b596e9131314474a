"""Issue 13, items 7 and 10: bounded reads of any input, and a sentence (never "unexpected")
for every bad input; then a property-based fault-injection test over checkpoint files."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
from pathlib import Path

import pytest

from tests.conftest import (
    MICRO_ARGS,
    SMALL_TEXT,
    one_line_error,
    run_main,
    time_limit,
)
from tinygpt.checkpoint import save as saving
from tinygpt.checkpoint.manifest import (
    PENDING_FILE,
    STAGED_PREFIX,
)
from tinygpt.checkpoint.metrics import METRICS_FILE
from tinygpt.checkpoint.store import open_checkpoint

TEXT = "small.txt"


# -- 7. bounded work on any input ------------------------------------------------------------


# -- 10. no "unexpected" errors --------------------------------------------------------------


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


# -- fault injection over every file of a real checkpoint ------------------------------------


# -- issue 24 ---------------------------------------------------------------------------------
def test_glob_and_directory_corpora_read_each_real_file_once(tmp_path):
    from tinygpt.data.sources import resolve_sources

    corp = tmp_path / "corp"
    (corp / "sub").mkdir(parents=True)
    (corp / "a.txt").write_text("train text\n")
    (corp / "sub" / "b.txt").write_text("validation text\n")
    (corp / "sub" / "up").symlink_to("..")  # a loop through the parent
    (corp / "self").symlink_to(".")  # a loop through itself
    (corp / "twice.txt").symlink_to("a.txt")  # the same file under a second name
    expected = [corp / "a.txt", corp / "sub" / "b.txt"]
    with time_limit(30):
        assert resolve_sources(f"{corp}/**/*.txt") == expected
        assert resolve_sources(f"{corp}/**") == expected
        assert resolve_sources(corp) == expected
        assert len(resolve_sources(f"{corp}/*/*.txt")) == 2


def test_data_repeats_is_bounded_and_never_replaces_a_file(tmp_path):
    code, _, err = run_main(
        "data", "repeats", "--dir", "d", "--lines", "99999999999999999999999", cwd=tmp_path
    )
    assert "--lines" in one_line_error(code, err, (2,))
    assert not (tmp_path / "d").exists()
    code, _, err = run_main("data", "repeats", "--dir", "d", "--lines", "50", cwd=tmp_path)
    assert code == 0, err
    written = (tmp_path / "d" / "repeats.txt").read_bytes()
    code, _, err = run_main("data", "repeats", "--dir", "d", "--lines", "50", cwd=tmp_path)
    assert code == 0, err  # the same corpus: kept as it is
    (tmp_path / "d" / "repeats.txt").write_text("my notes\n")
    code, _, err = run_main("data", "repeats", "--dir", "d", "--lines", "50", cwd=tmp_path)
    assert "exists" in one_line_error(code, err, (2,))
    assert (tmp_path / "d" / "repeats.txt").read_text() == "my notes\n"
    assert len(written.splitlines()) == 50


@pytest.mark.parametrize(
    "args",
    [
        ("--dir", "afile"),
        ("--dir", "/dev/null"),
        ("--dir", "/proc/self"),
        ("--dir", "taken"),  # taken/repeats.txt is a directory
        ("--alphabet", "\udcff\udcfe"),  # the bytes ff fe on a UTF-8 command line
    ],
)
def test_data_repeats_bad_destinations_are_one_line(tmp_path, args):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "taken" / "repeats.txt").mkdir(parents=True)
    code, _, err = run_main("data", "repeats", "--lines", "10", *args, cwd=tmp_path)
    one_line_error(code, err, (2,))
    assert (tmp_path / "afile").read_text() == "x"


@contextlib.contextmanager
def http_server(handler_body):
    """A local HTTP server whose GET runs ``handler_body(handler)``; yields its URL."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            with contextlib.suppress(OSError):
                handler_body(self)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    # A short poll: shutdown() waits up to one interval (0.5 s by default) for the loop.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/input.txt"
    finally:
        server.shutdown()
        server.server_close()


def _trickle(handler):
    import time

    handler.send_response(200)
    handler.end_headers()
    for _ in range(200):  # a byte every 0.1 s: each read is quick, the whole never ends
        handler.wfile.write(b"x")
        handler.wfile.flush()
        time.sleep(0.1)


def _bad_length(handler):
    handler.send_response(200)
    handler.send_header("Content-Length", "abc")
    handler.end_headers()
    handler.wfile.write(b"not shakespeare\n")


@pytest.mark.parametrize(
    "url",
    [
        *("file:///dev/zero", "notaurl", "http://[::1"),
        pytest.param("trickle", marks=pytest.mark.slow),  # a server that sends a byte at a time
        "abc",
    ],
)
def test_downloads_are_bounded_and_bad_urls_one_line(tmp_path, monkeypatch, url):
    from tinygpt.data import datasets

    monkeypatch.setattr(datasets, "DOWNLOAD_DEADLINE_S", 2.0)
    kind, body = url, {"trickle": _trickle, "abc": _bad_length}.get(url)
    with contextlib.ExitStack() as stack:
        if body is not None:
            url = stack.enter_context(http_server(body))
        # The trickle lasts 20 s: the 2 s deadline must end the download long before it does.
        with time_limit(12 if kind == "trickle" else 60):
            code, _, err = run_main("data", "shakespeare", "--dir", "d", "--url", url, cwd=tmp_path)
    progress = "\n".join(line for line in err.splitlines() if line.startswith("download "))
    line = one_line_error(code, err.replace(progress, ""))  # the progress bar, then one line
    if kind == "trickle":  # stopped by the deadline as the bytes come, not by the server's end
        assert "not complete after 2s" in line
    assert not (tmp_path / "d" / "tinyshakespeare.txt").exists()
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 4 * 1024 * 1024  # KB: 4 GB


def test_an_existing_corpus_that_is_a_fifo_is_refused_at_once(tmp_path):
    (tmp_path / "d").mkdir()
    os.mkfifo(tmp_path / "d" / "tinyshakespeare.txt")
    with time_limit(30):
        code, _, err = run_main("data", "shakespeare", "--dir", "d", cwd=tmp_path)
    assert "FIFO" in one_line_error(code, err, (2,))


def _hf_model(ck: Path, tmp_path: Path) -> Path:
    code, _, err = run_main("export", "hfm", "-c", "ck", cwd=tmp_path)
    assert code == 0, err
    return tmp_path / "hfm"


@pytest.mark.parametrize(
    "file,content",
    [
        ("config.json", "fifo"),
        ("model.safetensors", "fifo"),
        ("model.safetensors", "dev-zero"),
        ("model.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00random bytes!!!!"),
        ("config.json", [1, 2]),
        ("config.json", "deep"),
        ("config.json", {"drop": "n_embd"}),
        ("config.json", {"layer_norm_epsilon": "abc"}),
        ("config.json", {"activation_function": {"a": 1}}),
        ("config.json", {"n_embd": "wide"}),
    ],
)
def test_import_hf_bad_inputs_are_one_line(ck, tmp_path, file, content):
    hfm = _hf_model(ck, tmp_path)
    path = hfm / file
    config = json.loads((hfm / "config.json").read_text())
    path.unlink()
    if content == "fifo":
        os.mkfifo(path)
    elif content == "dev-zero":
        path.symlink_to("/dev/zero")
    elif content == "deep":
        path.write_text("[" * 100_000)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, dict):
        if "drop" in content:
            del config[content["drop"]]
        else:
            config.update(content)
        path.write_text(json.dumps(config))
    else:
        path.write_text(json.dumps(content))
    with time_limit(60):
        code, _, err = run_main("import-hf", "hfm", "--out", "imported", cwd=tmp_path)
    one_line_error(code, err)
    assert not (tmp_path / "imported").exists()


@pytest.mark.parametrize("budget", ["1e38", "100"])
def test_a_huge_max_time_trains_and_max_steps_stays_a_cap(tmp_path, budget):
    (tmp_path / TEXT).write_text(SMALL_TEXT)
    code, _, err = run_main(  # the warmup (20 steps) outlasts --max-steps: still 3 steps
        "train", TEXT, "--max-time", budget, "--max-steps", "3", *MICRO_ARGS, "-q", cwd=tmp_path
    )
    assert code == 0, err
    assert open_checkpoint(tmp_path / "checkpoints" / "small").step == 3


# -- fault injection over the lock file, the token cache and import-hf's inputs ---------------


# -- issue 33, item 7: what a run writes never replaces what the user did not hand it ---------


def test_train_out_never_takes_a_users_dot_files_for_its_own(tmp_path):
    (tmp_path / TEXT).write_text(SMALL_TEXT)
    mine = {".tmp-thesis.tex": "x", ".staged-notes.txt": "y", ".lock": "z"}
    for name, text in mine.items():
        folder = tmp_path / f"ud{name}"
        folder.mkdir()
        (folder / name).write_text(text)
        args = ("train", TEXT, "--out", folder.name, *MICRO_ARGS, "--max-steps", "2", "-q")
        code, _, err = run_main(*args, cwd=tmp_path)
        assert "is not empty" in one_line_error(code, err, (2,)), name
        assert [p.name for p in folder.iterdir()] == [name] and (folder / name).read_text() == text
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
