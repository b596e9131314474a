"""Predictions, direct logit attribution, the logit lens and activation patching: both recipes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import random_gpt
from tinygpt.analysis.attribution import direct_logit_attribution
from tinygpt.analysis.lens import logit_lens
from tinygpt.analysis.patching import patch_activations, patched_logprobs
from tinygpt.analysis.predictions import predictions
from tinygpt.model import run_with_cache

SHAPE = dict(vocab_size=30, block_size=16, n_layer=2, n_head=4, n_embd=32)
RECIPES = ["modern", "gpt2"]


def model_for(arch: str, **change):
    model = random_gpt(arch, **{**SHAPE, **change})
    if arch == "gpt2":  # non-zero biases and norm gains, so they take part in the sums
        with torch.no_grad():
            for p in model.parameters():
                if p.dim() == 1:
                    p.add_(torch.randn_like(p) * 0.3)
    return model


def ids(seed: int = 0, n: int = 12) -> list[int]:
    return torch.randint(0, 30, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


def model_logprobs(model, tokens: list[int]) -> torch.Tensor:
    with torch.no_grad():
        logits, _ = model(torch.tensor([tokens]))
    return F.log_softmax(logits[0].float(), dim=-1)


@pytest.mark.parametrize("arch", RECIPES)
def test_the_logit_lens_at_the_last_layer_is_the_models_output(arch: str):
    model, tokens = model_for(arch), ids()
    logp = model_logprobs(model, tokens)
    for position in (3, 11):
        rows = logit_lens(model, tokens, position, target=5)
        assert [r.after for r in rows] == ["embed", "L0", "L1"]
        last = rows[-1]
        assert last.target_prob == pytest.approx(float(logp[position, 5].exp()), rel=1e-5)
        assert last.top_id == int(logp[position].argmax())
        assert last.target_rank == int((logp[position] > logp[position, 5]).sum())
    # the first row decodes the token's own embedding (position 11's, normalised where the
    # recipe normalises it) through the final norm and the head
    with torch.no_grad():
        x = model.wte.weight[tokens[11]]
        if model.wpe is not None:
            x = x + model.wpe.weight[11]
        embed = F.log_softmax(model.head(model.ln_f(model.ln_emb(x))).float(), dim=-1)
    assert rows[0].target_prob == pytest.approx(float(embed[5].exp()), rel=1e-5)
    assert rows[0].top_id == int(embed.argmax())


@pytest.mark.parametrize("arch", RECIPES)
@pytest.mark.parametrize("mlp", [True, False])
def test_direct_attributions_add_up_to_the_logit(arch: str, mlp: bool):
    model, tokens = model_for(arch, mlp=mlp), ids(1)
    with torch.no_grad():
        logits, _ = model(torch.tensor([tokens]))
    for position, target in ((11, 4), (2, 17)):
        a = direct_logit_attribution(model, tokens, position, target)
        assert a.total == pytest.approx(a.raw_logit, abs=1e-4)
        assert a.logit == pytest.approx(float(logits[0, position, target]), abs=1e-5)
        names = {s.component for s in a.shares}
        assert {"embed", "L0H0", "L1H3"} <= names
        assert ("L0 MLP" in names) == mlp
        assert ("final norm bias" in names) == (arch == "gpt2")
        assert ("L1 attn bias" in names) == (arch == "gpt2")
        sizes = [abs(s.logit) for s in a.shares]
        assert sizes == sorted(sizes, reverse=True)
    if arch == "modern":  # soft-capped: the shares explain the logit before the cap
        assert a.logit == pytest.approx(15 * math.tanh(a.raw_logit / 15), abs=1e-5)


@pytest.mark.parametrize("arch", RECIPES)
def test_patching_with_the_runs_own_activations_changes_nothing(arch: str):
    model, tokens = model_for(arch), ids(2)
    idx = torch.tensor([tokens])
    own = model_logprobs(model, tokens)[9, 7]
    _, cache = run_with_cache(model, idx)
    masks = torch.ones(3, 4, 12, 1, dtype=torch.bool)
    got = patched_logprobs(
        model, idx, "blocks.1.attn.hook_z", cache["blocks.1.attn.hook_z"], masks, 9, 7
    )
    torch.testing.assert_close(got, own.expand(3))


@pytest.mark.parametrize("arch", RECIPES)
def test_patching_every_head_of_a_layer_is_patching_its_attention_output(arch: str):
    model, clean, corrupted = model_for(arch), ids(3), ids(4)
    _, cache = run_with_cache(model, torch.tensor([clean]))
    bad = torch.tensor([corrupted])
    every_head = torch.ones(1, 4, 12, 1, dtype=torch.bool)
    whole = torch.ones(1, 12, 1, dtype=torch.bool)
    for layer in range(2):
        z = f"blocks.{layer}.attn.hook_z"
        out = f"blocks.{layer}.hook_attn_out"
        by_heads = patched_logprobs(model, bad, z, cache[z], every_head, 11, 3)
        by_output = patched_logprobs(model, bad, out, cache[out], whole, 11, 3)
        torch.testing.assert_close(by_heads, by_output, atol=1e-5, rtol=0)


def test_patch_activations_grids_are_the_restored_share_of_each_patch():
    model, clean, corrupted = model_for("modern"), ids(5), ids(6)
    r = patch_activations(model, clean, corrupted, position=11, target=3)
    assert r.heads.shape == (2, 4) and r.head_positions.shape == (2, 4, 12)
    assert r.residual.shape == (2, 12)
    lo, hi = model_logprobs(model, corrupted)[11, 3], model_logprobs(model, clean)[11, 3]
    assert (r.corrupted_logprob, r.clean_logprob) == pytest.approx((float(lo), float(hi)))
    _, cache = run_with_cache(model, torch.tensor([clean]))
    z = cache["blocks.1.attn.hook_z"]
    bad = torch.tensor([corrupted])
    head2 = torch.zeros(1, 4, 12, 1, dtype=torch.bool)
    head2[0, 2] = True
    whole = patched_logprobs(model, bad, "blocks.1.attn.hook_z", z, head2, 11, 3)
    at5 = head2 & (torch.arange(12) == 5)[None, None, :, None]
    one = patched_logprobs(model, bad, "blocks.1.attn.hook_z", z, at5, 11, 3)
    assert float(r.heads[1, 2]) == pytest.approx(float((whole - lo) / (hi - lo)), abs=1e-4)
    assert float(r.head_positions[1, 2, 5]) == pytest.approx(
        float((one - lo) / (hi - lo)), abs=1e-4
    )
    # the stream into layer 0 at the target's own position and everything before it, patched
    # together, is the clean prompt's input: everything is restored
    everything = torch.ones(1, 12, 1, dtype=torch.bool)
    stream = cache["blocks.0.hook_resid_pre"]
    full = patched_logprobs(model, bad, "blocks.0.hook_resid_pre", stream, everything, 11, 3)
    assert float(full) == pytest.approx(float(hi), abs=1e-5)


def test_patching_needs_prompts_of_one_length_and_a_gap_to_close():
    from tinygpt.errors import UsageError

    model = model_for("modern")
    with pytest.raises(UsageError, match="same number of tokens"):
        patch_activations(model, ids(0), ids(0, n=10), 9, 3)
    with pytest.raises(UsageError, match="nothing to restore"):
        patch_activations(model, ids(0), ids(0), 9, 3)


def test_patching_a_position_after_the_target_changes_nothing():
    model, clean, corrupted = model_for("gpt2"), ids(7), ids(8)
    r = patch_activations(model, clean, corrupted, position=6, target=3)
    assert torch.all(r.head_positions[..., 7:].abs() < 1e-5)
    assert torch.all(r.residual[..., 7:].abs() < 1e-5)


@pytest.mark.parametrize("arch", RECIPES)
def test_predictions_give_the_top_tokens_and_the_loss_of_the_next(arch: str):
    model, tokens = model_for(arch), ids(9)
    logp = model_logprobs(model, tokens)
    preds = predictions(model, tokens, k=3)
    assert len(preds) == 12 and preds[-1].next_id is None and preds[-1].loss is None
    for p in preds[:-1]:
        probs = [prob for _, prob in p.top]
        assert probs == sorted(probs, reverse=True) and len(probs) == 3
        assert p.top[0][0] == int(logp[p.position].argmax())
        assert p.loss == pytest.approx(float(-logp[p.position, p.next_id]), rel=1e-6)
        assert p.next_prob == pytest.approx(math.exp(-p.loss), rel=1e-6)


def test_per_token_losses_average_to_evals_loss():
    from tinygpt.analysis.evaluation import evaluate_text
    from tinygpt.data.tokenizer import build_tokenizer

    text = "to be or not to be, that is the question"
    tok = build_tokenizer("char", text)
    model = random_gpt(
        "modern", vocab_size=tok.vocab_size, block_size=64, n_layer=2, n_head=2, n_embd=16
    )
    tokens = tok.encode(text)
    losses = [p.loss for p in predictions(model, tokens)[:-1]]
    expected = evaluate_text(model, tok, text).loss
    assert sum(losses) / len(losses) == pytest.approx(expected, rel=1e-5)


def test_a_loss_that_is_not_finite_is_one_line_about_the_model():
    """eval --json printed NaN (not JSON) for a diverged run's model."""
    from tinygpt.analysis.evaluation import evaluate_text
    from tinygpt.data.tokenizer import build_tokenizer
    from tinygpt.errors import CheckpointError

    text = "to be or not to be"
    tok = build_tokenizer("char", text)
    model = random_gpt("modern", vocab_size=tok.vocab_size, block_size=32, n_layer=1, n_head=2)
    with torch.no_grad():
        model.lm_head.weight.fill_(math.nan)
    with pytest.raises(CheckpointError, match="loss on this text is not finite"):
        evaluate_text(model, tok, text)
