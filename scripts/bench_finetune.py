"""Fine-tuning vs training from scratch, on equal steps (docs/benchmarks.md, "Fine-tuning").

Tiny Shakespeare is cut in two: a model is pretrained on the first half, then trained for the
same number of steps on a slice of the second half either from its weights (``init_from``) or
from scratch; both are scored on the same held-out end of the second half (``val_file``).
Twice: a char model pretrained by tinygpt, and a tiny GPT-2 pretrained with ``transformers``
(saved with ``save_pretrained``) and brought in by ``import-hf``, with the gpt2 tokenizer.

    OMP_NUM_THREADS=1 python scripts/bench_finetune.py [--workdir DIR] [--quick]

Seeded: the figures repeat on the same torch build, whatever else the machine runs.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import torch

import tinygpt
from tinygpt.checkpoint.hf import import_hf
from tinygpt.checkpoint.store import open_checkpoint
from tinygpt.data.tokenizer import build_tokenizer

ROOT = Path(__file__).resolve().parents[1]
SHAKESPEARE = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
CHAR_SHAPE = dict(n_layer=3, n_head=4, n_embd=96, block_size=64)
GPT2_SHAPE = dict(n_layer=2, n_head=2, n_embd=64, n_positions=64)
COMMON = dict(device="cpu", eval_batches=8, quiet=True, overwrite=True, seed=1337)


def corpora(work: Path, text: str) -> tuple[Path, Path, Path]:
    """Pretraining text (first half), fine-tuning text (150 kB of the second half) and the
    held-out text (the last 60 kB). The two characters only the second half has ('$', '3')
    are dropped, so the first half's char vocabulary encodes it."""
    half = len(text) // 2
    rest = text[half:].replace("$", "").replace("3", "")
    files = {"pre.txt": text[:half], "tune.txt": rest[:150_000], "held.txt": rest[-60_000:]}
    for name, body in files.items():
        (work / name).write_text(body)
    return work / "pre.txt", work / "tune.txt", work / "held.txt"


def compare(work: Path, source: Path, tune: Path, held: Path, steps: int, **opts) -> dict:
    """Fine-tune ``source`` and train the same shape from scratch, ``steps`` steps each."""
    ck = open_checkpoint(source)
    shape = {k: v for k, v in asdict(ck.config.model).items() if k != "vocab_size"}
    run = dict(max_steps=steps, eval_every=max(1, steps // 4), val_file=str(held), **opts)
    before = tinygpt.evaluate(source, held, device="cpu").loss
    t0 = time.perf_counter()
    tuned = tinygpt.train(tune, out_dir=work / "tuned", init_from=str(source), **run, **COMMON)
    t1 = time.perf_counter()
    scratch = tinygpt.train(
        tune, out_dir=work / "scratch", tokenizer=ck.tokenizer_name, **shape, **run, **COMMON
    )
    t2 = time.perf_counter()
    return {
        "steps": steps,
        "source_on_held": round(before, 4),
        "finetuned": _scores(work / "tuned", tuned, held),
        "scratch": _scores(work / "scratch", scratch, held),
        "seconds": [round(t1 - t0), round(t2 - t1)],
    }


def _scores(out: Path, result, held: Path) -> dict:
    final = tinygpt.evaluate(out, held, device="cpu")
    return {
        "best_val_loss": round(result.best_val_loss, 4),  # eval_batches windows of held.txt
        "held_loss": round(final.loss, 4),  # every window of held.txt, final weights
        "held_bpb": round(final.bits_per_byte, 4),
    }


def char_case(work: Path, pre: Path, tune: Path, held: Path, steps: int, pre_steps: int) -> dict:
    source = work / "char-pre"
    tinygpt.train(
        pre, out_dir=source, tokenizer="char", max_steps=pre_steps, eval_every=pre_steps,
        batch_size=16, **CHAR_SHAPE, **COMMON,
    )  # fmt: skip
    return compare(work / "char", source, tune, held, steps, batch_size=16)


def gpt2_case(work: Path, pre: Path, tune: Path, held: Path, steps: int, pre_steps: int) -> dict:
    """A tiny GPT-2 pretrained by a plain transformers loop, imported, then compared."""
    import transformers

    torch.manual_seed(0)
    ids = torch.tensor(build_tokenizer("gpt2").encode(pre.read_text()))  # tinygpt's: offline
    config = transformers.GPT2Config(vocab_size=50257, activation_function="gelu_new", **GPT2_SHAPE)
    model = transformers.GPT2LMHeadModel(config)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
    block, batch = GPT2_SHAPE["n_positions"], 8
    gen = torch.Generator().manual_seed(0)
    for _ in range(pre_steps):
        starts = torch.randint(len(ids) - block - 1, (batch,), generator=gen)
        x = torch.stack([ids[s : s + block] for s in starts.tolist()])
        loss = model(x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    hf_dir = work / "gpt2-tiny"
    model.save_pretrained(hf_dir)
    source = import_hf(hf_dir, work / "gpt2-imported", overwrite=True)
    return {
        "pretrain_last_loss": round(loss.item(), 4),
        **compare(work / "gpt2", source, tune, held, steps, batch_size=batch),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/tinygpt-bench-finetune"))
    parser.add_argument("--quick", action="store_true", help="a few steps: checks it runs")
    parser.add_argument("--skip-gpt2", action="store_true")
    args = parser.parse_args()
    work = args.workdir
    for sub in ("char", "gpt2"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    pre, tune, held = corpora(work, SHAKESPEARE.read_text())
    scale = 10 if args.quick else 1
    report = {"char": char_case(work, pre, tune, held, 200 // scale, 600 // scale)}
    print(json.dumps(report), flush=True)
    if not args.skip_gpt2:
        report["gpt2"] = gpt2_case(work, pre, tune, held, 100 // scale, 200 // scale)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
