"""Issue 25: what a new user tripped on, second pass (items 2-10; item 1 is test_fresh_clone)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import one_line_error, run_main


# -- item 3: a command without -c says which checkpoint it picked ------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ["info"],
        ["plot", "--json"],
        ["eval", "small.txt", "--json"],
        ["generate", "--prompt", "All:", "--max-new-tokens", "3", "--json"],
        ["inspect-attention", "--prompt", "All: speak", "--json"],
    ],
)
def test_a_picked_checkpoint_is_named_on_stderr(two_runs: Path, args: list[str]) -> None:
    code, out, err = run_main(*args, cwd=two_runs)
    assert code == 0, err
    picked = str(Path("checkpoints") / "new")
    assert f"using {picked}, the newest checkpoint under checkpoints/ (-c DIR for another)" in err
    assert "using" not in out  # stdout stays the command's output alone
    # Named with -c: nothing to say.
    code, _, err = run_main(*args, "-c", str(Path("checkpoints") / "old"), cwd=two_runs)
    assert code == 0 and "using" not in err, err


def _readme_commands() -> list[str]:
    """Every tinygpt command the README and its docs pages show, in reading order (tests/docs.py):
    the console blocks' ``$ tinygpt`` lines (joined with the next line while a quote is open)
    and inline `tinygpt ...` spans."""
    import re

    from tests.docs import documentation

    readme = documentation()
    found: list[tuple[int, str]] = []
    lines = readme.splitlines(keepends=True)
    offset = 0
    for i, line in enumerate(lines):
        if line.startswith("$ tinygpt "):
            command, j = line.strip(), i
            while command.count('"') % 2 and j + 1 < len(lines):
                j += 1
                command += "\n" + lines[j].strip()
            found.append((offset, command[2:]))
        offset += len(line)
    for match in re.finditer(r"`(tinygpt [a-z-]+[^`]*)`", readme):
        found.append((match.start(), " ".join(match.group(1).split())))
    return [command for _, command in sorted(found)]


_READS_A_CHECKPOINT = ("generate", "eval", "info", "plot", "inspect-attention", "export")


def test_the_readme_names_the_checkpoint_once_another_run_is_newer() -> None:
    commands = _readme_commands()
    first_other = next(i for i, c in enumerate(commands) if "--out checkpoints/trajectory" in c)
    for command in commands[first_other:]:
        words = command.split()
        if words[1] not in _READS_A_CHECKPOINT or len(words) == 2 or words[2] == "--help":
            continue  # a command's name in the prose, or its help
        if any(w.isupper() or "FILE" in w for w in words):
            continue  # a syntax summary (FILE, DIR), not a command to run
        named = {"-c", "--checkpoint", "--trajectory", "--compare"} & set(words)
        assert named or "--checkpoint=" in command, f"the docs' {command!r} name no -c"


def test_the_readme_writes_no_file_into_the_checkout() -> None:
    for command in _readme_commands():
        words = command.split()
        for flag in ("--html", "--png", "--svg", "--json-file", "--npz"):
            if flag in words and words.index(flag) + 1 < len(words):
                target = words[words.index(flag) + 1]
                assert "/" in target, f"the docs' {command!r} write {target} into the checkout"


# -- item 9: a shape suggestion that works ------------------------------------------------------


# -- item 10: heads named as the tables print them; --head alone is refused ---------------------
def test_ablate_takes_the_printed_label(two_runs: Path) -> None:
    base = ["inspect-attention", "-c", "checkpoints/new", "--prompt", "All: speak", "--json"]
    results = []
    for spec in ("1.0", "L1H0", "l1h0"):
        code, out, err = run_main(*base, "--ablate", spec, "--ablation", "zero", cwd=two_runs)
        assert code == 0, err
        results.append(json.loads(out))
    for result in results[1:]:  # the same measurement, whatever the spelling
        assert {**result, "heads": None} == {**results[0], "heads": None}
    code, _, err = run_main(*base, "--ablate", "L1", cwd=two_runs)
    assert "such as L1H0" in one_line_error(code, err, (2,))


def test_head_takes_the_printed_label_and_a_number_needs_a_layer(two_runs: Path) -> None:
    base = ["inspect-attention", "-c", "checkpoints/new", "--prompt", "All: speak"]
    code, _, err = run_main(*base, "--head", "1", cwd=two_runs)
    assert (
        one_line_error(code, err, (2,))
        == "error: --head 1 needs --layer (or name the head as L1H1)"
    )
    code, by_label, err = run_main(*base, "--head", "L1H1", "--explain", cwd=two_runs)
    assert code == 0, err
    code, by_numbers, err = run_main(
        *base, "--layer", "1", "--head", "1", "--explain", cwd=two_runs
    )
    assert code == 0, err
    assert by_label == by_numbers and "Layer 1, head 1" in by_label
    code, _, err = run_main(*base, "--head", "L1H1", "--layer", "0", cwd=two_runs)
    assert "in layer 1, not --layer 0" in one_line_error(code, err, (2,))
    from tinygpt.analysis import commands
    from tinygpt.errors import UsageError

    # a Python caller is told its own argument names (issue 19), the CLI its flags (above)
    with pytest.raises(UsageError, match=r"^head=1 needs layer \(") as caught:
        commands.attention_report(two_runs / "checkpoints" / "new", "All", head=1, device="cpu")
    assert caught.value.options == ("head", "layer")


# -- item 7: eval shows a progress bar on stderr -------------------------------------------------
def test_eval_reports_progress_to_the_end(two_runs: Path) -> None:
    import tinygpt
    from tinygpt.analysis.evaluation import evaluate_text

    model, tokenizer, _ = tinygpt.load(two_runs / "checkpoints" / "new", device="cpu")
    seen: list[tuple[int, int]] = []
    text = (two_runs / "small.txt").read_text()
    evaluate_text(model, tokenizer, text, batch_size=4, on_progress=lambda *a: seen.append(a))
    windows = -(-(len(text) - 1) // model.config.block_size)
    assert len(seen) > 2 and seen[-1] == (windows, windows)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


@pytest.mark.slow
def test_eval_draws_a_bar_on_a_terminal_and_nothing_in_a_pipe(two_runs: Path) -> None:
    from tests.conftest import run_in_process

    args = ("eval", "small.txt", "-c", "checkpoints/new", "--device", "cpu")
    terminal = {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1"}  # rich: draw as on a terminal
    shown = run_in_process(*args, cwd=two_runs, env=terminal)
    assert shown.returncode == 0 and "eval" in shown.stderr and "windows" in shown.stderr
    assert shown.stdout.startswith("loss ")  # stdout: the result alone
    piped = run_in_process(*args, cwd=two_runs)
    assert piped.returncode == 0 and piped.stderr == ""


# -- item 8: a script beside the checkout imports the package, not the checkout folder ----------
def test_an_editable_install_puts_the_checkout_on_sys_path(tmp_path: Path) -> None:
    """``pip install -e .`` builds this wheel. Its .pth must name the checkout (a path entry,
    searched with Python's own packages) and not install an import hook: the hook runs after
    the search, which takes a folder named tinygpt beside the script for a namespace package."""
    import shutil
    import subprocess
    import sys
    import zipfile

    from tests.conftest import ROOT

    project = tmp_path / "tinygpt"
    shutil.copytree(
        ROOT / "tinygpt", project / "tinygpt", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    build = (
        "import sys; from setuptools import build_meta; "
        "print(build_meta.build_editable(sys.argv[1]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", build, str(tmp_path / "wheel")],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    wheel = zipfile.ZipFile(tmp_path / "wheel" / proc.stdout.strip().splitlines()[-1])
    pth = [n for n in wheel.namelist() if n.endswith(".pth")]
    assert len(pth) == 1
    assert wheel.read(pth[0]).decode().split() == [str(project)]


# -- item 4: a window keeps the keys its queries attend to ---------------------------------------
def test_the_window_reaches_back_to_the_keys_the_queries_attend_to() -> None:
    import torch

    from tinygpt.views.attention_map import first_key, heatmap

    # The README's induction head: queries 21..44 of the second copy look at keys 0..19.
    t = 45
    a = torch.zeros(t, t)
    for i in range(t):
        a[i, i - 21 if i >= 21 else i] = 1.0
    assert first_key(a, 21, t, budget=70) == 0
    assert first_key(a, 21, t, budget=30) == t - 30  # no wider than the line allows
    assert first_key(a, 40, t, budget=70) == 19  # only as far back as needed
    drawn = heatmap(a, [chr(97 + i % 26) for i in range(t)], 21, t, "L1H2", keys_from=0).plain
    rows = drawn.splitlines()[1:]
    assert len(rows) == t - 21 and all("█" in row for row in rows)  # no empty map


@pytest.mark.parametrize("focus", [[], ["--layer", "1", "--head", "0"]])
def test_queries_keep_the_earlier_keys(two_runs: Path, focus: list[str]) -> None:
    args = ["inspect-attention", "-c", "checkpoints/new", "--prompt", "All: speak, all"]
    code, out, err = run_main(*args, "--queries", "5:10", *focus, cwd=two_runs)
    assert code == 0, err
    # A barely trained model spreads its weight over every earlier key: all of them are drawn.
    assert "All:␣speak  ← keys" in out and "queries 5..9, keys 0..9" in out


# -- item 2: a warning at start when the model dwarfs the data ----------------------------------


@pytest.mark.slow
def test_piped_train_output_is_not_cut_at_the_terminal_width(tmp_path: Path) -> None:
    """Smaller item: the run summary and the notes keep one line each in a pipe or a log."""
    from tests.conftest import SMALL_TEXT, run_in_process

    (tmp_path / "t.txt").write_text(SMALL_TEXT)
    args = ("--tokenizer", "char", "--block-size", "16", "--max-steps", "1", "--device", "cpu")
    proc = run_in_process("train", "t.txt", *args, cwd=tmp_path, env={"COLUMNS": "60"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    optim = next(line for line in lines if line.startswith("optim "))
    assert "embeddings adamw" in optim and "head adamw" in optim, proc.stderr
    assert any(line.startswith("run ") and "attention" in line for line in lines)


# -- item 5: every training command in the docs says how long it takes, as a range ------------
def test_every_training_command_in_the_readme_gives_a_duration_range() -> None:
    """In README.md and in every docs page, each one read on its own, but docs/benchmarks.md: a
    record of measured runs, each with the time it took, not commands to follow."""
    import re

    from tests.docs import pages

    duration = re.compile(r"\d+(?:\.\d+)?[–-]\d+(?:\.\d+)? ?(?:s|seconds|minutes|hours)\b")
    train = re.compile(r"^(?:\$ |pip .*&& )?(?:torchrun .*)?tinygpt train |tinygpt\.train\($", re.M)
    found = 0
    for path, text in pages():
        if path.name == "benchmarks.md":
            continue
        for at in (m.start() for m in train.finditer(text)):
            found += 1
            near = text[max(0, at - 900) : at + 1200]
            line = text[at : text.index("\n", at)]
            assert duration.search(near) or "not measured" in near, (
                f"{path.name}: no duration range near {line!r}"
            )
    assert found >= 5


# -- item 6: offline, a BPE checkpoint names what it needs, not an option it lacks -------------
@pytest.fixture
def offline_tiktoken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import tiktoken.load
    import tiktoken.registry

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    # Encodings another test loaded stay in tiktoken's memory: forget them here.
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    empty = tmp_path / "empty-cache"
    empty.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(empty))
    monkeypatch.setattr(tiktoken.load, "read_file", offline)
    return empty


def test_a_bpe_checkpoint_offline_names_its_encoding(offline_tiktoken, two_runs, tmp_path) -> None:
    import shutil

    from tests.conftest import rehash

    ck = tmp_path / "bpe"
    shutil.copytree(two_runs / "checkpoints" / "new", ck)
    rehash(ck, "tokenizer.json", b'{"type": "tiktoken", "name": "gpt2"}')
    code, _, err = run_main("generate", "-c", str(ck), "--prompt", "x", "--device", "cpu")
    line = one_line_error(code, err, (1,))
    assert (
        "gpt2 (tiktoken's r50k_base)" in line and f"TIKTOKEN_CACHE_DIR={offline_tiktoken}" in line
    )
    assert "holds r50k_base" in line and "--tokenizer" not in line, line


def test_training_offline_still_offers_char(offline_tiktoken) -> None:
    from tinygpt.cli.flags import command_spelling
    from tinygpt.data.tokenizer import build_tokenizer
    from tinygpt.errors import TinyGPTError

    with pytest.raises(TinyGPTError) as caught:
        build_tokenizer("cl100k_base")
    shown = caught.value.render(command_spelling(None))
    assert "holds cl100k_base" in shown and "--tokenizer char" in shown
    assert "tokenizer='char'" in str(caught.value)  # a Python caller's spelling


def test_the_readme_info_example_is_what_info_prints_today(two_runs: Path) -> None:
    """Smaller item: the README's `info` lacked the recipe, optimizer and schedule rows and gave
    another model's parameter count. The example now lives in docs/everyday.md."""
    import re

    from tests.docs import documentation
    from tinygpt.config.model import ModelConfig
    from tinygpt.model import GPT

    readme = documentation()
    block = readme.split("$ tinygpt info --checkpoint checkpoints/tinyshakespeare\n", 1)[1]
    block = block.split("\n\n", 1)[0].split("\n```", 1)[0]

    def row_names(text: str) -> list[str]:
        return [m.group(1) for m in re.finditer(r"^(\S+(?: \S+)*?)  +\S", text, re.M)]

    code, out, err = run_main("info", "-c", "checkpoints/new", cwd=two_runs)
    assert code == 0, err
    assert row_names(block) == row_names(out)
    shown = re.search(r"^parameters +([\d,]+) parameters$", block, re.M)
    shape = re.search(r"^shape +(\d+) layers, (\d+) heads, (\d+) wide, block (\d+)", block, re.M)
    vocab = re.search(r"^tokenizer +char \(vocab (\d+)\)", block, re.M)
    assert shown and shape and vocab and "recipe         modern" in block
    n_layer, n_head, n_embd, block_size = (int(g) for g in shape.groups())
    config = ModelConfig(
        n_layer=n_layer,
        n_head=n_head,
        n_embd=n_embd,
        block_size=block_size,
        vocab_size=int(vocab.group(1)),
    )
    assert int(shown.group(1).replace(",", "")) == sum(p.numel() for p in GPT(config).parameters())


# -- smaller item: `runs` builds no model to count parameters -----------------------------------
@pytest.mark.parametrize("arch", ["modern", "gpt2"])
def test_the_parameter_count_from_the_shape_is_the_models(arch: str) -> None:
    import itertools

    import torch

    from tinygpt.config.model import ModelConfig
    from tinygpt.model import GPT, ParameterCount, count_parameters
    from tinygpt.recipe import RECIPES

    recipe = RECIPES[arch].model_options()
    for bias, mlp, tie, embed_norm, n_layer in itertools.product(
        [False, True], [False, True], [False, True], [False, True], [1, 3]
    ):
        config = ModelConfig(
            **{**recipe, "bias": bias, "mlp": mlp, "tie_embeddings": tie, "embed_norm": embed_norm},
            n_layer=n_layer,
            n_head=2,
            n_embd=16,
            block_size=12,
            vocab_size=37,
        )
        with torch.device("meta"):
            built = GPT(config)
        position = built.wpe.weight.numel() if built.wpe is not None else 0
        total = sum(p.numel() for p in built.parameters())  # each parameter once, tied or not
        assert count_parameters(config) == ParameterCount(total, position), config
