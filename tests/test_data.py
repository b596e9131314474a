import numpy as np
import pytest

from tinygpt.data import BatchSampler, check_split_lengths, load_corpus, read_text
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
    with pytest.raises(UsageError, match="byte 0xff at offset 6.*--encoding"):
        read_text(tmp_path / "bad.txt")
    assert read_text(tmp_path / "bad.txt", encoding="latin-1") == "hello ÿ world"


def test_bom_is_stripped(tmp_path):
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbfhi")
    assert read_text(tmp_path / "bom.txt") == "hi"


def test_corpus_is_cached_by_content_and_tokenizer(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("abcabc" * 100)
    first = load_corpus(path, "char", cache_dir=tmp_path / "c")
    second = load_corpus(path, "char", cache_dir=tmp_path / "c")
    assert not first.from_cache and second.from_cache
    assert np.array_equal(first.ids, second.ids) and second.ids.dtype == np.uint16
    path.write_text("xyzxyz" * 100)
    assert not load_corpus(path, "char", cache_dir=tmp_path / "c").from_cache
    train, val = second.split(0.1)
    assert len(train) == 540 and len(val) == 60


def test_too_short_for_block_size_suggests_a_smaller_one():
    ids = np.arange(100, dtype=np.uint16)
    train, val = ids[:90], ids[90:]
    with pytest.raises(UsageError, match="--block-size 9 or less"):
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
