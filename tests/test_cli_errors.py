"""One line (never a traceback or a hang) for bad command-line input: inputs that are devices,
FIFOs or pipes, text given for a file name, out-of-range or non-finite options, config files
of the wrong types or that never end, bad torchrun variables, outputs into missing or unwritable
folders, report files that are devices, links, FIFOs or the input itself, a model shape with a
suggestion that works; and Ctrl-C during generate."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import (
    MICRO_ARGS,
    SMALL_TEXT,
    one_line_error,
    run_main,
    special_file,
    time_limit,
)

TEXT = "small.txt"


@pytest.mark.parametrize("command", ["train", "eval"])
def test_devices_fifos_and_pipes_are_refused_at_once(ck, tmp_path, command):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    read_end, write_end = os.pipe()  # what <(cat file) hands over: /dev/fd/N, a pipe
    try:
        for source in ("/dev/zero", str(fifo), f"/dev/fd/{read_end}"):
            args = (
                [
                    "train",
                    source,
                    "--out",
                    "out",
                    "--tokenizer",
                    "char",
                    "--device",
                    "cpu",
                    "-q",
                    "--max-steps",
                    "2",
                    "--n-layer",
                    "1",
                ]
                if command == "train"
                else ["eval", source, "-c", "ck", "--device", "cpu"]
            )
            with time_limit(60):
                code, _, err = run_main(*args, cwd=tmp_path)
            assert "regular file" in one_line_error(code, err, (2,))
    finally:
        os.close(read_end)
        os.close(write_end)


def test_text_given_where_a_file_name_goes_is_one_line(tmp_path):
    """A corpus pasted as the argument: a name longer than the system allows is one line that
    shows its start, not an unexpected OSError."""
    code, _, err = run_main("train", SMALL_TEXT * 2, "--out", str(tmp_path / "out"))
    line = one_line_error(code, err)
    assert "cannot read 'First Citizen:" in line and "too long" in line and len(line) < 200
    assert not (tmp_path / "out").exists()
    # "-", the shell's standard input, was "file not found: -"
    code, _, err = run_main("train", "-", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert "not from standard input" in one_line_error(code, err)


def test_out_of_range_seed(tmp_path):
    (tmp_path / TEXT).write_text(SMALL_TEXT)
    small = [*MICRO_ARGS, "-q", "--max-steps", "2", "--device", "cpu"]
    for args in (
        ["train", TEXT, "--seed", str(10**23), *small],
        ["train", TEXT, "--seed", "-1", *small],
    ):
        code, _, err = run_main(*args, cwd=tmp_path)
        assert "--seed" in one_line_error(code, err, (2,))


def test_wrong_types_in_a_toml_config(tmp_path):
    (tmp_path / TEXT).write_text(SMALL_TEXT)
    for text, option in (
        ('dropout = "0.1"', "--dropout"),
        ('grad_clip = "x"', "--grad-clip"),
        ("tokenizer = 5", "--tokenizer"),
        ("n_layer = true", "--n-layer"),
        ("[model]\nn_head = 2.5", "--n-head"),
        ("lr = 1" + "0" * 400, "--lr"),  # an integer too large for a float, not an OverflowError
        # a field with no flag is the file's own (was '--beta2', a flag that does not exist)
        ("beta2 = 1.0", "error: the config file's beta2 must be in [0, 1)"),
        ('beta1 = "x"', "error: the config file's beta1 "),
        ('activation = "tanh"', "error: the config file's activation must be one of"),
        ("val_fraction = 1.5", "error: the config file's val_fraction must be in (0, 1)"),
    ):
        if not text.startswith("tokenizer"):  # char: no BPE to load (a fresh clone is offline)
            text = 'tokenizer = "char"\n' + text
        (tmp_path / "c.toml").write_text(text)
        code, _, err = run_main(
            "train",
            TEXT,
            "--config",
            "c.toml",
            "--device",
            "cpu",
            "-q",
            "--max-steps",
            "2",
            cwd=tmp_path,
        )
        assert option in one_line_error(code, err, (2,)), text


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "deep-json", "deep-toml"])
def test_config_files_that_hang_or_never_end_are_one_line(tmp_path, kind):
    (tmp_path / TEXT).write_text(SMALL_TEXT)
    name = {"fifo": "c.toml", "dev-zero": "z.toml", "deep-json": "d.json", "deep-toml": "d.toml"}
    path = tmp_path / name[kind]
    if kind == "deep-toml":
        path.write_text("a = " + "[" * 100_000)
    else:
        special_file(path, kind.removesuffix("-json"))
    with time_limit(60):
        code, _, err = run_main("train", TEXT, "--config", path.name, "-q", cwd=tmp_path)
    one_line_error(code, err, (2,))


@pytest.mark.parametrize(
    "source,text",
    [
        ("toml", "warmup_steps = inf"),
        ("toml", "warmup_steps = nan"),
        ("toml", "max_time = inf"),
        ("toml", "lr = nan"),
        ("json", '{"warmup_steps": Infinity}'),
        ("json", '{"train": {"grad_clip": NaN}}'),
        ("cli", "--lr nan"),
        ("cli", "--max-time inf"),
        ("cli", "--decay-fraction nan"),
    ],
)
def test_non_finite_options_are_refused(tmp_path, source, text):
    (tmp_path / "small.txt").write_text(SMALL_TEXT)
    args = [
        "train",
        "small.txt",
        "--device",
        "cpu",
        "-q",
        "--max-steps",
        "3",
        *MICRO_ARGS,
    ]
    if source == "cli":
        args += text.split()
    else:
        (tmp_path / f"c.{source}").write_text(text)
        args += ["--config", f"c.{source}"]
    code, _, err = run_main(*args, cwd=tmp_path)
    line = one_line_error(code, err, (2,))
    assert any(word in line for word in ("finite", "integer", "must be")), line
    assert not (tmp_path / "checkpoints").exists()


def _train_briefly(cwd, out: str) -> tuple[int, str, str]:
    """A 3-step train of small.txt into ``out``: what the --out checks below are run on."""
    args = ("--device", "cpu", "--max-steps", "3", *MICRO_ARGS, "-q")
    return run_main("train", "small.txt", "--out", out, *args, cwd=cwd)


@pytest.mark.parametrize(
    "env,message",
    [({"WORLD_SIZE": "abc"}, "WORLD_SIZE='abc'"), ({"WORLD_SIZE": "2"}, "RANK is not")],
)
def test_bad_torchrun_variables_are_one_line(tmp_path, monkeypatch, env, message):
    (tmp_path / "small.txt").write_text(SMALL_TEXT)
    monkeypatch.delenv("RANK", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, _, err = _train_briefly(tmp_path, "run")
    assert message in one_line_error(code, err, (2,))
    assert not (tmp_path / "run").exists()


def test_outputs_into_missing_or_unwritable_directories(ck, tmp_path):
    (tmp_path / "file").write_text("x")
    for target in ("missing/x", "file/x"):
        for args in (
            ["inspect-attention", "-c", "ck", "-p", "First", "--svg", f"{target}.svg"],
            ["inspect-attention", "-c", "ck", "-p", "First", "--png", f"{target}.png"],
            ["inspect-attention", "-c", "ck", "-p", "First", "--npz", f"{target}.npz"],
            ["plot", "-c", "ck", "--out", f"{target}.svg"],
            ["export", target, "-c", "ck"],
        ):
            code, _, err = run_main(*args, cwd=tmp_path)
            if args[0] == "export" and target.startswith("missing"):
                assert code == 0, err  # export creates its directory
                continue
            assert "cannot write" in one_line_error(code, err, (2,)) or "is a file" in err


@pytest.mark.parametrize(
    "args",
    [
        ["inspect", "attention", "-c", "ck", "-p", "First", "--json-file"],
        ["inspect", "attention", "-c", "ck", "-p", "First", "--html"],
        ["inspect", "attribution", "-c", "ck", "-p", "First", "--png"],
        ["inspect", "predictions", "-c", "ck", "-p", "First", "--json-file"],
        ["inspect", "compare", "ck", "ck", "--json-file"],
        ["inspect", "trajectory", "ck", "--png"],
        ["eval", TEXT, "-c", "ck", "--token-losses"],
        ["plot", "-c", "ck", "--out"],
    ],
)
def test_an_output_that_cannot_be_written_is_refused_before_the_work(ck, tmp_path, args):
    # a folder (or a missing one) was refused after the view was printed, or after eval had
    # scored the whole file: checked now as the flag is read
    (tmp_path / "taken").mkdir()
    for target, says in (("taken", "taken is a directory"), ("gone/x", "there is no folder gone")):
        code, out, err = run_main(*args, target, cwd=tmp_path)
        assert f"cannot write {target}: {says}" in one_line_error(code, err, (2,))
        assert out == ""  # nothing shown: the refusal came first


def test_a_plot_file_of_another_kind_is_refused_before_the_plot(ck, tmp_path):
    code, out, err = run_main("plot", "-c", "ck", "--out", "x.txt", cwd=tmp_path)
    assert one_line_error(code, err, (2,)) == "error: --out must end in .svg or .png, got x.txt"
    assert out == ""  # the terminal plot was printed first


def test_report_files_never_rename_over_a_device_a_link_a_fifo_or_the_input(ck, tmp_path):
    import stat
    import threading

    predictions = ("inspect", "predictions", "-c", "ck", "-p", "First", "--json-file")
    code, _, err = run_main(*predictions, "/dev/null", cwd=tmp_path)
    assert code == 0, err
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)  # still the device, not a regular file
    (tmp_path / "real.json").write_text("old")
    (tmp_path / "link.json").symlink_to("real.json")
    code, _, err = run_main(*predictions, "link.json", cwd=tmp_path)
    assert code == 0, err
    assert (tmp_path / "link.json").is_symlink()  # the link stays; its target is written
    assert json.loads((tmp_path / "real.json").read_text())["predictions"]
    os.mkfifo(tmp_path / "pipe")
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append((tmp_path / "pipe").read_bytes()))
    reader.start()
    code, _, err = run_main(*predictions, "pipe", cwd=tmp_path)
    reader.join(30)
    assert code == 0, err
    assert stat.S_ISFIFO(os.lstat(tmp_path / "pipe").st_mode) and json.loads(received[0])
    code, _, err = run_main("eval", TEXT, "-c", "ck", "--token-losses", TEXT, cwd=tmp_path)
    assert "is the file being read" in one_line_error(code, err, (2,))
    assert (tmp_path / TEXT).read_text() == SMALL_TEXT
    code, _, err = run_main("eval", TEXT, "-c", "ck", "--token-losses", "", cwd=tmp_path)
    assert "is a directory" in one_line_error(code, err, (2,))


def test_ctrl_c_during_generate(ck, tmp_path, monkeypatch):
    from tinygpt import api

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "generate_text", interrupted)
    code, _, err = run_main("generate", "-c", "ck", cwd=tmp_path)
    assert "interrupted" in one_line_error(code, err, (130,))


def _suggested_shapes(message: str, n_embd: int, n_head: int) -> list[tuple[int, int]]:
    import re

    shapes = [(int(w), n_head) for w in re.findall(r"--n-embd (\d+)", message)]
    return shapes + [(n_embd, int(h)) for h in re.findall(r"--n-head (\d+)", message)]


@pytest.mark.parametrize("position", ["rope", "learned"])
def test_every_suggested_shape_is_accepted(position: str) -> None:
    from tinygpt.cli.flags import command_spelling
    from tinygpt.config.model import ModelConfig
    from tinygpt.errors import UsageError

    for n_embd in range(8, 200, 3):
        for n_head in range(1, 9):
            config = ModelConfig(n_embd=n_embd, n_head=n_head, position=position)
            try:
                config.validate()
                continue
            except UsageError as exc:
                message = exc.render(command_spelling(None))
            shapes = _suggested_shapes(message, n_embd, n_head)
            assert shapes, message
            for width, heads in shapes:
                ModelConfig(n_embd=width, n_head=heads, position=position).validate()


def test_the_issues_shape_gets_a_width_and_a_head_count_that_work(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("abc" * 200)
    code, _, err = run_main(
        "train", "t.txt", "--tokenizer", "char", "--n-embd", "128", "--n-head", "3", cwd=tmp_path
    )
    line = one_line_error(code, err, (2,))
    assert "try --n-embd 126 or --n-head 4" in line, line  # 126 / 3 = 42, even; 128 / 4 = 32
    code, _, err = run_main(
        "train", "t.txt", "--tokenizer", "char", "--n-embd", "129", "--n-head", "3", cwd=tmp_path
    )
    line = one_line_error(code, err, (2,))
    assert "even head size" in line and "try --n-embd 132" in line, line  # 129's heads: all odd


@pytest.mark.parametrize(
    "raised",
    [
        RuntimeError(
            "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
            "memory: you tried to allocate 51200000000 bytes. Error code 12"
        ),
        MemoryError(),
    ],
)
def test_running_out_of_memory_is_one_line_saying_what_needs_less(tmp_path, monkeypatch, raised):
    """``train --batch-size 100000000`` ran 41 s, then said 'unexpected RuntimeError: [enforce
    fail at alloc_cpu.cpp:127] ...'."""
    from tinygpt.training.trainer import Trainer

    def no_memory(*args, **kwargs):
        raise raised

    monkeypatch.setattr(Trainer, "fit", no_memory)
    (tmp_path / "small.txt").write_text(SMALL_TEXT)
    code, _, err = run_main("train", "small.txt", *MICRO_ARGS, "--max-steps", "1", cwd=tmp_path)
    line = one_line_error(code, err, (1,))
    assert line.startswith("error: out of memory") and "--batch-size" in line, line
    if isinstance(raised, RuntimeError):
        assert "(asked for 47.7 GiB)" in line
