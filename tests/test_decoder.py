"""The decode path (tinygpt/sampling/decoder.py and GPT.step): every way to the next logits
gives the full forward's answer, across window jumps, one row or a batch."""

import pytest
import torch

from tests.conftest import random_gpt
from tinygpt.config.sample import SampleConfig
from tinygpt.sampling import Decoder, keep_after_crop, make_generator, sample_tokens


def model(arch="modern", block=16, vocab=30):
    return random_gpt(arch, vocab_size=vocab, block_size=block, n_layer=2, n_head=2, n_embd=32)


def rerun_capture(fn):
    """The CUDA graph protocol on the CPU: the captured step is rerun on replay and its output
    written into the one buffer the caller holds, so inputs must flow through the step's fixed
    buffers (the ids buffer, the cache and its position) exactly as a replayed graph's do."""
    out = fn()
    return out, lambda: out.copy_(fn())


@pytest.mark.parametrize("arch", ["modern", "gpt2"])
def test_step_equals_forward(arch):
    m = model(arch, block=24, vocab=50)
    tokens = torch.randint(0, 50, (3, 24))
    with torch.inference_mode():
        full, _ = m(tokens)
        cache = m.new_cache(3)
        m(tokens[:, :5], cache=cache)
        steps = []
        for t in range(5, 24):
            cache.position.fill_(t)
            steps.append(m.step(tokens[:, t : t + 1], cache))
    torch.testing.assert_close(torch.stack(steps, 1), full[:, 5:], atol=1e-5, rtol=1e-5)


def test_rotation_matrices_equal_the_rotation():
    rotary = model().blocks[0].attn.rotary
    x = torch.randn(2, 3, 1, 16)
    for position in (0, 5, 15):
        expected = rotary(x, position)
        torch.testing.assert_close(x @ rotary.matrices()[position], expected)


@pytest.mark.parametrize("arch", ["modern", "gpt2"])
@pytest.mark.parametrize("how", ["eager", "graph-protocol", "no-cache"])
def test_every_path_equals_the_full_forward_on_its_window_across_jumps(arch, how):
    m = model(arch)
    kwargs = dict(kv_cache=how != "no-cache", graph=how == "graph-protocol")
    with torch.inference_mode():
        decoder = Decoder(m, 2, capture=rerun_capture, **kwargs)
        rows = torch.tensor([[4, 5, 6], [4, 5, 6]])
        logits = decoder.start(rows)
        history, start = rows.tolist(), 0
        for step in range(45):  # 3 + 45 tokens > block 16: the window jumps several times
            full, _ = m(torch.tensor([h[start:] for h in history]))
            torch.testing.assert_close(logits, full[:, -1], atol=1e-5, rtol=1e-5)
            ids = torch.tensor([(7 * step + 3) % 30, (11 * step + 1) % 30])
            for h, i in zip(history, ids.tolist(), strict=True):
                h.append(i)
            if len(history[0]) - start > 16:
                start = len(history[0]) - keep_after_crop(16)
            logits = decoder.advance(ids)


def test_graph_protocol_samples_what_the_eager_step_samples(monkeypatch):
    import tinygpt.sampling.decoder as decoder

    m = model()
    cfg = SampleConfig(max_new_tokens=50, seed=3)

    def tokens(graph):
        gens = [make_generator(torch.device("cpu"), s) for s in (3, 4)]
        return [step.ids for step in sample_tokens(m, [1, 2], cfg, gens, graph=graph)]

    eager = tokens(False)
    monkeypatch.setattr(decoder, "cuda_graph", rerun_capture)
    assert tokens(True) == eager


def test_cache_is_zeroed_so_masked_positions_cannot_poison_attention():
    # Uninitialised memory can hold NaN; a masked weight of 0 times NaN is still NaN.
    cache = model().new_cache(2)
    assert not cache.k.any() and not cache.v.any()


def test_a_failed_capture_falls_back_to_the_eager_step():
    def failing_capture(fn):
        fn()  # the warm-up ran, then the capture failed
        raise RuntimeError("operation not permitted when stream is capturing")

    m = model()
    with torch.inference_mode():
        decoder = Decoder(m, 1, graph=True, capture=failing_capture)
        assert type(decoder.step).__name__ == "EagerStep"
        logits = decoder.start(torch.tensor([[1, 2, 3]]))
        full, _ = m(torch.tensor([[1, 2, 3]]))
    torch.testing.assert_close(logits, full[:, -1])
