"""The model (tinygpt.model): causality, the attention paths, the KV cache, shapes, precision,
and the parameter count from a shape."""

import functools
from types import SimpleNamespace

import pytest
import torch

from tests.conftest import GPT2, FakeClock, model_config, random_gpt
from tinygpt.config.model import ModelConfig
from tinygpt.errors import UsageError
from tinygpt.model import GPT, KVCache, causal_mask
from tinygpt.model.meta import meta_model

SHAPE = dict(vocab_size=40, block_size=24, n_layer=2, n_head=4, n_embd=32)
CFG = ModelConfig(**SHAPE)


def make(mode="sdpa", dropout=0.0, seed=0, arch="modern"):
    return random_gpt(arch, seed, mode, **SHAPE, dropout=dropout)


@pytest.mark.parametrize("arch", ["modern", "gpt2"])
@pytest.mark.parametrize("mode", ["sdpa", "manual"])
def test_changing_a_future_token_never_changes_earlier_logits(mode, arch):
    model = make(mode, arch=arch)
    x = torch.randint(0, 40, (2, 24))
    base, _ = model(x)
    for t in (0, 5, 23):
        y = x.clone()
        y[:, t] = (y[:, t] + 1) % 40
        changed, _ = model(y)
        assert torch.equal(changed[:, :t], base[:, :t])
        assert not torch.allclose(changed[:, t:], base[:, t:])


@pytest.mark.parametrize("arch", ["modern", "gpt2"])
def test_manual_and_sdpa_agree(arch):
    model = make("sdpa", arch=arch)
    x = torch.randint(0, 40, (3, 24))
    fused, _ = model(x)
    model.attention = "manual"
    manual, _ = model(x)
    torch.testing.assert_close(fused, manual, rtol=1e-5, atol=1e-5)


def test_manual_and_sdpa_agree_on_loss_and_gradients():
    x = torch.randint(0, 40, (2, 24))
    grads = []
    for mode in ("sdpa", "manual"):
        model = make(mode).train()
        _, loss = model(x[:, :-1], x[:, 1:])
        loss.backward()
        grads.append((loss.detach(), model.blocks[0].attn.c_attn.weight.grad.clone()))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("mode", ["sdpa", "manual"])
def test_kv_cache_in_chunks_matches_full_forward(mode):
    model = make(mode)
    x = torch.randint(0, 40, (2, 20))
    full, _ = model(x)
    cache = KVCache(model.config, 2, torch.device("cpu"), torch.float32)
    parts = [model(x[:, a:b], cache=cache)[0] for a, b in ((0, 7), (7, 8), (8, 15), (15, 20))]
    torch.testing.assert_close(torch.cat(parts, dim=1), full, rtol=1e-5, atol=1e-5)
    assert cache.length == 20


def test_forward_returns_logits_and_loss():
    model = make("sdpa")
    x, y = torch.randint(0, 40, (2, 10)), torch.randint(0, 40, (2, 10))
    logits, loss = model(x, y)
    assert logits.shape == (2, 10, 40) and loss.shape == ()
    expected = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
    torch.testing.assert_close(loss, expected)
    assert model(x)[1] is None


def test_lm_head_is_tied_and_init_is_gpt2_style():
    torch.manual_seed(0)
    model = GPT(ModelConfig(**SHAPE, **GPT2))
    assert model.lm_head.weight is model.wte.weight
    std = model.blocks[0].attn.c_proj.weight.std().item()
    assert abs(std - 0.02 / (2 * CFG.n_layer) ** 0.5) < 0.004
    assert model.blocks[0].attn.c_attn.bias.abs().sum() == 0


def test_causal_mask_with_offset():
    m = causal_mask(2, 5, torch.device("cpu"))
    assert m.tolist() == [[True, True, True, True, False], [True, True, True, True, True]]


def test_sequence_longer_than_block_is_refused():
    model = make()
    with pytest.raises(ValueError, match="block size"):
        model(torch.zeros(1, 25, dtype=torch.long))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"n_embd": 30, "n_head": 4}, "divisible"),
        ({"n_layer": 0}, "positive"),
        ({"dropout": 1.0}, "dropout"),
        # float32 makes 1e300 inf and 5e-324 zero: every logit NaN, blamed on --lr
        ({"logit_softcap": 1e300}, "logit_softcap must be 0 .off. or from 1.2e-38"),
        ({"logit_softcap": 5e-324}, "logit_softcap must be 0"),
        ({"logit_softcap": -1.0}, "logit_softcap must be 0"),
    ],
)
def test_invalid_shapes_are_usage_errors(change, message):
    with pytest.raises(UsageError, match=message):
        ModelConfig(**{**CFG.__dict__, **change}).validate()


@pytest.mark.parametrize("arch", ["modern", "gpt2"])
def test_a_shapes_only_model_has_the_built_models_shapes_and_no_storage(arch):
    # What a weights file is checked against before a model is built; RoPE's tables (not
    # saved) are computed on the CPU there, everything saved lives on the meta device.
    config = model_config(arch, vocab_size=50, block_size=32, n_layer=2, n_head=2, n_embd=16)
    shapes = meta_model(config).state_dict()
    built = GPT(config).state_dict()
    assert {k: v.shape for k, v in shapes.items()} == {k: v.shape for k, v in built.items()}
    assert all(v.is_meta for v in shapes.values())
    fresh = GPT(config)  # the meta device's skipped initialisers leave later models alone
    assert fresh.wte.weight.std() > 0.01 and not fresh.wte.weight.is_meta


def test_bf16_autocast_on_cpu_runs_the_attention_in_float32(monkeypatch):
    """Under CPU bf16 autocast the fused attention gets float32 queries, keys and values (its
    bf16 backward is 4x slower there), the matmuls around it stay bf16, and the gradients
    match the float32 model's to bf16's precision."""
    import torch.nn.functional as F

    from tinygpt.model.device import autocast

    seen: list[torch.dtype] = []
    sdpa = F.scaled_dot_product_attention

    def spy(q, *args, **kwargs):
        seen.append(q.dtype)
        return sdpa(q, *args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    x = torch.randint(0, 40, (2, 24))
    grads, outputs = [], []
    for dtype in (torch.float32, torch.bfloat16):
        model = make().train()
        projections: list[torch.dtype] = []
        model.blocks[0].attn.c_attn.register_forward_hook(
            lambda module, args, out, projections=projections: projections.append(out.dtype)
        )
        with autocast(torch.device("cpu"), dtype):
            _, loss = model(x[:, :-1], x[:, 1:])
        loss.backward()
        outputs.append((loss.detach(), projections[0]))
        grads.append(model.blocks[0].attn.c_attn.weight.grad)
    assert seen == [torch.float32] * 4  # two layers, each model
    assert outputs[1][1] == torch.bfloat16  # the Q, K, V projection ran in bf16
    torch.testing.assert_close(outputs[1][0], outputs[0][0], rtol=2e-2, atol=0)
    torch.testing.assert_close(grads[1], grads[0], rtol=0.1, atol=2e-3)


def test_auto_precision_is_bf16_where_the_matmuls_are_native(monkeypatch):
    from tinygpt.model import device

    cpu = torch.device("cpu")
    for pays, want in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(device, "cpu_bfloat16_pays", lambda pays=pays: pays)
        assert device.resolve_dtype("auto", cpu) == want
        assert device.resolve_dtype("float32", cpu) == torch.float32  # asked for: kept


@pytest.mark.parametrize(("bf16_ms", "expected"), [(5, torch.bfloat16), (19, torch.float32)])
def test_bfloat16_is_chosen_only_where_it_times_clearly_faster(
    monkeypatch: pytest.MonkeyPatch, bf16_ms: float, expected: torch.dtype
):
    """One timing a process decides training's autocast and Muon's iteration alike."""
    from tinygpt.model import device
    from tinygpt.training import muon

    clock, calls = FakeClock(), []

    def timed(x: torch.Tensor) -> None:
        # Float32 products take 20 ms on this pretend CPU; the first of each type, which
        # allocates, is not timed, so here it takes no time at all.
        if x.dtype in calls:
            clock.now += (bf16_ms if x.dtype == torch.bfloat16 else 20) / 1000
        calls.append(x.dtype)

    monkeypatch.setattr(device, "_newton_schulz_products", timed)
    monkeypatch.setattr(device, "time", SimpleNamespace(perf_counter=clock))
    monkeypatch.setattr(device, "cpu_has_bfloat16", lambda: True)
    # A fresh cache for this test: the process's own choice stays what its runs used.
    fresh = functools.cache(device.cpu_bfloat16_pays.__wrapped__)
    monkeypatch.setattr(device, "cpu_bfloat16_pays", fresh)
    cpu = torch.device("cpu")
    assert device.resolve_dtype("auto", cpu) == expected  # 19 ms is not under 0.9 x 20
    assert muon.newton_schulz_for(cpu) == (True, expected)
    assert len(calls) == 8  # timed once a process: every run in it does the same arithmetic
    monkeypatch.setattr(device, "cpu_has_bfloat16", lambda: False)  # emulated bfloat16
    assert muon.newton_schulz_for(cpu) == (False, torch.float32)
    fresh.cache_clear()
    assert device.resolve_dtype("auto", cpu) == torch.float32


def test_the_kv_cache_keeps_its_dtype_under_autocast():
    from tinygpt.model.device import autocast

    model = make().eval()
    x = torch.randint(0, 40, (1, 6))
    full, _ = model(x)
    cache = model.new_cache(1)
    with torch.no_grad(), autocast(torch.device("cpu"), torch.bfloat16):
        for t in range(6):
            last = model.step(x[:, t : t + 1], cache)
    assert cache.k[0].dtype == torch.float32
    torch.testing.assert_close(last.float().squeeze(), full[0, -1], rtol=0, atol=0.1)


@pytest.mark.parametrize("arch", ["modern", "gpt2"])
def test_the_parameter_count_from_the_shape_is_the_models(arch: str) -> None:
    import itertools

    import torch

    from tinygpt.config.model import ModelConfig
    from tinygpt.model import GPT, ParameterCount, count_parameters
    from tinygpt.recipe import RECIPES

    recipe = RECIPES[arch].model_options()
    for bias, mlp, tie, embed_norm, n_layer in itertools.product(
        [False, True], [False, True], [False, True], [False, True], [1, 3]
    ):
        config = ModelConfig(
            **{**recipe, "bias": bias, "mlp": mlp, "tie_embeddings": tie, "embed_norm": embed_norm},
            n_layer=n_layer,
            n_head=2,
            n_embd=16,
            block_size=12,
            vocab_size=37,
        )
        with torch.device("meta"):
            built = GPT(config)
        position = built.wpe.weight.numel() if built.wpe is not None else 0
        total = sum(p.numel() for p in built.parameters())  # each parameter once, tied or not
        assert count_parameters(config) == ParameterCount(total, position), config
