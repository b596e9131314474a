"""`tinygpt generate`'s sampling controls from the command line: --num-samples, --stop,
--alternatives with --json, and --interactive through a pipe and under a pseudo-terminal."""

import contextlib
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SMALL_TEXT, one_line_error, run_cli, run_in_process, run_main


@pytest.fixture
def ck(trained_tiny: Path) -> Path:
    """The session's tiny run (TINY on SMALL_TEXT): these tests only read it."""
    return trained_tiny


def test_stop_ends_each_sample_and_json_says_which(ck):
    code, out, _ = run_main(
        "generate", "-c", str(ck), "--prompt", "All:", "--seed", "4", "--num-samples", "3",
        "--max-new-tokens", "60", "--stop", "e", "--stop", r"\n\n", "--json",
    )  # fmt: skip
    assert code == 0
    data = json.loads(out)
    for sample, detail in zip(data["samples"], data["sample_details"], strict=True):
        generated = sample[len("All:") :]
        assert "e" not in generated and "\n\n" not in generated
        assert detail["finish"] in ("stop", "length")
        assert detail["stop"] in ("e", "\n\n", None)
    assert any(d["stop"] == "e" for d in data["sample_details"])


def test_streamed_samples_equal_the_json_samples(ck):
    args = ["generate", "-c", str(ck), "--prompt", "All:", "--seed", "9", "--num-samples", "3"]
    _, streamed, _ = run_main(*args, "--max-new-tokens", "40")
    _, out, _ = run_main(*args, "--max-new-tokens", "40", "--json")
    assert streamed == ("\n" + "-" * 40 + "\n").join(json.loads(out)["samples"]) + "\n"


def test_alternatives_in_json_and_refused_without_it(ck):
    code, out, _ = run_main(
        "generate", "-c", str(ck), "--max-new-tokens", "4", "--alternatives", "2", "--json"
    )
    tokens = json.loads(out)["sample_details"][0]["tokens"]
    assert code == 0 and len(tokens) == 4 and len(tokens[0]["alternatives"]) == 2
    code, _, err = run_main("generate", "-c", str(ck), "--alternatives", "2")
    assert "--alternatives goes with --json" in one_line_error(code, err)


@pytest.mark.parametrize("extra", [["--prompt", "x"], ["--json"]])
def test_interactive_refuses_what_it_cannot_use(ck, extra):
    code, _, err = run_main("generate", "-c", str(ck), "--interactive", *extra)
    assert "--interactive" in one_line_error(code, err)


def test_a_prompt_the_model_cannot_take_is_one_line_and_the_session_goes_on(ck):
    import tinygpt

    lines, written, warned = iter(["€uro", "All:"]), [], []

    def read_line() -> str:
        return next(lines, None) or (_ for _ in ()).throw(EOFError)

    turns = tinygpt.interactive_session(
        ck, read_line, written.append, warn=warned.append, max_new_tokens=5, device="cpu"
    )
    assert turns == 1 and "".join(written).startswith("All:")
    assert len(warned) == 1 and "€" in str(warned[0])


def test_a_prompt_of_no_tokens_is_refused_in_one_line():
    from tinygpt.config.specs import record_spec
    from tinygpt.data.records import RecordsTokenizer
    from tinygpt.data.tokenizer import CharTokenizer
    from tinygpt.errors import UsageError
    from tinygpt.sampling import encode_prompt

    records = RecordsTokenizer(CharTokenizer(list("ab\n")), record_spec("line", None))
    for prompt in (" ", "\n"):
        with pytest.raises(UsageError, match="no tokens"):
            encode_prompt(records, prompt, 16)


def test_a_models_text_is_escaped_on_a_terminal_and_kept_in_a_pipe():
    import io

    from tinygpt.io.console import for_terminal

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    hostile = "ok\x1b]0;PWNED\x07\x1b[2J\tend\n"
    assert for_terminal(hostile, Terminal()) == "ok\\x1b]0;PWNED\\x07\\x1b[2J\tend\n"
    assert for_terminal(hostile, io.StringIO()) == hostile  # a pipe or file: the text as it is


@pytest.mark.slow
def test_an_ascii_stdout_gets_escapes_not_a_crash(ck):
    for args in (["inspect-attention", "-p", "First"], ["generate", "--max-new-tokens", "5"]):
        proc = run_cli(*args, "-c", str(ck), env={"PYTHONIOENCODING": "ascii"})
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        proc.stdout.encode("ascii")


@pytest.mark.slow
def test_interactive_through_a_pipe_answers_every_line(ck):
    proc = run_cli(
        "generate", "-c", str(ck), "-i", "--max-new-tokens", "12", "--seed", "1",
        input="All:\nFirst\n",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    one = run_in_process(
        "generate", "-c", str(ck), "-p", "First", "--max-new-tokens", "12", "--seed", "1"
    )
    lines = proc.stdout.split("\n")
    assert proc.stdout.startswith("All:")
    assert one.stdout.strip() in proc.stdout  # the same options, the same sample
    assert len([x for x in lines if x]) >= 2


def _read_until(fd: int, done, timeout: float = 120.0) -> bytes:
    """Read the terminal until ``done(everything read)`` holds (or ``done`` is a byte string
    that appears)."""
    if isinstance(done, bytes):
        needle = done
        done = lambda seen: needle in seen  # noqa: E731
    seen, deadline = b"", time.monotonic() + timeout
    while not done(seen) and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    assert done(seen), seen.decode(errors="replace")
    return seen


def _leave_with_ctrl_d(pid: int, fd: int) -> None:
    """Ctrl-D at the prompt: the session ends with exit status 0."""
    os.write(fd, b"\x04")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def _reap(pid: int, fd: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    os.close(fd)


@pytest.mark.slow
def test_interactive_under_a_terminal_ctrl_c_stops_a_sample_ctrl_d_leaves(ck):
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI on the pseudo-terminal
        # A test run started in the background of a shell ignores SIGINT, and children inherit
        # that: give the CLI the default a terminal user has.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}
        os.execve(
            sys.executable,
            [sys.executable, "-m", "tinygpt", "generate", "-c", str(ck), "-i",
             "--max-new-tokens", "100000"],
            env,
        )  # fmt: skip
    try:
        _read_until(fd, b"> ")
        os.write(fd, b"All:\r")
        # The terminal echoes the line; the sample then writes the prompt and goes on: wait for
        # text after the second "All:" (a Ctrl-C before the line is read only clears the line).
        _read_until(fd, lambda seen: seen.count(b"All:") >= 2 and len(seen.split(b"All:")[-1]) > 20)
        os.write(fd, b"\x03")  # Ctrl-C: the 100,000-token sample is still being written
        # One read: "[stopped]" and the next prompt often come in one chunk.
        _read_until(fd, lambda seen: b"> " in seen.partition(b"[stopped]")[2])
        _leave_with_ctrl_d(pid, fd)
    finally:
        _reap(pid, fd)


@pytest.mark.slow
def test_a_keystroke_that_crashes_readline_does_not_end_the_session(ck):
    """GNU readline 8.2 segfaults on Ctrl-R followed by these bytes (`python3 -c "import
    readline; input()"` does); the session must go on and end on Ctrl-D with 0."""
    pid, fd = pty.fork()
    if pid == 0:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}
        args = [sys.executable, "-m", "tinygpt", "generate", "-c", str(ck), "-i"]
        os.execve(sys.executable, [*args, "--max-new-tokens", "5"], env)
    try:
        _read_until(fd, b"> ")
        os.write(fd, b"\x12\xc5\xea\x18 3 \xf1\r")  # Ctrl-R, the bytes, Enter
        _read_until(fd, lambda seen: seen.count(b"> ") >= 1 and seen.rstrip().endswith(b">"))
        _leave_with_ctrl_d(pid, fd)
    finally:
        _reap(pid, fd)


@pytest.mark.slow
def test_sigterm_still_ends_an_interactive_session(ck):
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinygpt", "generate", "-c", str(ck), "-i", "--max-new-tokens", "5"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    # In the session, not after a fixed wait a loaded machine can outlast: a first prompt is
    # answered ("All:", 5 characters, a newline) and the next one awaited.
    proc.stdin.write(b"All:\n")
    proc.stdin.flush()
    _read_until(proc.stdout.fileno(), lambda seen: len(seen) >= len("All:") + 5 + 1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err


def test_generate_best_samples_from_the_best_weights(monkeypatch):
    """``generate --best`` (what --early-stop's note points to) loads best.safetensors."""
    from tests.conftest import ROOT, run_main
    from tinygpt.checkpoint.store import Checkpoint

    asked = []
    real = Checkpoint.load_model

    def load_model(self, *args, **kwargs):
        asked.append(kwargs.get("best", False))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Checkpoint, "load_model", load_model)
    ck = ROOT / "tests" / "fixtures" / "modern_2026_11" / "checkpoint"
    for flags in ([], ["--best"]):
        code, _, err = run_main("generate", "-c", str(ck), "--max-new-tokens", "4", *flags)
        assert code == 0, err
    assert asked == [False, True]


def test_best_on_a_run_that_kept_no_best_weights_says_so(ck, tmp_path):
    # a run stopped before its first evaluation: --best used the final weights without a word
    import shutil

    copy = Path(shutil.copytree(ck, tmp_path / "ck"))
    (copy / "best.safetensors").unlink()
    manifest = json.loads((copy / "manifest.json").read_text())
    for table in ("files", "sizes"):
        manifest[table].pop("best.safetensors", None)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "t.txt").write_text(SMALL_TEXT)
    for command in (["generate", "--max-new-tokens", "2"], ["eval", str(tmp_path / "t.txt")]):
        code, _, err = run_main(*command, "-c", str(copy), "--best")
        assert code == 0, err
        assert "note: this run kept no best-validation weights; using its final ones" in err


@pytest.mark.parametrize(
    "args, says",
    [
        (("--num-samples", "100000000"), "--num-samples"),
        (("--json", "--alternatives", "100", "--num-samples", "100", "--max-new-tokens", "500"),
         "--alternatives"),
    ],
)  # fmt: skip
def test_a_request_too_large_to_hold_is_one_line_up_front(ck, args, says):
    code, _, err = run_main("generate", "-c", str(ck), *args)
    assert says in one_line_error(code, err)


def test_a_prompt_on_stdin_is_read_up_to_a_bound(ck, monkeypatch):
    import io

    from tinygpt.cli import common

    monkeypatch.setattr(common, "MAX_PROMPT_CHARS", 1000)
    monkeypatch.setattr("sys.stdin", io.StringIO("\0" * 5000))  # /dev/zero, in short
    code, _, err = run_main("generate", "-c", str(ck), "-p", "-")
    assert "longer than 1,000 characters" in one_line_error(code, err)


def test_a_byte_order_mark_on_stdin_is_no_part_of_the_prompt(ck, monkeypatch):
    # a prompt file saved by a Windows editor: "the vocabulary lacks '\ufeff'"
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("\ufeffFirst"))
    code, out, err = run_main("generate", "-c", str(ck), "-p", "-", "--max-new-tokens", "2")
    assert code == 0 and out.startswith("First"), err


def _stdin(data: bytes, errors: str):
    """stdin as Python opens it: strictly in a UTF-8 locale, with surrogates in the C locale."""
    import io

    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors=errors)


@pytest.mark.parametrize("errors", ["strict", "surrogateescape"])
@pytest.mark.parametrize("command", [("generate",), ("inspect", "attention")])
def test_a_prompt_that_is_not_utf8_is_one_line_naming_the_byte(ck, monkeypatch, errors, command):
    # strict: 'unexpected UnicodeDecodeError'; surrogates: "the vocabulary lacks '\udcff'"
    monkeypatch.setattr("sys.stdin", _stdin(b"Fir\xffst", errors))
    code, _, err = run_main(*command, "-c", str(ck), "-p", "-")
    assert "the prompt on stdin is not UTF-8 text (it holds the byte 0xff)" in one_line_error(
        code, err
    )
    code, _, err = run_main(*command, "-c", str(ck), "-p", "Fir\udcfest")  # argv's bytes
    assert "the prompt is not UTF-8 text (it holds the byte 0xfe)" in one_line_error(code, err)


@pytest.mark.parametrize("errors", ["strict", "surrogateescape"])
def test_interactive_warns_of_a_line_that_is_not_utf8_and_answers_the_next(ck, monkeypatch, errors):
    monkeypatch.setattr("sys.stdin", _stdin(b"Fi\xffrst\r\nFirst\n", errors))
    code, out, err = run_main("generate", "-c", str(ck), "-i", "--max-new-tokens", "2")
    assert code == 0, err
    assert (
        err.strip()
        == "error: the line is not UTF-8 text (it holds the byte 0xff); save it as UTF-8"
    )
    assert out.startswith("First") and "\r" not in out


def test_an_interactive_line_is_read_up_to_a_bound(ck, monkeypatch):
    # `generate -i < /dev/zero` read one endless line until the kernel killed it (24 GB)
    import io

    monkeypatch.setattr("tinygpt.cli.generate.MAX_PROMPT_CHARS", 1000)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"First\n" + b"\0" * 5000)))
    code, out, err = run_main("generate", "-c", str(ck), "-i", "--max-new-tokens", "2")
    assert "a line on stdin is longer than 1,000 bytes" in one_line_error(code, err)
    assert out.startswith("First")  # the lines before it were answered


@pytest.mark.parametrize(
    "command",
    [("generate", "-p", "-"), ("generate", "-i"), ("inspect", "attention", "-p", "-")],
)
def test_a_closed_stdin_is_one_line(ck, monkeypatch, command):
    # `tinygpt generate -p - <&-`: Python's sys.stdin is then None ('unexpected AttributeError')
    monkeypatch.setattr("sys.stdin", None)
    code, _, err = run_main(*command, "-c", str(ck))
    assert "stdin is closed" in one_line_error(code, err)


def test_generate_and_eval_say_when_the_best_weights_beat_the_final_ones(ck, tmp_path):
    import shutil

    from tinygpt.checkpoint.metrics import METRICS_FILE

    copy = tmp_path / "ck"
    shutil.copytree(ck, copy)
    records = [json.loads(line) for line in (copy / METRICS_FILE).read_text().splitlines()]
    records[0]["val_loss"] = records[-1]["val_loss"] - 0.5  # an overfitted run's log
    (copy / METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp_path / "t.txt").write_text(SMALL_TEXT)
    for command in (("generate", "--max-new-tokens", "3"), ("eval", "t.txt")):
        code, _, err = run_main(*command, "-c", "ck", cwd=tmp_path)
        assert code == 0 and err.count("add --best") == 1, err
        assert f"step {records[0]['step']}" in err
        code, _, err = run_main(*command, "-c", "ck", "--best", cwd=tmp_path)
        assert code == 0 and "add --best" not in err, err
    code, _, err = run_main("generate", "-c", str(ck), "--max-new-tokens", "3")
    assert "add --best" not in err  # the run as it was: its final weights are its best


def test_the_done_lines_count_passes_and_point_at_better_weights(tmp_path):
    from tinygpt.cli.train import done_lines
    from tinygpt.training.result import TrainResult

    metrics = [
        {"step": 100, "val_loss": 3.09, "tokens_seen": 800},
        {"step": 300, "val_loss": 3.15, "tokens_seen": 2400},
    ]
    lines = done_lines(TrainResult(tmp_path, 300, 3.09, metrics, train_tokens=1000))
    assert "(2.4 passes over the training text)" in lines[0]
    assert len(lines) == 2 and "3.1500" in lines[1] and "step 100 (3.0900)" in lines[1]
    assert lines[1].endswith(f"tinygpt generate --checkpoint {tmp_path} --best")
    metrics[1]["val_loss"] = 3.095  # within noise of the best: nothing to add
    assert len(done_lines(TrainResult(tmp_path, 300, 3.09, metrics, train_tokens=1000))) == 1
