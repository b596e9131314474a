"""Names that come from files and folders (rich markup, terminal escapes, control characters,
undecodable bytes) are shown as they are: escaped on the terminal, valid in SVG and HTML reports,
never taken as style tags."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from tests.conftest import MICRO_ARGS, SMALL_TEXT, one_line_error, rehash, run_main
from tinygpt.checkpoint.manifest import (
    TOKENIZER_FILE,
)
from tinygpt.checkpoint.metrics import METRICS_FILE
from tinygpt.checkpoint.store import open_checkpoint


def test_paths_and_names_with_rich_markup_are_shown_as_they_are(ck, tmp_path):
    marked = tmp_path / "mk" / "a[/b]c"
    marked.parent.mkdir(parents=True)  # "mk/a[" holds "b]c"
    shutil.copytree(ck, marked)
    shutil.copytree(ck, tmp_path / "runs" / "ck[red]x")
    code, out, err = run_main("info", "-c", "mk/a[/b]c", cwd=tmp_path)
    assert code == 0, err
    assert "mk/a[/b]c" in out
    code, out, err = run_main("runs", "--root", "runs", cwd=tmp_path)
    assert code == 0, err
    assert "ck[red]x" in out


@pytest.mark.parametrize("name", [os.fsdecode(b"ck\xff"), "ck\x1b[2J\x01"])
def test_reports_of_oddly_named_folders_are_written_and_valid(ck, tmp_path, name):
    import xml.dom.minidom

    ck.rename(tmp_path / name)
    code, _, err = run_main("plot", "-c", name, "--out", "loss.svg", cwd=tmp_path)
    assert code == 0, err
    xml.dom.minidom.parse(str(tmp_path / "loss.svg"))  # control characters are invalid XML
    code, _, err = run_main(
        "inspect-attention", "-c", name, "-p", "First", "--html", "a.html", cwd=tmp_path
    )
    assert code == 0, err
    assert "\x1b" not in (tmp_path / "a.html").read_text()


TITLE_ATTACK = "\x1b]0;TITLE\x07\x1b[2J"


def test_terminal_escapes_from_files_and_folder_names_are_shown_escaped(ck, tmp_path):
    spec = json.loads((ck / TOKENIZER_FILE).read_text())
    rehash(ck, TOKENIZER_FILE, json.dumps({**spec, "name": TITLE_ATTACK}).encode())
    shutil.copytree(ck, tmp_path / f"run{TITLE_ATTACK}")
    for args in (("info", "-c", "ck"), ("runs", "--root", ".")):
        code, out, err = run_main(*args, cwd=tmp_path)
        assert code == 0, err
        assert "\x1b" not in out + err and "\x07" not in out + err
        assert "\\x1b]0;TITLE\\x07" in out
    code, _, err = run_main("info", "-c", f"missing{TITLE_ATTACK}", cwd=tmp_path)
    assert "\x1b" not in one_line_error(code, err, (1,))


def test_head_names_from_metrics_jsonl_never_reach_the_terminal_raw(ck, tmp_path):
    lines = (ck / METRICS_FILE).read_text().splitlines()
    record = json.loads(lines[-1])
    record["heads"][TITLE_ATTACK + "[/b]"] = record["heads"].pop("L0H0")
    lines[-1] = json.dumps(record)
    (ck / METRICS_FILE).write_text("\n".join(lines) + "\n")
    code, out, err = run_main("inspect", "trajectory", "ck", cwd=tmp_path)
    assert code == 0, err  # the hostile record is skipped, the others shown
    assert "\x1b" not in out + err and "step" in out


@pytest.mark.parametrize("locks", ["flock", "no-flock"])
def test_an_out_path_that_looks_like_markup_trains(tmp_path, monkeypatch, locks):
    import errno

    from tinygpt.checkpoint import lock

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    if locks == "no-flock":  # the lock's note quotes the path through the progress display
        monkeypatch.setattr(lock.fcntl, "flock", no_locks)
    (tmp_path / "small.txt").write_text(SMALL_TEXT)
    args = ("--device", "cpu", "--max-steps", "2", *MICRO_ARGS)
    code, _, err = run_main("train", "small.txt", "--out", "ck/a[/b]c", *args, cwd=tmp_path)
    assert code == 0, err  # the progress display shows the path; it is not a style tag
    assert "ck/a[/b]c" in err
    assert open_checkpoint(tmp_path / "ck" / "a[" / "b]c").step == 2


def test_a_prompts_control_characters_are_shown_not_sent_by_the_predictions_view(tmp_path):
    """A token holding ESC reached the terminal raw in ``inspect predictions`` (the prompt's
    own text, coloured by loss): every other view already showed it as a label does."""
    (tmp_path / "esc.txt").write_text(SMALL_TEXT + "\x1b[31mred\x07\n" * 20)
    code, _, err = run_main("train", "esc.txt", *MICRO_ARGS, "--max-steps", "2", "-q", cwd=tmp_path)
    assert code == 0, err
    code, out, err = run_main("inspect", "predictions", "-p", "a\x1b[31mred\x07 e", cwd=tmp_path)
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out and "·[31mred·" in out
