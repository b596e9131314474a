"""--records / --separator: an end-of-record token between records in every tokenizer, the
separator never inside an example as text, and samples that end with their record."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import (
    ROOT,
    SMALL_TEXT,
    TINY,
    need_encoding,
    one_line_error,
    run_in_process,
    run_main,
)
from tinygpt.config.specs import record_spec
from tinygpt.data.bpe import learn_bpe
from tinygpt.data.corpus import prepare_corpus
from tinygpt.data.records import RecordsTokenizer, record_chunks
from tinygpt.data.tokenizer import CharTokenizer, tokenizer_from_dict
from tinygpt.errors import UsageError

sys.path.insert(0, str(ROOT / "scripts"))
from make_names import make_names

RECORDS = ["The first record,\nover two lines.", "Second ### is not", "third <|end|>"]


def _examples(tok: RecordsTokenizer, ids: list[int]) -> list[str]:
    """The decoded text between end-of-record tokens."""
    out, run = [], []
    for i in [*ids, tok.eor]:
        if i == tok.eor:
            out.append(tok.inner.decode(run))
            run = []
        else:
            run.append(i)
    return [text for text in out if text]


def _tokenizers(text: str) -> dict[str, object]:
    tokenizers = {"char": CharTokenizer.from_text(text), "bpe": learn_bpe([text], 300)}
    need_encoding("gpt2")
    tokenizers["gpt2"] = tokenizer_from_dict({"type": "tiktoken", "name": "gpt2"})
    return tokenizers


@pytest.mark.parametrize("kind", ["char", "bpe", "gpt2"])
@pytest.mark.parametrize(
    ("records", "separator", "joiner"),
    [(None, "@@@", "\n@@@\n"), ("paragraph", None, "\n\n\n"), ("line", None, "\n")],
)
def test_separator_never_inside_an_example(tmp_path, kind, records, separator, joiner):
    parts = [r.replace("\n", " ") for r in RECORDS] if records == "line" else RECORDS
    text = joiner.join(parts * 30) + joiner
    spec = record_spec(records, separator)
    tok = RecordsTokenizer(_tokenizers(text)[kind], spec)
    path = tmp_path / "c.txt"
    path.write_text(text, encoding="utf-8")
    corpus = prepare_corpus(path, tok, cache_dir=tmp_path / "cache")
    examples = _examples(tok, list(corpus.ids))
    marker = separator or ("\n\n" if records == "paragraph" else "\n")
    assert all(marker not in e for e in examples)
    assert [e.strip("\n") for e in examples] == parts * 30
    assert list(corpus.ids).count(tok.eor) == len(parts) * 30


@pytest.mark.parametrize(("records", "separator"), [("paragraph", None), (None, "@@@")])
def test_a_file_of_a_folder_ends_its_last_record(tmp_path, records, separator):
    """Files are joined by a newline; in records, a file's last record (and the training part
    of one, cut at 90%) ended merged with the next file's first."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    joiner = "\n\n" if records else "@@@"
    for k in range(2):
        text = joiner.join(f"file{k} record{i}" for i in range(30))
        (folder / f"f{k}.txt").write_text(text + "\n", encoding="utf-8")
    spec = record_spec(records, separator)
    corpus = prepare_corpus(folder, "char", cache_dir=tmp_path / "cache", records=spec)
    examples = _examples(corpus.tokenizer, list(corpus.ids))
    assert not [e for e in examples if "file0" in e and "file1" in e]
    assert sum(e.strip().startswith("file1 record0") for e in examples) == 1


def test_a_separator_split_between_pieces_is_still_found():
    tok = RecordsTokenizer(CharTokenizer.from_text("ab@\n"), record_spec(None, "@@\n@@"))
    pieces = ["a@@\n", "@@b@@\n", "@", "@a\n"]  # the stream cuts inside the separator
    ids = [i for piece in record_chunks(pieces, tok) for i in tok.encode(piece)]
    assert ids == tok.encode("".join(pieces))
    assert tok.decode(ids) == "a@@\n@@b@@\n@@a\n"


def test_both_options_or_a_bad_mode_are_refused_in_one_line(tmp_path, small_text):
    out = str(tmp_path / "o")
    for extra in (["--records", "line", "--separator", "#"], ["--records", "word"]):
        code, _, err = run_main("train", str(small_text), "--out", out, *extra)
        assert "--records" in one_line_error(code, err, expected=(2,))


@pytest.mark.parametrize(
    "text, records, separator", [("\n" * 5000, "line", None), ("ABCDEF" * 3, None, "ABCDEF")]
)
def test_a_corpus_of_only_blank_records_is_one_line_and_caches_nothing(
    tmp_path, text, records, separator
):
    (tmp_path / "blank.txt").write_text(text)
    flags = ("--records", records) if records else ("--separator", separator)
    code, _, err = run_main("train", "blank.txt", *flags, "--max-steps", "2", cwd=tmp_path)
    assert "no text to train on" in one_line_error(code, err, (2,))
    spec, cache = record_spec(records, separator), tmp_path / "cache"
    with pytest.raises(UsageError, match="no text to train on"):
        prepare_corpus(tmp_path / "blank.txt", "char", cache_dir=cache, records=spec)
    assert not list((cache / "tokens").glob("*"))  # no empty .bin left behind


def test_literal_endoftext_is_a_separator_for_gpt2(tmp_path):
    need_encoding("gpt2")
    path = tmp_path / "c.txt"
    path.write_text("one<|endoftext|>two<|endoftext|>", encoding="utf-8")
    corpus = prepare_corpus(path, "gpt2", records=record_spec(None, "<|endoftext|>"))
    assert list(corpus.ids).count(50256) == 2
    assert corpus.tokenizer.decode(list(corpus.ids)) == "one<|endoftext|>two<|endoftext|>"


@pytest.fixture(scope="module")
def names_model(tmp_path_factory) -> Path:
    import tinygpt

    tmp = tmp_path_factory.mktemp("names")
    path = tmp / "names.txt"
    path.write_text("\n".join(make_names(600)) + "\n", encoding="utf-8")
    options = {**TINY, "max_steps": 60, "eval_every": 60, "block_size": 32}
    tinygpt.train(path, out_dir=tmp / "run", records="line", **options)
    return tmp / "run"


def test_the_checkpoint_keeps_the_record_setting(names_model):
    spec = json.loads((names_model / "tokenizer.json").read_text())
    assert spec["type"] == "records" and spec["mode"] == "line"
    config = json.loads((names_model / "config.json").read_text())
    assert config["train"]["records"] == "line"


@pytest.mark.slow
def test_generate_stops_at_the_end_of_a_record(names_model):
    args = ("generate", "-c", str(names_model), "--num-samples", "12", "--seed", "3", "--json")
    done = run_in_process(*args, "--max-new-tokens", "40")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    finished = [d["finish"] for d in result["sample_details"]]
    assert finished.count("record") >= 10, finished
    assert not any("\n" in s for s in result["samples"])
    # --no-stop-at-record runs on into the next records
    on = run_in_process(*args, "--max-new-tokens", "40", "--no-stop-at-record")
    assert on.returncode == 0, on.stderr
    assert all(d["finish"] == "length" for d in json.loads(on.stdout)["sample_details"])
    assert any("\n" in s for s in json.loads(on.stdout)["samples"])


def test_a_separator_longer_than_a_thousand_characters_is_one_line():
    from tinygpt.config.specs import MAX_SEPARATOR, record_spec

    with pytest.raises(UsageError, match="separator is 20,000,000 characters; at most 1,000"):
        record_spec(None, "x" * 20_000_000)
    assert record_spec(None, "x" * MAX_SEPARATOR) is not None


def test_a_separator_that_is_not_utf8_is_one_line(tmp_path):
    # --separator $'\xff' reached the records tokenizer: 'unexpected UnicodeEncodeError'
    (tmp_path / "t.txt").write_text(SMALL_TEXT)
    code, _, err = run_main("train", "t.txt", "--separator", "@\udcff", "-q", cwd=tmp_path)
    assert one_line_error(code, err, (2,)) == "error: --separator is not UTF-8 text"


def test_a_token_of_text_spelling_the_end_of_record_name_is_shown_as_text():
    from tinygpt.data.records import EOR_NAME

    class Spelled:  # a BPE whose tokens.json lists those bytes as a token (a crafted one)
        name, vocab_size = "bpe:3", 3

        def token_strings(self, ids: list[int]) -> list[str]:
            return [["a", EOR_NAME, "b"][i] for i in ids]

    tok = RecordsTokenizer(Spelled(), {"mode": "line", "separator": "\n"})
    assert tok.eor == 3
    assert tok.token_strings([0, 1, 3]) == ["a", f"{EOR_NAME} (text)", EOR_NAME]
