"""Head snapshots: recorded at each evaluation of a small model, opt-in where the probe is big."""

from __future__ import annotations

import json

import pytest

from tests.conftest import TINY
from tinygpt.analysis.snapshot import AUTO_SNAPSHOT_WEIGHTS, wants_snapshots
from tinygpt.config.model import ModelConfig


def test_snapshots_are_on_for_small_models_and_opt_in_for_big_ones():
    induction = ModelConfig(n_layer=2, n_head=4, n_embd=64, block_size=128)
    gpt2_small = ModelConfig(n_layer=12, n_head=12, n_embd=768, block_size=1024)
    assert wants_snapshots(None, induction) and not wants_snapshots(None, gpt2_small)
    assert 12 * 12 * 1024**2 > AUTO_SNAPSHOT_WEIGHTS >= 2 * 4 * 128**2
    assert wants_snapshots(True, gpt2_small) and not wants_snapshots(False, induction)


@pytest.mark.slow
def test_a_run_records_them_unless_told_not_to(tmp_path, small_text):
    import tinygpt

    def heads(**options) -> list[bool]:
        out = tmp_path / f"run{len(options)}"
        tinygpt.train(
            small_text, out_dir=out, **{**TINY, "max_steps": 10, "eval_every": 5}, **options
        )
        records = (out / "metrics.jsonl").read_text().splitlines()
        return ["heads" in json.loads(line) for line in records]

    assert heads() == [True, True]
    assert heads(head_snapshots=False) == [False, False]


def test_the_trajectory_figure_draws_a_diverged_run_and_skips_empty_snapshots():
    # NaN and infinite losses and scores (a diverged run logs them) stopped --png with
    # 'unexpected ValueError'; a record of no heads stopped the text view ('max() arg is empty')
    from tests.browser import decode_png
    from tinygpt.checkpoint.metrics import valid_record
    from tinygpt.views.trajectory_figure import trajectory_png

    nan, inf = float("nan"), float("inf")
    heads = {"L0H0": {"previous_token": 0.9, "induction": 0.1}, "L1H0": {"induction": 0.5}}
    broken = {"L0H0": {"previous_token": nan, "induction": inf}, "L1H0": {"induction": 0.6}}
    records = [
        {"step": 10, "val_loss": 3.0, "induction_loss": 3.0, "icl_score": 0.1, "heads": heads},
        {"step": 20, "val_loss": nan, "induction_loss": nan, "icl_score": nan, "heads": broken},
        {"step": 30, "val_loss": inf, "induction_loss": inf, "icl_score": 0.0, "heads": heads},
    ]
    assert decode_png(trajectory_png(records)).shape[0] > 100
    assert not valid_record({"step": 5, "val_loss": 1.0, "heads": {}})
