"""Tokenizers (tinygpt.data.tokenizer): char and tiktoken round trips, unknown or unfetchable
encodings, and a BPE checkpoint or run offline."""

from pathlib import Path

import pytest

from tests.conftest import need_encoding, one_line_error, run_main
from tinygpt.data.tokenizer import CharTokenizer, build_tokenizer, tokenizer_from_dict
from tinygpt.errors import TinyGPTError, UsageError


def test_char_round_trip_and_serialisation():
    text = "Hello, wörld!\nÇa va? 日本"
    tok = CharTokenizer.from_text(text)
    assert tok.decode(tok.encode(text)) == text
    again = tokenizer_from_dict(tok.to_dict())
    assert again.encode(text) == tok.encode(text)
    assert tok.vocab_size == len(set(text))


def test_char_lists_the_characters_it_lacks():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(UsageError, match=r"2 character\(s\).*'x', 'z'"):
        tok.encode("abxz")


@pytest.mark.parametrize("name", ["gpt2", "r50k_base", "cl100k_base"])
def test_tiktoken_round_trip(name):
    need_encoding(name)
    tok = build_tokenizer(name)
    text = "To be, or not to be — that is the question: 😀"
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert b"".join(tok.decode_bytes([i]) for i in ids) == text.encode()
    assert tokenizer_from_dict(tok.to_dict()).encode(text) == ids


def test_gpt2_is_r50k_base(gpt2_encoding):
    assert build_tokenizer("gpt2").encode("Hello world") == [15496, 995]
    assert build_tokenizer("gpt2").vocab_size == 50257


def test_unknown_encoding_names_the_choices():
    with pytest.raises(UsageError, match="unknown tokenizer 'nope'.*char, cl100k_base"):
        build_tokenizer("nope")


def test_unfetchable_encoding_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    import tiktoken.load

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(tiktoken.load, "read_file", offline)
    with pytest.raises(TinyGPTError, match="TIKTOKEN_CACHE_DIR=.*tokenizer='char'"):
        build_tokenizer("p50k_base")


def test_literal_endoftext_is_refused(gpt2_encoding):
    with pytest.raises(UsageError, match="endoftext"):
        build_tokenizer("gpt2").encode("one<|endoftext|>two")


@pytest.fixture
def offline_tiktoken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import tiktoken.load
    import tiktoken.registry

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    # Encodings another test loaded stay in tiktoken's memory: forget them here.
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    empty = tmp_path / "empty-cache"
    empty.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(empty))
    monkeypatch.setattr(tiktoken.load, "read_file", offline)
    return empty


def test_a_bpe_checkpoint_offline_names_its_encoding(offline_tiktoken, two_runs, tmp_path) -> None:
    import shutil

    from tests.conftest import rehash

    ck = tmp_path / "bpe"
    shutil.copytree(two_runs / "checkpoints" / "new", ck)
    rehash(ck, "tokenizer.json", b'{"type": "tiktoken", "name": "gpt2"}')
    code, _, err = run_main("generate", "-c", str(ck), "--prompt", "x", "--device", "cpu")
    line = one_line_error(code, err, (1,))
    assert (
        "gpt2 (tiktoken's r50k_base)" in line and f"TIKTOKEN_CACHE_DIR={offline_tiktoken}" in line
    )
    assert "holds r50k_base" in line and "--tokenizer" not in line, line


def test_training_offline_still_offers_char(offline_tiktoken) -> None:
    from tinygpt.cli.flags import command_spelling
    from tinygpt.data.tokenizer import build_tokenizer
    from tinygpt.errors import TinyGPTError

    with pytest.raises(TinyGPTError) as caught:
        build_tokenizer("cl100k_base")
    shown = caught.value.render(command_spelling(None))
    assert "holds cl100k_base" in shown and "--tokenizer char" in shown
    assert "tokenizer='char'" in str(caught.value)  # a Python caller's spelling
