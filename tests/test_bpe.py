"""--tokenizer bpe:N: learned from the training split only, deterministic, byte-complete,
stored in the checkpoint and read back offline."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import SMALL_TEXT, TINY, one_line_error, run_cli, run_main
from tinygpt.data.bpe import BPETokenizer, learn_bpe
from tinygpt.data.corpus import prepare_corpus
from tinygpt.data.tokenizer import tokenizer_from_dict

CORPUS = (SMALL_TEXT + "Ünïcödé ✓ 東京 émigré naïve\n") * 20


@functools.cache
def learned() -> BPETokenizer:
    """The BPE of CORPUS, learned when a test first asks (a second at import cost every pytest
    worker that collects this file, whether or not it runs it)."""
    return learn_bpe([CORPUS], 330)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_round_trips_every_text(text):
    bpe = learned()
    assert bpe.decode(bpe.encode(text)) == text


@settings(max_examples=300, deadline=None)
@given(st.binary())
def test_round_trips_every_byte_string(data):
    # byte-level: any bytes, valid UTF-8 or not, have tokens (through tiktoken's byte encoder)
    bpe = learned()
    assert bpe.decode_bytes(bpe._enc._encode_bytes(data)) == data


def test_learns_merges_and_survives_serialisation():
    bpe = learned()
    assert bpe.vocab_size == 330 and bpe.name == "bpe:330"
    assert len(bpe.encode(SMALL_TEXT)) < len(SMALL_TEXT.encode()) / 2
    back = tokenizer_from_dict(json.loads(json.dumps(bpe.to_dict())))
    assert isinstance(back, BPETokenizer) and back.to_dict() == bpe.to_dict()
    assert back.encode(CORPUS) == bpe.encode(CORPUS)


def test_deterministic_for_the_same_corpus_and_size(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(CORPUS, encoding="utf-8")
    first = prepare_corpus(path, "bpe:350", cache_dir=tmp_path / "a")
    second = prepare_corpus(path, "bpe:350", cache_dir=tmp_path / "b")
    assert first.tokenizer.to_dict() == second.tokenizer.to_dict()
    assert list(first.ids) == list(second.ids)
    assert prepare_corpus(path, "bpe:350", cache_dir=tmp_path / "a").from_cache
    other = prepare_corpus(path, "bpe:300", cache_dir=tmp_path / "a")  # the cache keys on it
    assert not other.from_cache and other.tokenizer.vocab_size == 300


def test_never_learns_from_the_validation_split(tmp_path):
    # The last 10% is a word the training part never holds: no merge may join its letters.
    train = SMALL_TEXT * 12
    val = "zyxwq " * (len(train) // 54)
    path = tmp_path / "c.txt"
    path.write_text(train + val, encoding="utf-8")
    corpus = prepare_corpus(path, "bpe:600", cache_dir=tmp_path / "cache", val_fraction=0.1)
    tok = corpus.tokenizer
    tokens = [tok.decode_bytes([i]) for i in range(tok.vocab_size)]
    assert not [t for t in tokens if any(pair in t for pair in (b"zy", b"yx", b"xw", b"wq"))]
    # the split falls exactly where the text the BPE learned from ends, cached or not
    cut = int(len(train + val) * 0.9)
    for c in (corpus, prepare_corpus(path, "bpe:600", cache_dir=tmp_path / "cache")):
        train_ids, val_ids = c.split(0.1)
        assert tok.decode(list(train_ids)) == (train + val)[:cut]
        assert tok.decode(list(val_ids)) == (train + val)[cut:]
    assert c.from_cache


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("bpe:100", "between 256"),
        ("bpe:255", "between 256"),
        ("bpe:1000000", "65,536"),
        ("bpe:x", "plain digits"),
        ("bpe:", "plain digits"),
        # int() reads each of these as a size; stored as typed, a resume spelling it
        # "bpe:300" was refused as another tokenizer
        ("bpe:300_0", "plain digits"),
        ("bpe:+300", "plain digits"),
        ("bpe: 300", "plain digits"),
        ("bpe:0300", "plain digits"),
        ("bpe:\u0663\u0660\u0660", "plain digits"),  # Arabic-Indic 300
    ],
)
def test_refuses_bad_sizes_in_one_line(tmp_path, small_text, spec, says):
    # --max-steps 1: a spelling accepted again would train for a step, not for minutes
    code, _, err = run_main(
        "train", str(small_text), "--tokenizer", spec, "--out", str(tmp_path / "o"),
        "--max-steps", "1",
    )  # fmt: skip
    line = one_line_error(code, err, expected=(2,))
    assert "--tokenizer" in line and says in line


@pytest.mark.slow
def test_saves_and_loads_through_a_checkpoint_offline(tmp_path, small_text):
    import tinygpt

    result = tinygpt.train(small_text, out_dir=tmp_path / "run", **{**TINY, "tokenizer": "bpe:300"})
    spec = json.loads((tmp_path / "run" / "tokenizer.json").read_text())
    assert spec["type"] == "bpe" and spec["name"] == "bpe:300" and len(spec["tokens"]) == 300
    model, tok, _ = tinygpt.load(tmp_path / "run", device="cpu")
    assert model.config.vocab_size == 300 and tok.to_dict() == spec
    # tiktoken needs nothing from the network or its cache to use the stored ranks
    offline = {"TIKTOKEN_CACHE_DIR": str(tmp_path / "empty"), "HTTPS_PROXY": "http://0.0.0.0:9"}
    checkpoint = str(tmp_path / "run")
    gen = run_cli(
        "generate",
        "-c",
        checkpoint,
        "--prompt",
        "All:",
        "--max-new-tokens",
        "20",
        "--seed",
        "1",
        env=offline,
    )
    assert gen.returncode == 0 and gen.stdout.startswith("All:"), gen.stderr
    ev = run_cli("eval", str(small_text), "-c", checkpoint, env=offline)
    assert ev.returncode == 0 and "bits/byte" in ev.stdout + ev.stderr, ev.stderr
    assert result is not None


def test_a_resumed_run_keeps_the_tokenizer_and_split(tmp_path, small_text, monkeypatch):
    import tinygpt

    options = {**TINY, "tokenizer": "bpe:300", "max_steps": 10, "eval_every": 10}
    tinygpt.train(small_text, out_dir=tmp_path / "run", **options)
    before = (tmp_path / "run" / "tokenizer.json").read_text()
    for cache in (tmp_path / "other-cache", None):  # the split does not depend on the cache
        if cache is not None:
            monkeypatch.setenv("TINYGPT_CACHE_DIR", str(cache))
        more = {**options, "max_steps": 20 if cache is not None else 30}
        tinygpt.train(small_text, out_dir=tmp_path / "run", resume=True, **more)
    assert (tmp_path / "run" / "tokenizer.json").read_text() == before


@pytest.fixture(scope="module")
def bpe_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-step bpe:300 run on SMALL_TEXT, trained once for the module: tests copy it."""
    import tinygpt

    root = tmp_path_factory.mktemp("bpe-run")
    (root / "small.txt").write_text(SMALL_TEXT)
    options = {**TINY, "tokenizer": "bpe:300", "max_steps": 2}
    return tinygpt.train(root / "small.txt", out_dir=root / "run", **options).out_dir


@pytest.mark.parametrize(
    "damage",
    [
        {"pattern": "a*"},  # matches the empty string: a Rust panic in tiktoken
        {"pattern": ""},
        {"pattern": "(a+)+$"},  # backtracks
        {"pattern": "[a-z]+"},  # covers letters only: the rest of the text silently dropped
        {"tokens": -11},  # fewer tokens than the model's vocabulary: KeyError mid-sample
    ],
)
def test_a_crafted_tokenizer_file_is_one_line_in_every_command(
    bpe_run, tmp_path, small_text, damage
):
    import shutil

    from tests.conftest import rehash

    spec = json.loads((bpe_run / "tokenizer.json").read_text())
    if "tokens" in damage:
        spec["tokens"] = spec["tokens"][: damage["tokens"]]
    else:
        spec.update(damage)
    ck = tmp_path / "ck"
    shutil.copytree(bpe_run, ck)
    rehash(ck, "tokenizer.json", json.dumps(spec).encode())
    for command in (
        ("generate", "-c", "ck", "--max-new-tokens", "5"),
        ("eval", small_text.name, "-c", "ck"),
        ("inspect", "predictions", "-c", "ck", "-p", "All"),
        ("train", small_text.name, "--out", "ck", "--resume", "--max-steps", "3"),
        ("train", small_text.name, "--out", "new", "--init-from", "ck", "--max-steps", "3"),
    ):
        code, _, err = run_main(*command, cwd=tmp_path)
        assert "tokenizer" in one_line_error(code, err), command
