import hashlib
import http.server
import json
import threading
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest

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
