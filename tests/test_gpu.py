"""The GPU lane: checks that need CUDA, run with ``python -m pytest -m gpu`` on a machine that
has it, and skipped (with the reason) everywhere else. CI has no GPU."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import random_gpt
from tinygpt.config.sample import SampleConfig
from tinygpt.data.tokenizer import CharTokenizer
from tinygpt.sampling import generate_text, make_generator, sample_tokens

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
LETTERS = CharTokenizer([chr(ord("a") + i) for i in range(30)])


def cuda_model(arch="modern"):
    m = random_gpt(arch, vocab_size=30, block_size=32, n_layer=2, n_head=2, n_embd=32)
    return m.to("cuda")


@pytest.mark.parametrize("arch", ["modern", "gpt2"])
def test_graphed_step_samples_what_the_eager_step_samples(arch):
    m = cuda_model(arch)
    cfg = SampleConfig(max_new_tokens=100, seed=1)  # 100 > block 32: replays across jumps

    def tokens(graph):
        gens = [make_generator(torch.device("cuda"), s) for s in (1, 2)]
        return [s.ids for s in sample_tokens(m, [1, 2, 3], cfg, gens, graph=graph)]

    assert tokens(True) == tokens(False)


def test_cached_equals_uncached_on_the_gpu():
    m = cuda_model()
    greedy = SampleConfig(max_new_tokens=80, temperature=0)
    cached = generate_text(m, LETTERS, "abc", greedy).samples
    greedy.kv_cache = False
    assert generate_text(m, LETTERS, "abc", greedy).samples == cached


def test_generator_lives_on_the_gpu_and_batches_equal_single_rows():
    m = cuda_model()
    assert make_generator(torch.device("cuda"), 0).device.type == "cuda"
    batch = generate_text(m, LETTERS, "ab", SampleConfig(max_new_tokens=40, seed=5, num_samples=3))
    alone = [
        generate_text(m, LETTERS, "ab", SampleConfig(max_new_tokens=40, seed=5 + i)).samples[0]
        for i in range(3)
    ]
    assert batch.samples == alone


def test_bench_generate_runs_on_cuda():
    script = Path(__file__).resolve().parents[1] / "scripts" / "bench_generate.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--device", "cuda", "--only", "ac", "--repeats", "1",
         "--new-tokens", "50"],
        capture_output=True, text=True, timeout=600, cwd=script.parent,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "cuda" in proc.stdout and "tok/s" in proc.stdout


def test_batched_bfloat16_muon_on_the_gpu_matches_torch_muon():
    from tests.torch_muon import Muon

    torch.manual_seed(0)
    shapes = [(96, 32), (32, 32), (32, 128), (96, 32), (32, 32)]
    weights = [torch.randn(s, device="cuda") for s in shapes]
    grads = [torch.randn_like(w) for w in weights]

    def run(make):
        params = [torch.nn.Parameter(w.clone()) for w in weights]
        opt = make(params)
        for _ in range(3):
            for p, g in zip(params, grads, strict=True):
                p.grad = g.clone()
            opt.step()
        return params

    theirs = run(lambda p: torch.optim.Muon(p, lr=0.05, weight_decay=0.1))
    ours = run(lambda p: Muon(p, batched=True, ns_dtype=torch.bfloat16, lr=0.05, weight_decay=0.1))
    for a, b, w in zip(ours, theirs, weights, strict=True):
        assert (a - b).norm() < 0.02 * (b - w).norm()


def _train_cli(tmp_path, *args, launcher=()):
    from tests.conftest import MICRO_ARGS, SMALL_TEXT

    (tmp_path / "small.txt").write_text(SMALL_TEXT * 5)
    env = {**os.environ, "TINYGPT_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run(
        [sys.executable, *launcher, "-m", "tinygpt", "train", "small.txt", *MICRO_ARGS,
         "--device", "cuda", "--quiet", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_compiled_max_time_run_plans_past_its_compiling_first_step(tmp_path):
    from tinygpt.checkpoint.store import open_checkpoint

    proc = _train_cli(tmp_path, "--compile", "--max-time", "40", "--eval-every", "100")
    assert proc.returncode == 0, proc.stderr[-4000:]
    ck = open_checkpoint(tmp_path / "checkpoints" / "small")
    assert ck.step > 100  # not frozen at the warm-up by the compiling step's time
    assert ck.config.train.max_steps == ck.step  # ended by the plan, annealed


def test_bf16_autocast_trains_to_a_finite_loss(tmp_path):
    from tinygpt.checkpoint.metrics import read_metrics

    proc = _train_cli(tmp_path, "--dtype", "bfloat16", "--max-steps", "30", "--eval-every", "15")
    assert proc.returncode == 0, proc.stderr[-4000:]
    losses = [m["val_loss"] for m in read_metrics(tmp_path / "checkpoints" / "small")]
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]


def test_torchrun_with_nccl_on_one_rank(tmp_path):
    launcher = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1")
    proc = _train_cli(tmp_path, "--max-steps", "10", "--eval-every", "5", launcher=launcher)
    assert proc.returncode == 0, proc.stderr[-4000:]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_doctor_proves_the_gpu_against_the_cpu(dtype):
    from tinygpt.doctor.proof import prove

    checks = prove(torch.device("cuda"), dtype)
    assert all(c.ok for c in checks), checks
