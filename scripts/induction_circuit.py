"""The induction circuit of a trained model, averaged over random prompts: attribution, the logit
lens and activation patching on `S F S[:k]`, predicting the next letter of the copy.

    python scripts/induction_circuit.py checkpoints/repeats [--prompts 20] [--seed 0] [--json]

Each prompt: a random string S (14 letters), a random filler F (6 letters), then S's first 10
letters; the target is S's 11th letter, which only the first copy tells. Two corruptions:

* ``copy``: the first copy replaced by other random letters (the issue's story): what carries
  the copied letter from the first copy to the prediction;
* ``letter``: only the letter before the target in the first copy changed: what tells the model
  where in the first copy to look (the previous-token head's output there).

Prints, per head, the mean direct share of the target's logit, and the mean share of the
clean-vs-corrupted gap each patch restores (the head at every position; and at the position of
the target in the first copy), and the logit lens's mean probability of the target by layer.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics

import torch

from tinygpt.analysis.attribution import direct_logit_attribution
from tinygpt.analysis.labels import head_label
from tinygpt.analysis.lens import logit_lens
from tinygpt.analysis.patching import patch_activations
from tinygpt.checkpoint.store import load

LETTERS = "abcdefghijklmnopqrstuvwxyz"
LENGTH, GAP, SHOWN = 14, 6, 10  # the corpus's strings are 6-16 letters


def prompts(n: int, seed: int) -> list[tuple[str, str, str, str]]:
    """(clean, copy-corrupted, letter-corrupted, target) for ``n`` random strings."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        s = "".join(rng.choice(LETTERS) for _ in range(LENGTH))
        gap = "".join(rng.choice(LETTERS) for _ in range(GAP))
        other = "".join(rng.choice(LETTERS) for _ in range(LENGTH))
        swap = rng.choice([c for c in LETTERS if c not in s])
        tail = gap + s[:SHOWN]
        letter = s[: SHOWN - 1] + swap + s[SHOWN:]
        out.append((s + tail, other + tail, letter + tail, s[SHOWN]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--prompts", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, tok, ck = load(args.checkpoint, "cpu")
    n_layer, n_head = model.config.n_layer, model.config.n_head
    shares, lens, copy, letter, at = [], [], [], [], []
    for clean, bad_copy, bad_letter, target_text in prompts(args.prompts, args.seed):
        ids, target = tok.encode(clean), tok.encode(target_text)[0]
        last = len(ids) - 1
        a = direct_logit_attribution(model, ids, last, target)
        shares.append({s.component: s.logit for s in a.shares})
        lens.append([r.target_prob for r in logit_lens(model, ids, last, target)])
        copy.append(patch_activations(model, ids, tok.encode(bad_copy), last, target).heads)
        r = patch_activations(model, ids, tok.encode(bad_letter), last, target)
        letter.append(r.heads)
        at.append(r.head_positions[..., SHOWN])  # the target's own position in the first copy
    means = [torch.stack(x).mean(0) for x in (copy, letter, at)]
    heads = {
        head_label(layer, h): {
            "share": statistics.mean(s[head_label(layer, h)] for s in shares),
            **{k: float(m[layer, h]) for k, m in zip(("copy", "letter", "at"), means, strict=True)},
        }
        for layer in range(n_layer)
        for h in range(n_head)
    }
    names = ["embed"] + [f"L{i}" for i in range(n_layer)]
    lens_means = {n: statistics.mean(p[i] for p in lens) for i, n in enumerate(names)}
    if args.json:
        print(json.dumps({"heads": heads, "lens": lens_means}))
        return
    print(f"{ck.directory} (step {ck.step}), {args.prompts} prompts, seed {args.seed}")
    print("| head | logit share | patched: copy | patched: letter | letter, at its position |")
    print("|---|---:|---:|---:|---:|")
    for name, f in heads.items():
        cells = " | ".join(f"{f[k]:+.2f}" for k in ("share", "copy", "letter", "at"))
        print(f"| {name} | {cells} |")
    print(f"| embed | {statistics.mean(s['embed'] for s in shares):+.2f} | | | |")
    probs = ", ".join(f"{n} {p:.3f}" for n, p in lens_means.items())
    print(f"logit lens, mean p(target) after: {probs}")


if __name__ == "__main__":
    main()
