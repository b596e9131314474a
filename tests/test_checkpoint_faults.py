"""Crafted and damaged checkpoint files: every reader gives one line (never "unexpected"), reads
what the manifest declares and no more, allocates nothing the weights do not justify and writes
nothing outside the checkpoint; then property-based fault injection over every file of a real
checkpoint, the lock file, the token cache and import-hf's inputs, and the systematic every-byte
twins of those searches."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import tinygpt
from tests.conftest import (
    FUZZ_SEED,
    MICRO_ARGS,
    SMALL_TEXT,
    one_line_error,
    rehash,
    run_main,
    special_file,
    time_limit,
)
from tinygpt.checkpoint.manifest import (
    BEST_FILE,
    CONFIG_FILE,
    MANIFEST_FILE,
    MODEL_FILE,
    PENDING_FILE,
    STAGED_PREFIX,
    STATE_FILE,
    TOKENIZER_FILE,
)
from tinygpt.checkpoint.metrics import METRICS_FILE, read_metrics
from tinygpt.checkpoint.store import open_checkpoint
from tinygpt.errors import CheckpointError
from tinygpt.io.files import sha256

TEXT = "small.txt"


def _pending_with(directory: Path, name: str) -> None:
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    manifest["files"][name] = sha256(b"owned\n")
    (directory / PENDING_FILE).write_text(json.dumps(manifest))


@pytest.mark.parametrize("attack", ["absolute", "parent"])
@pytest.mark.parametrize("command", ["resume", "overwrite", "info"])
def test_manifest_names_outside_the_checkpoint_are_corrupt(ck, tmp_path, attack, command):
    victim = tmp_path / "victim.txt"
    if attack == "absolute":
        name = str(victim)
        # ".staged-" + "/abs/path" is the path ".staged-/abs/path" inside the checkpoint
        staged = Path(str(ck / STAGED_PREFIX) + name)
    else:
        name = "../victim.txt"
        staged = ck / (STAGED_PREFIX + name)
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.write_bytes(b"owned\n")
    _pending_with(ck, name)
    args = {
        "resume": ["train", "small.txt", "--out", "ck", "--resume", "--max-steps", "11", "-q"],
        "overwrite": [
            "train",
            "small.txt",
            "--out",
            "ck",
            "--overwrite",
            "--max-steps",
            "1",
            "--device",
            "cpu",
            "-q",
            *MICRO_ARGS,
        ],
        "info": ["info", "-c", "ck"],
    }[command]
    code, _, err = run_main(*args, cwd=tmp_path)
    line = one_line_error(code, err, (1,))
    assert "corrupt" in line and "not a checkpoint file" in line
    assert not victim.exists()


def test_manifest_json_with_an_unknown_name_is_corrupt(ck):
    manifest = json.loads((ck / MANIFEST_FILE).read_text())
    manifest["files"]["notes.txt"] = sha256(b"")
    (ck / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="corrupt.*not a checkpoint file"):
        open_checkpoint(ck)


@pytest.mark.parametrize("name", [MODEL_FILE, CONFIG_FILE, STATE_FILE])
@pytest.mark.parametrize("kind", ["dev-zero", "fifo"])
def test_checkpoint_files_that_are_devices_or_fifos(ck, tmp_path, name, kind):
    (ck / name).unlink()
    special_file(ck / name, kind)
    for args in (
        ["info", "-c", "ck"],
        ["generate", "-c", "ck", "--max-new-tokens", "2"],
        ["runs", "--root", "."],
    ):
        with time_limit(60):
            code, out, err = run_main(*args, cwd=tmp_path)
        if args[0] == "runs":  # lists the broken run instead of failing
            assert code == 0 and "ck" in out, err
            continue
        reads = {
            "info": (CONFIG_FILE, STATE_FILE),
            "generate": (CONFIG_FILE, MODEL_FILE),
        }[args[0]]
        if name not in reads:
            assert code == 0, err  # e.g. info does not read the weights
            continue
        assert "not a regular file" in one_line_error(code, err, (1,))


@pytest.mark.parametrize(
    "change",
    [
        {"n_embd": 10**9},
        {"vocab_size": 10**12},
        {"block_size": 10**10},
        {"n_layer": 10**7, "n_embd": 2, "n_head": 1},
        {"n_layer": 2000},
    ],
)
def test_huge_model_configs_are_refused_before_allocating(ck, tmp_path, change):
    config = json.loads((ck / CONFIG_FILE).read_text())
    config["model"].update(change)
    rehash(ck, CONFIG_FILE, json.dumps(config).encode())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for args in (["info", "-c", "ck"], ["generate", "-c", "ck", "--max-new-tokens", "2"]):
        with time_limit(60):
            code, _, err = run_main(*args, cwd=tmp_path)
        assert "limit" in one_line_error(code, err, (1,))
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kb < 512 * 1024


def test_a_file_larger_than_the_manifest_declares_is_not_read(ck):
    with open(ck / MODEL_FILE, "ab") as fh:
        fh.truncate(8 << 30)  # sparse: 8 GB that a reader must not load
    with pytest.raises(CheckpointError, match="more than"):
        open_checkpoint(ck).load_model()


def _config_with(ck: Path, section: str, key: str, value) -> None:
    config = json.loads((ck / CONFIG_FILE).read_text())
    config[section][key] = value
    rehash(ck, CONFIG_FILE, json.dumps(config).encode())


@pytest.mark.parametrize(
    "section,key,value",
    [
        ("model", "n_layer", [2]),
        ("model", "n_head", "2"),
        ("train", "max_steps", "10"),
        ("train", "warmup_steps", {"a": 1}),
        ("model", "dropout", None),
    ],
)
def test_bad_config_json_fields_are_checkpoint_errors(trained, ck, tmp_path, section, key, value):
    _config_with(ck, section, key, value)
    for args in (["info", "-c", "ck"], ["generate", "-c", "ck", "--max-new-tokens", "2"]):
        code, _, err = run_main(*args, cwd=tmp_path)
        line = one_line_error(code, err, (1,))
        assert "config.json" in line and key in line and "--" not in line
    # `runs` lists the broken run beside the others instead of aborting
    shutil.copytree(trained, tmp_path / "other")
    code, out, err = run_main("runs", "--root", ".", "--json", cwd=tmp_path)
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    assert "config.json" in rows["ck"]["error"] and rows["other"]["steps"] == 10


def test_config_json_that_is_not_an_object(ck, tmp_path):
    for data in (b"[1, 2]", b'{"model": [1], "train": {}}', b'"text"'):
        rehash(ck, CONFIG_FILE, data)
        code, _, err = run_main("info", "-c", "ck", cwd=tmp_path)
        assert "config.json" in one_line_error(code, err, (1,))


@pytest.mark.parametrize("chars", [[], ["a", "b"], ["ab", "c"], ["a", "a"], "abc", [1, 2]])
def test_bad_tokenizer_json(ck, tmp_path, chars):
    rehash(ck, TOKENIZER_FILE, json.dumps({"type": "char", "chars": chars}).encode())
    for args in (
        ["generate", "-c", "ck", "--max-new-tokens", "5", "--seed", "1"],
        ["inspect-attention", "-c", "ck", "-p", "First"],
    ):
        code, _, err = run_main(*args, cwd=tmp_path)
        assert "tokenizer" in one_line_error(code, err, (1,))


def test_malformed_metrics_lines_are_skipped(ck, tmp_path):
    good = (ck / METRICS_FILE).read_text()
    junk = [
        "1",
        "[]",
        '{"step": "x"}',
        '{"step": 3, "val_loss": "low"}',
        '{"no": "step"}',
        '{"step": 4, "heads": {"L0H0": 3}}',
        '{"step": 5, "heads": [], "val_loss": 1}',
        "[" * 100000,
        "not json",
        '{"step": true}',
    ]
    # A whole record but for one head score too large for a float (json reads any integer).
    huge = json.loads(good.splitlines()[-1])
    next(iter(huge["heads"].values()))["sink"] = 10**400
    junk.append(json.dumps({**huge, "step": 7}))
    (ck / METRICS_FILE).write_text("\n".join(junk) + "\n" + good + "\n".join(junk))
    for args in (
        ["plot", "-c", "ck"],
        ["info", "-c", "ck"],
        ["info", "-c", "ck", "--json"],
        ["inspect", "trajectory", "ck"],
        ["inspect", "trajectory", "ck", "--json", "--png", "t.png"],
        ["train", TEXT, "--out", "ck", "--resume", "--max-steps", "11", "-q"],
    ):
        code, _, err = run_main(*args, cwd=tmp_path)
        assert code == 0, (args, err)
    assert [m["step"] for m in read_metrics(ck)] == [5, 10, 11]


def test_non_finite_config_json_in_a_checkpoint_is_a_checkpoint_error(ck):
    config = json.loads((ck / CONFIG_FILE).read_text())
    config["train"]["warmup_steps"] = float("inf")
    rehash(ck, CONFIG_FILE, json.dumps(config).encode())
    code, _, err = run_main("info", "-c", str(ck))
    line = one_line_error(code, err, (1,))
    assert "config.json" in line and "warmup_steps" in line and "--" not in line


@pytest.mark.parametrize("command", ["generate", "resume"])
def test_a_crafted_config_never_builds_a_model_larger_than_its_weights(
    ck, tmp_path, monkeypatch, command
):
    from tinygpt.checkpoint import store as checkpoint
    from tinygpt.training import setup

    config = json.loads((ck / CONFIG_FILE).read_text())
    config["model"]["vocab_size"] = 15_000_000  # ~2 GB of float32 embedding, in a 100 KB folder
    rehash(ck, CONFIG_FILE, json.dumps(config).encode())
    rehash(ck, TOKENIZER_FILE, json.dumps({"type": "tiktoken", "name": "gpt2"}).encode())
    real_gpt = checkpoint.GPT

    def spy(cfg, *args, **kwargs):  # building on the meta device is free; anywhere else is not
        assert cfg.vocab_size < 1_000_000 or torch.empty(0).device.type == "meta", "allocated"
        return real_gpt(cfg, *args, **kwargs)

    monkeypatch.setattr(checkpoint, "GPT", spy)
    monkeypatch.setattr(setup, "GPT", spy)
    args = {
        "generate": ["generate", "-c", "ck", "--max-new-tokens", "2", "--device", "cpu"],
        "resume": ["train", "small.txt", "--out", "ck", "--resume", "--max-steps", "11", "-q"],
    }[command]
    code, _, err = run_main(*args, cwd=tmp_path)
    line = one_line_error(code, err, (1,))
    assert "does not fit" in line and "wte.weight" in line


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


FILES = (
    CONFIG_FILE,
    TOKENIZER_FILE,
    MODEL_FILE,
    BEST_FILE,
    STATE_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
)


KNOWN_FILES = FILES[:5]


KINDS = (
    "truncate",
    "flip",
    "random",
    "append",
    "empty",
    "json",
    "delete",
    "directory",
    "fifo",
    "dev-zero",
    "pending",
)


HOSTILE_NAMES = ("../escaped", "{victim}", "config.json/../../escaped", "..", "", "sub/x")


COMMANDS = (
    ("info", "-c", "ck"),
    ("info", "-c", "ck", "--json"),
    ("generate", "-c", "ck", "--max-new-tokens", "3", "--seed", "1", "--device", "cpu"),
    ("eval", TEXT, "-c", "ck", "--device", "cpu"),
    ("plot", "-c", "ck"),
    ("inspect-attention", "-c", "ck", "-p", "First"),
    ("inspect", "trajectory", "ck"),
    ("export", "exported", "-c", "ck"),
    ("train", TEXT, "--out", "ck", "--resume", "--max-steps", "10", "-q"),
    ("runs", "--root", "."),
)


def _set_json_path(value, path: list[int], new):
    """``value`` with the element that ``path`` picks (indices into keys/items) replaced."""
    if not path or not isinstance(value, (dict, list)) or not value:
        return new
    if isinstance(value, dict):
        key = sorted(value)[path[0] % len(value)]
        return {**value, key: _set_json_path(value[key], path[1:], new)}
    i = path[0] % len(value)
    return [*value[:i], _set_json_path(value[i], path[1:], new), *value[i + 1 :]]


def _mutate(ck: Path, victim: Path, name: str, kind: str, rehash_it: bool, data) -> bool:
    """Damage ``name`` in ``ck``; returns whether every checkpoint reader must now fail."""
    path = ck / name
    original = path.read_bytes()
    new: bytes | None = None
    if kind == "truncate":
        new = original[: data.draw(st.integers(0, max(0, len(original) - 1)))]
    elif kind == "flip":
        i = data.draw(st.integers(0, len(original) - 1))
        flipped = original[i] ^ data.draw(st.integers(1, 255))
        new = original[:i] + bytes([flipped]) + original[i + 1 :]
    elif kind == "random":
        new = data.draw(st.binary(max_size=256))
    elif kind == "append":
        new = original + data.draw(st.binary(min_size=1, max_size=64))
    elif kind == "empty":
        new = b""
    elif kind == "json":
        try:
            parsed = json.loads(original)
        except ValueError:
            parsed = None
        path_ = data.draw(st.lists(st.integers(0, 50), max_size=3))
        new = json.dumps(_set_json_path(parsed, path_, data.draw(JSON_VALUES))).encode()
    elif kind == "pending":  # a pending manifest that names a file outside the checkpoint
        hostile = data.draw(st.sampled_from(HOSTILE_NAMES)).format(victim=victim)
        manifest = json.loads((ck / MANIFEST_FILE).read_text())
        manifest["files"][hostile] = sha256(b"owned")
        staged = Path(str(ck / STAGED_PREFIX) + hostile)
        with contextlib.suppress(OSError):
            staged.parent.mkdir(parents=True, exist_ok=True)
            staged.write_bytes(b"owned")
        (ck / PENDING_FILE).write_text(json.dumps(manifest))
        return True
    else:
        path.unlink()
        if kind == "directory":
            path.mkdir()
        elif kind in ("fifo", "dev-zero"):
            special_file(path, kind)
        # A missing or unreadable config.json, tokenizer.json or manifest stops every reader.
        return name in (CONFIG_FILE, TOKENIZER_FILE, MANIFEST_FILE)
    path.write_bytes(new)
    if rehash_it and name in KNOWN_FILES:
        manifest = json.loads((ck / MANIFEST_FILE).read_text())
        manifest["files"][name] = sha256(new)
        manifest["sizes"][name] = len(new)
        (ck / MANIFEST_FILE).write_text(json.dumps(manifest))
        return False
    changed = new != original
    return changed and name in (CONFIG_FILE, TOKENIZER_FILE)


def _tree(root: Path, skip: set[str]) -> set[str]:
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.relative_to(root).parts[0] not in skip
    }


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@seed(FUZZ_SEED)  # printed in the run's header: a failure is rerun with TINYGPT_FUZZ_SEED
@given(
    name=st.sampled_from(FILES),
    kind=st.sampled_from(KINDS),
    rehash_it=st.booleans(),
    command=st.sampled_from(COMMANDS),
    data=st.data(),
)
@pytest.mark.slow
def test_fault_injection_over_checkpoint_files(
    trained, tmp_path_factory, name, kind, rehash_it, command, data
):
    sandbox = tmp_path_factory.mktemp("fault")
    (sandbox / TEXT).write_text(SMALL_TEXT)
    ck = Path(shutil.copytree(trained, sandbox / "ck"))
    victim = sandbox.parent / f"{sandbox.name}-victim"
    must_fail = _mutate(ck, victim, name, kind, rehash_it, data)
    before = _tree(sandbox, {"ck", "exported"})
    with time_limit(120):
        code, _, err = run_main(*command, cwd=sandbox)
    if command[0] == "runs":  # lists every run, broken ones included
        assert code == 0, err
    elif code != 0:
        one_line_error(code, err)
    elif must_fail:
        raise AssertionError(f"{command} accepted a broken checkpoint ({name}, {kind})")
    assert _tree(sandbox, {"ck", "exported"}) == before
    assert not victim.exists() and not (sandbox.parent / "escaped").exists()
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 6 * 1024 * 1024  # KB: 6 GB
    shutil.rmtree(sandbox, ignore_errors=True)


def _read_everything(directory: Path) -> None:
    """What every command reads of a checkpoint; a TinyGPTError (one line) is the only way out."""
    opened = open_checkpoint(directory)
    opened.tokenizer.decode(list(range(opened.tokenizer.vocab_size)))
    opened.load_model()
    if opened.has(STATE_FILE):  # an imported model has no training state
        opened.load_state()
    opened.metrics()


@pytest.mark.slow
@pytest.mark.parametrize("name", [CONFIG_FILE, TOKENIZER_FILE, MANIFEST_FILE])
def test_every_byte_of_a_checkpoints_json_files_is_checked(trained, tmp_path, name):
    # Systematic, not sampled (the search above draws what its hypothesis version draws): each
    # byte flipped in turn, as it lies and with the manifest's digest fixed as an attacker would.
    pristine = (trained / name).read_bytes()
    for i in range(len(pristine)):
        damaged = pristine[:i] + bytes([pristine[i] ^ 0x01]) + pristine[i + 1 :]
        for fixed in (False, True) if name != MANIFEST_FILE else (False,):
            ck = Path(shutil.copytree(trained, tmp_path / f"{i}-{fixed}"))
            if fixed:
                rehash(ck, name, damaged)
            else:
                (ck / name).write_bytes(damaged)
            try:
                _read_everything(ck)
            except tinygpt.TinyGPTError as exc:
                assert "\n" not in str(exc), (i, fixed, exc)
            else:
                assert fixed or name == MANIFEST_FILE, f"{name}[{i}] accepted unverified"
            shutil.rmtree(ck)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["config.json", "tinygpt_tokenizer.json"])
def test_every_byte_of_an_exported_folders_json_files_is_checked(pristine_inputs, tmp_path, name):
    # import-hf's systematic twin of the sampled search: a clean import of exactly what the
    # files say, or one line; what it imported then opens as a checkpoint.
    from tinygpt.checkpoint.hf import import_hf

    pristine = (pristine_inputs / "hfm" / name).read_bytes()
    for i in range(len(pristine)):
        src = Path(shutil.copytree(pristine_inputs / "hfm", tmp_path / f"hf{i}"))
        (src / name).write_bytes(pristine[:i] + bytes([pristine[i] ^ 0x01]) + pristine[i + 1 :])
        out = tmp_path / f"out{i}"
        try:
            import_hf(src, out)
        except tinygpt.TinyGPTError as exc:
            assert "\n" not in str(exc) and not out.exists(), (i, exc)
        else:
            _read_everything(out)
        shutil.rmtree(src)
        shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="module")
def pristine_inputs(trained, tmp_path_factory) -> Path:
    """A token cache entry for TEXT and an exported Hugging Face folder, made once."""
    from tinygpt.checkpoint.hf import export_hf
    from tinygpt.data.corpus import prepare_corpus

    root = tmp_path_factory.mktemp("inputs")
    (root / TEXT).write_text(SMALL_TEXT)
    prepare_corpus(root / TEXT, "char", cache_dir=root / "cache")
    export_hf(open_checkpoint(trained), root / "hfm")
    return root


OTHER_TARGETS = ("lock", "cache-bin", "cache-meta", "hf-config", "hf-weights", "hf-tokenizer")


OTHER_KINDS = (*(k for k in KINDS if k != "pending"), "symlink", "hardlink")


def _mutate_other(sandbox: Path, victim: Path, target: str, kind: str, data) -> Path:
    """Damage one input; returns the damaged path."""
    victim.write_bytes(b"the user's own file\n")
    if target == "lock":
        path = sandbox / "ck" / ".lock"
        path.write_bytes(b"pid 1 on elsewhere\n")
    elif target.startswith("cache"):
        suffix = ".bin" if target == "cache-bin" else ".json"
        (path,) = (sandbox / "cache" / "tokens").glob(f"*{suffix}")
    else:
        name = {"hf-config": "config.json", "hf-weights": "model.safetensors"}.get(
            target, "tinygpt_tokenizer.json"
        )
        path = sandbox / "hfm" / name
    if kind in ("symlink", "hardlink"):
        path.unlink()
        if kind == "symlink":
            path.symlink_to(victim)
        else:
            os.link(victim, path)
        return path
    _mutate(path.parent, victim, path.name, kind, False, data)
    return path


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@seed(FUZZ_SEED)
@given(target=st.sampled_from(OTHER_TARGETS), kind=st.sampled_from(OTHER_KINDS), data=st.data())
@pytest.mark.slow
def test_fault_injection_over_the_lock_the_token_cache_and_import_hf(
    trained, pristine_inputs, tmp_path_factory, target, kind, data
):
    from tinygpt.data.corpus import prepare_corpus

    sandbox = tmp_path_factory.mktemp("fault-other")
    shutil.copytree(pristine_inputs, sandbox, dirs_exist_ok=True)
    shutil.copytree(trained, sandbox / "ck")
    victim = sandbox.parent / f"{sandbox.name}-victim"
    _mutate_other(sandbox, victim, target, kind, data)
    if target.startswith("hf"):
        command = ("import-hf", "hfm", "--out", "imported")
    elif target == "lock":
        command = ("train", TEXT, "--out", "ck", "--resume", "--max-steps", "11", "-q")
    else:
        os.environ["TINYGPT_CACHE_DIR"] = str(sandbox / "cache")  # restored by the fixture
        command = ("train", TEXT, "--out", "out", *MICRO_ARGS, "--max-steps", "2", "-q")
    with time_limit(120):
        code, _, err = run_main(*command, cwd=sandbox)
    if code != 0:
        one_line_error(code, err)
    assert victim.read_bytes() == b"the user's own file\n"  # never written through a link
    if target == "lock":
        assert code == 0, err  # a hostile .lock is replaced, never followed or refused
        assert open_checkpoint(sandbox / "ck").step == 11
    if target.startswith("cache"):  # whatever the entry held, the run trained on the text
        assert code == 0, err
        ids = prepare_corpus(sandbox / TEXT, "char", cache_dir=sandbox / "cache").ids
        tok = open_checkpoint(sandbox / "out").tokenizer
        assert tok.decode([int(i) for i in ids]) == SMALL_TEXT
    if target.startswith("hf") and code == 0:
        open_checkpoint(sandbox / "imported").load_model()
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 6 * 1024 * 1024  # KB: 6 GB
    shutil.rmtree(sandbox, ignore_errors=True)
