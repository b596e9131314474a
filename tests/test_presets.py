"""Presets and config files (tinygpt.training.presets): flags over a config file over a preset,
bad presets and files, the presets' sizes, and a run's config.json fed back."""

import json

import pytest

from tinygpt.config.model import ModelConfig
from tinygpt.errors import UsageError
from tinygpt.model import count_parameters
from tinygpt.training.presets import PRESETS, load_config_file, resolve_options


def test_flags_override_config_file_which_overrides_preset(tmp_path):
    (tmp_path / "run.toml").write_text("n_layer = 3\nlr = 0.005\n[train]\nbatch_size = 7\n")
    merged = resolve_options("tiny", tmp_path / "run.toml", {"lr": 0.01, "dropout": None})
    assert merged["n_layer"] == 3 and merged["batch_size"] == 7  # from the file
    assert merged["lr"] == 0.01  # the flag wins
    assert merged["n_embd"] == PRESETS["tiny"]["n_embd"]  # from the preset
    assert "dropout" not in merged  # None means "not given"


def test_bad_presets_and_config_files(tmp_path):
    with pytest.raises(UsageError, match="unknown preset 'huge'"):
        resolve_options("huge", None, {})
    (tmp_path / "bad.toml").write_text("n_layers = 3\n")
    with pytest.raises(UsageError, match="unknown option.*n_layers"):
        load_config_file(tmp_path / "bad.toml")
    (tmp_path / "broken.toml").write_text("n_layer = \n")
    with pytest.raises(UsageError, match="not valid"):
        load_config_file(tmp_path / "broken.toml")
    with pytest.raises(UsageError, match="not found"):
        load_config_file(tmp_path / "missing.toml")
    (tmp_path / "bin.txt").write_bytes(b"\x00\xdc\xff")  # named for the format it was read as
    with pytest.raises(UsageError, match="bin.txt' is not valid TOML: 'utf-8' codec"):
        load_config_file(tmp_path / "bin.txt")


def test_preset_sizes():
    def size(name, vocab):
        options = resolve_options(name, None, {})  # the preset with its recipe's switches
        shape = {k: v for k, v in options.items() if k in ModelConfig.__dataclass_fields__}
        return count_parameters(ModelConfig(vocab_size=vocab, **shape)).total

    assert 124e6 < size("gpt2-small", 50257) < 125e6  # GPT-2 small's 124M
    # nanoGPT's 10.7M less its 98k-entry position table, plus a 25k untied head
    assert 10.6e6 < size("shakespeare-char", 65) < 10.9e6


@pytest.mark.slow
def test_checkpoint_config_json_can_be_fed_back(tiny_run, tmp_path):
    first = tiny_run("first", n_embd=48, lr=2e-3)
    import tinygpt

    again = tinygpt.train(
        tmp_path / "small.txt", out_dir=tmp_path / "again", config=first.out_dir / "config.json"
    )
    a = json.loads((first.out_dir / "config.json").read_text())
    b = json.loads((again.out_dir / "config.json").read_text())
    assert a["model"] == b["model"]
    for key in ("lr", "batch_size", "max_steps", "tokenizer", "seed"):
        assert a["train"][key] == b["train"][key]
