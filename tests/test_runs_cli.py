"""`tinygpt info`, `runs` and `plot` (tinygpt/cli/runs.py): JSON and tables, one parameter count
everywhere, output without trailing spaces in a pipe, the plots (terminal, SVG, PNG), on a run
trained with train's default corpus."""

from __future__ import annotations

import json
import shutil
import struct
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import pytest

from tests.conftest import (
    SMALL_TEXT,
    TINY,
    TINY_ARGS,
    cli_flags,
    one_line_error,
    run_in_process,
    run_main,
)
from tinygpt.checkpoint.manifest import (
    CONFIG_FILE,
)
from tinygpt.views.plot import png_plot, svg_plot, terminal_plot


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("everyday")
    (root / "data").mkdir()
    (root / "data" / "tinyshakespeare.txt").write_text(SMALL_TEXT)  # stands in for the corpus
    proc = run_in_process(
        "train", *TINY_ARGS, "--quiet", cwd=root
    )  # no FILE: data/tinyshakespeare.txt
    assert proc.returncode == 0, proc.stderr
    return root


@pytest.mark.slow
def test_train_without_file_uses_the_downloaded_corpus(workdir, tmp_path):
    from pathlib import Path

    from tinygpt.checkpoint.store import open_checkpoint

    ck = open_checkpoint(workdir / "checkpoints" / "tinyshakespeare")
    assert Path(ck.config.train.data) == Path("data/tinyshakespeare.txt")
    assert ck.step == TINY["max_steps"]
    proc = run_in_process("train", "--tokenizer", "char", cwd=tmp_path)
    assert proc.returncode == 2 and "tinygpt data shakespeare" in proc.stderr


@pytest.mark.slow
def test_json_on_train_and_plot(tmp_path):
    (tmp_path / "small.txt").write_text(SMALL_TEXT)
    proc = run_in_process(
        "train",
        "small.txt",
        *TINY_ARGS,
        "--max-steps=4",
        "--eval-every=2",
        "--json",
        "--quiet",
        cwd=tmp_path,
    )
    summary = json.loads(proc.stdout)
    assert summary["step"] == 4 and summary["best_val_loss"] > 0 and not summary["interrupted"]
    metrics = json.loads(run_in_process("plot", "--json", cwd=tmp_path).stdout)
    assert [m["step"] for m in metrics] == [2, 4]


@pytest.mark.slow
def test_info_json_and_table(workdir):
    proc = run_in_process("info", "--json", cwd=workdir)
    data = json.loads(proc.stdout)
    assert data["steps"] == TINY["max_steps"] and data["tokenizer"] == "char"
    import torch

    from tinygpt.model.device import resolve_dtype

    picked = str(resolve_dtype("auto", torch.device("cpu"))).removeprefix("torch.")
    assert data["device"] == "cpu" and data["dtype"] == picked  # bfloat16 where it times faster
    assert data["tokens_seen"] == TINY["max_steps"] * TINY["batch_size"] * TINY["block_size"]
    # The default recipe has no position table.
    assert data["parameters"] > 0 and data["position_embedding_parameters"] == 0
    assert data["arch"] == "modern" and data["optimizer_groups"][0]["optimizer"] == "muon"
    table = run_in_process("info", cwd=workdir, env={"NO_COLOR": "1"})
    assert "best val loss" in table.stdout and "\x1b[" not in table.stdout


@pytest.mark.slow
def test_runs_lists_checkpoints(workdir):
    rows = json.loads(run_in_process("runs", "--json", cwd=workdir).stdout)
    assert [r["name"] for r in rows] == ["tinyshakespeare"]
    assert rows[0]["steps"] == TINY["max_steps"]
    table = run_in_process("runs", cwd=workdir, env={"COLUMNS": "80"})
    assert "tinyshakespeare" in table.stdout


def test_runs_under_a_file_is_one_line(tmp_path):
    (tmp_path / "t.txt").write_text("x")  # listed as an empty folder, exit 0
    code, _, err = run_main("runs", "--root", "t.txt", cwd=tmp_path)
    assert one_line_error(code, err, (2,)) == "error: --root t.txt is not a directory"


@pytest.mark.slow
def test_piped_output_has_no_trailing_spaces(workdir):
    prompt = ["--prompt", "All: speak, speak.", "--rollout"]
    for args in (
        ["runs"],
        ["info"],
        ["plot"],
        ["inspect-attention", *prompt],
        ["inspect-attention", *prompt, "--layer", "1", "--head", "0", "--explain"],
    ):
        proc = run_in_process(*args, cwd=workdir)  # stdout is no terminal here, as in a pipe
        assert proc.returncode == 0, proc.stderr
        padded = [line for line in proc.stdout.splitlines() if line.endswith(" ")]
        assert not padded, (args, padded[:3])
        assert len(proc.stdout.splitlines()) > 3


def test_trimmed_lines_keep_spaces_inside_a_line_split_over_writes():
    import io

    from tinygpt.io.console import TrimmedLines

    out = io.StringIO()
    stream = TrimmedLines(out)
    for chunk in ("a table  \n row ", "  ", "\n", "x  ", "y\n  \n"):
        stream.write(chunk)
    assert out.getvalue() == "a table\n row\nx  y\n\n"


@pytest.mark.parametrize("arch", ["modern", "gpt2"])
@pytest.mark.slow
def test_train_runs_and_info_give_one_parameter_count(tmp_path, arch):
    (tmp_path / "small.txt").write_text(SMALL_TEXT)
    # A position table (128 x 128) big enough to change the count at two decimals (0.41M)
    shape = {**TINY, "max_steps": 2, "block_size": 128, "n_embd": 128}
    args = cli_flags(shape)
    wide = {"COLUMNS": "300"}  # no wrapped lines
    train = run_in_process(
        "train", "small.txt", *args, f"--arch={arch}", "--json", cwd=tmp_path, env=wide
    )
    assert train.returncode == 0, train.stderr
    info = json.loads(run_in_process("info", "--json", cwd=tmp_path).stdout)
    (row,) = json.loads(run_in_process("runs", "--json", cwd=tmp_path).stdout)
    fields = ("parameters", "position_embedding_parameters")
    summary = json.loads(train.stdout)
    assert [summary[k] for k in fields] == [info[k] for k in fields] == [row[k] for k in fields]
    total, position = info["parameters"], info["position_embedding_parameters"]
    import tinygpt

    model, _, _ = tinygpt.load(tmp_path / "checkpoints" / "small", device="cpu")
    assert total == sum(p.numel() for p in model.parameters())  # a tied head counted once
    # RoPE has no position table; gpt2's is block_size x n_embd
    assert position == (128 * 128 if arch == "gpt2" else 0)
    # The printed views: train's header, the runs column and info's row say the same.
    header = f"{total / 1e6:.2f}M parameters"
    if position:
        header += f" ({(total - position) / 1e6:.2f}M without position embeddings)"
    assert header in train.stderr
    assert f"{total / 1e6:.2f}M" in run_in_process("runs", cwd=tmp_path).stdout
    table = run_in_process("info", cwd=tmp_path, env=wide).stdout
    row_text = f"{total:,} parameters"
    if position:
        row_text += f" ({total - position:,} without position embeddings)"
    assert row_text in table


@pytest.mark.slow
def test_plot_terminal_svg_png(workdir, tmp_path):
    proc = run_in_process("plot", "--out", str(tmp_path / "loss.svg"), cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert "• train" in proc.stdout and "step" in proc.stdout
    ET.fromstring((tmp_path / "loss.svg").read_text())  # parses as XML
    assert run_in_process("plot", "--out", str(tmp_path / "loss.png"), cwd=workdir).returncode == 0
    _check_png((tmp_path / "loss.png").read_bytes())
    bad = run_in_process("plot", "--out", str(tmp_path / "loss.jpg"), cwd=workdir)
    assert bad.returncode == 2 and ".svg or .png" in bad.stderr


def _check_png(data: bytes) -> None:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, kinds = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        kinds.append(kind)
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        if kind == b"IDAT":
            assert len(zlib.decompress(body)) == height * (1 + 3 * width)
        pos += 12 + length
    assert kinds == [b"IHDR", b"IDAT", b"IEND"]


def test_png_plot_has_axes_ticks_names_and_a_legend(monkeypatch):
    from tinygpt.views.png import Canvas

    drawn = []
    real = Canvas.text

    def record(self, x, y, text, *args, **kwargs):
        drawn.append(text)
        return real(self, x, y, text, *args, **kwargs)

    monkeypatch.setattr(Canvas, "text", record)
    metrics = [{"step": s, "train_loss": 3 - s / 100, "val_loss": 2.8 - s / 125} for s in (50, 200)]
    _check_png(png_plot(metrics, "run: loss by step"))
    assert {"step", "loss", "train", "val", "run: loss by step"} <= set(drawn)
    assert {"50", "200"} <= set(drawn)  # the first and last steps on the x axis
    assert {"1.00", "1.38", "1.75", "2.12", "2.50"} <= set(drawn)  # 5 loss ticks, min to max


def test_plots_of_known_curves():
    metrics = [
        {"step": s, "train_loss": 3 - s / 100, "val_loss": 3.1 - s / 120} for s in range(0, 201, 50)
    ]
    text = terminal_plot(metrics)
    assert text.count("•") == 6 and text.count("×") == 6  # 5 points each + the legend
    assert "3.100" in text  # the top of the axis is the largest loss
    ET.fromstring(svg_plot(metrics, "a <title> & more"))
    _check_png(png_plot(metrics))
    assert terminal_plot([]) == "no evaluations recorded yet"
    # a loss near float's largest: the top tick was 4 x the span, infinite ('unexpected
    # OverflowError' from plot --out x.png on a hand-edited metrics.jsonl)
    huge = [{"step": 10, "val_loss": 2.0, "train_loss": 1e308}, {"step": 20, "val_loss": 1.5}]
    _check_png(png_plot(huge))
    ET.fromstring(svg_plot(huge, "huge"))


@pytest.mark.slow
def test_info_on_an_imported_model_shows_no_schedule_it_never_ran(tiny_run, tmp_path) -> None:
    """An imported checkpoint's info had a schedule and "0 of 0" steps."""
    from tests.conftest import run_in_process

    result = tiny_run(arch="gpt2", max_steps=2)
    assert run_in_process("export", str(tmp_path / "hf"), "-c", str(result.out_dir)).returncode == 0
    back = tmp_path / "back"
    assert run_in_process("import-hf", str(tmp_path / "hf"), "--out", str(back)).returncode == 0
    code, out, err = run_main("info", "-c", str(back))
    assert code == 0, err
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "schedule" not in rows and "optimizer" not in rows and "0 of 0" not in out
    assert "imported (import-hf), not trained here" in rows["steps"]
    code, out, _ = run_main("info", "-c", str(result.out_dir))  # a run trained here: all of it
    assert code == 0 and "schedule" in out and "2 of 2" in out
    code, out, _ = run_main("info", "-c", str(back), "--json")
    assert json.loads(out)["trained_here"] is False


def test_runs_builds_no_model(two_runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tinygpt import model

    def refuse(*args, **kwargs):
        raise AssertionError("runs built a model")

    monkeypatch.setattr(model.GPT, "__init__", refuse)
    code, out, err = run_main("runs", "--json", cwd=two_runs)
    assert code == 0, err
    rows = json.loads(out)
    assert [r["name"] for r in rows] == ["new", "old"] and all("error" not in r for r in rows)


def test_runs_keeps_the_run_names_at_80_columns_with_a_broken_run(ck, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    root = tmp_path / "runs"
    shutil.copytree(ck, root / "char-run")
    shutil.copytree(ck, root / "broken-run")
    (root / "broken-run" / CONFIG_FILE).write_text("junk")
    code, out, err = run_main("runs", "--root", str(root), cwd=tmp_path)
    assert code == 0, err
    assert "char-run" in out and "broken-run" in out
    assert "broken-run: checkpoint" in out and "corrupt" in out  # the reason, below the table
    assert max(len(line) for line in out.splitlines()) <= 80
