"""The library from Python: messages name Python arguments, progress only on a terminal."""

import io
import re

import pytest

from tests.conftest import TINY, cli_flags, run_main
from tinygpt.errors import ANY, Message, Opt, UsageError, python_spelling


def test_a_message_names_fields_and_each_caller_spells_them():
    import typer.main

    from tinygpt.cli import app
    from tinygpt.cli.flags import command_spelling

    opts = [Opt("out_dir", ANY), Opt("resume", True), Opt("n_embd"), Opt("seed", 3)]
    assert [python_spelling(o) for o in opts] == ["out_dir=...", "resume=True", "n_embd", "seed=3"]
    assert python_spelling(Opt("tokenizer", "char")) == "tokenizer='char'"
    train = command_spelling(typer.main.get_command(app).commands["train"])
    assert [train(o) for o in opts] == ["--out DIR", "--resume", "--n-embd", "--seed 3"]
    assert train(Opt("tokenizer", "char")) == "--tokenizer char"
    assert train(Opt("bias", False)) == "--no-bias"
    # a subcommand's own flags: --heads is what inspect ablate calls the library's heads
    ablate = command_spelling(typer.main.get_command(app).commands["inspect"].commands["ablate"])
    assert ablate(Opt("heads", "9.9")) == "--heads 9.9"
    message = Message(Opt("n_embd"), " must be positive")
    assert message == "n_embd must be positive" and message.options == ("n_embd",)
    assert message.render(train) == "--n-embd must be positive"


def test_attention_errors_name_python_arguments(tmp_path):
    from tinygpt.analysis import commands
    from tinygpt.analysis.attention_report import parse_query_range

    with pytest.raises(UsageError) as caught:
        parse_query_range("30:20", 20)
    assert str(caught.value).startswith("queries='30:20'") and caught.value.options == ("queries",)
    with pytest.raises(UsageError) as caught:
        commands.attention_report(tmp_path, "", induction=False)
    assert str(caught.value).startswith("prompt is empty") and "--" not in str(caught.value)


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


@pytest.mark.parametrize("prompt", [5, b"RO", ["ab"], ("R", "O"), None])
def test_generate_wants_its_prompt_as_text_and_knows_its_options(trained_tiny, prompt):
    # bytes were taken as token ids, a tuple of letters joined, an int a TypeError from deep in
    import tinygpt

    said = _error(lambda: tinygpt.generate(trained_tiny, prompt, max_new_tokens=1))
    assert said == f"prompt must be text (a str), got {type(prompt).__name__}"
    said = _error(lambda: tinygpt.generate(trained_tiny, "A", bogus=1))  # was a TypeError
    assert said == "unknown sampling option 'bogus'"


@pytest.mark.parametrize("spans", [-1, 0, "3", 2.5, None])
def test_token_loss_report_wants_a_count_of_spans(trained_tiny, small_text, spans):
    # each of these listed every span of the text
    from tinygpt import api

    said = _error(lambda: api.token_loss_report(trained_tiny, small_text, spans=spans))
    assert said == f"spans must be a positive integer, got {spans!r}"


def test_a_cache_folder_may_be_named_by_a_string(tiny_run, tmp_path):
    # str / "tokens" raised TypeError deep in corpus preparation
    tiny_run("c", max_steps=2, cache_dir=str(tmp_path / "cache"))
    assert any((tmp_path / "cache" / "tokens").iterdir())


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
