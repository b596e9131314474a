"""Hugging Face interop, both directions, with tiny random models and identical logits; export and
import-hf never write over a checkpoint, their source or a user's folder, and bad inputs to
import-hf are one line."""

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
import torch

from tests.conftest import (
    one_line_error,
    run_in_process,
    run_main,
    snapshot,
    special_file,
    time_limit,
)
from tinygpt.checkpoint.store import open_checkpoint

# The `hf` extra: the tests that load models with transformers need it, the rest do not. It is
# imported by the tests that use it, not here: its import (1-2 s) would slow every collection.
needs_transformers = pytest.mark.skipif(
    importlib.util.find_spec("transformers") is None, reason="needs the hf extra"
)


def hf_transformers() -> ModuleType | None:
    """The transformers package, or None without the `hf` extra."""
    try:
        import transformers
    except ImportError:
        return None
    return transformers


@needs_transformers
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.slow
def test_export_loads_in_transformers_with_identical_logits(tiny_run, tmp_path, bias):
    import transformers

    result = tiny_run(bias=bias, arch="gpt2")
    out = tmp_path / "hf"
    proc = run_in_process("export", "--format", "hf", str(out), "-c", str(result.out_dir))
    assert proc.returncode == 0, proc.stderr
    theirs = transformers.GPT2LMHeadModel.from_pretrained(out).eval()
    ours = result.model.eval()
    x = torch.randint(0, ours.config.vocab_size, (2, ours.config.block_size))
    with torch.no_grad():
        expected = ours(x)[0]
        got = theirs(x).logits
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@needs_transformers
@pytest.mark.slow
def test_import_of_a_gpt2_model_gives_identical_logits_and_samples(tmp_path, gpt2_encoding):
    import transformers

    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=50257,
        n_positions=32,
        n_embd=32,
        n_layer=2,
        n_head=2,
        activation_function="gelu_new",
    )
    theirs = transformers.GPT2LMHeadModel(config).eval()
    theirs.save_pretrained(tmp_path / "gpt2-tiny")
    out = tmp_path / "imported"
    proc = run_in_process("import-hf", str(tmp_path / "gpt2-tiny"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    from tinygpt.checkpoint.store import open_checkpoint

    ck = open_checkpoint(out)
    ours = ck.load_model().eval()
    assert ck.config.model.activation == "gelu_tanh"
    x = torch.randint(0, 50257, (2, 32))
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[0], theirs(x).logits, rtol=1e-5, atol=1e-5)
    gen = run_in_process(
        "generate",
        "-c",
        str(out),
        "--prompt",
        "Hello",
        "--max-new-tokens",
        "5",
        "--json",
        "--seed",
        "1",
    )
    assert gen.returncode == 0, gen.stderr
    insp = run_in_process("inspect-attention", "-c", str(out), "--prompt", "Hello world, hello")
    assert insp.returncode == 0 and "Head roles" in insp.stdout
    info = run_in_process("info", "-c", str(out), "--json")
    assert info.returncode == 0, info.stderr


@pytest.mark.slow
def test_import_refuses_what_it_cannot_convert(tmp_path):
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text('{"model_type": "bert"}')
    proc = run_in_process("import-hf", str(tmp_path / "bert"), "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and "only gpt2" in proc.stderr


def test_import_of_a_tinygpt_checkpoint_says_it_is_one(ck, tmp_path):
    # it said "ck/config.json is a None model; only gpt2 is supported"
    code, _, err = run_main("import-hf", "ck", "--out", "x", cwd=tmp_path)
    assert (
        one_line_error(code, err, (2,))
        == "error: ck is a tinygpt checkpoint already; use it as it is (-c ck)"
    )


@pytest.mark.slow
def test_a_char_model_exported_then_imported_is_the_same_model(tiny_run, tmp_path):
    result = tiny_run(arch="gpt2")
    out = tmp_path / "hf"
    proc = run_in_process("export", str(out), "-c", str(result.out_dir))
    assert proc.returncode == 0, proc.stderr
    config = json.loads((out / "config.json").read_text())
    vocab = config["vocab_size"]  # 34 characters: GPT-2's default ids (50256) would not fit
    for key in ("bos_token_id", "eos_token_id"):
        assert config[key] is None or 0 <= config[key] < vocab, config
    back = tmp_path / "back"
    proc = run_in_process("import-hf", str(out), "--out", str(back))
    assert proc.returncode == 0, proc.stderr
    from tinygpt.checkpoint.store import open_checkpoint

    before, after = open_checkpoint(result.out_dir), open_checkpoint(back)
    assert after.tokenizer_spec == before.tokenizer_spec
    assert after.config.train.tokenizer == "char"
    x = torch.randint(0, vocab, (2, before.config.model.block_size))
    with torch.no_grad():
        expected = before.load_model("cpu").eval()(x)[0]
        got = after.load_model("cpu").eval()(x)[0]
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    gen = run_in_process("generate", "-c", str(back), "--prompt", "All:", "--max-new-tokens", "5")
    assert gen.returncode == 0 and gen.stdout.startswith("All:"), gen.stderr
    transformers = hf_transformers()
    if transformers is not None:  # and transformers loads it with the same logits
        theirs = transformers.GPT2LMHeadModel.from_pretrained(out).eval()
        with torch.no_grad():
            torch.testing.assert_close(theirs(x).logits, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_import_of_a_char_model_needs_its_vocabulary(tiny_run, tmp_path):
    result = tiny_run(arch="gpt2")
    out = tmp_path / "hf"
    assert run_in_process("export", str(out), "-c", str(result.out_dir)).returncode == 0
    (out / "tinygpt_tokenizer.json").unlink()
    proc = run_in_process(
        "import-hf", str(out), "--out", str(tmp_path / "x"), "--tokenizer", "char"
    )
    assert proc.returncode == 2 and "tinygpt_tokenizer.json" in proc.stderr, proc.stderr


def test_export_refuses_a_checkpoint_and_non_empty_directories(ck, trained, tmp_path):
    before = snapshot(ck)
    for target in (ck, tmp_path / "ck"):  # itself, and (another) checkpoint's directory
        for extra in ([], ["--overwrite"]):
            code, _, err = run_main("export", str(target), "-c", str(trained), *extra)
            assert "checkpoint" in one_line_error(code, err, (2,))
    assert snapshot(ck) == before
    open_checkpoint(ck).load_model()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    code, _, err = run_main("export", str(other), "-c", str(ck))
    assert "not empty" in one_line_error(code, err, (2,))
    code, _, err = run_main("export", str(other), "-c", str(ck), "--overwrite")
    assert code == 0, err
    assert (other / "model.safetensors").exists() and (other / "keep.txt").read_text() == "mine"


def test_import_hf_never_writes_over_its_source_or_a_foreign_folder(ck, tmp_path):
    code, _, err = run_main("export", "hfm", "-c", "ck", cwd=tmp_path)
    assert code == 0, err
    before = snapshot(tmp_path / "hfm")
    for extra in ([], ["--overwrite"]):
        code, _, err = run_main("import-hf", "hfm", "--out", "hfm", *extra, cwd=tmp_path)
        assert "destroy" in one_line_error(code, err, (2,))
    assert snapshot(tmp_path / "hfm") == before
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text("{}")
    code, _, err = run_main("import-hf", "hfm", "--out", "other", cwd=tmp_path)
    assert "not empty" in one_line_error(code, err, (2,))
    assert (other / "config.json").read_text() == "{}"
    code, _, err = run_main("import-hf", "hfm", "--out", "new", cwd=tmp_path)
    assert code == 0, err
    assert open_checkpoint(tmp_path / "new").step == 0


def _hf_model(ck: Path, tmp_path: Path) -> Path:
    code, _, err = run_main("export", "hfm", "-c", "ck", cwd=tmp_path)
    assert code == 0, err
    return tmp_path / "hfm"


@pytest.mark.parametrize("dtype", [torch.int32, torch.bool])
def test_import_refuses_weights_that_are_not_numbers_with_a_fraction(ck, tmp_path, dtype):
    # they imported (exit 0); the bool model sampled empty text
    import safetensors.torch

    hfm = _hf_model(ck, tmp_path)
    state = safetensors.torch.load((hfm / "model.safetensors").read_bytes())
    state["transformer.wte.weight"] = state["transformer.wte.weight"].to(dtype)
    (hfm / "model.safetensors").write_bytes(safetensors.torch.save(state))
    code, _, err = run_main("import-hf", "hfm", "--out", "imported", cwd=tmp_path)
    assert "transformer.wte.weight holds integers, not weights" in one_line_error(code, err)
    assert not (tmp_path / "imported").exists()


@pytest.mark.parametrize(
    "change,says",
    [
        ({"n_head": 3}, "config.json is not a usable GPT-2 config: n_embd (32) must be divisible"),
        ({"n_layer": 1e9}, "config.json is not a usable GPT-2 config: n_layer must be an integer"),
    ],
)
def test_a_config_the_model_cannot_take_is_named_in_its_own_fields(ck, tmp_path, change, says):
    # it named --n-embd and --n-head, flags import-hf does not have
    hfm = _hf_model(ck, tmp_path)
    config = json.loads((hfm / "config.json").read_text())
    (hfm / "config.json").write_text(json.dumps({**config, **change}))
    code, _, err = run_main("import-hf", "hfm", "--out", "imported", cwd=tmp_path)
    line = one_line_error(code, err)
    assert says in line and "--n-" not in line, line


def test_a_default_encoding_larger_than_the_model_says_it_was_the_default(
    ck, tmp_path, gpt2_encoding
):
    hfm = _hf_model(ck, tmp_path)
    (hfm / "tinygpt_tokenizer.json").unlink()  # no stored tokenizer: GPT-2's, unless told
    code, _, err = run_main("import-hf", "hfm", "--out", "imported", cwd=tmp_path)
    line = one_line_error(code, err)
    assert line.startswith("error: gpt2 (no --tokenizer) has 50257 tokens, the model only"), line


def test_a_tensor_the_config_does_not_declare_is_the_one_named(ck, tmp_path):
    # with every declared tensor in place, the message named the first tensor found, which fit:
    # "blocks.0.attn.c_attn.bias is [96], the config declares [96]"
    hfm = _hf_model(ck, tmp_path)
    config = json.loads((hfm / "config.json").read_text())
    (hfm / "config.json").write_text(json.dumps({**config, "n_layer": 1}))
    code, _, err = run_main("import-hf", "hfm", "--out", "imported", cwd=tmp_path)
    line = one_line_error(code, err)
    assert "blocks.1." in line and "the config declares no such tensor" in line, line


@pytest.mark.parametrize(
    "file,content",
    [
        ("config.json", "fifo"),
        ("model.safetensors", "fifo"),
        ("model.safetensors", "dev-zero"),
        ("model.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00random bytes!!!!"),
        ("config.json", [1, 2]),
        ("config.json", "deep"),
        ("config.json", {"drop": "n_embd"}),
        ("config.json", {"layer_norm_epsilon": "abc"}),
        ("config.json", {"activation_function": {"a": 1}}),
        ("config.json", {"n_embd": "wide"}),
    ],
)
def test_import_hf_bad_inputs_are_one_line(ck, tmp_path, file, content):
    hfm = _hf_model(ck, tmp_path)
    path = hfm / file
    config = json.loads((hfm / "config.json").read_text())
    path.unlink()
    if content in ("fifo", "dev-zero", "deep"):
        special_file(path, content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, dict):
        if "drop" in content:
            del config[content["drop"]]
        else:
            config.update(content)
        path.write_text(json.dumps(config))
    else:
        path.write_text(json.dumps(content))
    with time_limit(60):
        code, _, err = run_main("import-hf", "hfm", "--out", "imported", cwd=tmp_path)
    one_line_error(code, err)
    assert not (tmp_path / "imported").exists()
