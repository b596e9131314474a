"""The suite's own fixtures (tests/conftest.py) on a fresh clone: ../shared is used first when it
is beside the checkout; without it the corpus and the BPE encodings are fetched as a user would
fetch them, and offline the tests that need them skip with one line saying why."""

from dataclasses import replace
from pathlib import Path

import pytest

from tests import conftest
from tests.conftest import corpus_or_reason, encoding_skip_reason, use_shared_tiktoken_cache
from tinygpt.data import datasets
from tinygpt.io.files import sha256


def test_the_shared_tiktoken_cache_wins_over_the_environment(tmp_path: Path) -> None:
    environ = {"TIKTOKEN_CACHE_DIR": "/somewhere/else"}
    use_shared_tiktoken_cache(environ, tmp_path)
    assert environ["TIKTOKEN_CACHE_DIR"] == str(tmp_path)
    # No ../shared: the user's own setting (or tiktoken's default) is left alone.
    use_shared_tiktoken_cache(environ, tmp_path / "missing")
    assert environ["TIKTOKEN_CACHE_DIR"] == str(tmp_path)
    empty: dict[str, str] = {}
    use_shared_tiktoken_cache(empty, tmp_path / "missing")
    assert empty == {}


def test_the_shared_corpus_is_used_first(tmp_path: Path, monkeypatch) -> None:
    shared = tmp_path / "tinyshakespeare.txt"
    shared.write_text("from ../shared")
    monkeypatch.setattr(datasets, "fetch", lambda *a, **k: pytest.fail("downloaded"))
    assert corpus_or_reason(shared, tmp_path / "cache") == shared


def test_without_shared_a_verified_copy_in_the_checkout_serves(tmp_path, monkeypatch) -> None:
    # The README's offline advice: copy the corpus to data/tinyshakespeare.txt. A copy whose
    # sha256 is the corpus's serves the tests; any other file there does not.
    text = b"First Citizen:\nSpeak.\n"
    public = replace(
        datasets.DATASETS["shakespeare"], sha256=sha256(text), url="http://127.0.0.1:9/x"
    )
    monkeypatch.setattr(datasets, "DATASETS", {"shakespeare": public})
    local = tmp_path / "data" / "tinyshakespeare.txt"
    local.parent.mkdir()
    local.write_bytes(text)
    missing = tmp_path / "no-shared" / "tinyshakespeare.txt"
    assert corpus_or_reason(missing, tmp_path / "cache", local=local) == local
    local.write_bytes(b"something else")
    assert isinstance(corpus_or_reason(missing, tmp_path / "cache", local=local), str)


def test_without_shared_the_corpus_is_downloaded_into_the_cache(tmp_path, monkeypatch) -> None:
    # A file:// source stands in for the network: the same fetch, checksum and write.
    source = tmp_path / "input.txt"
    source.write_bytes(b"First Citizen:\nSpeak.\n")
    data = source.read_bytes()
    public = replace(
        datasets.DATASETS["shakespeare"],
        url=source.as_uri(),
        sha256=sha256(data),
        size=len(data),
    )
    monkeypatch.setattr(datasets, "DATASETS", {"shakespeare": public})
    missing = tmp_path / "no-shared" / "tinyshakespeare.txt"
    got = corpus_or_reason(missing, tmp_path / "cache", local=missing)
    assert got == tmp_path / "cache" / "tinyshakespeare.txt" and got.read_bytes() == data


def test_offline_without_shared_the_corpus_is_a_one_line_skip(tmp_path, monkeypatch) -> None:
    public = replace(datasets.DATASETS["shakespeare"], url="http://127.0.0.1:9/input.txt")
    monkeypatch.setattr(datasets, "DATASETS", {"shakespeare": public})
    shared = tmp_path / "shared" / "data" / "tinyshakespeare.txt"
    reason = corpus_or_reason(shared, tmp_path / "cache", local=shared)
    assert isinstance(reason, str) and "\n" not in reason
    assert reason.startswith(f"needs tiny Shakespeare: no {shared}, and could not download")
    assert not (tmp_path / "cache" / "tinyshakespeare.txt").exists()


def test_an_encoding_that_cannot_load_is_a_one_line_skip(tmp_path, monkeypatch) -> None:
    import tiktoken.load

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tiktoken.load, "read_file", offline)
    monkeypatch.setattr(conftest, "_ENCODINGS", {})
    reason = encoding_skip_reason("p50k_base")
    assert reason is not None and "\n" not in reason
    assert reason.startswith("needs tiktoken's p50k_base encoding") and str(tmp_path) in reason
    monkeypatch.setattr(tiktoken.load, "read_file", lambda *a, **k: pytest.fail("asked twice"))
    assert encoding_skip_reason("p50k_base") == reason  # once per session, not per test
