"""tinygpt inspect predictions | attribution | lens | patch, and eval --token-losses: the JSON a
script reads, the files, and one-line errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.browser import decode_png
from tests.conftest import SMALL_TEXT, TINY, one_line_error, run_in_process, run_main
from tinygpt.views.interpret_figures import BAR, FONT_H, LABEL

# Each test runs the CLI (in this process) over a model trained for the module.
pytestmark = pytest.mark.slow

PROMPT = "First Citizen:\nBefore we proceed"
AXIS = LABEL + BAR + 4  # the attribution PNG's zero line, as the figure draws it
CORRUPT = "Farst Cetazen:\nBefore we proceed"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import tinygpt

    root = tmp_path_factory.mktemp("interpret")
    (root / "t.txt").write_text(SMALL_TEXT, encoding="utf-8")
    options = {**TINY, "max_steps": 30, "eval_every": 30, "block_size": 64}
    return tinygpt.train(root / "t.txt", out_dir=root / "ck", **options).out_dir


def cli_json(*args: str) -> dict:
    out = run_in_process(*args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_predictions_json_and_the_losses_of_the_next_tokens(checkpoint: Path, tmp_path: Path):
    doc = cli_json(
        "inspect", "predictions", "-c", str(checkpoint), "-p", PROMPT, "--top", "3", "--json"
    )
    rows = doc["predictions"]
    assert doc["tokens"] == list(PROMPT) and len(rows) == len(PROMPT)
    for i, row in enumerate(rows[:-1]):
        assert row["next"] == PROMPT[i + 1] and len(row["top"]) == 3
        assert row["next_prob"] == pytest.approx(math.exp(-row["loss"]), rel=1e-5)
        assert row["top"][0]["prob"] >= row["top"][-1]["prob"]
    assert rows[-1]["next"] is None
    mean = sum(r["loss"] for r in rows[:-1]) / (len(rows) - 1)
    assert doc["mean_loss"] == pytest.approx(mean)
    # The same losses as eval's on that text (one window: every token predicted once)
    text = tmp_path / "p.txt"
    text.write_text(PROMPT, encoding="utf-8")
    ev = cli_json("eval", str(text), "-c", str(checkpoint), "--json")
    assert ev["loss"] == pytest.approx(mean, rel=1e-5)


def test_predictions_view_and_files(checkpoint: Path, tmp_path: Path):
    png, svg, page = tmp_path / "p.png", tmp_path / "p.svg", tmp_path / "p.html"
    out = run_in_process(
        "inspect",
        "predictions",
        "-c",
        str(checkpoint),
        "-p",
        PROMPT,
        "--png",
        str(png),
        "--svg",
        str(svg),
        "--html",
        str(page),
        env={"COLUMNS": "120"},
    )
    assert out.returncode == 0, out.stderr
    assert "model's top guesses" in out.stdout and "mean" in out.stdout
    pixels = decode_png(png.read_bytes())
    assert pixels.shape[0] > 10 and (pixels[..., 1] < pixels[..., 0]).any()  # reddish tokens
    assert svg.read_text().startswith("<svg") and "<script" not in page.read_text()


def test_attribution_sums_to_the_logit_and_the_lens_ends_at_the_output(checkpoint: Path):
    doc = cli_json(
        "inspect", "attribution", "-c", str(checkpoint), "-p", PROMPT, "--position", "5", "--json"
    )
    a = doc["attribution"]
    assert doc["position"] == 5 and doc["target"] == {
        "id": a["target"],
        "token": "C",
        "source": "next",
    }
    assert sum(s["logit"] for s in a["shares"]) == pytest.approx(a["raw_logit"], abs=1e-4)
    assert a["logit"] == pytest.approx(15 * math.tanh(a["raw_logit"] / 15), abs=1e-4)
    lens = cli_json(
        "inspect", "lens", "-c", str(checkpoint), "-p", PROMPT, "--position", "5", "--json"
    )["lens"]
    assert [r["after"] for r in lens] == ["embed", "L0", "L1"]
    preds = cli_json("inspect", "predictions", "-c", str(checkpoint), "-p", PROMPT, "--json")
    assert lens[-1]["target_prob"] == pytest.approx(preds["predictions"][5]["next_prob"], rel=1e-4)
    # by text, and the last position's default target is the model's top guess
    doc = cli_json(
        "inspect",
        "attribution",
        "-c",
        str(checkpoint),
        "-p",
        PROMPT,
        "--target",
        "e",
        "--position",
        "-1",
        "--json",
    )
    assert doc["target"]["token"] == "e" and doc["target"]["source"] == "given"
    assert doc["position"] == len(PROMPT) - 1
    last = cli_json("inspect", "attribution", "-c", str(checkpoint), "-p", PROMPT, "--json")
    assert last["target"]["id"] == preds["predictions"][-1]["top"][0]["id"]
    assert last["target"]["source"] == "top"


def test_attribution_and_lens_views_show_the_json_figures(checkpoint: Path, tmp_path: Path):
    where = ("-c", str(checkpoint), "-p", PROMPT, "--position", "5")
    a = cli_json("inspect", "attribution", *where, "--json")["attribution"]
    png = tmp_path / "a.png"
    out = run_in_process(
        "inspect", "attribution", *where, "--rows", "3", "--png", str(png), env={"COLUMNS": "120"}
    )
    assert out.returncode == 0, out.stderr
    assert "Direct logit attribution" in out.stdout
    assert f"sum {a['total']:.4f} = the logit before the cap {a['raw_logit']:.4f}" in out.stdout
    for s in a["shares"][:3]:
        assert f"{s['logit']:+.3f}" in out.stdout, s
    assert f"{len(a['shares']) - 3} more" in out.stdout
    # One bar a share (the first 20), its length the share's size against the largest, blue
    # for a positive share and red for a negative one, either side of a one-pixel axis.
    pixels = decode_png(png.read_bytes()).astype(int)
    shares = a["shares"][:20]
    biggest = max(abs(s["logit"]) for s in shares)
    for k, s in enumerate(shares):
        row = pixels[(k + 1) * (FONT_H + 4) + 4 + FONT_H // 2]
        blue = np.flatnonzero((row[:, 2] > 180) & (row[:, 0] < 100))
        red = np.flatnonzero((row[:, 0] > 180) & (row[:, 2] < 100))
        length = round(BAR * abs(s["logit"]) / biggest)
        drawn, other = (blue, red) if s["logit"] >= 0 else (red, blue)
        assert length - 1 <= len(drawn) <= length and len(other) == 0, (k, s)  # the axis: 1 px
        if len(drawn):  # right of the axis for a positive share, left for a negative one
            assert drawn.min() >= AXIS if s["logit"] >= 0 else drawn.max() < AXIS, (k, s)

    lens = cli_json("inspect", "lens", *where, "--json")["lens"]
    out = run_in_process("inspect", "lens", *where, env={"COLUMNS": "120"})
    assert out.returncode == 0, out.stderr
    assert "Logit lens" in out.stdout
    lines = out.stdout.splitlines()
    for row in lens:
        line = next(line for line in lines if line.split()[:1] == [row["after"]])
        figures = f"{row['top_prob']:.3f} {row['target_prob']:.3f} {row['target_rank'] + 1}"
        assert line.split()[-3:] == figures.split(), (line, row)


def test_patching_grids_and_files(checkpoint: Path, tmp_path: Path):
    png, svg = tmp_path / "g.png", tmp_path / "g.svg"
    patch = ("inspect", "patch", "-c", str(checkpoint), "--clean", PROMPT, "--corrupted", CORRUPT)
    doc = cli_json(*patch, "--json")
    t = len(PROMPT)
    assert np.array(doc["heads"]).shape == (2, 2) and np.array(doc["residual"]).shape == (2, t)
    assert np.array(doc["head_positions"]).shape == (2, 2, t)
    assert doc["clean_logprob"] != doc["corrupted_logprob"]
    out = run_in_process(*patch, "--png", str(png), "--svg", str(svg), env={"COLUMNS": "100"})
    assert out.returncode == 0, out.stderr
    assert "each head's output, patched at every position" in out.stdout
    assert decode_png(png.read_bytes()).shape[1] > t * 10
    assert svg.read_text().count("<rect") > 4 * t


def test_patching_two_prompts_over_the_block_names_each_in_its_note(checkpoint: Path):
    # the same note twice ("the prompt has 90 tokens") told neither which prompt was cut
    clean, corrupted = PROMPT * 5, PROMPT * 4 + CORRUPT
    code, _, err = run_main(
        "inspect", "patch", "-c", str(checkpoint), "--clean", clean, "--corrupted", corrupted
    )
    assert code == 0, err
    n = len(clean)
    assert f"note: the clean prompt has {n} tokens; only its last 64 (the block size)" in err
    assert f"note: the corrupted prompt has {n} tokens; only its last 64" in err
    # the lengths are compared before the cut: the two ends of 64 tokens did not line up
    longer = corrupted + "eee"
    code, _, err = run_main(
        "inspect", "patch", "-c", str(checkpoint), "--clean", clean, "--corrupted", longer
    )
    assert f"must have the same number of tokens ({n} and {n + 3})" in one_line_error(code, err)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ["patch", "--clean", "ace", "--corrupted", "aecd"],
            "--clean and --corrupted must have the same number of tokens",
        ),
        (["patch", "--clean", "ace", "--corrupted", "ace"], "nothing to restore"),
        (["attribution", "-p", "ace", "--target", "ac"], "--target 'ac' is 2 tokens"),
        (["attribution", "-p", "ace", "--position", "9"], "--position 9 is outside"),
        (["lens", "-p", "ace", "--target", "#999"], "--target #999: ids go from 0"),
        # a digit int() does not read ('unexpected ValueError'): not an id, so a token's text
        (["lens", "-p", "ace", "--target", "#²"], "--target '#²' is not in the model's"),
        (["attribution", "-p", "ace", "--rows", "0"], "--rows must be at least 1, got 0"),
        # which of the two prompts the vocabulary refused
        (["patch", "--clean", "ace", "--corrupted", "acé"], "--corrupted: the text has 1 char"),
        (["predictions", "-p", ""], "--prompt is empty"),
        (["predictions", "-p", "ace", "--top", "0"], "--top 0 must be between 1"),
    ],
)
def test_bad_input_is_one_line(checkpoint: Path, args: list[str], words: str):
    out = run_in_process("inspect", args[0], "-c", str(checkpoint), *args[1:])
    assert words in one_line_error(out.returncode, out.stderr)


def test_eval_writes_every_token_loss_and_the_most_surprising_spans(checkpoint, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text(SMALL_TEXT[:500] + "z:?z,:z?zFz::?z" + SMALL_TEXT[:300], encoding="utf-8")
    losses_file = tmp_path / "losses.json"
    out = run_in_process(
        "eval", str(text), "-c", str(checkpoint), "--token-losses", str(losses_file)
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(losses_file.read_text())
    losses = doc["token_losses"]
    assert losses[0] is None and len(losses) == len(doc["token_strings"]) == doc["tokens"]
    assert sum(losses[1:]) / (len(losses) - 1) == pytest.approx(doc["loss"], rel=1e-5)
    spans = doc["surprising_spans"]
    means = [s["mean_loss"] for s in spans]
    assert means == sorted(means, reverse=True)
    assert any(set(s["text"]) <= set("z:?,F") for s in spans[:2])  # the junk is the surprise
    for s in spans:
        assert s["text"] == "".join(doc["token_strings"][s["start"] : s["end"]])
        assert s["mean_loss"] == pytest.approx(
            sum(losses[s["start"] : s["end"]]) / (s["end"] - s["start"]), rel=1e-4
        )
    assert "most surprising spans" in out.stdout and spans[0]["text"][:4] in out.stdout
