"""`tinygpt data` (tinygpt.data.datasets, tinygpt.data.repeats): checked downloads, offline
messages, bounded downloads and bad URLs, and corpora that are never replaced."""

import contextlib
import hashlib
import http.server
import json
import os
import resource
import threading
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest

from tests.conftest import one_line_error, run_main, time_limit
from tinygpt.data import datasets
from tinygpt.errors import TinyGPTError


@pytest.fixture
def local_server(tmp_path, shakespeare):
    """Serve ../shared's copy of the corpus (and a wrong file) on 127.0.0.1 only."""
    (tmp_path / "input.txt").write_bytes(shakespeare.read_bytes())
    (tmp_path / "wrong.txt").write_bytes(b"not shakespeare")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    # A short poll: shutdown() waits up to one interval (0.5 s by default) for the loop.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_checks_sha256_and_writes(local_server, tmp_path):
    out = datasets.fetch(
        "shakespeare", tmp_path / "data", url=f"{local_server}/input.txt", quiet=True
    )
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert digest == datasets.DATASETS["shakespeare"].sha256


def test_data_command_json(local_server, tmp_path):
    from tests.conftest import run_in_process

    proc = run_in_process(
        "data",
        "shakespeare",
        "--dir",
        str(tmp_path / "d"),
        "--url",
        f"{local_server}/input.txt",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    path = json.loads(proc.stdout)["path"]
    assert (
        path.endswith("tinyshakespeare.txt") and (tmp_path / "d" / "tinyshakespeare.txt").exists()
    )


def test_wrong_checksum_writes_nothing(local_server, tmp_path):
    with pytest.raises(TinyGPTError, match="expected"):
        datasets.fetch("shakespeare", tmp_path / "d", url=f"{local_server}/wrong.txt", quiet=True)
    assert not (tmp_path / "d" / "tinyshakespeare.txt").exists()


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/none", "file:///nonexistent/input.txt"])
def test_offline_says_where_the_file_goes_and_where_to_get_it(tmp_path, monkeypatch, url):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TinyGPTError) as info:
        datasets.fetch("shakespeare", Path("data"), url=url, quiet=True)
    message = str(info.value)
    assert f"could not download shakespeare from {url}" in message
    assert str(tmp_path / "data" / "tinyshakespeare.txt") in message  # the full path
    assert datasets.DATASETS["shakespeare"].url in message  # where to get it (not the mirror)
    assert not (tmp_path / "data").exists()


def test_offline_names_the_public_source_once(tmp_path, monkeypatch):
    public = datasets.DATASETS["shakespeare"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        datasets, "DATASETS", {"shakespeare": replace(public, url="http://127.0.0.1:9/input.txt")}
    )
    with pytest.raises(TinyGPTError) as info:
        datasets.fetch("shakespeare", Path("data"), quiet=True)
    message = str(info.value)
    assert message.count("http://127.0.0.1:9/input.txt") == 1, message
    assert "get that file elsewhere" in message


def test_a_wrong_file_already_there_is_named_not_the_download(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "data" / "tinyshakespeare.txt"
    target.parent.mkdir()
    target.write_bytes(b"not the corpus")
    with pytest.raises(TinyGPTError) as info:
        datasets.fetch("shakespeare", Path("data"), url="http://127.0.0.1:9/none", quiet=True)
    message = str(info.value)
    found = hashlib.sha256(b"not the corpus").hexdigest()
    expected = datasets.DATASETS["shakespeare"].sha256
    assert f"{target} exists but its sha256 is {found}, expected {expected}" in message
    assert "delete it" in message and "download" not in message.split(";")[0]
    assert "could not download" not in message
    assert target.read_bytes() == b"not the corpus"  # a file put there by hand is never replaced


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


def test_an_unknown_dataset_lists_every_one_the_command_makes(tmp_path):
    code, _, err = run_main("data", "nonsense", cwd=tmp_path)  # repeats was left out
    assert one_line_error(code, err, (2,)).endswith("available: shakespeare, repeats")


def test_a_download_into_a_file_is_refused_before_it_starts(tmp_path):
    # it downloaded, then 'unexpected FileExistsError'; offline it said to copy the file to
    # afile/tinyshakespeare.txt
    (tmp_path / "afile").write_text("x")
    for url in ([], ["--url", "http://127.0.0.1:9/never-reached.txt"]):
        code, _, err = run_main("data", "shakespeare", "--dir", "afile", *url, cwd=tmp_path)
        assert one_line_error(code, err, (2,)) == "error: --dir afile is not a directory"
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
