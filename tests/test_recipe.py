"""The training recipe: both architectures, Muon, the schedules, --max-time planning, old runs."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import FakeClock, ctrl_c_after, random_gpt, run_in_process, use_clock
from tests.conftest import model_config as recipe_config
from tests.torch_muon import Muon
from tinygpt.checkpoint.store import open_checkpoint
from tinygpt.config.model import ModelConfig
from tinygpt.config.run import RunConfig
from tinygpt.config.train import TrainConfig
from tinygpt.errors import UsageError
from tinygpt.model import GPT, KVCache
from tinygpt.model import device as devices
from tinygpt.training.optim import NORMUON_BETA2, MuonAdamW, build_optimizer, plan_groups
from tinygpt.training.presets import resolve_options
from tinygpt.training.schedule import horizon_free, lr_at
from tinygpt.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
SHAPE = dict(vocab_size=40, block_size=24, n_layer=2, n_head=4, n_embd=32)


def model_config(arch: str, **change) -> ModelConfig:
    return recipe_config(arch, **{**SHAPE, **change})


def make(arch: str = "modern", mode: str = "sdpa", seed: int = 0, **change) -> GPT:
    return random_gpt(arch, seed, mode, **{**SHAPE, **change})


# -- the architecture ----------------------------------------------------------------------------
def test_modern_model_has_its_pieces_and_gpt2_keeps_its_own():
    from torch import nn

    from tinygpt.model.layers import NoRotation, ReLUSquared, Rotary

    modern, old = make("modern"), make("gpt2")
    assert modern.wpe is None and isinstance(modern.blocks[0].attn.rotary, Rotary)
    assert modern.lm_head.weight is not modern.wte.weight
    assert isinstance(modern.blocks[0].ln_1, nn.RMSNorm) and isinstance(modern.ln_emb, nn.RMSNorm)
    assert isinstance(modern.blocks[0].attn.qk_norm, nn.RMSNorm)
    assert old.wpe is not None and isinstance(old.blocks[0].attn.rotary, NoRotation)
    assert isinstance(old.ln_emb, nn.Identity) and isinstance(
        old.blocks[0].attn.qk_norm, nn.Identity
    )
    assert old.lm_head.weight is old.wte.weight
    # Modules are picked once from the config: no recipe string is looked at in forward.
    mlp = GPT(model_config("modern", activation="relu2")).blocks[0].mlp
    assert isinstance(mlp.act, ReLUSquared)
    x = torch.randn(3, 32)
    relu2 = mlp.c_proj(torch.relu(mlp.c_fc(x)) ** 2)
    torch.testing.assert_close(mlp(x), relu2)
    default = GPT(model_config("modern"))  # GELU and GPT-2's init measured better here
    assert default.blocks[0].attn.c_proj.weight.abs().sum() > 0
    assert isinstance(default.blocks[0].mlp.act, nn.GELU)
    assert default.config.activation == "gelu" and not hasattr(default.config, "zero_init_proj")
    assert ModelConfig().arch == "modern" and model_config("gpt2").arch == "gpt2"
    assert model_config("modern", qk_norm=False).arch == "custom"


def test_rotary_makes_scores_depend_on_distance_only():
    # The same two tokens at another absolute offset give the same q·k once rotated.
    from tinygpt.model import run_with_cache

    model = make("modern")
    # The same token everywhere: before the rotation every position has the same q and k.
    _, cache = run_with_cache(model, torch.full((1, 24), 7), lambda n: "hook_rot_" in n)
    q, k = cache["blocks.0.attn.hook_rot_q"], cache["blocks.0.attn.hook_rot_k"]
    near = (q[0, :, 5] * k[0, :, 3]).sum(-1)
    far = (q[0, :, 20] * k[0, :, 18]).sum(-1)
    torch.testing.assert_close(near, far, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(near, (q[0, :, 20] * k[0, :, 3]).sum(-1))


@pytest.mark.parametrize("mode", ["sdpa", "manual"])
def test_rotary_kv_cache_in_chunks_matches_full_forward(mode):
    model = make("modern", mode)
    x = torch.randint(0, 40, (2, 24))
    full, _ = model(x)
    cache = KVCache(model.config, 2, torch.device("cpu"), torch.float32)
    parts = [model(x[:, a:b], cache=cache)[0] for a, b in ((0, 5), (5, 6), (6, 17), (17, 24))]
    torch.testing.assert_close(torch.cat(parts, dim=1), full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("attention", ["sdpa", "manual"])
def test_rotary_greedy_cached_equals_uncached_across_window_jumps(attention):
    from tinygpt.config.sample import SampleConfig
    from tinygpt.sampling import stream_tokens

    model = make("modern", attention, block_size=12)
    greedy = SampleConfig(max_new_tokens=50, temperature=0)  # 50 > block 12: several jumps
    cached = list(stream_tokens(model, [1, 2, 3], greedy))
    greedy.kv_cache = False
    # Uncached, every step is a full forward of the window (rotary positions restart at its
    # start, which changes nothing: they are relative); the cache must pick the same tokens.
    assert cached == list(stream_tokens(model, [1, 2, 3], greedy))
    assert len(set(cached)) > 1  # not a degenerate constant stream


def test_soft_capped_logits_stay_inside_the_cap():
    model = make("modern")
    with torch.no_grad():
        model.lm_head.weight.mul_(1000)
    logits, _ = model(torch.randint(0, 40, (1, 24)))
    assert logits.abs().max() <= model.config.logit_softcap  # tanh saturates, never exceeds
    assert logits.abs().max() > 0.9 * model.config.logit_softcap


# -- optimizer and schedule ------------------------------------------------------------------
def muon_steps(make_optimizer, weights, grads, steps=3):
    params = [torch.nn.Parameter(w.clone()) for w in weights]
    opt = make_optimizer(params)
    for _ in range(steps):
        for p, g in zip(params, grads, strict=True):
            p.grad = g.clone()
        opt.step()
    return [p.detach().clone() for p in params], opt


MUON_SHAPES = [(48, 16), (16, 64), (32, 32), (48, 16), (32, 32), (32, 32)]


@pytest.mark.parametrize(
    "batched, dtype", [(False, torch.float32), (True, torch.bfloat16), (True, torch.float32)]
)
def test_muon_matches_torch_muon_up_to_bfloat16_rounding(batched, dtype):
    torch.manual_seed(0)
    weights = [torch.randn(s) for s in MUON_SHAPES]
    grads = [torch.randn_like(w) for w in weights]
    options = dict(lr=0.05, weight_decay=0.1, momentum=0.9)
    theirs, _ = muon_steps(lambda p: torch.optim.Muon(p, **options), weights, grads)
    ours, opt = muon_steps(
        lambda p: Muon(p, batched=batched, ns_dtype=dtype, **options), weights, grads
    )
    for mine, torch_s, start in zip(ours, theirs, weights, strict=True):
        moved = (torch_s - start).norm()
        assert (mine - torch_s).norm() < 0.02 * moved  # bf16 has ~3 significant digits
        assert moved > 0.1
    # The same state as torch's: either resumes from the other's checkpoint.
    assert set(opt.state_dict()["state"][0]) == {"momentum_buffer"}


def test_batched_newton_schulz_equals_one_matrix_at_a_time():
    torch.manual_seed(1)
    weights = [torch.randn(s) for s in MUON_SHAPES]
    grads = [torch.randn_like(w) for w in weights]

    def run(batched):
        return muon_steps(
            lambda p: Muon(p, batched=batched, ns_dtype=torch.float32, lr=0.05), weights, grads
        )[0]

    for a, b in zip(run(True), run(False), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_a_resume_keeps_the_newton_schulz_form_its_run_trained_with(
    monkeypatch: pytest.MonkeyPatch,
):
    from tinygpt.training import muon

    def optimizer(form: tuple[bool, torch.dtype]) -> MuonAdamW:
        monkeypatch.setattr(muon, "newton_schulz_for", lambda device: form)
        return build_optimizer(random_gpt("modern", 0), TrainConfig(), torch.device("cpu"))

    saved = optimizer((True, torch.bfloat16)).state_dict()
    assert saved["newton_schulz"] == [True, "bfloat16"]
    monkeypatch.setattr(devices, "cpu_has_bfloat16", lambda: True)
    resumed = optimizer((True, torch.float32))  # what this process would choose
    resumed.load_state_dict(saved)
    assert (resumed.batched, resumed.ns_dtype) == (True, torch.bfloat16)
    # Where bfloat16 is emulated (20x slower) the resume stays on float32.
    monkeypatch.setattr(devices, "cpu_has_bfloat16", lambda: False)
    resumed = optimizer((False, torch.float32))
    resumed.load_state_dict(saved)
    assert (resumed.batched, resumed.ns_dtype) == (False, torch.float32)
    older = {k: v for k, v in saved.items() if k != "newton_schulz"}  # saved before the key
    resumed = optimizer((True, torch.float32))
    resumed.load_state_dict(older)
    assert (resumed.batched, resumed.ns_dtype) == (True, torch.float32)


def test_muon_resumes_from_torch_muon_state():
    torch.manual_seed(2)
    weights = [torch.randn(s) for s in MUON_SHAPES[:3]]
    grads = [torch.randn_like(w) for w in weights]
    _, theirs = muon_steps(lambda p: torch.optim.Muon(p, lr=0.05), weights, grads, steps=1)
    params = [torch.nn.Parameter(w.clone()) for w in weights]
    ours = Muon(params, batched=False, ns_dtype=torch.float32, lr=0.05)
    ours.load_state_dict(theirs.state_dict())
    for p, buf in zip(params, theirs.state.values(), strict=True):
        assert torch.equal(ours.state[p]["momentum_buffer"], buf["momentum_buffer"])


def test_normuon_evens_out_each_neurons_step_at_muons_norm():
    torch.manual_seed(3)
    weights = [torch.randn(s) for s in MUON_SHAPES]
    grads = [torch.randn_like(w) for w in weights]

    def first_step(**extra):
        moved, opt = muon_steps(
            lambda p: Muon(
                p, batched=False, ns_dtype=torch.float32, lr=0.05, weight_decay=0, **extra
            ),
            weights,
            grads,
            steps=1,
        )
        return [m - w for m, w in zip(moved, weights, strict=True)], opt

    plain, _ = first_step()
    evened, opt = first_step(normuon_beta2=0.95)
    for muon_step, step in zip(plain, evened, strict=True):
        # The same size of step as Muon's, spread evenly over the neurons (rows): on the first
        # step each row's running mean square is its own, so every row ends the same length.
        torch.testing.assert_close(step.norm(), muon_step.norm())
        rows = step.norm(dim=1)
        torch.testing.assert_close(rows, rows.mean().expand_as(rows))
        assert muon_step.norm(dim=1).std() > 0.01 * rows.mean()  # Muon's rows were not even
    second = opt.state_dict()["state"][0]["neuron_second_moment"]
    assert second.shape == (MUON_SHAPES[0][0], 1)  # one number a neuron


def test_runs_saved_before_normuon_resume_with_torchs_muon():
    assert RunConfig.from_dict({"model": {"position": "rope"}, "train": {}}).train.normuon is False
    assert RunConfig().train.normuon is True  # the modern recipe's
    assert RunConfig.from_dict({"model": {}, "train": {}}).train.normuon is False  # gpt2 recipe


def test_runs_saved_before_the_batch_warmup_resume_with_one_update_a_step():
    old = RunConfig.from_dict({"model": {"position": "rope"}, "train": {}})
    assert old.train.batch_warmup_steps == 0
    assert RunConfig().train.batch_warmup_steps == 400  # the modern recipe's
    assert RunConfig.from_dict({"model": {}, "train": {}}).train.batch_warmup_steps == 0  # gpt2


def test_optimizer_groups_by_role_with_their_own_rates():
    model = make("modern")
    cfg = TrainConfig(lr=0.004, matrix_lr=0.03, embed_lr=0.5, weight_decay=0.1)
    opts = build_optimizer(model, cfg, torch.device("cpu"))
    roles = {g.role: g for g in opts.groups}
    assert set(roles) == {"matrices", "embeddings", "head"}
    assert (roles["matrices"].optimizer, roles["matrices"].peak_lr) == ("muon", 0.03)
    assert roles["embeddings"].peak_lr == 0.5 and roles["embeddings"].weight_decay == 0
    assert sum(g.parameters for g in opts.groups) == sum(p.numel() for p in model.parameters())
    # One optimizer, a kind per group: Muon's groups first, then AdamW's
    assert [g["kind"] for g in opts.param_groups] == ["muon", "adamw", "adamw"]
    opts.set_lr(0.002, cfg.lr)  # half way down the curve: every group at half its peak
    assert sorted(g["lr"] for g in opts.param_groups) == pytest.approx([0.002, 0.015, 0.25])
    gpt2 = build_optimizer(make("gpt2"), TrainConfig(optimizer="adamw"), torch.device("cpu"))
    assert {g["kind"] for g in gpt2.param_groups} == {"adamw"}


@pytest.mark.parametrize("fused", [True, False])
def test_one_optimizer_steps_as_torchs_adamw_and_tinygpts_muon_would(fused):
    # The one object runs the functional AdamW on its own state: bit for bit what
    # torch.optim.AdamW does over those groups, as Muon's groups do what tinygpt's Muon class
    # does; its groups and state hold what the two optimizers' would.
    cfg = TrainConfig()
    model, reference = make("modern", seed=3), make("modern", seed=3)
    opt = build_optimizer(model, cfg, torch.device("cpu"))
    for group in opt.param_groups:
        if group["kind"] == "adamw":
            group["fused"] = fused

    def groups(kind: str) -> list[dict]:
        plan = plan_groups(reference, cfg)
        return [
            {"params": ps, "lr": i.peak_lr, "weight_decay": i.weight_decay}
            for i, ps in plan
            if i.optimizer == kind
        ]

    theirs = [
        Muon(
            groups("muon"),
            batched=opt.batched,
            ns_dtype=opt.ns_dtype,
            momentum=cfg.momentum,
            normuon_beta2=NORMUON_BETA2,  # the default recipe's NorMuon
        ),
        torch.optim.AdamW(groups("adamw"), betas=(cfg.beta1, cfg.beta2), fused=fused),
    ]
    for step in range(3):
        x = torch.randint(0, 40, (2, 24), generator=torch.Generator().manual_seed(step))
        for net, steppers in ((model, [opt]), (reference, theirs)):
            net(x, x)[1].backward()
            for stepper in steppers:
                stepper.step()
                stepper.zero_grad()
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(a, b)
    tinygpts = ("params", "kind", "peak_lr")
    mine = [{k: v for k, v in g.items() if k not in tinygpts} for g in opt.param_groups]
    assert mine == [
        {k: v for k, v in g.items() if k != "params"} for t in theirs for g in t.param_groups
    ]
    their_states = [s for t in theirs for s in t.state_dict()["state"].values()]
    for a, b in zip(opt.state_dict()["state"].values(), their_states, strict=True):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_training_without_compile_never_imports_the_compiler_stack(small_text, tmp_path):
    # torch's Optimizer methods import torch._dynamo when first called (1-4 s of a run's
    # start-up); a run that compiles nothing builds, steps, saves and resumes without it.
    code = (
        "import sys, tinygpt; from tests.conftest import TINY; "
        f"run = dict(TINY, out_dir={str(tmp_path / 'run')!r}, compile=False); "
        f"tinygpt.train({str(small_text)!r}, **dict(run, max_steps=2, eval_every=2)); "
        f"tinygpt.train({str(small_text)!r}, **dict(run, max_steps=4, resume=True)); "
        "print(sorted(m for m in sys.modules if m.startswith('torch._dynamo'))[:1])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_grad_scaler_steps_every_kind_of_group_or_none():
    # The scaler unscales and steps the one optimizer: an overflow in Muon's matrices skips
    # AdamW's groups too (two optimizers stepped apart would let one of them move).
    model = make("modern")
    opt = build_optimizer(model, TrainConfig(), torch.device("cpu"))
    scaler = torch.amp.GradScaler("cpu", init_scale=16.0)

    def step(overflow: bool) -> list[bool]:
        before = [p.detach().clone() for p in model.parameters()]
        _, loss = model(*[torch.randint(0, 40, (2, 24))] * 2)
        scaler.scale(loss).backward()
        if overflow:
            opt.param_groups[0]["params"][0].grad.fill_(math.inf)
        scaler.unscale_(opt)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad()
        return [not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)]

    assert opt.param_groups[0]["kind"] == "muon"
    assert not any(step(overflow=True)) and scaler.get_scale() == 8.0
    assert all(step(overflow=False))


def test_a_checkpoint_holds_one_optimizer_state(tiny_run):
    # One torch-style state dict, a kind per group, and Muon's iteration form (older checkpoints'
    # two shapes still load: tests/test_checkpoint_fixtures.py); Python's random is not saved.
    state = open_checkpoint(tiny_run(max_steps=2, eval_every=2).out_dir).load_state()
    assert set(state["optimizer"]) == {"state", "param_groups", "newton_schulz"}
    kinds = [g["kind"] for g in state["optimizer"]["param_groups"]]
    assert kinds[0] == "muon" and set(kinds[1:]) == {"adamw"}
    assert "python_rng" not in state


def test_wsd_schedule_warms_up_holds_then_decays_linearly_to_min_lr():
    cfg = TrainConfig(lr=1.0, min_lr=0.1, warmup_steps=10, max_steps=100, decay_fraction=0.4)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == 1.0 and lr_at(59, cfg) == 1.0
    assert lr_at(60, cfg) < 1.0
    assert lr_at(99, cfg) == pytest.approx(0.1)
    assert all(lr_at(s, cfg) > lr_at(s + 1, cfg) for s in range(60, 99))
    assert horizon_free(cfg, 100) == 60
    # The rate before the decay does not depend on the total: re-planning is harmless.
    assert all(lr_at(s, cfg, 100) == lr_at(s, cfg, 5000) for s in range(60))
    cosine = TrainConfig(lr=1.0, min_lr=0.1, warmup_steps=10, max_steps=100, schedule="cosine")
    assert horizon_free(cosine, 100) == 10


@pytest.mark.parametrize("schedule", ["wsd", "cosine"])
def test_max_time_plans_the_schedule_to_end_at_min_lr(tiny_run, monkeypatch, schedule):
    use_clock(monkeypatch, FakeClock(0.01))  # ~5 readings per step: ~20 steps a second
    result = tiny_run(
        max_steps=100000, max_time=3.0, eval_every=1000, min_lr=1e-4, schedule=schedule
    )
    assert 20 < result.step < 100000 and result.stopped_by_time  # the budget ended the run
    cfg = open_checkpoint(result.out_dir).config.train
    assert cfg.max_steps == result.step  # the plan is recorded: a resume follows it
    last = result.metrics[-1]["lr"]  # the rate of the last step taken
    if schedule == "wsd":
        assert last == pytest.approx(1e-4)
    else:  # the gpt2 cosine (unchanged, bit-for-bit) lands on min_lr one step after the last
        assert last == pytest.approx(lr_at(result.step - 1, cfg)) and last < 1.1e-4
        assert lr_at(result.step, cfg) == pytest.approx(1e-4)


def test_max_time_evaluates_by_the_clock_and_anneals_at_the_deadline_on_a_slowing_machine(
    tiny_run, monkeypatch
):
    clock, real_step = FakeClock(0.01), Trainer.train_step

    def slower_after_a_while(self):
        if clock.now > 2.0:  # halfway: the machine slows to a third of its speed
            clock.now += 0.1
        return real_step(self)

    use_clock(monkeypatch, clock)
    monkeypatch.setattr(Trainer, "train_step", slower_after_a_while)
    result = tiny_run(max_steps=100000, max_time=4.0, eval_every=None, min_lr=1e-4)
    assert result.stopped_by_time and result.metrics[-1]["lr"] == pytest.approx(1e-4)
    # 8 evaluations spread over the budget (one every 0.5 s), then the final one
    assert 8 <= len(result.metrics) <= 9, [r["step"] for r in result.metrics]
    assert clock.now <= 4.0 + 0.5


def slow_evaluations(monkeypatch: pytest.MonkeyPatch, seconds: float) -> FakeClock:
    """A steady clock (about 20 steps a second) on which each evaluation takes ``seconds``."""
    clock, real_evaluate = FakeClock(0.01), Trainer.evaluate

    def slow_evaluate(self, *args, **kwargs):
        clock.now += seconds
        return real_evaluate(self, *args, **kwargs)

    use_clock(monkeypatch, clock)
    monkeypatch.setattr(Trainer, "evaluate", slow_evaluate)
    return clock


def test_slow_evaluations_are_spaced_to_take_a_small_share_of_the_budget(tiny_run, monkeypatch):
    """Evaluations here cost 0.05 s each of a 4 s budget that plans one every 0.5 s: 8 would
    take 10% of it. After the first they come 50 evaluations' time apart (EVAL_SHARE), and
    the plan, pricing those, still ends the schedule at the deadline."""
    clock = slow_evaluations(monkeypatch, 0.05)
    result = tiny_run(max_steps=100000, max_time=4.0, eval_every=None, min_lr=1e-4)
    assert result.stopped_by_time and result.metrics[-1]["lr"] == pytest.approx(1e-4)
    # the first at 0.5 s, the next about 3 s later, then the final one
    assert 2 <= len(result.metrics) <= 3, [r["step"] for r in result.metrics]
    assert clock.now <= 4.0 + 0.5


def test_max_time_never_plans_past_max_steps(tiny_run):
    result = tiny_run(max_steps=12, max_time=600.0, eval_every=6, min_lr=0.0)
    assert result.step == 12 and not result.stopped_by_time
    assert result.metrics[-1]["lr"] == 0.0


def test_resume_with_muon_is_bitwise_exact(tiny_run, monkeypatch):
    options = dict(dropout=0.1, max_steps=24, eval_every=8)
    full = tiny_run("full", **options)
    assert full.metrics and open_checkpoint(full.out_dir).config.train.optimizer == "muon"
    ctrl_c_after(monkeypatch, 11)
    cut = tiny_run("split", **options)
    monkeypatch.undo()
    assert cut.interrupted and cut.step == 11
    resumed = tiny_run("split", resume=True, **options)
    assert [m["train_loss"] for m in full.metrics] == [m["train_loss"] for m in resumed.metrics]
    a = open_checkpoint(full.out_dir).load_model("cpu").state_dict()
    b = open_checkpoint(resumed.out_dir).load_model("cpu").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # Negative control: the same resume without Muon's momentum buffers ends elsewhere.
    ctrl_c_after(monkeypatch, 11)
    tiny_run("lost", **options)
    monkeypatch.undo()
    real_load = MuonAdamW.load_state_dict

    def forget_muon(self, state):
        real_load(self, state)
        for group in self.param_groups:
            if group["kind"] == "muon":  # its momentum is gone
                for p in group["params"]:
                    self.state.pop(p, None)

    monkeypatch.setattr(MuonAdamW, "load_state_dict", forget_muon)
    lost = tiny_run("lost", resume=True, **options)
    c = open_checkpoint(lost.out_dir).load_model("cpu").state_dict()
    assert not all(torch.equal(a[k], c[k]) for k in a)


# -- recipes as options, old runs ------------------------------------------------------------
def test_arch_option_expands_to_its_switches_and_explicit_flags_win():
    assert resolve_options(None, None, {"arch": "gpt2"})["position"] == "learned"
    assert resolve_options(None, None, {"arch": "gpt2"})["optimizer"] == "adamw"
    mixed = resolve_options(None, None, {"arch": "gpt2", "optimizer": "muon"})
    assert mixed["optimizer"] == "muon" and mixed["norm"] == "layernorm"
    with pytest.raises(UsageError, match="arch must be one of"):
        resolve_options(None, None, {"arch": "llama"})


def test_gpt2_recipe_is_todays_defaults_and_is_recorded(tiny_run):
    result = tiny_run("old", arch="gpt2")
    saved = json.loads((result.out_dir / "config.json").read_text())
    assert saved["model"]["arch"] == "gpt2"
    train = saved["train"]
    assert (train["optimizer"], train["schedule"], train["lr"], train["min_lr"]) == (
        "adamw",
        "cosine",
        1e-3,
        1e-4,
    )
    assert json.loads((tiny_run("new").out_dir / "config.json").read_text())["model"]["arch"] == (
        "modern"
    )


def test_config_json_without_switches_reads_as_gpt2():
    run = RunConfig.from_dict({"model": {"n_layer": 2}, "train": {"lr": 5e-4}})
    assert run.model.arch == "gpt2" and run.train.optimizer == "adamw"
    assert run.train.schedule == "cosine" and run.train.lr == 5e-4


@pytest.mark.slow
def test_export_refuses_a_modern_model_in_one_line(tiny_run, tmp_path):
    result = tiny_run()
    proc = run_in_process("export", str(tmp_path / "hf"), "-c", str(result.out_dir))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "can't be exported as GPT-2" in proc.stderr
    assert "--arch gpt2" in proc.stderr and not (tmp_path / "hf").exists()


# -- inspecting a modern model ---------------------------------------------------------------
def test_explain_walks_through_qk_norm_and_the_rotation():
    from rich.console import Console

    from tinygpt.analysis.capture import capture_attention
    from tinygpt.analysis.explain import explain
    from tinygpt.views.head_explanation import explanation

    model = make("modern", "manual")
    run = capture_attention(model, list(range(12)), [str(i) for i in range(12)])
    cap = run.captures[1]
    # The captured q, k are the normalised, rotated ones that attention used: softmax(q·k/√d)
    # recomputed from them gives every head's weights.
    for h, i in itertools.product(range(4), range(12)):
        assert explain(model, run, 1, h, i).weights_match_model, (h, i)
    e = explain(model, run, layer=1, head=2, query=9)
    assert e.weights_match_model and e.qk_norm and e.rotary
    assert e.q_norm == pytest.approx(8**0.5, rel=1e-3)  # unit RMS over head_dim 8
    assert e.projected_q_norm != pytest.approx(e.q_norm, rel=1e-2)
    # 'unrotated' is q·k from the normalised, unrotated vectors; the rotation changes scores
    # except for the key at the query's own position (distance 0: rotation by equal angles).
    attn = model.blocks[1].attn
    qn = attn.qk_norm(cap.q_projected[0, 2, 9])
    kn = attn.qk_norm(cap.k_projected[0, 2, :10])
    assert e.unrotated_scores == pytest.approx((kn @ qn).tolist(), abs=1e-4)
    assert e.unrotated_scores[9] == pytest.approx(e.raw_scores[9], abs=1e-4)
    assert e.unrotated_scores[0] != pytest.approx(e.raw_scores[0], abs=1e-3)
    console = Console(width=100, record=True, color_system=None)
    console.print(explanation(e, run.tokens, model.config.n_embd))
    text = console.export_text()
    assert "QK-norm" in text and "RoPE" in text and "unrotated" in text
    assert "7. output o" in text  # the two extra steps renumber the walk
    gpt2 = make("gpt2", "manual")
    plain = explain(gpt2, capture_attention(gpt2, [1, 2, 3], ["a", "b", "c"]), 0, 0, 2)
    assert not plain.rotary and plain.unrotated_scores is None


@pytest.mark.slow
def test_inspect_attention_on_a_modern_checkpoint(tiny_run, tmp_path):
    result = tiny_run()
    proc = run_in_process(
        "inspect-attention", "-c", str(result.out_dir), "-p", "First Citizen:",
        "--layer", "1", "--head", "0", "--explain", "--json-file", str(tmp_path / "a.json"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "RoPE" in proc.stdout and "weights equal the model's own softmax" in proc.stdout
    saved = json.loads((tmp_path / "a.json").read_text())
    assert len(saved["attention"]) == 2


def test_max_time_plan_pays_for_the_evaluations(tiny_run, monkeypatch):
    # Evaluations that cost as much as 25 steps each must not push the run past the deadline.
    clock = slow_evaluations(monkeypatch, 1.0)
    result = tiny_run(max_steps=100000, max_time=8.0, eval_every=20, min_lr=1e-4)
    assert result.metrics[-1]["lr"] == pytest.approx(1e-4)  # annealed, not cut off
    assert clock.now <= 8.0 + 1.0  # the deadline, give or take the last reading
    assert open_checkpoint(result.out_dir).config.train.max_steps == result.step
