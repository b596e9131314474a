"""Issue 25: what a new user tripped on, second pass (items 2-10; item 1 is test_fresh_clone)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_main

# -- item 3: a command without -c says which checkpoint it picked ------------------------------


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


# -- item 7: eval shows a progress bar on stderr -------------------------------------------------


# -- item 8: a script beside the checkout imports the package, not the checkout folder ----------


# -- item 4: a window keeps the keys its queries attend to ---------------------------------------


# -- item 2: a warning at start when the model dwarfs the data ----------------------------------


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
