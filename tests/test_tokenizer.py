import pytest

from tests.conftest import need_encoding
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
