"""Write a checkpoint fixture: a tiny run saved mid-way, plus what loading and resuming it gave.

    python scripts/make_checkpoint_fixture.py tests/fixtures/modern_2026_11 --arch modern

Run once with the code whose checkpoints later versions must keep reading; the tests in
tests/test_checkpoint_fixtures.py then load the saved run (logits must match) and resume it
(the resumed weights must match what this version produced).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import safetensors.torch
import torch

import tinygpt
from tinygpt.checkpoint.store import open_checkpoint
from tinygpt.training import muon

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "legacy_gpt2" / "corpus.txt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--arch", default="modern")
    args = parser.parse_args()
    # Muon's Newton-Schulz per matrix in float32 on any CPU (what the fixture test expects; a
    # CPU with native bfloat16 would otherwise batch it in bfloat16).
    muon.newton_schulz_for = lambda device: (False, torch.float32)
    shape = dict(n_layer=2, n_head=2, n_embd=16, block_size=16, batch_size=4, eval_batches=1)
    options = dict(arch=args.arch, tokenizer="char", device="cpu", seed=1337, **shape)
    with tempfile.TemporaryDirectory() as tmp:
        half = Path(tmp) / "half"
        tinygpt.train(CORPUS, out_dir=half, max_steps=3, eval_every=3, **options)
        if args.out.exists():
            shutil.rmtree(args.out)
        shutil.copytree(half, args.out / "checkpoint")
        idx = torch.arange(16).remainder(20)[None]
        logits = open_checkpoint(half).load_model("cpu").eval()(idx)[0]
        tinygpt.train(CORPUS, out_dir=half, resume=True, max_steps=6)
        resumed = open_checkpoint(half).load_model("cpu").state_dict()
    expected = {"idx": idx, "logits": logits.detach()}
    expected |= {f"resumed.{k}": v.contiguous() for k, v in resumed.items()}
    safetensors.torch.save_file(expected, str(args.out / "expected.safetensors"))


if __name__ == "__main__":
    main()
