"""Shared fixtures: tiktoken and the corpus (from ../shared, else fetched as a user would, else
skipped), a private token cache, small corpora and tiny runs."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SHAKESPEARE = SHARED / "data" / "tinyshakespeare.txt"
TIKTOKEN_CACHE = SHARED / "tiktoken_cache"


def use_shared_tiktoken_cache(environ: MutableMapping[str, str], cache: Path) -> None:
    """Point tiktoken at ../shared's encodings when they are there (CI has ../shared beside the
    clone), even over a TIKTOKEN_CACHE_DIR set for other work: the tests then run offline on
    the same files everywhere. Without ../shared, tiktoken's own cache and download serve."""
    if cache.is_dir():
        environ["TIKTOKEN_CACHE_DIR"] = str(cache)


use_shared_tiktoken_cache(os.environ, TIKTOKEN_CACHE)

# The sampled fault-injection searches draw from this seed, a new one each run unless given;
# the header prints it, so any failure reruns with TINYGPT_FUZZ_SEED=N. The systematic tests
# beside them (every byte, every field) find the same things on every hypothesis version.
if not os.environ.get("TINYGPT_FUZZ_SEED"):  # set here, so pytest-xdist's workers share it
    os.environ["TINYGPT_FUZZ_SEED"] = str(random.SystemRandom().randrange(1 << 32))
FUZZ_SEED = int(os.environ["TINYGPT_FUZZ_SEED"])


def pytest_report_header(config: pytest.Config) -> str:
    return f"fault-injection searches: TINYGPT_FUZZ_SEED={FUZZ_SEED} reruns their cases"


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    """Tiny models: one thread avoids oversubscribing a shared 2-core machine. Set here, in
    the process that runs tests, not at import: pytest-xdist's controller loads this file too
    and need not pay for importing torch before it starts the workers."""
    import torch

    torch.set_num_threads(1)


TINY = dict(
    tokenizer="char",
    n_layer=2,
    n_head=2,
    n_embd=32,
    block_size=16,
    batch_size=8,
    max_steps=30,
    eval_every=15,
    eval_batches=2,
    warmup_steps=5,
    # One update a step, the path most of a real run takes (all 30 steps would be in the batch
    # warmup); test_training's batch-warmup tests and the CLI's MICRO_ARGS runs take the other.
    batch_warmup_steps=0,
    device="cpu",
    # A sample at each evaluation costs more than the tiny run's steps; the tests of samples
    # (test_monitoring) ask for them.
    eval_samples=False,
)


def cli_flags(options: Mapping[str, object]) -> list[str]:
    """Options as the CLI's flags: ``{"n_layer": 2}`` is ``["--n-layer=2"]``, a switch
    ``{"eval_samples": False}`` is ``["--no-eval-samples"]``."""
    flags = []
    for key, value in options.items():
        name = key.replace("_", "-")
        if isinstance(value, bool):
            flags.append(f"--{name}" if value else f"--no-{name}")
        else:
            flags.append(f"--{name}={value}")
    return flags


TINY_ARGS = cli_flags(TINY)  # the tiny run from the command line (a later flag overrides one)

# The smallest model the CLI subprocess tests train (long runs they interrupt or resume).
MICRO_ARGS = [
    *("--tokenizer", "char", "--n-layer", "1", "--n-head", "2"),
    *("--n-embd", "16", "--block-size", "16", "--batch-size", "4"),
]

# The 2019 recipe's switches, for tests that build GPT-2's exact structure by hand.
from tinygpt.recipe import RECIPES  # noqa: E402

GPT2 = RECIPES["gpt2"].model_options()


def model_config(arch: str = "modern", **fields):
    """The ModelConfig of recipe ``arch`` ("modern" or "gpt2") with ``fields`` changed."""
    from tinygpt.config.model import ModelConfig

    return ModelConfig(**{**RECIPES[arch].model_options(), **fields})


def random_gpt(arch: str = "modern", seed: int = 0, attention: str = "sdpa", **fields):
    """An untrained model in eval mode with every weight random (an all-zero matrix, should a
    recipe start one at zero, is drawn too: it would hide the computation)."""
    import torch

    from tinygpt.model import GPT

    torch.manual_seed(seed)
    model = GPT(model_config(arch, **fields), attention=attention)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2 and not p.any():
                p.normal_(0.0, 0.2)
    return model.eval()


SMALL_TEXT = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
    "All:\nSpeak, speak.\n\nFirst Citizen:\nYou are all resolved rather to die than to famish?\n\n"
    "All:\nResolved. resolved.\n\n"
) * 20


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TINYGPT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "tgcache"))


def float32_newton_schulz(device: torch.device) -> tuple[bool, torch.dtype]:
    """Muon's iteration per matrix in float32, on any CPU (``newton_schulz_for``'s
    choice where the CPU has no native bfloat16). Where it has, bfloat16's rounding turns
    float32-sized differences between two equivalent computations (an all-reduce against one
    batch, accumulation against a bigger batch) into 1e-4-sized ones; tests that compare such
    computations exactly use float32."""
    import torch

    return False, torch.float32


def pin_float32(set_attribute: Callable[[object, str, object], None]) -> None:
    """Float32 arithmetic on any CPU: Muon's iteration, and ``--dtype auto`` (bf16 autocast on
    a CPU where bf16 times faster). ``set_attribute``: ``monkeypatch.setattr``, or ``setattr``
    in a worker."""
    from tinygpt.model import device
    from tinygpt.training import muon

    set_attribute(muon, "newton_schulz_for", float32_newton_schulz)
    set_attribute(device, "cpu_bfloat16_pays", lambda: False)


@pytest.fixture
def float32_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    pin_float32(monkeypatch.setattr)


@pytest.fixture
def small_text(tmp_path: Path) -> Path:
    path = tmp_path / "small.txt"
    path.write_text(SMALL_TEXT, encoding="utf-8")
    return path


LOCAL_SHAKESPEARE = (
    ROOT / "data" / "tinyshakespeare.txt"
)  # where the README's offline advice puts it


def corpus_or_reason(shared: Path, cache: Path, local: Path = LOCAL_SHAKESPEARE) -> Path | str:
    """Tiny Shakespeare from ../shared, else ``local`` (the checkout's data/tinyshakespeare.txt)
    when its sha256 is the corpus's, else downloaded into ``cache`` the way a user gets it
    (``tinygpt data shakespeare``, checked against its sha256); offline, why not (one line)."""
    from tinygpt.data.datasets import DATASETS

    if shared.exists():
        return shared
    expected = DATASETS["shakespeare"].sha256
    if local.is_file() and hashlib.sha256(local.read_bytes()).hexdigest() == expected:
        return local
    code, out, err = run_main("data", "shakespeare", "--dir", str(cache), "--json")
    if code == 0:
        return Path(json.loads(out)["path"])
    # The error's first clause names the source and the cause; the advice after it is for a
    # user who asked for the download, not for someone reading a skip.
    cause = (err.strip().splitlines() or ["no reason given"])[-1].removeprefix("error: ")
    return f"needs tiny Shakespeare: no {shared}, and {cause.split('; ')[0]}"


@pytest.fixture(scope="session")
def shakespeare(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # pytest's cache folder (.pytest_cache, ignored by git) keeps one download across runs.
    cache_plugin = getattr(request.config, "cache", None)
    folder = (
        cache_plugin.mkdir("tinyshakespeare")
        if cache_plugin is not None
        else tmp_path_factory.mktemp("tinyshakespeare")
    )
    found = corpus_or_reason(SHAKESPEARE, folder)
    if isinstance(found, str):
        pytest.skip(found)  # a session fixture: one try, the same skip for every test
    return found


_ENCODINGS: dict[str, str | None] = {}  # encoding -> why it cannot load (None: it loads)


def encoding_skip_reason(name: str) -> str | None:
    """Why tiktoken's encoding ``name`` cannot be had here (neither cached nor downloadable),
    or None; asked once per session so an offline run does not retry the network per test."""
    from tinygpt.data.tokenizer import build_tokenizer
    from tinygpt.errors import TinyGPTError

    if name not in _ENCODINGS:
        try:
            build_tokenizer(name)
            _ENCODINGS[name] = None
        except TinyGPTError:
            cache = os.environ.get("TIKTOKEN_CACHE_DIR") or "tiktoken's default cache"
            where = cache if cache == str(TIKTOKEN_CACHE) else f"{TIKTOKEN_CACHE} nor {cache}"
            _ENCODINGS[name] = (
                f"needs tiktoken's {name} encoding: not in {where}, and the download failed "
                f"(offline?)"
            )
    return _ENCODINGS[name]


def need_encoding(name: str = "gpt2") -> None:
    """Skip the calling test when the BPE encoding ``name`` is not to be had (offline, no
    ../shared)."""
    reason = encoding_skip_reason(name)
    if reason:
        pytest.skip(reason)


@pytest.fixture
def gpt2_encoding() -> None:
    """For tests that use the gpt2 BPE: skipped with the reason when it cannot load."""
    need_encoding("gpt2")


@pytest.fixture
def tiny_run(tmp_path: Path, small_text: Path):
    """Train a tiny char model on the small text; returns its checkpoint directory."""
    import tinygpt

    def make(name: str = "run", **overrides):
        options = {**TINY, **overrides}
        return tinygpt.train(small_text, out_dir=tmp_path / name, **options)

    return make


# The environment run_cli's subprocess gets on top of this one: no colour, a 100-column
# terminal, and one torch thread, as in this process: on a shared 2-core machine a subprocess
# with more threads than free cores can run many times slower (a 25 s run took over 300 s).
CLI_ENV = {"NO_COLOR": "1", "COLUMNS": "100", "OMP_NUM_THREADS": "1"}


def special_file(path: Path, kind: str) -> None:
    """Put at ``path`` what a careless reader hangs on: a FIFO nobody writes (``fifo``), a file
    that never ends (``dev-zero``), or JSON nested past any parser's depth (``deep``)."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    else:
        assert kind == "deep", kind
        path.write_text("[" * 100_000)


def ctrl_c_after(monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    """The trainer gets a real SIGINT right after ``step`` (handled as Ctrl-C would be)."""
    from tinygpt.training.trainer import Trainer

    real_step = Trainer.train_step

    def step_then_ctrl_c(self: Trainer) -> tuple[float, bool]:
        out = real_step(self)
        if self.step == step:
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(Trainer, "train_step", step_then_ctrl_c)


def run_cli(*args: str, cwd: Path | None = None, input: str | None = None, env=None):
    """Run ``python -m tinygpt ARGS`` in a subprocess and return the CompletedProcess."""
    full_env = {**os.environ, **CLI_ENV, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "tinygpt", *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
    )


def run_main(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    """Run the CLI's entry point in this process: (exit code, stdout, stderr).

    Faster than ``run_cli`` for the many-cases tests; the signal handlers ``main`` installs and
    the working directory are restored afterwards.
    """
    import contextlib
    import io
    import signal

    from tinygpt.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    old_cwd, old_argv = os.getcwd(), sys.argv
    code = 0
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                sys.argv = ["tinygpt", *args]  # main() reads sys.argv, like the console script
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.chdir(old_cwd)
        sys.argv = old_argv
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    return code, out.getvalue(), err.getvalue()


# A fresh interpreter's warning filters (no -W, no PYTHONWARNINGS): these are not shown.
_HIDDEN_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


def _warning_on_stderr(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def run_in_process(
    *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """What ``run_cli`` answers, without its subprocess and the 2-4 s of imports it pays: the
    CLI's ``main`` in this process (``run_main``) under run_cli's environment (``CLI_ENV``, then
    ``env``), with warnings written to stderr as a fresh interpreter shows them (not recorded
    by pytest, which would hide them from a test of stderr).

    Not for what only a process has: signals, stdin, the console script's exit or start-up (what
    it imports), or variables read once at import (PYTHONIOENCODING, LC_ALL).
    """
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        for name, value in {**CLI_ENV, **(env or {})}.items():
            patch.setenv(name, value)
        warnings.resetwarnings()
        for category in _HIDDEN_WARNINGS:
            warnings.simplefilter("ignore", category)
        warnings.showwarning = _warning_on_stderr
        code, out, err = run_main(*args, cwd=cwd)
    return subprocess.CompletedProcess(["tinygpt", *args], code, out, err)


def tree_digest(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` (relative path) and its sha256."""
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


# A tiny run in the gpt2 recipe (a position table, biases, a tied head), so `export` works on it.
TINY_GPT2 = {**TINY, "arch": "gpt2", "max_steps": 10, "eval_every": 5}


def _shared_run(
    tmp_path_factory: pytest.TempPathFactory, name: str, options: Mapping[str, Any]
) -> Iterator[Path]:
    """``options`` trained on SMALL_TEXT (``small.txt`` beside the checkpoint ``ck``, its token
    cache in ``cache``) once for the session; fails at teardown if a test changed it."""
    import tinygpt

    root = tmp_path_factory.mktemp(name)
    (root / "small.txt").write_text(SMALL_TEXT)
    out = tinygpt.train(
        root / "small.txt", out_dir=root / "ck", cache_dir=root / "cache", **options
    ).out_dir
    before = tree_digest(out)
    yield out
    assert tree_digest(out) == before, f"a test changed the shared {name} checkpoint"


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """TINY trained on SMALL_TEXT once for the whole session: the checkpoint directory, for
    tests that only read it. A test that writes into it, resumes it or changes it works on a
    copy (``shutil.copytree``, or the ``tiny_copy`` fixture); the teardown fails if any test
    changed it."""
    yield from _shared_run(tmp_path_factory, "trained-tiny", TINY)


@pytest.fixture(scope="session")
def trained_tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """TINY_GPT2 trained on SMALL_TEXT once for the session, as ``trained_tiny``: only read
    (the ``ck`` fixture copies it for each test that damages it)."""
    yield from _shared_run(tmp_path_factory, "trained-tiny-gpt2", TINY_GPT2)


@pytest.fixture
def tiny_copy(trained_tiny: Path, tmp_path: Path) -> Path:
    """A private copy of ``trained_tiny`` in tmp_path (``tmp_path / "ck"``), to change."""
    return Path(shutil.copytree(trained_tiny, tmp_path / "ck"))


def rehash(directory: Path, name: str, data: bytes, manifest: str = "manifest.json") -> None:
    """Replace ``name`` and fix the manifest's sha256 and size, as an attacker (or a careless
    edit) could."""
    (directory / name).write_bytes(data)
    m = json.loads((directory / manifest).read_text())
    m["files"][name] = hashlib.sha256(data).hexdigest()
    m.setdefault("sizes", {})[name] = len(data)
    (directory / manifest).write_text(json.dumps(m))


def one_line_error(code: int, err: str, expected: tuple[int, ...] = (1, 2)) -> str:
    """Assert a clean failure: an expected exit code and one 'error:' line, nothing unexpected."""
    assert code in expected, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "error: unexpected" not in err and "Traceback" not in err
    return lines[0]


# -- shared by the tests of bad and hostile inputs (test_checkpoint_faults, test_cli_errors, ...)
class Hung(Exception):
    """Raised by ``time_limit``; not an OSError (as TimeoutError is), which code under test
    may catch and turn into a message or, as ``glob.glob`` does, silently swallow."""


class FakeClock:
    """Each reading advances time by ``tick``: a perfectly steady machine (tick 0: time moves
    only when a test moves ``now``)."""

    def __init__(self, tick: float = 0.0) -> None:
        self.now, self.tick = 0.0, tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


def use_clock(monkeypatch: pytest.MonkeyPatch, clock: Callable[[], float]) -> None:
    """Trainers built from now on read ``clock`` instead of the wall clock."""
    from tinygpt.training.trainer import Trainer

    real_init = Trainer.__init__

    def with_clock(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        self.clock = clock

    monkeypatch.setattr(Trainer, "__init__", with_clock)


@contextlib.contextmanager
def time_limit(seconds: int):
    """Fail instead of hanging (a FIFO opened for reading waits for a writer forever)."""

    def expire(signum, frame):
        raise Hung(f"still running after {seconds}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def snapshot(directory: Path) -> dict[str, bytes]:
    """The files of ``directory`` (not its folders), by name: equal before and after = untouched."""
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


# ``trained`` and ``ck``: the checkpoint the tests of damaged and hostile files work on. A module
# may define its own fixture of either name (test_cli's ``trained`` is a CLI run, test_explore's
# and test_generate_cli's ``ck`` the read-only ``trained_tiny``); pytest takes the module's.
@pytest.fixture(scope="module")
def trained(trained_tiny_gpt2: Path) -> Path:
    """The session's tiny gpt2-recipe run (conftest's TINY_GPT2): only read; ``ck`` copies it."""
    return trained_tiny_gpt2


@pytest.fixture
def ck(trained, tmp_path) -> Path:
    """A private copy of the trained checkpoint, to damage."""
    (tmp_path / "small.txt").write_text(SMALL_TEXT)
    return Path(shutil.copytree(trained, tmp_path / "ck"))


@pytest.fixture(scope="session")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose checkpoints/ holds two tiny runs, ``old`` and the newer ``new``, made once
    per session (per worker) for the tests that only read it (commands without -c pick ``new``)."""
    import tinygpt

    root = tmp_path_factory.mktemp("two-runs")
    (root / "small.txt").write_text(SMALL_TEXT, encoding="utf-8")
    for age, name in ((100, "old"), (0, "new")):
        out = root / "checkpoints" / name
        tinygpt.train(root / "small.txt", out_dir=out, **{**TINY, "max_steps": 2})
        stamp = (out / "manifest.json").stat().st_mtime - age
        os.utime(out / "manifest.json", (stamp, stamp))
    return root
