"""The library from Python: messages name Python arguments, progress only on a terminal."""

import io
import re

import pytest

from tests.conftest import TINY, cli_flags, run_main
from tinygpt.errors import UsageError
from tinygpt.spelling import ANY, cli_spelling, option


def test_one_table_spells_each_option_for_its_caller():
    python = [option("out_dir", ANY), option("resume"), option("n_embd"), option("seed", 3)]
    assert python == ["out_dir=...", "resume=True", "n_embd", "seed=3"]
    assert option("tokenizer", "char") == "tokenizer='char'"
    with cli_spelling():
        cli = [option("out_dir", ANY), option("resume"), option("n_embd"), option("seed", 3)]
        assert option("tokenizer", "char") == "--tokenizer char"
    assert cli == ["--out DIR", "--resume", "--n-embd", "--seed 3"]
    assert option("resume") == "resume=True"  # the CLI's spelling ends with its block


def _error(call) -> str:
    with pytest.raises(UsageError) as info:
        call()
    return str(info.value)


@pytest.mark.slow
def test_python_errors_name_python_arguments(tiny_run):
    tiny_run("r", max_steps=2)
    again = _error(lambda: tiny_run("r", max_steps=2))
    assert "resume=True" in again and "out_dir=..." in again and "overwrite=True" in again
    assert "--" not in again
    assert "resume=True" in _error(lambda: tiny_run("none", resume=True))
    assert _error(lambda: tiny_run("s", n_embd=30, n_head=4)).startswith("n_embd (30)")
    assert "n_layer=3 differs" in _error(lambda: tiny_run("r", n_layer=3, resume=True))
    import tinygpt

    assert "top_k must" in _error(lambda: tinygpt.generate(None, "x", top_k=0))


def test_the_cli_still_names_flags(tmp_path, small_text):
    args = cli_flags({**TINY, "max_steps": 2})
    first = run_main("train", str(small_text), "--out", "ck", "-q", *args, cwd=tmp_path)
    assert first[0] == 0, first[2]
    code, _, err = run_main("train", str(small_text), "--out", "ck", "-q", *args, cwd=tmp_path)
    assert code == 2
    assert "--resume" in err and "--out DIR" in err and "--overwrite" in err
    assert "=True" not in err and "out_dir" not in err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [True, False])
def test_progress_by_default_only_on_a_terminal(tiny_run, monkeypatch, terminal):
    stderr = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    tiny_run("p", max_steps=2, eval_every=2)
    shown = stderr.getvalue()
    assert bool(re.search(r"^model ", shown, re.M)) == terminal, shown
    # An explicit argument wins either way.
    stderr.seek(0)
    stderr.truncate()
    tiny_run("q", max_steps=2, eval_every=2, quiet=terminal)
    assert bool(re.search(r"^model ", stderr.getvalue(), re.M)) != terminal
