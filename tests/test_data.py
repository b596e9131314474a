"""Text and tokens (tinygpt.data): reading files, directories and globs, batches and passes, the
corpus's token cache (keyed on the encoding, every byte checked, a damaged entry rebuilt, no
entry for a file that changed while it was read), the held-out split."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import tinygpt
from tests.conftest import SMALL_TEXT, TINY, time_limit
from tinygpt.checkpoint.store import open_checkpoint
from tinygpt.data.batches import BatchSampler, check_split_lengths
from tinygpt.data.corpus import encode_text, prepare_corpus
from tinygpt.data.sources import iter_text, read_text
from tinygpt.data.tokenizer import CharTokenizer
from tinygpt.errors import UsageError


def test_read_text_errors(tmp_path):
    with pytest.raises(UsageError, match="file not found"):
        read_text(tmp_path / "missing.txt")
    with pytest.raises(UsageError, match="is a directory"):
        read_text(tmp_path)
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(UsageError, match="is empty"):
        read_text(tmp_path / "empty.txt")
    (tmp_path / "bad.txt").write_bytes(b"hello \xff world")
    with pytest.raises(UsageError, match="byte 0xff at offset 6; pass encoding "):
        read_text(tmp_path / "bad.txt")
    assert read_text(tmp_path / "bad.txt", encoding="latin-1") == "hello ÿ world"


def test_unreadable_file_is_one_line(tmp_path, monkeypatch):
    path = tmp_path / "locked.txt"
    path.write_text("text")
    real_open = open

    def deny(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", deny)
    with pytest.raises(UsageError, match="cannot read .*locked.txt: Permission denied"):
        list(iter_text([path]))


def test_bom_is_stripped(tmp_path):
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbfhi")
    assert read_text(tmp_path / "bom.txt") == "hi"


def test_corpus_is_cached_by_content_and_tokenizer(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("abcabc" * 100)
    first = prepare_corpus(path, "char", cache_dir=tmp_path / "c")
    second = prepare_corpus(path, "char", cache_dir=tmp_path / "c")
    assert not first.from_cache and second.from_cache
    assert np.array_equal(first.ids, second.ids) and second.ids.dtype == np.uint16
    path.write_text("xyzxyz" * 100)
    assert not prepare_corpus(path, "char", cache_dir=tmp_path / "c").from_cache
    train, val = second.split(0.1)
    assert len(train) == 540 and len(val) == 60


def test_a_bpe_learned_from_one_file_is_cached_by_the_share_held_out(tmp_path):
    """The BPE learns from the training part only, so the ids record where it ends: a run
    holding out half the text found the 10% run's entry (both learned the same merges) and
    trained on 90% of it."""
    path = tmp_path / "t.txt"
    path.write_text("ab cd\n" * 3000)
    tenth = prepare_corpus(path, "bpe:300", cache_dir=tmp_path / "c")
    half = prepare_corpus(path, "bpe:300", cache_dir=tmp_path / "c", val_fraction=0.5)
    assert not half.from_cache
    assert half.train_tokens < tenth.train_tokens


def test_no_other_cut_of_the_same_bytes_into_files_shares_a_cache_entry(tmp_path):
    """The digest read each file's name then its bytes: a file holding a NUL, a name and a NUL
    hashed as two files."""
    x, y, z = "first part\n" * 50, "second part\n" * 50, "third part\n" * 50
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    (one / "a.txt").write_text(x + "\0b.txt\0" + y)
    (one / "c.txt").write_text(z)
    for name, text in (("a.txt", x), ("b.txt", y), ("c.txt", z)):
        (two / name).write_text(text)
    prepare_corpus(one, "char", cache_dir=tmp_path / "c")
    second = prepare_corpus(two, "char", cache_dir=tmp_path / "c")
    assert not second.from_cache and "\0" not in second.tokenizer.decode(list(second.ids))


def test_a_tokenizer_by_name_and_as_object_share_the_token_cache(tmp_path, gpt2_encoding):
    # A resumed run and the ablation pass their checkpoint's tokenizer object: they must find
    # the ids the first run cached under the tokenizer's name, not tokenize the corpus again.
    path = tmp_path / "t.txt"
    path.write_text("abcabc" * 100)
    cache = tmp_path / "c"
    for name in ("char", "gpt2"):
        first = prepare_corpus(path, name, cache_dir=cache)
        again = prepare_corpus(path, first.tokenizer, cache_dir=cache)
        assert not first.from_cache and again.from_cache, name
        assert np.array_equal(first.ids, again.ids)
    # Another text's char vocabulary is not served the ids of this text's own.
    wider = CharTokenizer(list("abcxyz"))
    other = prepare_corpus(path, wider, cache_dir=cache)
    assert not other.from_cache and other.tokenizer.to_dict() == wider.to_dict()
    assert prepare_corpus(path, wider, cache_dir=cache).from_cache
    assert prepare_corpus(path, "char", cache_dir=cache).tokenizer.to_dict() != wider.to_dict()


def test_too_short_for_block_size_suggests_a_smaller_one():
    ids = np.arange(100, dtype=np.uint16)
    train, val = ids[:90], ids[90:]
    with pytest.raises(UsageError, match="block_size=9 or less"):
        check_split_lengths(train, val, 32)
    check_split_lengths(train, val, 9)


def test_batches_are_shifted_windows_and_reproducible():
    ids = np.arange(1000, dtype=np.uint16)
    import torch

    a = BatchSampler(ids, 8, 4, seed=3).next(torch.device("cpu"))
    b = BatchSampler(ids, 8, 4, seed=3).next(torch.device("cpu"))
    assert torch.equal(a[0], b[0])
    x, y = a
    assert x.shape == (4, 8) and torch.equal(x[:, 1:], y[:, :-1])
    assert torch.equal(y - x, torch.ones_like(x))


def _batches(sampler: BatchSampler, count: int) -> list[torch.Tensor]:
    return [sampler.rows(torch.device("cpu")) for _ in range(count)]


def test_a_pass_makes_every_token_a_target_once():
    """passes: a pass's windows tile the text from a random phase, in a shuffled order; a batch
    that ends a pass takes the rest from the next. 1,000 tokens in windows of 9 (block 8)."""
    ids = np.arange(1000, dtype=np.uint16)
    sampler = BatchSampler(ids, 8, 5, seed=3, order="passes")
    windows = [w for batch in _batches(sampler, 30) for w in batch.tolist()]  # 150 windows
    per_pass = len(sampler.starts)
    assert per_pass in (123, 124) and all(w == list(range(w[0], w[0] + 9)) for w in windows)
    first = windows[:per_pass]
    starts = sorted(w[0] for w in first)
    assert starts == list(range(starts[0], 991, 8)) and starts[0] < 8  # the tiling, once
    targets = [t for w in first for t in w[1:]]
    assert len(targets) == len(set(targets))  # every target once
    assert [w[0] for w in first] != starts  # shuffled
    second = [w[0] for w in windows[per_pass:]]
    assert len(set(second)) == len(second)  # the next pass began, its own tiling


def test_passes_resume_mid_pass_at_the_same_batch():
    ids = np.arange(1000, dtype=np.uint16)
    whole = BatchSampler(ids, 8, 5, seed=3, order="passes")
    first = _batches(whole, 40)
    rest = _batches(whole, 40)
    cut = BatchSampler(ids, 8, 5, seed=3, order="passes")
    _batches(cut, 40)
    again = BatchSampler(ids, 8, 5, seed=3, order="passes")
    again.load_state(cut.generator.get_state(), cut.pass_state())
    assert all(a.equal(b) for a, b in zip(rest, _batches(again, 40), strict=True))
    assert not first[-1].equal(rest[0])


def test_ranks_share_a_pass_and_together_see_one_processs_batches():
    ids = np.arange(1000, dtype=np.uint16)
    one = _batches(BatchSampler(ids, 8, 6, seed=3, order="passes"), 30)
    ranks = [_batches(BatchSampler(ids, 8, 3, 3, r, 2, order="passes"), 30) for r in (0, 1)]
    for whole, a, b in zip(one, *ranks, strict=True):
        assert whole.equal(torch.cat([a, b]))


def test_a_text_just_longer_than_the_block_still_makes_passes():
    ids = np.arange(10, dtype=np.uint16)  # one window of 9 fits, from 0 or 1
    batches = _batches(BatchSampler(ids, 8, 4, seed=0, order="passes"), 3)
    assert all(w[0] in (0, 1) for batch in batches for w in batch.tolist())


def test_runs_saved_before_the_data_order_setting_resume_with_random_windows():
    from tinygpt.config.run import RunConfig

    assert RunConfig.from_dict({"model": {"position": "rope"}, "train": {}}).train.data_order == (
        "random"
    )
    assert RunConfig().train.data_order == "passes"  # the default recipe's


def test_streaming_matches_whole_file_encoding(tmp_path, gpt2_encoding):
    text = "".join(f"line {i}: héllo wörld, ünïcode 日本 {i * 7}\n" for i in range(3000))
    path = tmp_path / "big.txt"
    path.write_text(text, encoding="utf-8")
    pieces = list(iter_text([path], chunk_bytes=1000))  # cuts inside multi-byte characters
    assert "".join(pieces) == text and len(pieces) > 50
    assert all(p.endswith("\n") for p in pieces)
    corpus = prepare_corpus(path, "char", cache_dir=tmp_path / "c")
    tok = CharTokenizer.from_text(text)
    assert corpus.tokenizer.chars == tok.chars
    assert np.array_equal(np.asarray(corpus.ids), np.asarray(tok.encode(text)))
    bpe = prepare_corpus(path, "gpt2", cache_dir=tmp_path / "c")
    assert bpe.tokenizer.decode(np.asarray(bpe.ids).tolist()) == text


def test_utf8_error_offset_is_exact_across_chunks(tmp_path):
    raw = ("é" * 700).encode() + b"\xff" + b"tail"
    (tmp_path / "bad.txt").write_bytes(raw)
    with pytest.raises(UsageError, match=f"offset {len(raw) - 5}"):
        list(iter_text([tmp_path / "bad.txt"], chunk_bytes=333))


def test_directory_and_glob_corpora(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b.txt").write_text("second file")
    (tmp_path / "d" / "a.txt").write_text("first file\n")
    (tmp_path / "d" / ".hidden").write_text("never read")
    for spec in (tmp_path / "d", str(tmp_path / "d" / "*.txt")):
        corpus = prepare_corpus(spec, "char", cache_dir=tmp_path / "c")
        train, val = (corpus.tokenizer.decode(part.tolist()) for part in corpus.split(0.1))
        # each file's first 9 of 11 characters train, its end is held out; a newline joins
        assert (train, val) == ("first fil\nsecond fi\n", "e\nle\n")
    with pytest.raises(UsageError, match="no files match"):
        prepare_corpus(str(tmp_path / "d" / "*.md"), "char", cache_dir=tmp_path / "c")


def test_vectorised_char_encoding_lists_missing_characters():
    tok = CharTokenizer.from_text("abc")
    assert encode_text(tok, "cab").tolist() == [2, 0, 1]
    with pytest.raises(UsageError, match="'z'"):
        encode_text(tok, "abz")


CACHE_TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n"


def _pristine_entry(tmp_path, tokenizer: str):
    path = tmp_path / "t.txt"
    path.write_text(CACHE_TEXT)
    cache = tmp_path / "c"
    good = prepare_corpus(path, tokenizer, cache_dir=cache)
    files = sorted((cache / "tokens").iterdir())
    return path, cache, good, {f: f.read_bytes() for f in files}


def _check_entry_serves_the_text(path, cache, tokenizer, good, damaged: str) -> None:
    corpus = prepare_corpus(path, tokenizer, cache_dir=cache)
    assert corpus.tokenizer.decode([int(i) for i in corpus.ids]) == CACHE_TEXT, damaged
    assert corpus.tokenizer.to_dict() == good.tokenizer.to_dict(), damaged
    assert corpus.train_tokens == good.train_tokens, damaged


@pytest.mark.parametrize("tokenizer", ["char", pytest.param("bpe:260", marks=pytest.mark.slow)])
def test_every_byte_of_a_token_cache_entry_is_checked(tmp_path, tokenizer):
    # Systematic, not sampled: each byte of the ids and of the entry's JSON flipped in turn (the
    # vocabulary inside the JSON too), then each JSON field given a wrong value. Whatever the
    # damage, the corpus served is the text's own tokens under the text's own vocabulary.
    path, cache, good, pristine = _pristine_entry(tmp_path, tokenizer)
    for file, original in pristine.items():
        for i in range(len(original)):
            file.write_bytes(original[:i] + bytes([original[i] ^ 0x01]) + original[i + 1 :])
            _check_entry_serves_the_text(path, cache, tokenizer, good, f"{file.name}[{i}]")
            for f, content in pristine.items():  # the rebuilt entry is byte for byte the same
                assert f.read_bytes() == content, f"{file.name}[{i}] rebuilt differently"
    (meta_file,) = (f for f in pristine if f.suffix == ".json")
    meta = json.loads(pristine[meta_file])
    for field in meta:
        for wrong in (None, 0, -1, "x", [], {}, meta[field] if field == "sha256" else 1):
            meta_file.write_text(json.dumps({**meta, field: wrong}))
            _check_entry_serves_the_text(path, cache, tokenizer, good, f"{field}={wrong!r}")


@pytest.mark.parametrize("tokenizer", ["char", "gpt2", "bpe:300"])
def test_a_folder_holds_out_the_end_of_every_file(tmp_path, tokenizer, request):
    """json/ and email/: validation must hold both kinds of text, as training does (read as
    one stream, the last 10% was all email's)."""
    if tokenizer == "gpt2":
        request.getfixturevalue("gpt2_encoding")  # skipped, with the reason, where it can't load
    corpus = tmp_path / "corpus"
    (corpus / "a_json").mkdir(parents=True)
    (corpus / "b_email").mkdir()
    (corpus / "a_json" / "x.json").write_text('{"key": [1, 2, 3]}\n' * 200)
    (corpus / "b_email" / "y.txt").write_text("Dear Ann, see you soon.\n" * 100)
    found = prepare_corpus(corpus, tokenizer, cache_dir=tmp_path / "cache")
    train, val = found.split(0.1)
    train_text = found.tokenizer.decode([int(i) for i in train])
    val_text = found.tokenizer.decode([int(i) for i in val])
    assert '"key"' in val_text and "Dear Ann" in val_text
    assert '"key"' in train_text and "Dear Ann" in train_text
    # every character of both files, each once: the end of each file is in validation
    assert len(train_text) + len(val_text) == 19 * 200 + 24 * 100  # cuts at line ends here
    assert found.train_tokens == len(train)
    again = prepare_corpus(corpus, found.tokenizer, cache_dir=tmp_path / "cache")
    assert again.from_cache and again.train_tokens == found.train_tokens
    # The share held out is part of the cache entry's name: another share, another layout.
    other = prepare_corpus(corpus, tokenizer, cache_dir=tmp_path / "cache", val_fraction=0.5)
    assert not other.from_cache and other.train_tokens is not None
    half = other.tokenizer.decode([int(i) for i in other.split(0.5)[0]])
    assert len(half) == (19 * 200 + 24 * 100) // 2  # half of each file


def test_a_home_that_does_not_exist_is_never_created(tmp_path, monkeypatch):
    from tinygpt.data.token_cache import default_cache_dir

    missing = tmp_path / "nowhere" / "home"
    monkeypatch.delenv("TINYGPT_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(missing))
    cache = default_cache_dir()
    assert not cache.is_relative_to(missing) and cache.name.startswith("tinygpt-cache-")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "tinygpt"


def test_token_cache_is_keyed_on_the_encoding(tmp_path):
    latin = tmp_path / "latin.txt"
    latin.write_bytes(SMALL_TEXT.encode() + "caf\u00e9 na\u00efve\n".encode("latin-1"))
    options = {**TINY, "max_steps": 1, "eval_every": 1}
    tinygpt.train(latin, out_dir=tmp_path / "a", encoding="latin-1", **options)
    with pytest.raises(UsageError, match="not valid utf-8: byte 0xe9"):
        tinygpt.train(latin, out_dir=tmp_path / "b", **options)
    for bad in ("rot13", "../../etc", "base64"):
        with pytest.raises(UsageError, match="encoding"):
            tinygpt.train(latin, out_dir=tmp_path / "c", encoding=bad, **options)
    # the reverse: a UTF-8 cache entry is not reused for a latin-1 reading of the same file
    utf8 = tmp_path / "utf8.txt"
    utf8.write_text(SMALL_TEXT + "caf\u00e9\n", encoding="utf-8")
    a = tinygpt.train(utf8, out_dir=tmp_path / "d", **options)
    b = tinygpt.train(utf8, out_dir=tmp_path / "e", encoding="latin-1", **options)
    vocab_a = open_checkpoint(a.out_dir).tokenizer.vocab_size
    vocab_b = open_checkpoint(b.out_dir).tokenizer.vocab_size
    assert vocab_b == vocab_a + 1  # "é" is one character in UTF-8, two in latin-1


def test_a_corpus_changed_while_tokenized_is_never_cached(tmp_path, monkeypatch):
    from tinygpt.data import corpus as data
    from tinygpt.data.tokenizer import CharTokenizer

    corpus = tmp_path / "corpus.txt"
    pristine = ("a" * 99 + "\n") * 50
    corpus.write_text(pristine)
    tok = CharTokenizer(["\n", "a", "b"])
    original = data.iter_text

    def rewritten_midway(sources, encoding="utf-8", **kwargs):
        for i, piece in enumerate(original(sources, encoding, **{**kwargs, "chunk_bytes": 1000})):
            if i == 0:  # the first piece is read: another program rewrites the file in place
                with open(corpus, "r+b") as fh:
                    fh.write(b"b" * 5000)
            yield piece

    monkeypatch.setattr(data, "iter_text", rewritten_midway)
    with pytest.raises(UsageError, match="changed while it was being read"):
        data.prepare_corpus(corpus, tok, cache_dir=tmp_path / "cache")
    monkeypatch.setattr(data, "iter_text", original)
    corpus.write_text(pristine)  # back as it was: its tokens are its own, not the mixture
    ids = data.prepare_corpus(corpus, tok, cache_dir=tmp_path / "cache").ids
    assert tok.decode([int(i) for i in ids]) == pristine


@pytest.mark.parametrize("damage", ["out-of-vocabulary", "another-token", "float64", "uint32"])
def test_a_damaged_token_cache_entry_is_rebuilt(small_text, tmp_path, damage):
    from tinygpt.data.corpus import prepare_corpus

    cache = tmp_path / "cache"
    first = prepare_corpus(small_text, "char", cache_dir=cache)
    expected = np.array(first.ids)
    (bin_path,) = (cache / "tokens").glob("*.bin")
    meta_path = bin_path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    if damage in ("out-of-vocabulary", "another-token"):  # a flipped bit, either way
        new = 60000 if damage == "out-of-vocabulary" else (int(expected[0]) + 1) % 10
        with open(bin_path, "r+b") as fh:
            fh.write(np.array([new], dtype=np.uint16).tobytes())
    else:  # another width, with a token count that fits the file's size
        meta["dtype"] = damage
        meta["num_tokens"] = bin_path.stat().st_size // np.dtype(damage).itemsize
    meta_path.write_text(json.dumps(meta))
    again = prepare_corpus(small_text, "char", cache_dir=cache)
    assert not again.from_cache and np.array_equal(np.array(again.ids), expected)
    assert prepare_corpus(small_text, "char", cache_dir=cache).from_cache  # rebuilt, whole


def test_a_cache_that_cannot_hold_entries_is_said_and_leaves_nothing_behind(
    small_text, tmp_path, monkeypatch
):
    """A file named as the cache: each run left its whole token file in a temporary folder
    that nothing removed, and said nothing."""
    import tempfile

    from tinygpt.data.corpus import prepare_corpus

    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    cache = tmp_path / "afile"
    cache.write_text("x")
    for _ in range(2):
        corpus = prepare_corpus(small_text, "char", cache_dir=cache)
        assert not corpus.from_cache and corpus.uncached and str(cache) in corpus.uncached
        assert corpus.tokenizer.decode(list(corpus.ids)) == small_text.read_text()
    assert list(temp.iterdir()) == [] and cache.read_text() == "x"


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


def test_a_file_whose_name_is_not_utf8_trains_and_its_cache_is_found_again(tmp_path):
    # its name went into the token cache's key as text: 'unexpected UnicodeEncodeError'
    name = os.fsdecode(b"t\xff.txt")
    (tmp_path / name).write_text(CACHE_TEXT)
    first = prepare_corpus(tmp_path / name, "char", cache_dir=tmp_path / "c")
    again = prepare_corpus(tmp_path / name, "char", cache_dir=tmp_path / "c")
    assert not first.from_cache and again.from_cache
    assert again.tokenizer.decode([int(i) for i in again.ids]) == CACHE_TEXT


def test_a_checkpoint_or_an_empty_name_is_no_text_to_train_on(trained_tiny: Path, tmp_path):
    """A checkpoint given as the data read best.safetensors as text ('not valid utf-8'); an
    empty name from Python was Path('') = '.', every file of the working folder."""
    from tinygpt.data.sources import resolve_sources

    with pytest.raises(UsageError, match="is a checkpoint, not text to train on"):
        resolve_sources(trained_tiny)
    with pytest.raises(UsageError, match="empty name"):
        resolve_sources("")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("text")
    shutil.copytree(trained_tiny, tmp_path / "notes" / "run")  # below the corpus: left out
    assert resolve_sources(tmp_path / "notes") == [tmp_path / "notes" / "a.txt"]
