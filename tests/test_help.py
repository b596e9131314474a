"""`--help` shows every default (rich markup used to swallow "[default: ...]")."""

import re

import pytest
import typer.main

from tests.conftest import run_in_process
from tinygpt.cli import app


def expected_default(param) -> str | None:
    """The "[default: ...]" text ``--help`` must show for a parameter, or None if it has none."""
    given = re.search(r"\\\[default: ([^]]*)\]", param.help or "")
    if given:  # defaults to None in the signature; the help names the real default
        return given.group(1)
    if param.default in (None, "") or param.name == "help":
        return None  # nothing to show (an empty --prompt is no text)
    if getattr(param, "is_flag", False):
        if not param.secondary_opts:
            return None  # a plain on/off flag is off unless given
        return (param.opts if param.default else param.secondary_opts)[0].removeprefix("--")
    return str(param.default)


def flat(text: str) -> str:
    """The help text without box drawing and with whitespace collapsed (wrapped cells join)."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


@pytest.mark.parametrize(
    "command",
    [
        "train",
        "generate",
        "inspect-attention",
        "runs",
        "inspect attention",
        "inspect ablate",
        "inspect predictions",
        "inspect patch",
    ],
)
def test_help_shows_every_default(command):
    proc = run_in_process(*command.split(), "--help", env={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    shown = flat(proc.stdout)
    found = typer.main.get_command(app)
    for name in command.split():  # down through the inspect group
        found = found.commands[name]
    params = found.params
    expected = {p.name: expected_default(p) for p in params}
    expected = {name: text for name, text in expected.items() if text is not None}
    assert expected, "every command checked here has options with defaults"
    missing = {name: t for name, t in expected.items() if f"[default: {t}]" not in shown}
    assert not missing, f"--help of {command} does not show these defaults: {missing}"


def test_generate_help_shows_the_top_k_default():
    proc = run_in_process("generate", "--help", env={"COLUMNS": "200"})
    assert "[default: 200]" in flat(proc.stdout)


@pytest.mark.parametrize("command", ["", "train", "generate", "inspect", "inspect attention"])
def test_help_shows_no_value_after_a_plain_flag(command):
    from tests.conftest import run_main

    code, out, err = run_main(*command.split(), "--help")
    assert code == 0, err
    assert "--debug" in out or command  # the root's help lists the root's flags
    assert "<bool>" not in out  # `--debug <bool>` read as if the flag took a value
