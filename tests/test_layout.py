"""The package's shape: documented modules, no import cycles, a CLI that starts without torch,
and an editable install that puts the checkout on sys.path."""

import ast
import importlib
import importlib.util
import pkgutil
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

# The floors of the package, lowest first (tinygpt/__init__.py argues the cut): a module imports
# only from its own floor or the ones below it.
FLOORS = [
    "errors", "recipe", "config", "io", "data", "model", "sampling", "checkpoint", "training",
    "analysis", "doctor", "views", "api", "explore", "cli",
]  # fmt: skip


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every tinygpt module ``path`` imports (at the top or inside a function), with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tinygpt"):
            if node.module == "tinygpt":
                found += [(f"tinygpt.{a.name}", node.lineno) for a in node.names]
            else:
                found.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.startswith("tinygpt.")]
    return found


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(p): p for p in sorted((ROOT / "tinygpt").rglob("*.py"))}


def test_every_floor_is_listed_and_the_top_holds_at_most_six_modules():
    entries = {
        p.relative_to(ROOT / "tinygpt").parts[0].removesuffix(".py") for p in MODULES.values()
    }
    assert entries - {"__init__", "__main__"} == set(FLOORS)
    top = list((ROOT / "tinygpt").glob("*.py"))
    assert len(top) <= 6, sorted(p.name for p in top)


def test_modules_and_functions_stay_short_enough_to_read():
    """At most 400 lines a module and 60 a function: each can be read in one sitting."""
    long_modules, long_functions = [], []
    for name, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 400:
            long_modules.append(name)
        for node in ast.walk(ast.parse(text)):
            is_function = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            if is_function and node.end_lineno - node.lineno + 1 > 60:
                long_functions.append(f"{name}.{node.name}")
    assert long_modules == [] and long_functions == []


def test_imports_never_climb_a_floor():
    climbs = []
    for name, path in MODULES.items():
        floor = name.split(".")[1] if "." in name else None
        if floor not in FLOORS:  # tinygpt/__init__.py and __main__.py: the doors
            continue
        for target, line in _imports(path):
            to = target.split(".")[1] if target.count(".") else None
            if to in FLOORS and FLOORS.index(to) > FLOORS.index(floor):
                climbs.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not climbs, "\n".join(climbs)


def test_no_import_cycles_between_modules():
    graph = {
        name: {t for t, _ in _imports(path) if t in MODULES and t != name}
        for name, path in MODULES.items()
    }
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            cycle = [*trail[trail.index(name) :], name]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        for target in sorted(graph[name]):
            if not target.startswith(name + "."):  # a package may import its own modules
                visit(target, [*trail, name])
        done.add(name)

    for name in graph:
        visit(name, [])


def test_every_script_imports_names_the_package_has():
    """A rename in the package breaks no script in scripts/ unnoticed (one broke bench_muon.py)."""
    missing = []
    for path in sorted((ROOT / "scripts").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tinygpt")):
                continue
            module = importlib.import_module(node.module)
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found = hasattr(module, alias.name) or (
                    hasattr(module, "__path__") and importlib.util.find_spec(submodule) is not None
                )
                missing += [] if found else [f"{path.name}: {node.module}.{alias.name}"]
    assert missing == []


def test_no_public_name_shadows_a_module():
    import tinygpt

    submodules = {m.name for m in pkgutil.iter_modules(tinygpt.__path__)}
    assert not submodules & set(tinygpt.__all__)
    import tinygpt.analysis.evaluation as ev

    assert isinstance(ev, types.ModuleType) and ev is importlib.import_module(
        "tinygpt.analysis.evaluation"
    )
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
    "tinygpt.analysis.capture",
    "tinygpt.analysis.scores",
    "tinygpt.analysis.probes",
    "tinygpt.analysis.explain",
    "tinygpt.analysis.ablation",
    "tinygpt.analysis.attention_report",
    "tinygpt.analysis.predictions",
    "tinygpt.analysis.attribution",
    "tinygpt.analysis.lens",
    "tinygpt.analysis.patching",
    "tinygpt.analysis.interpret_report",
]
RENDERING = (
    "rich",
    "tinygpt.views.attention_map",
    "tinygpt.views.attention_view",
    "tinygpt.views.head_explanation",
    "tinygpt.views.head_tables",
    "tinygpt.views.trajectory_text",
    "tinygpt.views.attention_html",
    "tinygpt.views.attention_figures",
    "tinygpt.views.interpret_text",
    "tinygpt.views.interpret_html",
    "tinygpt.views.interpret_figures",
    "tinygpt.views",
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


@pytest.mark.slow
def test_a_built_wheel_ships_every_file_of_the_package(tmp_path):
    """The pages' HTML, CSS and scripts are files beside their modules: a wheel without them
    would install a tinygpt whose pages fail to render."""
    listed = subprocess.run(
        ["git", "ls-files", "pyproject.toml", "README.md", "tinygpt"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    for name in listed:
        (tmp_path / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / name).write_bytes((ROOT / name).read_bytes())
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path / "wheel"), str(tmp_path / "src")],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    assert {n for n in listed if n.startswith("tinygpt/")} <= shipped


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
