"""Checkpoints written by earlier versions keep loading (same logits) and resuming (same weights).

Each fixture is a tiny run saved after 3 steps, with what that version computed from it: the
logits of a fixed input, and the weights after resuming to step 6
(``scripts/make_checkpoint_fixture.py`` wrote ``modern_2026_11``; ``legacy_gpt2`` predates the
recipe switches and the script).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import safetensors.torch
import torch

import tinygpt
from tinygpt.checkpoint.store import open_checkpoint

FIXTURES = Path(__file__).parent / "fixtures"
# (fixture, recipe, optimizer) as config.json records them
CASES = [("legacy_gpt2", "gpt2", "adamw"), ("modern_2026_11", "modern", "muon")]
# A few float32 ulps of values near 1: what another torch build may round differently.
FIXTURE_ATOL = 1e-6


@pytest.mark.parametrize(("name", "arch", "optimizer"), CASES)
def test_saved_runs_load_with_identical_logits(name: str, arch: str, optimizer: str):
    ck = open_checkpoint(FIXTURES / name / "checkpoint")
    assert ck.config.model.arch == arch and ck.config.train.optimizer == optimizer
    expected = safetensors.torch.load_file(str(FIXTURES / name / "expected.safetensors"))
    model = ck.load_model("cpu").eval()
    logits = model(expected["idx"])[0]
    # Written under an older torch: kernels may round the last bit otherwise (seen: 3e-8), so
    # "identical" here is within float32 rounding, not bitwise.
    torch.testing.assert_close(logits, expected["logits"], rtol=0, atol=FIXTURE_ATOL)


@pytest.mark.parametrize(("name", "arch", "optimizer"), CASES)
def test_saved_runs_resume_exactly(
    tmp_path: Path, float32_cpu: None, name: str, arch: str, optimizer: str
):
    # float32_cpu: the fixtures were resumed in float32, Muon's Newton-Schulz per matrix too
    # (a CPU with native bfloat16 runs both in bfloat16: other roundings).
    work = tmp_path / name
    shutil.copytree(FIXTURES / name / "checkpoint", work)
    corpus = FIXTURES / "legacy_gpt2" / "corpus.txt"
    tinygpt.train(corpus, out_dir=work, resume=True, max_steps=6)
    expected = safetensors.torch.load_file(str(FIXTURES / name / "expected.safetensors"))
    got = open_checkpoint(work).load_model("cpu").state_dict()
    resumed = {k.removeprefix("resumed."): v for k, v in expected.items() if "resumed." in k}
    assert resumed and resumed.keys() <= got.keys()  # a tied head is saved once
    for key, value in resumed.items():
        torch.testing.assert_close(got[key], value, rtol=0, atol=FIXTURE_ATOL, msg=key)
