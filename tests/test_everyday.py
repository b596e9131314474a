"""Presets, config files, info, runs, plots, and train's default corpus."""

import json
import struct
import xml.etree.ElementTree as ET
import zlib

import pytest

from tests.conftest import SMALL_TEXT, TINY, TINY_ARGS, cli_flags, run_in_process
from tinygpt.config.model import ModelConfig
from tinygpt.errors import UsageError
from tinygpt.model import count_parameters
from tinygpt.training.presets import PRESETS, load_config_file, resolve_options
from tinygpt.views.plot import png_plot, svg_plot, terminal_plot


def test_flags_override_config_file_which_overrides_preset(tmp_path):
    (tmp_path / "run.toml").write_text("n_layer = 3\nlr = 0.005\n[train]\nbatch_size = 7\n")
    merged = resolve_options("tiny", tmp_path / "run.toml", {"lr": 0.01, "dropout": None})
    assert merged["n_layer"] == 3 and merged["batch_size"] == 7  # from the file
    assert merged["lr"] == 0.01  # the flag wins
    assert merged["n_embd"] == PRESETS["tiny"]["n_embd"]  # from the preset
    assert "dropout" not in merged  # None means "not given"


def test_bad_presets_and_config_files(tmp_path):
    with pytest.raises(UsageError, match="unknown preset 'huge'"):
        resolve_options("huge", None, {})
    (tmp_path / "bad.toml").write_text("n_layers = 3\n")
    with pytest.raises(UsageError, match="unknown option.*n_layers"):
        load_config_file(tmp_path / "bad.toml")
    (tmp_path / "broken.toml").write_text("n_layer = \n")
    with pytest.raises(UsageError, match="not valid"):
        load_config_file(tmp_path / "broken.toml")
    with pytest.raises(UsageError, match="not found"):
        load_config_file(tmp_path / "missing.toml")


def test_preset_sizes():
    def size(name, vocab):
        options = resolve_options(name, None, {})  # the preset with its recipe's switches
        shape = {k: v for k, v in options.items() if k in ModelConfig.__dataclass_fields__}
        return count_parameters(ModelConfig(vocab_size=vocab, **shape)).total

    assert 124e6 < size("gpt2-small", 50257) < 125e6  # GPT-2 small's 124M
    # nanoGPT's 10.7M less its 98k-entry position table, plus a 25k untied head
    assert 10.6e6 < size("shakespeare-char", 65) < 10.9e6


@pytest.mark.slow
def test_checkpoint_config_json_can_be_fed_back(tiny_run, tmp_path):
    first = tiny_run("first", n_embd=48, lr=2e-3)
    import tinygpt

    again = tinygpt.train(
        tmp_path / "small.txt", out_dir=tmp_path / "again", config=first.out_dir / "config.json"
    )
    a = json.loads((first.out_dir / "config.json").read_text())
    b = json.loads((again.out_dir / "config.json").read_text())
    assert a["model"] == b["model"]
    for key in ("lr", "batch_size", "max_steps", "tokenizer", "seed"):
        assert a["train"][key] == b["train"][key]


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
    assert data["device"] == "cpu" and data["dtype"] == picked  # bfloat16 on a CPU with AMX
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


def test_readme_plots_into_the_run_the_main_command_makes():
    import re
    from pathlib import Path

    from tests.conftest import ROOT
    from tests.docs import documentation
    from tinygpt.data.datasets import default_corpus
    from tinygpt.training.run import default_out_dir

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    main_job = re.search(r"```bash\n(pip install -e \. && .*)\n```", readme)[1].split(" && ")
    train = next(c.split()[2:] for c in main_job if c.startswith("tinygpt train "))
    # Only options with their values: no FILE (the default corpus) and no --out.
    assert all(a.startswith("--") for a in train[::2]) and "--out" not in train, train
    run = default_out_dir(default_corpus())  # checkpoints/tinyshakespeare
    outs = re.findall(r"tinygpt plot [^\n`]*--out ([^\s`]+)", documentation())  # docs/ too
    assert outs and all(Path(out).parent == run for out in outs), outs


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
