"""The package's shape: documented modules, no import cycles, a CLI that starts without torch."""

import importlib
import pkgutil
import re
import subprocess
import sys
import types

import pytest

from tests.conftest import ROOT, SHARED


def test_readme_layout_lists_every_module():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Layout", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"tinygpt/[\w/]+\.py", section))
    modules = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "tinygpt").rglob("*.py")
        if p.name != "__init__.py" or p.parent == ROOT / "tinygpt"  # packages: their folder line
    }
    assert not modules - listed, f"missing from the README's layout: {sorted(modules - listed)}"
    assert not listed - modules, f"listed but gone: {sorted(listed - modules)}"


def test_no_import_cycles():
    tool = SHARED / "tools" / "import_cycles.py"
    if not tool.exists():
        pytest.skip(f"{tool} is not there")
    proc = subprocess.run(
        [sys.executable, str(tool), "tinygpt"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0 and not proc.stdout, proc.stdout


def test_no_public_name_shadows_a_module():
    import tinygpt

    submodules = {m.name for m in pkgutil.iter_modules(tinygpt.__path__)}
    assert not submodules & set(tinygpt.__all__)
    import tinygpt.evaluation as ev

    assert isinstance(ev, types.ModuleType) and ev is importlib.import_module("tinygpt.evaluation")
    assert callable(tinygpt.evaluate) and tinygpt.evaluate.__module__ == "tinygpt.api"


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["train", "--help"]])
def test_help_and_version_answer_without_importing_torch(args):
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['tinygpt', *{args!r}]\n"
        "try:\n"
        "    runpy.run_module('tinygpt', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "print('torch imported:', 'torch' in sys.modules, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "torch imported: False" in proc.stderr


ANALYSIS = [
    "tinygpt.attention.capture",
    "tinygpt.attention.scores",
    "tinygpt.attention.probes",
    "tinygpt.attention.explain",
    "tinygpt.attention.ablation",
    "tinygpt.attention.report",
    "tinygpt.interpret.predictions",
    "tinygpt.interpret.attribution",
    "tinygpt.interpret.lens",
    "tinygpt.interpret.patching",
    "tinygpt.interpret.reports",
]
RENDERING = (
    "rich",
    "tinygpt.attention.view",
    "tinygpt.attention.html",
    "tinygpt.attention.figures",
    "tinygpt.interpret.view",
    "tinygpt.interpret.html",
    "tinygpt.interpret.figures",
    "tinygpt.draw",
)


def test_analysis_is_tensors_in_dataclasses_out_and_renders_nothing():
    """The analysis modules (attention and interpret) load none of the rendering ones, nor rich:
    a notebook or a script gets numbers without a terminal library."""
    code = (
        "import sys\n"
        f"for name in {ANALYSIS!r}:\n"
        "    __import__(name)\n"
        f"print(sorted(m for m in sys.modules if m.startswith({RENDERING!r})))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
