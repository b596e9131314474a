"""What README.md tells a new user to run works as it says, and what it and the docs pages show
(the commands, their durations, the info example) matches what the program does."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_main

README = (ROOT / "README.md").read_text(encoding="utf-8")


def python_example() -> str:
    """The code block of the README's "From Python" section."""
    section = README.split("\n### From Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_readme_python_example_runs_beside_the_main_job(tmp_path, shakespeare):
    code = python_example()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "tinyshakespeare.txt").symlink_to(shakespeare)
    # What the example's last line promises, checked after it has run.
    check = "\nimport torch\nassert isinstance(model, torch.nn.Module)\n"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", code + check],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    seconds = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ROMEO:")  # the sample, prompt first
    bits_per_byte = float(proc.stdout.strip().splitlines()[-1])
    claimed = float(re.search(r"bits_per_byte\)\s+# about ([\d.]+)", code).group(1))
    assert abs(bits_per_byte - claimed) < 0.2, bits_per_byte
    # Its own directory: the CLI's main job (checkpoints/tinyshakespeare) is left alone.
    assert (tmp_path / "checkpoints" / "from-python" / "manifest.json").exists()
    assert not (tmp_path / "checkpoints" / "tinyshakespeare").exists()
    assert proc.stderr == ""  # not a terminal: quiet by default
    assert seconds < 120, f"the README's example took {seconds:.0f}s, not well under a minute"


def test_readme_says_how_to_install_without_cuda():
    setup = README.split("\n## A short tour", 1)[0]
    block = next(b for b in re.findall(r"```bash\n(.*?)```", setup, re.S) if "/whl/cpu" in b)
    commands = [line.split("#")[0].split() for line in block.splitlines() if line.strip()]
    # The CPU wheel first, then the project, whose install keeps the torch already there.
    assert commands[0] == ["pip", "install", "torch", "--index-url", CPU_INDEX]
    assert commands[1][:3] == ["pip", "install", "-e"]
    # The table of what each route installs, on the page the setup links: NVIDIA's libraries
    # with the default one only.
    assert "(docs/install.md)" in setup
    install = (ROOT / "docs" / "install.md").read_text(encoding="utf-8")
    rows = [r.strip("|").split("|") for r in re.findall(r"^\|.*\|$", install, re.M)]
    nvidia = [c.strip() for c in rows[0]].index("`nvidia/`")
    routes = {r[0].strip(): r[nvidia].strip() for r in rows[2:]}
    default = next(v for k, v in routes.items() if k.startswith("default"))
    assert re.fullmatch(r"[\d.]+ GB", default) and routes["CPU wheel first"] == "none"


CPU_INDEX = "https://download.pytorch.org/whl/cpu"  # PyTorch's CPU-only wheels


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


_READS_A_CHECKPOINT = ("generate", "eval", "info", "plot", "inspect-attention", "inspect", "export")


def test_the_readme_names_the_checkpoint_once_another_run_is_newer() -> None:
    commands = _readme_commands()
    first_other = next(i for i, c in enumerate(commands) if "--out checkpoints/trajectory" in c)
    for command in commands[first_other:]:
        words = command.split()
        name_only = len(words) <= (3 if words[1] == "inspect" else 2)
        if words[1] not in _READS_A_CHECKPOINT or name_only or "--help" in words[2:4]:
            continue  # a command's name in the prose, or its help
        if any(w.isupper() or "FILE" in w for w in words):
            continue  # a syntax summary (FILE, DIR), not a command to run
        # inspect trajectory DIR and inspect compare A B name theirs as arguments
        named = {"-c", "--checkpoint", "trajectory", "compare"} & set(words)
        assert named or "--checkpoint=" in command, f"the docs' {command!r} name no -c"


def test_the_readme_writes_no_file_into_the_checkout() -> None:
    for command in _readme_commands():
        words = command.split()
        for flag in ("--html", "--png", "--svg", "--json-file", "--npz"):
            if flag in words and words.index(flag) + 1 < len(words):
                target = words[words.index(flag) + 1]
                assert "/" in target, f"the docs' {command!r} write {target} into the checkout"


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


def test_the_readme_info_example_is_what_info_prints_today(two_runs: Path) -> None:
    """The README's `info` lacked the recipe, optimizer and schedule rows and gave
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
