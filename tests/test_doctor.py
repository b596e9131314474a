"""``tinygpt doctor``: the machine's facts, and a device comparison that can fail."""

from __future__ import annotations

import functools
import json

import pytest
import torch

from tests.conftest import one_line_error, run_main


@pytest.fixture(autouse=True)
def short_speed_measurement(monkeypatch: pytest.MonkeyPatch) -> None:
    """The speed figure's second of training, cut to a twentieth: these tests check that it is
    measured and shown, not what it is."""
    from tinygpt.doctor import proof

    monkeypatch.setattr(proof, "speed", functools.partial(proof.speed, seconds=0.05))


def test_doctor_says_what_it_uses_and_proves_the_cpu():
    code, out, err = run_main("doctor", "--device", "cpu", "--json")
    assert code == 0, err
    report = json.loads(out)
    names = {f["name"] for f in report["facts"]}
    assert {"torch", "device", "precision", "attention", "compile", "threads"} <= names
    assert {"tiktoken cache", "token cache", "checkpoints", "chromium"} <= names
    assert report["ok"] and len(report["checks"]) == 4 and all(c["ok"] for c in report["checks"])
    assert report["tokens_per_sec"]["train"] > 0 and report["tokens_per_sec"]["sample"] > 0


@pytest.mark.parametrize(
    ("native", "pays", "dtype", "precision", "why"),
    [
        (True, True, "auto", "bfloat16", "timed faster"),
        (True, False, "auto", "float32", "no faster"),
        (False, False, "auto", "float32", "no native bf16"),
        (True, True, "float32", "float32", "--dtype"),
    ],
)
def test_doctor_says_why_the_cpu_trains_in_its_precision(
    monkeypatch: pytest.MonkeyPatch, native: bool, pays: bool, dtype: str, precision: str, why: str
):
    from tinygpt.doctor import machine
    from tinygpt.model import device

    monkeypatch.setattr(device, "cpu_has_bfloat16", lambda: native)
    monkeypatch.setattr(device, "cpu_bfloat16_pays", lambda: pays)
    facts = {f.name: f for f in machine.facts(torch.device("cpu"), dtype)}
    assert facts["precision"].value == precision and why in facts["precision"].note


def test_a_device_that_computes_other_numbers_is_caught():
    # CPU against CPU with the device copy's weights nudged: what a wrong backend looks like.
    from tinygpt.doctor.proof import prove

    assert all(c.ok for c in prove(torch.device("cpu"), torch.float32))
    wrong = [c.name for c in prove(torch.device("cpu"), torch.float32, perturb=0.01) if not c.ok]
    assert {"logits", "attention weights", "one training step"} <= set(wrong)


def test_a_wrong_device_is_one_line_naming_what_to_pass(monkeypatch):
    from tinygpt.doctor import proof

    real = proof.prove
    monkeypatch.setattr(proof, "prove", lambda d, t, **k: real(d, t, perturb=0.01))
    code, _, err = run_main("doctor", "--device", "cpu")
    line = one_line_error(code, err, (1,))
    assert "cpu computes different numbers from the CPU" in line and "--device cpu" in line


@pytest.mark.parametrize(
    ("env", "value", "note"),
    [
        ({}, "tiktoken's default", "downloads gpt2 on first use"),
        ({"TIKTOKEN_CACHE_DIR": ""}, "off", "is empty"),  # tiktoken's switch for no cache
        ({"DATA_GYM_CACHE_DIR": "{tmp}"}, "{tmp}", "DATA_GYM_CACHE_DIR"),
        ({"TIKTOKEN_CACHE_DIR": "{tmp}/none"}, "{tmp}/none", "no such folder"),
    ],
)
def test_doctor_reads_the_tiktoken_cache_as_tiktoken_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path, env: dict[str, str], value: str, note: str
):
    from tinygpt.doctor.machine import tiktoken_cache

    for name in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    for name, text in env.items():
        monkeypatch.setenv(name, text.format(tmp=tmp_path))
    fact = tiktoken_cache()
    assert fact.value == value.format(tmp=tmp_path) and note in fact.note


def test_doctor_counts_checkpoints_not_folders_named_like_their_files(tmp_path):
    from tinygpt.doctor.machine import _runs

    (tmp_path / "checkpoints" / "x" / "manifest.json").mkdir(parents=True)
    (tmp_path / "checkpoints" / "y").mkdir()
    (tmp_path / "checkpoints" / "y" / "manifest.json").write_text("{}")
    assert _runs(tmp_path / "checkpoints") == "1 run"
    assert _runs(tmp_path / "none") == "none yet"
