"""Named hook points: what they show, what a hook that returns a tensor changes, and that hooks
stack and come off cleanly."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import random_gpt
from tinygpt.model import hook_points, hooks, run_with_cache

SHAPE = dict(vocab_size=30, block_size=16, n_layer=2, n_head=4, n_embd=32)


def model_and_input(arch: str = "modern", attention: str = "sdpa", **change):
    model = random_gpt(arch, attention=attention, **{**SHAPE, **change}).eval()
    return model, torch.randint(0, 30, (2, 12), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("arch", ["modern", "gpt2"])
def test_every_hook_point_shows_its_activation_with_its_shape(arch: str):
    model, x = model_and_input(arch)
    _, cache = run_with_cache(model, x)
    assert cache.keys() == hook_points(model).keys()
    b, t, c, h, d = 2, 12, 32, 4, 8
    assert cache["hook_embed"].shape == (b, t, c)
    for i in range(2):
        for name in ("resid_pre", "attn_out", "resid_mid", "mlp_out", "resid_post"):
            assert cache[f"blocks.{i}.hook_{name}"].shape == (b, t, c)
        for name in ("q", "k", "v", "rot_q", "rot_k", "z"):
            assert cache[f"blocks.{i}.attn.hook_{name}"].shape == (b, h, t, d)
        for name in ("attn_scores", "pattern"):
            assert cache[f"blocks.{i}.attn.hook_{name}"].shape == (b, h, t, t)
    # The residual stream adds up: each block's output is its input plus what it wrote.
    block = {k.removeprefix("blocks.1."): v for k, v in cache.items() if k.startswith("blocks.1.")}
    torch.testing.assert_close(
        block["hook_resid_post"],
        block["hook_resid_pre"] + block["hook_attn_out"] + block["hook_mlp_out"],
    )
    torch.testing.assert_close(cache["blocks.0.hook_resid_post"], cache["blocks.1.hook_resid_pre"])
    pattern = cache["blocks.0.attn.hook_pattern"]
    torch.testing.assert_close(pattern.sum(-1), torch.ones(b, h, t))
    assert torch.all(pattern.triu(1) == 0)
    # z is the pattern applied to the values
    torch.testing.assert_close(
        cache["blocks.0.attn.hook_z"], pattern @ cache["blocks.0.attn.hook_v"], atol=1e-5, rtol=0
    )


def test_hook_points_are_listed_in_the_order_the_activations_flow():
    model, _ = model_and_input()
    flow = ["hook_q", "hook_k", "hook_v", "hook_rot_q", "hook_rot_k", "hook_attn_scores",
            "hook_pattern", "hook_z"]  # fmt: skip
    assert [n for n in hook_points(model) if n.startswith("blocks.0.attn.")] == [
        f"blocks.0.attn.{n}" for n in flow
    ]


def test_attention_only_blocks_have_no_mlp_hook():
    model, _ = model_and_input(mlp=False)
    assert "blocks.0.hook_mlp_out" not in hook_points(model)


def test_reading_the_pattern_of_a_fused_model_changes_no_logit():
    model, x = model_and_input(attention="sdpa")
    plain, _ = model(x)
    hooked, cache = run_with_cache(model, x, lambda name: name.endswith("hook_pattern"))
    torch.testing.assert_close(hooked, plain, atol=1e-5, rtol=0)
    manual, _ = model_and_input(attention="manual")
    manual.load_state_dict(model.state_dict())
    _, reference = run_with_cache(manual, x, lambda name: name.endswith("hook_pattern"))
    for name, weights in cache.items():
        torch.testing.assert_close(weights, reference[name])


def test_a_hook_that_returns_a_tensor_replaces_the_activation():
    model, x = model_and_input()
    plain, _ = model(x)
    with hooks(model, [("blocks.1.hook_resid_post", lambda a, name: None)]):
        unchanged, _ = model(x)
    torch.testing.assert_close(unchanged, plain)
    # Zero every head's output in both layers: attention then adds nothing but c_proj's bias (0).
    with hooks(model, [(lambda n: n.endswith("hook_z"), lambda a, name: torch.zeros_like(a))]):
        _, cache = run_with_cache(model, x)
    for i in range(2):
        assert cache[f"blocks.{i}.hook_attn_out"].abs().max() == 0
        assert cache[f"blocks.{i}.attn.hook_z"].abs().max() == 0  # a reader sees the new value


def test_hooks_stack_in_order_and_come_off_one_by_one():
    model, x = model_and_input()
    point = "blocks.0.hook_resid_pre"
    with hooks(model, [(point, lambda a, n: a * 2)]):
        with hooks(model, [(point, lambda a, n: a + 1)]):
            _, inner = run_with_cache(model, x, point)
        _, outer = run_with_cache(model, x, point)
    _, plain = run_with_cache(model, x, point)
    torch.testing.assert_close(inner[point], plain[point] * 2 + 1)
    torch.testing.assert_close(outer[point], plain[point] * 2)
    assert not any(p.active for p in hook_points(model).values())


def test_hooks_come_off_when_the_block_raises_and_unknown_names_are_refused():
    model, _ = model_and_input()
    with pytest.raises(RuntimeError), hooks(model, [("hook_embed", lambda a, n: a)]):
        raise RuntimeError
    assert not any(p.active for p in hook_points(model).values())
    with pytest.raises(KeyError, match="hook_nothing"), hooks(model, [("hook_nothing", print)]):
        pass
