"""The repeats corpus, the induction preset, and the phase change it shows.

The end-to-end tests train the README's run (shortened) and check what a person is told to look
for: a previous-token head in layer 0 and an induction head in layer 1, the repeat loss falling
as they appear, ablation of the induction head putting it back up, and --explain pointing at
the token after the earlier copy.
"""

from __future__ import annotations

import json
import math
import os
import re
import string
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.browser import decode_png
from tests.conftest import ROOT, one_line_error, random_gpt, run_in_process, run_main
from tinygpt.analysis.explain import AFTER_COPY, PREVIOUS, SAME, SELF, key_relation
from tinygpt.analysis.labels import parse_head_label
from tinygpt.analysis.probes import (
    default_probe_length,
    induction_sequence,
    line_break_ids,
    repeat_loss,
    repeat_positions,
)
from tinygpt.analysis.snapshot import phase_change, steepest_drop
from tinygpt.config.model import ModelConfig
from tinygpt.data.repeats import RepeatsConfig, records, write_repeats
from tinygpt.data.tokenizer import CharTokenizer
from tinygpt.model import GPT
from tinygpt.training.trainer import Trainer, TrainerCallback


# -- the corpus ------------------------------------------------------------------------------
def _split(line: str, cfg: RepeatsConfig) -> tuple[str, str] | None:
    """(S, F) such that line == S + F + S within the config's ranges, else None."""
    for n in range(cfg.min_length, cfg.max_length + 1):
        s, rest = line[:n], line[n:]
        if rest.endswith(s) and cfg.min_gap <= len(rest) - n <= cfg.max_gap:
            return s, rest[: len(rest) - n]
    return None


def test_each_line_is_a_string_a_gap_and_the_string_again() -> None:
    cfg = RepeatsConfig(alphabet="xyz01", min_length=3, max_length=7, min_gap=2, max_gap=9)
    lines = records(RepeatsConfig(**{**cfg.__dict__, "lines": 500}))
    assert len(lines) == 500
    for line in lines:
        assert set(line) <= set("xyz01")
        assert _split(line, cfg) is not None, line
    # lengths and gaps vary (a fixed offset would teach a fixed-offset head instead)
    lengths = {len(line) for line in lines}
    assert len(lengths) > 8


def test_same_seed_same_file_other_seed_other_file(tmp_path: Path) -> None:
    a = write_repeats(tmp_path / "a.txt", RepeatsConfig(lines=50, seed=3)).read_bytes()
    b = write_repeats(tmp_path / "b.txt", RepeatsConfig(lines=50, seed=3)).read_bytes()
    c = write_repeats(tmp_path / "c.txt", RepeatsConfig(lines=50, seed=4)).read_bytes()
    assert a == b != c
    assert a.count(b"\n") == 50


def test_the_filler_is_unpredictable_uniform_letters() -> None:
    """Characters are drawn uniformly: no letter is much more frequent than another, so only
    the second copy can be predicted."""
    text = "".join(records(RepeatsConfig(lines=3000, seed=1)))
    counts = [text.count(c) for c in string.ascii_lowercase]
    assert max(counts) / min(counts) < 1.15


@pytest.mark.parametrize(
    "args, words",
    [
        (["--min-length", "5", "--max-length", "2"], "--min-length"),
        (["--min-gap", "-1"], "--min-gap"),
        (["--alphabet", "a"], "--alphabet"),
        (["--lines", "0"], "--lines"),
        (["--seed", "-1"], "--seed must be between 0"),  # was the file of --seed 1
        (["--max-length", "100000000"], "(2 x --max-length + --max-gap + 1 = 200,000,025)"),
    ],
)
def test_bad_repeats_options_are_one_line_errors(tmp_path: Path, args, words) -> None:
    code, _, err = run_main("data", "repeats", "--dir", str(tmp_path), *args)
    assert words in one_line_error(code, err, (2,))
    assert not (tmp_path / "repeats.txt").exists()


def test_repeats_options_are_refused_for_a_download(tmp_path: Path) -> None:
    code, _, err = run_main("data", "shakespeare", "--dir", str(tmp_path), "--lines", "5")
    assert "repeats" in one_line_error(code, err, (2,))


def test_data_repeats_writes_the_file_and_says_where(tmp_path: Path) -> None:
    code, out, err = run_main("data", "repeats", "--dir", str(tmp_path), "--lines", "20", "--json")
    assert code == 0, err
    path = Path(json.loads(out)["path"])
    assert path == tmp_path / "repeats.txt"
    assert len(path.read_text().splitlines()) == 20


# -- the probes ------------------------------------------------------------------------------
def test_repeat_positions_mark_the_end_of_a_run_seen_before() -> None:
    x = torch.tensor([[1, 2, 3, 9, 1, 2, 3, 4, 2, 3]])
    found = repeat_positions(x, match=3)[0].tolist()
    # only position 6 ends "1 2 3" a second time; "2 3" at 9 is too short a run
    assert [i for i, f in enumerate(found) if f] == [6]
    assert not repeat_positions(torch.tensor([[5, 5]]), match=3).any()


def test_repeat_loss_is_the_loss_after_repeated_runs_only() -> None:
    model = random_gpt(vocab_size=12, block_size=16, n_layer=1, n_head=2, n_embd=16)
    rows = torch.tensor([[1, 2, 3, 9, 1, 2, 3, 4, 2, 3, 7]])
    from tinygpt.analysis.evaluation import token_losses

    with torch.no_grad():
        expected = float(token_losses(model, rows)[0, 6])
    assert repeat_loss(model, rows) == pytest.approx(expected)
    assert repeat_loss(model, torch.tensor([[1, 2, 3, 4, 5, 6]])) is None


def test_the_induction_probe_never_draws_a_line_break() -> None:
    tok = CharTokenizer(sorted(set("abc\ndef\r")))
    avoid = line_break_ids(tok, tok.vocab_size)
    assert sorted(tok.token_strings(list(avoid))) == ["\n", "\r"]
    for seed in range(20):
        ids = induction_sequence(tok.vocab_size, 6, seed, avoid)
        assert not set(ids) & set(avoid) and ids[:6] == ids[6:]
        assert len(set(ids)) == 6
    model = random_gpt(vocab_size=tok.vocab_size, block_size=32, n_layer=1, n_head=1, n_embd=8)
    assert default_probe_length(model, avoid) == 6


@pytest.mark.parametrize("block_size", [1, 2, 3])
def test_a_block_too_short_for_the_probe_is_one_line(block_size: int) -> None:
    """A block of 1 made every inspect command raise torch's 'Expected tensor for argument #1
    'indices' to have one of the following scalar types'; a block of 2 printed nan losses."""
    from tinygpt.errors import UsageError

    model = random_gpt(vocab_size=30, block_size=block_size, n_layer=1, n_head=1, n_embd=8)
    with pytest.raises(UsageError, match=f"needs a block of 4 tokens.*block of {block_size}"):
        default_probe_length(model)
    model = random_gpt(vocab_size=30, block_size=4, n_layer=1, n_head=1, n_embd=8)
    assert default_probe_length(model) == 2


# -- how a key stands to the query, and the phase change in a log ----------------------------
def test_key_relation_names_the_induction_target() -> None:
    ids = [5, 7, 8, 5]  # query 3 holds 5, which occurred at 0; the token after it is at 1
    assert key_relation(ids, 3, 1) == AFTER_COPY
    assert key_relation(ids, 3, 2) == PREVIOUS
    assert key_relation(ids, 3, 0) == SAME
    assert key_relation(ids, 3, 3) == SELF


def _record(step: int, loss: float, prev: float, ind: float) -> dict:
    heads = {
        "L0H0": {"previous_token": prev, "induction": 0.01},
        "L0H1": {"previous_token": 0.05, "induction": 0.02},
        "L1H0": {"previous_token": 0.02, "induction": ind},
        "L1H1": {"previous_token": 0.02, "induction": ind / 2},
    }
    return {
        "step": step,
        "heads": heads,
        "chance": {"previous_token": 0.06, "induction": 0.03},
        "repeat_loss": loss,
        "induction_loss": loss + 0.3,
    }


def test_phase_change_finds_the_drop_and_the_two_heads() -> None:
    records_ = [
        _record(0, 3.3, 0.05, 0.02),
        _record(100, 3.2, 0.1, 0.05),
        _record(200, 1.5, 0.8, 0.6),
        _record(300, 1.2, 0.9, 0.7),
    ]
    change = phase_change(records_)
    assert (change.drop.start_step, change.drop.end_step) == (100, 200)
    assert change.drop.key == "repeat_loss"
    assert (change.previous_token.head, change.previous_token.step) == ("L0H0", 200)
    assert (change.induction.head, change.induction.step) == ("L1H0", 200)
    assert change.induction.chance == pytest.approx(0.03)
    # no head ever crossing, and a loss that never falls, are said as such
    flat = [_record(s, 3.3, 0.05, 0.02) for s in (0, 100)]
    assert phase_change(flat).previous_token is None and phase_change(flat).induction is None
    assert steepest_drop([_record(0, 3.0, 0, 0), _record(50, 3.1, 0, 0)]) is None
    assert parse_head_label("L12H3") == (12, 3)


def test_nice_ticks_are_round_and_inside_the_range() -> None:
    from tinygpt.views.plot import nice_ticks

    assert nice_ticks(50, 1500) == [500, 1000, 1500]
    assert nice_ticks(0, 1) == [0, 0.25, 0.5, 0.75, 1]
    assert nice_ticks(0, 3.6) == [0, 1, 2, 3]
    assert nice_ticks(2, 2) == [2]


# -- attention-only blocks -------------------------------------------------------------------
def test_attention_only_blocks_have_no_mlp(tmp_path: Path) -> None:
    cfg = dict(vocab_size=20, block_size=16, n_layer=2, n_head=2, n_embd=16)
    full, attn_only = GPT(ModelConfig(**cfg)), GPT(ModelConfig(**cfg, mlp=False))
    assert not any("mlp" in n or "ln_2" in n for n, _ in attn_only.named_parameters())
    per_mlp = sum(p.numel() for p in full.blocks[0].mlp.parameters())
    sizes = [sum(p.numel() for p in m.parameters()) for m in (full, attn_only)]
    assert sizes[0] - sizes[1] == 2 * per_mlp
    x = torch.randint(0, 20, (2, 16))
    assert attn_only(x)[0].shape == (2, 16, 20)


def test_an_attention_only_model_is_saved_loaded_and_not_exported(tiny_run, tmp_path) -> None:
    import tinygpt

    result = tiny_run("attn", mlp=False, max_steps=4, eval_every=4)
    model, _, _ = tinygpt.load(result.out_dir, device="cpu")
    assert model.config.mlp is False and model.blocks[0].mlp is None
    code, _, err = run_main("export", str(tmp_path / "hf"), "-c", str(result.out_dir))
    assert "mlp=False" in one_line_error(code, err)


# -- the README's run, end to end ------------------------------------------------------------
@pytest.fixture(scope="module")
def induction_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README section's commands (fewer steps): a repeats corpus, then the preset."""
    work = tmp_path_factory.mktemp("induction")
    made = run_in_process("data", "repeats", cwd=work)
    assert made.returncode == 0, made.stderr
    trained = run_in_process(
        "train", "data/repeats.txt", "--preset", "induction", "--max-steps", "600", "-q", cwd=work
    )
    assert trained.returncode == 0, trained.stderr
    return work


def _metrics(work: Path) -> list[dict]:
    path = work / "checkpoints" / "repeats" / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_the_preset_grows_a_previous_token_then_an_induction_head(induction_run: Path) -> None:
    change = phase_change(_metrics(induction_run))
    prev, ind = change.previous_token, change.induction
    assert prev is not None and parse_head_label(prev.head)[0] == 0
    assert ind is not None and parse_head_label(ind.head)[0] == 1
    assert ind.score >= 3 * ind.chance and prev.score >= 3 * prev.chance
    # the loss on repeats falls by more than a nat, and the fall is where the heads appear
    drop = change.drop
    assert drop is not None and drop.first - drop.last > 1.0
    assert abs(drop.end_step - ind.step) <= 100
    assert drop.first == pytest.approx(math.log(26), abs=0.15)  # uniform over the alphabet


@pytest.mark.slow
def test_trajectory_shows_the_phase_change_and_draws_it(induction_run: Path) -> None:
    png = induction_run / "trajectory.png"
    out = run_in_process(
        "inspect",
        "trajectory",
        "checkpoints/repeats",
        "--png",
        str(png),
        cwd=induction_run,
        env={"COLUMNS": "160"},
    )
    assert out.returncode == 0, out.stderr
    assert "Phase change" in out.stdout
    assert re.search(r"previous-token head\s+\d+\s+L0H\d scored", out.stdout)
    assert re.search(r"induction head\s+\d+\s+L1H\d scored", out.stdout)
    assert "repeat loss fell fastest" in out.stdout
    pixels = decode_png(png.read_bytes())  # (H, W, 3)
    h = pixels.shape[0]
    for series in ((214, 39, 40), (31, 119, 180), (44, 160, 44)):  # repeat loss, the two heads
        where = np.nonzero((pixels == series).all(-1))
        assert len(where[0]) > 100, series
    # the repeat loss is drawn in the top panel, the head scores in the bottom one
    assert np.nonzero((pixels == (214, 39, 40)).all(-1))[0].max() < h / 2
    assert np.nonzero((pixels == (44, 160, 44)).all(-1))[0].min() > h / 2 - 20


@pytest.mark.slow
def test_ablating_the_induction_head_puts_the_repeat_loss_back_up(induction_run: Path) -> None:
    from tinygpt.analysis import commands

    ind = phase_change(_metrics(induction_run)).induction
    layer, head = parse_head_label(ind.head)
    out = run_in_process(
        "inspect",
        "ablate",
        "-c",
        "checkpoints/repeats",
        "--heads",
        f"{layer}.{head}",
        cwd=induction_run,
    )
    assert out.returncode == 0, out.stderr
    assert "its repeats" in out.stdout
    run = induction_run / "checkpoints" / "repeats"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(induction_run)  # the run's training text is data/repeats.txt, relative
        result = commands.ablation_report(run, [f"{layer}.{head}"], device="cpu")
    assert result["repeat"]["delta"] > 0.3
    assert result["probe"]["delta"] > 0.3
    # the rest of the text, unpredictable either way, moves much less than its repeats
    assert result["text"]["delta"] < result["repeat"]["delta"]


@pytest.mark.slow
def test_explain_on_the_induction_head_points_after_the_earlier_copy(induction_run: Path) -> None:
    from tinygpt.analysis import commands

    ind = phase_change(_metrics(induction_run)).induction
    layer, head = parse_head_label(ind.head)
    report = commands.attention_report(
        induction_run / "checkpoints" / "repeats",
        induction=True,
        layer=layer,
        head=head,
        query="-8",
        explain=True,
        device="cpu",
    )
    e = report.explanation
    assert e.relations[e.top_key] == AFTER_COPY
    out = run_in_process(
        "inspect-attention",
        "-c",
        "checkpoints/repeats",
        "--induction",
        "--explain",
        "--layer",
        str(layer),
        "--head",
        str(head),
        "--query",
        "-8",
        cwd=induction_run,
        env={"COLUMNS": "160"},
    )
    assert out.returncode == 0, out.stderr
    assert "the induction pattern" in out.stdout


@pytest.mark.slow
def test_the_circuit_attribution_lens_and_patching_agree(induction_run: Path) -> None:
    """The causal chain on the README run's model, averaged over 8 random prompts S F S[:10]
    (scripts/induction_circuit.py): the induction head writes the copied letter's logit and its
    output carries it; the previous-token head's output, at the letter after the earlier copy,
    tells the model where to look; the letter appears only after layer 1."""
    metrics = _metrics(induction_run)
    previous = phase_change(metrics).previous_token.head
    # The strongest induction head at the end (several grow; the first announced may not be it)
    final = metrics[-1]["heads"]
    induction = max(final, key=lambda head: final[head].get("induction", 0.0))
    script = ROOT / "scripts" / "induction_circuit.py"
    run = induction_run / "checkpoints" / "repeats"
    proc = subprocess.run(
        [sys.executable, str(script), str(run), "--prompts", "8", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    heads, lens = figures["heads"], figures["lens"]
    others = [h for h in heads if h != induction]
    # the first copy replaced: the induction head's patch restores more than any other head's
    assert all(heads[induction]["copy"] > heads[h]["copy"] for h in others), heads
    assert all(heads[induction]["share"] > heads[h]["share"] for h in others), heads
    # one letter changed: the previous-token head's output after it restores most of the gap
    assert heads[previous]["at"] > 0.5 and heads[previous]["letter"] > 0.5, heads
    assert lens["L0"] < 0.1 < lens["L1"], lens


@pytest.mark.parametrize(
    "alphabet, lengths, gaps",
    [("0123456789", (3, 8), (0, 10)), ("abcdefgh ,.;", (2, 5), (1, 20))],
)
@pytest.mark.slow
def test_the_preset_works_on_other_corpora_of_this_kind(
    tmp_path: Path, alphabet: str, lengths: tuple[int, int], gaps: tuple[int, int]
) -> None:
    """Not only the generator's defaults: other alphabets, string lengths and gaps."""
    from tinygpt import api

    cfg = RepeatsConfig(alphabet, *lengths, *gaps, lines=4000, seed=7)
    data = write_repeats(tmp_path / "other.txt", cfg)
    notes: list[str] = []

    class Notes(TrainerCallback):
        def on_note(self, trainer: Trainer, message: str) -> None:
            notes.append(message)

    api.train(
        data,
        out_dir=tmp_path / "run",
        preset="induction",
        max_steps=500,
        device="cpu",
        callbacks=[Notes()],
    )
    metrics = api.trajectory(tmp_path / "run")
    change = phase_change(metrics)
    assert change.induction is not None and parse_head_label(change.induction.head)[0] == 1
    # the run said so as it happened, once per head and role
    ind = change.induction
    said = f"{ind.head} became an induction head at step {ind.step}"
    assert sum(n.startswith(said) for n in notes) == 1, notes
    assert change.drop is not None and change.drop.first - change.drop.last > 0.5
    # With few letters one token rarely pins down the earlier copy, so layer 0 may split
    # "previous token" over several heads (i-1, i-2): its best head is still far above chance.
    last = metrics[-1]
    prev = max(s["previous_token"] for h, s in last["heads"].items() if h.startswith("L0"))
    assert prev >= 3 * last["chance"]["previous_token"]


def test_the_run_header_names_the_recipe_and_what_differs() -> None:
    from tinygpt.recipe import GPT2
    from tinygpt.training.presets import PRESETS

    shape = {k: v for k, v in PRESETS["induction"].items() if k in ModelConfig.__annotations__}
    assert ModelConfig(**shape).arch_description == "modern, qk_norm=False, attention-only"
    assert ModelConfig().arch_description == "modern"
    gpt2 = GPT2.model_options()
    assert ModelConfig(**gpt2).arch_description == "gpt2"
    assert ModelConfig(**{**gpt2, "position": "rope"}).arch_description == "gpt2, position=rope"
