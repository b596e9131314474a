"""``train --init-from CHECKPOINT``: a new run from another checkpoint's weights, which it never
writes; its shape and tokenizer are the source's, and options contradicting them are refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

import tinygpt
from tests.conftest import TINY, run_in_process, run_main
from tinygpt.checkpoint.store import open_checkpoint
from tinygpt.errors import UsageError
from tinygpt.training.trainer import TrainerCallback

SHORT = dict(max_steps=2, eval_every=2, eval_batches=1, device="cpu", quiet=True)


class StartWeights(TrainerCallback):
    """The model's weights when the loop starts, before the first step."""

    def on_start(self, trainer) -> None:
        self.weights = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def fingerprint(directory: Path) -> dict[str, tuple[str, int]]:
    """Every file below ``directory``: its sha256 and modification time."""
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    return {
        str(p.relative_to(directory)): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
        )
        for p in files
    }


def assert_same_weights(got: dict, source: Path) -> None:
    expected = open_checkpoint(source).load_model("cpu").state_dict()
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(got[key], value), key


def test_a_run_starts_from_the_source_weights_and_leaves_the_source_alone(
    tiny_copy, small_text, tmp_path
):
    source = tiny_copy
    before = fingerprint(source)
    seen = StartWeights()
    result = tinygpt.train(
        small_text, out_dir=tmp_path / "tuned", init_from=str(source), callbacks=[seen], **SHORT
    )
    assert_same_weights(seen.weights, source)
    assert fingerprint(source) == before
    tuned = open_checkpoint(result.out_dir)
    assert result.step == 2 and tuned.step == 2  # its own count: the schedule starts fresh
    assert tuned.config.model == open_checkpoint(source).config.model
    assert tuned.tokenizer_spec == open_checkpoint(source).tokenizer_spec
    assert tuned.config.train.init_from == str(source)
    # A fresh optimizer: its step counts are this run's four updates (two steps, each in two
    # halves: the batch warmup), not the source's.
    steps = [s["step"] for s in tuned.load_state()["optimizer"]["state"].values() if "step" in s]
    assert steps and all(float(s) == 4 for s in steps)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--n-layer", "3"], "--n-layer 3 differs from"),
        (["--n-embd", "64"], "--n-embd 64 differs from"),
        (["--tokenizer", "gpt2"], "--tokenizer gpt2 differs from"),
        (["--records", "line"], "--records line differs from"),
        (["--separator", "@@"], "--separator @@ differs from"),
    ],
)
def test_a_shape_or_tokenizer_option_against_the_source_is_refused_in_one_line(
    tiny_copy, small_text, tmp_path, args, expected
):
    source = tiny_copy
    before = fingerprint(source)
    out = tmp_path / "tuned"
    code, _, err = run_main(
        "train", str(small_text), "--out", str(out), "--init-from", str(source), *args
    )
    assert code == 2, err
    assert expected in err and "--init-from keeps" in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not out.exists() and fingerprint(source) == before


def test_a_corpus_the_source_tokenizer_cannot_encode_is_refused_in_one_line(
    tiny_copy, tmp_path, small_text
):
    source = tiny_copy
    other = tmp_path / "other.txt"
    other.write_text(small_text.read_text() + "Zürich\n", encoding="utf-8")
    for extra in ([], ["--val-file", str(other)]):
        data = other if not extra else small_text
        code, _, err = run_main(
            "train", str(data), "--out", str(tmp_path / "t"), "--init-from", str(source), *extra
        )
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert "cannot encode" in err and "'ü'" in err, err
        assert ("--val-file" in err) == bool(extra), err
    # A resume keeps its run's tokenizer as well: another tokenizer is no advice to give.
    before = fingerprint(source)
    code, _, err = run_main("train", str(other), "--out", str(source), "--resume")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "--resume: the run's char tokenizer cannot encode" in err and "'ü'" in err, err
    assert "BPE" not in err and fingerprint(source) == before


def test_the_source_is_never_the_destination(tiny_copy, small_text):
    source = tiny_copy
    before = fingerprint(source)
    code, _, err = run_main(
        "train", str(small_text), "--out", str(source), "--init-from", str(source), "--overwrite"
    )
    assert code == 2 and "only read" in err, err
    assert fingerprint(source) == before


def test_init_from_starts_a_new_run_not_a_resumed_one(tiny_copy, small_text):
    source = tiny_copy
    with pytest.raises(UsageError, match="starts a new run"):
        tinygpt.train(small_text, out_dir=source, resume=True, init_from=str(source), **SHORT)


def test_dropout_may_change_when_fine_tuning(tiny_copy, small_text, tmp_path):
    source = tiny_copy
    result = tinygpt.train(
        small_text, out_dir=tmp_path / "t", init_from=str(source), dropout=0.1, **SHORT
    )
    assert open_checkpoint(result.out_dir).config.model.dropout == 0.1


@pytest.mark.slow
def test_fine_tuning_an_imported_gpt2_model(tmp_path, small_text, gpt2_encoding):
    """A tiny GPT-2 saved by transformers, imported, fine-tuned: it starts from the imported
    weights, keeps the gpt2 tokenizer, and ``inspect compare`` shows the heads' change."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=50257, n_positions=32, n_embd=32, n_layer=2, n_head=2
    )
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path / "hf")
    imported = tmp_path / "imported"
    assert run_in_process("import-hf", str(tmp_path / "hf"), "--out", str(imported)).returncode == 0
    before = fingerprint(imported)
    seen = StartWeights()
    result = tinygpt.train(
        small_text,
        out_dir=tmp_path / "tuned",
        init_from=str(imported),
        callbacks=[seen],
        batch_size=4,
        **{**SHORT, "max_steps": 4, "eval_every": 4},
    )
    assert_same_weights(seen.weights, imported)
    assert fingerprint(imported) == before
    tuned = open_checkpoint(result.out_dir)
    assert tuned.config.train.tokenizer == "gpt2" and tuned.config.model.tie_embeddings
    proc = run_in_process("inspect", "compare", str(imported), str(result.out_dir), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)


def test_a_fine_tuned_config_json_loads_with_older_rules(tiny_copy, small_text, tmp_path):
    """config.json gains keys (init_from, val_file, ...); a reader that ignores unknown keys
    (this version's rule) still loads it, and without them the defaults stand."""
    source = tiny_copy
    result = tinygpt.train(small_text, out_dir=tmp_path / "t", init_from=str(source), **SHORT)
    data = json.loads((result.out_dir / "config.json").read_text())
    for key in ("init_from", "val_file", "eval_samples", "early_stop"):
        assert key in data["train"]
        del data["train"][key]
    from tinygpt.config.run import RunConfig

    assert RunConfig.from_dict(data).train.eval_samples is True
    assert TINY["tokenizer"] == data["train"]["tokenizer"]


def test_a_records_source_gives_its_records_to_the_new_run(tiny_run, small_text, tmp_path):
    source = tiny_run("source", records="paragraph").out_dir
    out = tmp_path / "tuned"
    code, _, err = run_main(
        "train", str(small_text), "--out", str(out), "--init-from", str(source),
        "--max-steps", "2", "--eval-every", "2", "-q",
    )  # fmt: skip
    assert code == 0, err
    tuned = open_checkpoint(out)
    assert tuned.config.train.records == "paragraph" and tuned.config.train.separator is None
    assert tuned.tokenizer_spec == open_checkpoint(source).tokenizer_spec


def test_info_shows_how_a_run_cut_its_records(tiny_run):
    paragraphs = tiny_run("paragraphs", records="paragraph", max_steps=2, eval_every=2).out_dir
    separated = tiny_run("separated", separator="All:", max_steps=2, eval_every=2).out_dir
    plain = tiny_run("plain", max_steps=2, eval_every=2).out_dir
    shown = {p: run_main("info", "-c", str(p)) for p in (paragraphs, separated, plain)}
    assert "char (vocab" in shown[plain][1] and "record" not in shown[plain][1]
    assert ", one record a paragraph" in shown[paragraphs][1], shown[paragraphs]
    assert ", records separated by 'All:'" in shown[separated][1], shown[separated]
    data = json.loads(run_main("info", "-c", str(separated), "--json")[1])
    assert data["separator"] == "All:" and data["records"] is None
