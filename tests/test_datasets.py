import hashlib
import http.server
import json
import threading
from functools import partial

import pytest

from tinygpt import datasets
from tinygpt.errors import TinyGPTError


@pytest.fixture
def local_server(tmp_path, shakespeare):
    """Serve ../shared's copy of the corpus (and a wrong file) on 127.0.0.1 only."""
    (tmp_path / "input.txt").write_bytes(shakespeare.read_bytes())
    (tmp_path / "wrong.txt").write_bytes(b"not shakespeare")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
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
    from tests.conftest import run_cli

    proc = run_cli(
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


def test_offline_says_how_to_place_the_file(tmp_path):
    with pytest.raises(TinyGPTError, match="copy the file there by hand"):
        datasets.fetch("shakespeare", tmp_path, url="http://127.0.0.1:9/none", quiet=True)
