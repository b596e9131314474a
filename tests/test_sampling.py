import pytest
import torch

from tests.conftest import random_gpt
from tinygpt.config.sample import SampleConfig
from tinygpt.data.tokenizer import CharTokenizer, build_tokenizer
from tinygpt.errors import UsageError
from tinygpt.sampling import (
    StreamDecoder,
    filter_logits,
    generate_text,
    keep_after_crop,
    stream_tokens,
)


def model(block=16, seed=0):
    return random_gpt(seed=seed, vocab_size=30, block_size=block, n_layer=2, n_head=2, n_embd=32)


@pytest.mark.parametrize("attention", ["sdpa", "manual"])
def test_greedy_with_and_without_kv_cache_identical_past_the_block(attention):
    m = model()
    m.attention = attention
    greedy = SampleConfig(max_new_tokens=60, temperature=0)  # 60 > block 16: crops several times
    cached = list(stream_tokens(m, [1, 2, 3], greedy))
    greedy.kv_cache = False
    uncached = list(stream_tokens(m, [1, 2, 3], greedy))
    assert cached == uncached and len(cached) == 60


def test_uncached_path_sees_the_documented_window():
    # The no-cache path must equal an explicit recomputation on tokens[start:], where the window
    # jumps to the last 3/4 block whenever the context would exceed the block.
    m = model()
    cfg = SampleConfig(max_new_tokens=30, temperature=0, kv_cache=False)
    out = list(stream_tokens(m, [5], cfg))
    tokens, start = [5], 0
    for expected in out:
        if len(tokens) - start > 16:
            start = len(tokens) - keep_after_crop(16)
        logits, _ = m(torch.tensor([tokens[start:]]))
        assert int(logits[0, -1].argmax()) == expected
        tokens.append(expected)


def test_same_seed_same_sample_different_seed_different():
    m = model()
    tok = CharTokenizer([chr(ord("a") + i) for i in range(30)])

    def run(seed):
        return generate_text(m, tok, "abc", SampleConfig(max_new_tokens=40, seed=seed))

    assert run(7).samples == run(7).samples
    assert run(7).samples != run(8).samples


def test_top_k_and_top_p_filtering():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = torch.isfinite(filter_logits(logits, top_k=2, top_p=None))
    assert kept.tolist() == [[True, True, False, False]]
    kept = torch.isfinite(filter_logits(logits, top_k=None, top_p=0.8))
    assert kept.tolist() == [[True, True, False, False]]
    kept = torch.isfinite(filter_logits(logits, top_k=None, top_p=0.81))
    assert kept.tolist() == [[True, True, True, False]]
    kept = torch.isfinite(filter_logits(logits, top_k=None, top_p=0.1))
    assert kept.tolist() == [[True, False, False, False]]


@pytest.mark.parametrize(
    "options",
    [
        {"temperature": 1e-45},
        {"temperature": 1e-46},
        {"temperature": 5e-324},
        {"top_p": 1e-300},
        {"temperature": 1e-45, "top_p": 1e-300},
    ],
)
def test_extreme_but_valid_controls_sample_the_top_token(options):
    # 1e-45 divided into logits overflowed to inf (NaN in the softmax); 1e-46 rounds to 0 in
    # float32 (0 / 0 for the top logit); 1e-300 rounds to 0 there too, which dropped even the
    # top token.
    m = model()
    tok = CharTokenizer([chr(ord("a") + i) for i in range(30)])
    greedy = generate_text(m, tok, "ab", SampleConfig(max_new_tokens=8, temperature=0))
    extreme = generate_text(m, tok, "ab", SampleConfig(max_new_tokens=8, seed=3, **options))
    assert extreme.samples == greedy.samples


def test_top_k_one_is_greedy():
    m = model()
    tok = CharTokenizer([chr(ord("a") + i) for i in range(30)])
    greedy = generate_text(m, tok, "ab", SampleConfig(max_new_tokens=20, temperature=0))
    topk1 = generate_text(m, tok, "ab", SampleConfig(max_new_tokens=20, top_k=1, seed=3))
    assert greedy.samples == topk1.samples


def test_streamed_pieces_equal_the_sample_and_prompt_comes_first():
    m = model()
    tok = CharTokenizer([chr(ord("a") + i) for i in range(30)])
    pieces = []
    result = generate_text(m, tok, "abc", SampleConfig(max_new_tokens=25, seed=1), pieces.append)
    assert pieces[0] == "abc"
    assert "".join(pieces) == result.samples[0]
    assert result.new_tokens == 25 and result.seconds > 0


def test_long_prompt_is_cropped_with_a_notice():
    m = model()
    tok = CharTokenizer([chr(ord("a") + i) for i in range(30)])
    result = generate_text(m, tok, "abcdefghij" * 3, SampleConfig(max_new_tokens=2, seed=1))
    assert "last 16" in result.notices[0]


def test_stream_decoder_handles_split_utf8(gpt2_encoding):
    tok = build_tokenizer("gpt2")
    text = "日本語のテキスト 😀"
    decoder = StreamDecoder(tok)
    out = "".join(decoder.feed(i) for i in tok.encode(text)) + decoder.flush()
    assert out == text


@pytest.mark.parametrize(
    "change", [{"temperature": -1}, {"top_k": 0}, {"top_p": 0}, {"top_p": 1.5}, {"num_samples": 0}]
)
def test_out_of_range_sampling_parameters(change):
    with pytest.raises(UsageError):
        SampleConfig(**change).validate()


LETTERS = CharTokenizer([chr(ord("a") + i) for i in range(30)])


@pytest.mark.parametrize("arch", ["modern", "gpt2"])
@pytest.mark.parametrize("kv_cache", [True, False])
def test_batched_samples_equal_the_same_seeds_one_by_one(arch, kv_cache):
    m = random_gpt(arch, vocab_size=30, block_size=16, n_layer=2, n_head=2, n_embd=32)
    cfg = dict(max_new_tokens=40, seed=11, kv_cache=kv_cache, top_p=0.9)  # 40: past the block
    batch = generate_text(m, LETTERS, "abc", SampleConfig(num_samples=4, **cfg))
    alone = [
        generate_text(m, LETTERS, "abc", SampleConfig(**{**cfg, "seed": 11 + i})).samples[0]
        for i in range(4)
    ]
    assert batch.samples == alone
    assert len(set(alone)) == 4
    assert [d.seed for d in batch.details] == [11, 12, 13, 14]
    assert batch.new_tokens == 4 * 40


def test_each_row_stops_on_its_own_and_streams_in_order():
    m = model()
    base = generate_text(m, LETTERS, "ab", SampleConfig(max_new_tokens=30, seed=5, num_samples=3))
    # A stop text that ends the first sample early (two characters: across a token boundary).
    stop = base.samples[0][6:8]
    pieces = []
    cfg = SampleConfig(max_new_tokens=30, seed=5, num_samples=3, stop=(stop,))
    result = generate_text(m, LETTERS, "ab", cfg, pieces.append)
    for full, cut, detail in zip(base.samples, result.samples, result.details, strict=True):
        index = full.find(stop, 2)
        assert cut == (full if index < 0 else full[:index])
        assert detail.finish == ("length" if index < 0 else "stop")
        assert detail.stop == (None if index < 0 else stop)
        assert detail.new_tokens == (30 if index < 0 else index - 2 + len(stop))
    assert result.details[0].finish == "stop"
    separator = "\n" + "-" * 40 + "\n"
    assert "".join(pieces) == separator.join(result.samples)


def test_a_stop_in_the_prompt_does_not_end_the_sample():
    result = generate_text(model(), LETTERS, "abc", SampleConfig(max_new_tokens=5, stop=("b",)))
    assert result.samples[0].startswith("abc")
    assert "b" not in result.samples[0][3:]


@pytest.mark.parametrize("k", [1, 3, 30])
def test_alternatives_are_the_models_distribution(k):
    m = model()
    cfg = SampleConfig(max_new_tokens=20, seed=2, top_k=3, alternatives=k)
    result = generate_text(m, LETTERS, "ab", cfg)
    tokens = result.details[0].tokens
    assert len(tokens) == 20
    ids = LETTERS.encode(result.samples[0][2:])
    for record, taken in zip(tokens, ids, strict=True):
        probs = [a["prob"] for a in record["alternatives"]]
        assert len(probs) == k and probs == sorted(probs, reverse=True)
        assert sum(probs) <= 1 + 1e-5 and record["id"] == taken
        listed = {a["id"]: a["prob"] for a in record["alternatives"]}
        if k >= 3:  # top-k 3 sampling: the token taken is among the model's 3 most likely
            assert taken in listed
            assert listed[taken] == pytest.approx(2.718281828 ** record["logprob"], abs=1e-5)
    assert result.to_dict()["sample_details"][0]["tokens"][0]["alternatives"][0]["text"]


def test_json_says_how_each_sample_ended():
    result = generate_text(model(), LETTERS, "ab", SampleConfig(max_new_tokens=3, num_samples=2))
    details = result.to_dict()["sample_details"]
    assert [d["finish"] for d in details] == ["length", "length"]
    assert "tokens" not in details[0]


@pytest.mark.parametrize(
    "change",
    [
        {"stop": ("",)},
        {"alternatives": -1},
        {"alternatives": 101},
        {"seed": 2**63 - 2**20, "num_samples": 2},
    ],
)
def test_out_of_range_stop_alternatives_and_seeds(change):
    with pytest.raises(UsageError):
        SampleConfig(**change).validate()


def test_probabilities_that_are_not_finite_are_one_line_about_the_model():
    """A diverged run's weights can be finite and its outputs NaN: a sentence, not torch's."""
    from tinygpt.errors import CheckpointError
    from tinygpt.sampling.choose import choose

    logits = torch.full((1, 5), float("nan"))
    with pytest.raises(CheckpointError, match="probabilities are not finite.*training diverged"):
        choose(logits, SampleConfig(seed=1), [None])
