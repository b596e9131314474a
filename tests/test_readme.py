"""What README.md tells a new user to run works as it says."""

import os
import re
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT

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
