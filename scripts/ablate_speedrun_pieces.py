"""Speedrun pieces tried at equal steps on tinygpt's default model as it was before them
(random training windows): each is patched onto the model or the Muon step for one run, so the
tables in docs/benchmarks.md can be rebuilt without the pieces living in the package; those kept
are flags: ``order`` (``--data-order passes``), ``ema`` (``--ema``), ``normuon``
(``--normuon``).

    python scripts/ablate_speedrun_pieces.py [--variants base x0 unet ve order] [--steps 400]
        [--ema-decay 0.99] [--rdrop 0.1]
        [--ramp-share 0.333] [--ramp-batch 16] [--seeds 1337 1338] [--dtype float32]

- ``x0``: every block's input is ``a_i * x + b_i * x0``, x0 the normalised embedding (a = 1,
  b = 0 at the start; learned scalars), as modded-nanogpt mixes the embedding back in;
- ``unet``: the first half's block outputs are added, with learned weights (1 at the start), to
  the inputs of the second half in reverse order (U-net skips);
- ``ve``: value embeddings: a second token table (AdamW, as the embeddings) added, times a
  learned scalar, to the values of the first and last layers;
- ``order``: ``--data-order passes``: each pass over the text is a random phase and a shuffled
  list of the windows that tile it, so every token is a target once a pass;
- ``ema``: ``order`` evaluating the moving average of its weights (``--ema``, the decay
  ``--ema-decay``): now the default (``base`` to ``order`` and ``rdrop`` run with ``--ema 0``);
- ``rdrop``: ``order`` with dropout on the residual branches only (``--rdrop``), not on the
  attention weights (whose dropout makes a step 1.7-2x dearer on this CPU);
- ``polar``: ``ema`` with Polar Express's orthogonalisation (a tuned polynomial for each of the
  five Newton-Schulz steps instead of one for all; arXiv 2505.16932), as modded-nanogpt runs it;
- ``normuon``: ``ema`` with NorMuon's per-neuron step sizes (``--normuon``, now the default;
  every variant but ``smooth`` and ``mtp`` runs with ``--no-normuon``; ``muon3`` patches it in);
- ``cwd``: ``ema`` with cautious weight decay on the matrices: decay only the entries whose
  update pulls them towards zero anyway (arXiv 2510.12402);
- ``muon3``: ``ema`` with all three, as nanochat's optimizer combines them;
- ``smooth``: ``normuon`` (the default now) trained with label smoothing (``--smoothing``: that
  share of each target's probability spread over the vocabulary); evaluated without;
- ``mtp``: ``normuon`` trained to predict the token after next too (multi-token prediction): a
  second LM head (AdamW, as the head) on the final norm's output, its loss weighted by
  ``--mtp-weight``; evaluated on the next token alone;
- ``embwd``: ``normuon`` with weight decay on the embeddings and the head too (AdamW's decoupled
  decay, ``--weight-decay``), where the recipe decays the matrices only;
- ``bsramp``: ``normuon`` whose first ``--ramp-share`` of the training tokens (a third) come in
  batches of ``--ramp-batch`` (16), the rest in batches of 32 (a batch-size schedule): more
  steps for the same tokens at about the same cost (a step of 16 costs about half of one of 32
  here), and the schedule spans them all;
- ``seqramp``: ``normuon`` whose first third of the steps train on 64-token windows, each batch
  of 32 windows of 128 cut in two (the same tokens, twice the sequences): a sequence-length
  schedule at equal steps and tokens;
- ``split``: ``bsramp`` as a step of the schedule: for the first ``--ramp-share`` of the steps,
  each batch of 32 is two optimizer steps of 16 at that step's rate, so the schedule, its
  warmup and decay keep their lengths in batches: the package's ``--batch-warmup-steps`` with
  ``ceil(share x steps)`` (434 at 1,300 steps), or ``--batch-warmup-steps N`` (the default
  recipe's is 400); every other variant runs with 0, one update a step, as measured.

The first variant named is the reference of the table's last column. Each run is its own
process (one torch thread) and prints its validation loss on 50 batches.
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
from pathlib import Path

import torch
from torch import nn

VARIANTS = (
    *("base", "x0", "unet", "ve", "order", "ema", "rdrop"),
    *("polar", "normuon", "cwd", "muon3", "smooth", "mtp"),
    *("embwd", "bsramp", "seqramp", "split"),
)
# The variants that evaluate the average (the rest: --ema 0, the default before it).
AVERAGED = ("ema", "normuon", "smooth", "mtp", "polar", "cwd", "muon3", *VARIANTS[-4:])
# The variants on today's default (--normuon); the rest run torch's Muon, the default before it.
ON_NORMUON = ("normuon", "smooth", "mtp", *VARIANTS[-4:])
OPTIMIZER_VARIANTS = {"polar": {"polar"}, "cwd": {"cwd"}, "muon3": {"polar", "normuon", "cwd"}}
# Polar Express's five steps' (a, b, c) for a * X + b * (X X^T) X + c * (X X^T)^2 X, with its
# safety factor (the input is scaled by 1.02 of its norm); the values the paper publishes.
POLAR_EXPRESS = (
    (8.156554524902461, -22.48329292557795, 15.878769915207462),
    (4.042929935166739, -2.808917465908714, 0.5000178451051316),
    (3.8916678022926607, -2.772484153217685, 0.5060648178503393),
    (3.285753657755655, -2.3681294933425376, 0.46449024233003106),
    (2.3465413258596377, -1.7097828382687081, 0.42323551169305323),
)


def patch_model(variant: str) -> None:
    """Give tinygpt's GPT the variant's parameters and forward (before the run builds it)."""
    import tinygpt.model.gpt as gpt

    init, roles = gpt.GPT.__init__, gpt.GPT.parameter_roles

    def new_init(self: gpt.GPT, config, attention: str = "auto") -> None:
        init(self, config, attention)
        layers = config.n_layer
        if variant == "x0":
            self.x_lambdas = nn.Parameter(torch.ones(layers))
            self.x0_lambdas = nn.Parameter(torch.zeros(layers))
        if variant == "unet":
            self.skip_weights = nn.Parameter(torch.ones(layers // 2))
        if variant == "ve":
            self.ve = nn.Embedding(config.vocab_size, config.n_embd)
            nn.init.normal_(self.ve.weight, std=0.02)
            self.ve_lambda = nn.Parameter(torch.full((1,), 0.5))

    def new_roles(self: gpt.GPT) -> dict[str, list[nn.Parameter]]:
        found = roles(self)
        if variant == "ve":  # a token table: AdamW with the embeddings, not Muon
            found["matrices"] = [p for p in found["matrices"] if p is not self.ve.weight]
            found["embeddings"].append(self.ve.weight)
        return found

    def new_forward(self: gpt.GPT, idx, targets=None, cache=None, last_only=False):
        x = x0 = self.ln_emb(self.drop(self.hook_embed(self.wte(idx))))
        layers, skips = len(self.blocks), []
        for i, block in enumerate(self.blocks):
            if variant == "unet" and i >= layers - layers // 2 and skips:
                x = x + self.skip_weights[i - (layers - layers // 2)] * skips.pop()
            if variant == "x0":
                x = self.x_lambdas[i] * x + self.x0_lambdas[i] * x0
            if variant == "ve" and i in (0, layers - 1):
                x = _with_value_embedding(self, block, x, self.ve(idx), i, cache)
            else:
                x = block(x, self.attention, cache, i)
            if variant == "unet" and i < layers // 2:
                skips.append(x)
        x = self.ln_f(x)
        logits = self.head(x[:, -1:] if last_only else x)
        loss = None
        if targets is not None:
            loss = nn.functional.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        return logits, loss

    gpt.GPT.__init__, gpt.GPT.parameter_roles, gpt.GPT.forward = new_init, new_roles, new_forward


def _with_value_embedding(model, block, x, ve, layer, cache):
    attn, project = block.attn, block.attn.project

    def with_ve(h):
        q, k, v = project(h)
        b, t, _ = h.shape
        return q, k, v + model.ve_lambda * ve.view(b, t, attn.n_head, attn.head_dim).transpose(1, 2)

    attn.project = with_ve
    try:
        return block(x, model.attention, cache, layer)
    finally:
        del attn.project


def patch_residual_dropout() -> None:
    """Keep the configured dropout on the residual branches, none on the attention weights."""
    import tinygpt.model.gpt as gpt

    init = gpt.CausalSelfAttention.__init__

    def new_init(self, config, *rest, **kw) -> None:
        init(self, config, *rest, **kw)
        self.dropout, self.attn_dropout.p = 0.0, 0.0

    gpt.CausalSelfAttention.__init__ = new_init


def patch_muon(pieces: set[str]) -> None:
    """Swap tinygpt's Muon step for one with the named pieces (per matrix, as on this CPU)."""
    import tinygpt.training.muon as muon

    def polar(m: torch.Tensor, steps: int, eps: float, dtype: torch.dtype) -> torch.Tensor:
        tall = m.size(-2) > m.size(-1)
        x = (m.mT if tall else m).to(dtype)
        x = x / (x.norm(dim=(-2, -1), keepdim=True) * 1.02 + eps)
        for a, b, c in POLAR_EXPRESS[:steps]:
            gram = x @ x.mT
            x = a * x + (b * gram + c * gram @ gram) @ x
        return x.mT if tall else x

    def update(group, params, state, batched, ns_dtype) -> None:
        momentum, lr, decay = group["momentum"], group["lr"], group["weight_decay"]
        grads = [p.grad for p in params]
        buffers = [muon._buffer(state[p], p) for p in params]
        torch._foreach_lerp_(buffers, grads, 1 - momentum)
        directions = torch._foreach_lerp(grads, buffers, momentum) if group["nesterov"] else buffers
        for p, d in zip(params, directions, strict=True):
            if "polar" in pieces:
                o = polar(d, group["ns_steps"], group["eps"], ns_dtype).to(p.dtype)
            else:
                args = (group["ns_coefficients"], group["ns_steps"], group["eps"], ns_dtype)
                o = muon.orthogonalise(d, *args).to(p.dtype)
            if "normuon" in pieces:
                o = muon._per_neuron(o, state[p], 0.95)
            if decay:
                keep = (o * p > 0).to(p.dtype) if "cwd" in pieces else 1.0
                p.sub_(lr * decay * p * keep)
            p.add_(o, alpha=-lr * math.sqrt(max(1.0, p.size(0) / p.size(1))))

    muon.update = update


def patch_label_smoothing(share: float) -> None:
    """Train on targets smoothed by ``share``; evaluation (the model in eval mode) unchanged."""
    import tinygpt.model.gpt as gpt

    forward = gpt.GPT.forward

    def new_forward(self: gpt.GPT, idx, targets=None, cache=None, last_only=False):
        logits, loss = forward(self, idx, targets, cache, last_only)
        if targets is not None and self.training:
            flat = logits.flatten(0, 1).float()
            loss = nn.functional.cross_entropy(flat, targets.flatten(), label_smoothing=share)
        return logits, loss

    gpt.GPT.forward = new_forward


def patch_multi_token(weight: float) -> None:
    """A second head that predicts the token after next, trained beside the first."""
    import tinygpt.model.gpt as gpt

    init, roles = gpt.GPT.__init__, gpt.GPT.parameter_roles
    forward, head = gpt.GPT.forward, gpt.GPT.head

    def new_init(self: gpt.GPT, config, attention: str = "auto") -> None:
        init(self, config, attention)
        self.mtp_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        nn.init.normal_(self.mtp_head.weight, std=0.02)

    def new_roles(self: gpt.GPT) -> dict[str, list[nn.Parameter]]:
        found = roles(self)
        found["matrices"] = [p for p in found["matrices"] if p is not self.mtp_head.weight]
        found["head"].append(self.mtp_head.weight)
        return found

    def new_head(self: gpt.GPT, x: torch.Tensor) -> torch.Tensor:
        self.final_norm_out = x
        return head(self, x)

    def new_forward(self: gpt.GPT, idx, targets=None, cache=None, last_only=False):
        logits, loss = forward(self, idx, targets, cache, last_only)
        if targets is not None and self.training:
            ahead = self.mtp_head(self.final_norm_out[:, :-1]).flatten(0, 1).float()
            loss = loss + weight * nn.functional.cross_entropy(ahead, targets[:, 1:].flatten())
        return logits, loss

    gpt.GPT.__init__, gpt.GPT.parameter_roles = new_init, new_roles
    gpt.GPT.forward, gpt.GPT.head = new_forward, new_head


def patch_embedding_decay() -> None:
    """Decay the embeddings and the head as the matrices are decayed."""
    import tinygpt.training.optim as optim

    for role in ("embeddings", "head"):
        kind, rate, _ = optim.MUON_ROLES[role]
        optim.MUON_ROLES[role] = (kind, rate, True)


def ramp_steps(args: argparse.Namespace) -> tuple[int, int]:
    """``bsramp``'s steps at the small batch, and in all, for the tokens of ``--steps`` of 32."""
    small = round(args.ramp_share * args.steps * 32 / args.ramp_batch)
    return small, small + round((1 - args.ramp_share) * args.steps)


def patch_training_batches(variant: str, args: argparse.Namespace) -> None:
    """The training sampler's first batches: smaller (``bsramp``) or cut in two (``seqramp``)."""
    import tinygpt.training.setup as setup

    early_calls = ramp_steps(args)[0] if variant == "bsramp" else args.steps // 3

    class Ramped(setup.BatchSampler):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.calls, self.full = 0, self.batch_size

        def rows(self, device: torch.device) -> torch.Tensor:
            self.calls += 1
            early = self.calls <= early_calls
            self.batch_size = args.ramp_batch if early and variant == "bsramp" else self.full
            window = super().rows(device)
            if early and variant == "seqramp":
                half = self.block_size // 2
                return torch.cat([window[:, : half + 1], window[:, half:]])
            return window

    setup.BatchSampler = Ramped


def run_one(args: argparse.Namespace) -> None:
    import tinygpt

    torch.set_num_threads(1)
    if args.variant in ("x0", "unet", "ve"):
        patch_model(args.variant)
    if args.variant == "rdrop":
        patch_residual_dropout()
    if args.variant in OPTIMIZER_VARIANTS:
        patch_muon(OPTIMIZER_VARIANTS[args.variant])
    if args.variant == "smooth":
        patch_label_smoothing(args.smoothing)
    if args.variant == "mtp":
        patch_multi_token(args.mtp_weight)
    if args.variant == "embwd":
        patch_embedding_decay()
    steps = args.steps
    if args.variant in ("bsramp", "seqramp"):
        steps = ramp_steps(args)[1] if args.variant == "bsramp" else args.steps
        patch_training_batches(args.variant, args)
    split = 0  # one update a step, as every other variant was measured
    if args.variant == "split":
        split = args.batch_warmup_steps
        if split is None:  # a share of the steps, as first measured
            split = math.ceil(args.ramp_share * args.steps)
    result = tinygpt.train(
        args.data,
        out_dir=Path(args.out) / f"{args.variant}-{args.seed}-{args.steps}",
        overwrite=True,
        tokenizer="char",
        dtype=args.dtype,
        # the default before this table: random windows; "order" is --data-order passes
        data_order="random" if args.variant in VARIANTS[:4] else "passes",
        dropout=args.rdrop if args.variant == "rdrop" else 0.0,
        ema=args.ema_decay if args.variant in AVERAGED else 0.0,
        normuon=args.variant in ON_NORMUON,
        batch_warmup_steps=split,
        seed=args.seed,
        max_steps=steps,
        eval_every=steps,
        eval_batches=50,
        device="cpu",
        head_snapshots=False,
        weight_history=False,
        eval_samples=False,
    )
    print(f"{result.metrics[-1]['val_loss']:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = Path(__file__).resolve()
    parser.add_argument("--data", default=str(here.parents[2] / "shared/data/tinyshakespeare.txt"))
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1337, 1338])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--dtype", default="float32", help="float32: as on a CPU without AMX")
    parser.add_argument("--out", default="/tmp/tinygpt-speedrun-pieces")
    parser.add_argument("--ema-decay", type=float, default=0.99)
    parser.add_argument("--rdrop", type=float, default=0.1)
    parser.add_argument("--smoothing", type=float, default=0.1)
    parser.add_argument("--mtp-weight", type=float, default=0.3)
    parser.add_argument("--ramp-share", type=float, default=1 / 3)
    parser.add_argument("--ramp-batch", type=int, default=16)
    parser.add_argument("--batch-warmup-steps", type=int, help="split: the first N steps")
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # one run, in a child process
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        run_one(args)
        return
    print(f"| variant | val @ {args.steps} steps ({' '.join(map(str, args.seeds))}) | Δ |")
    print("|---|---|---:|")
    base = None
    for variant in args.variants:  # the first is the reference
        lines = [_child(args, variant, seed) for seed in args.seeds]
        losses = [float(line.split()[-1]) for line in lines]
        mean = statistics.mean(losses)
        base = mean if base is None else base
        each = " ".join(lines)
        print(f"| {variant} | {mean:.4f} ({each}) | {mean - base:+.4f} |", flush=True)


def _child(args: argparse.Namespace, variant: str, seed: int) -> str:
    command = [sys.executable, __file__, "--variant", variant, "--seed", str(seed)]
    command += ["--steps", str(args.steps), "--dtype", args.dtype, "--data", args.data]
    command += ["--ema-decay", str(args.ema_decay), "--rdrop", str(args.rdrop)]
    command += ["--smoothing", str(args.smoothing), "--mtp-weight", str(args.mtp_weight)]
    command += ["--ramp-share", str(args.ramp_share), "--ramp-batch", str(args.ramp_batch)]
    if args.batch_warmup_steps is not None:
        command += ["--batch-warmup-steps", str(args.batch_warmup_steps)]
    done = subprocess.run([*command, "--out", args.out], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{variant} seed {seed} failed:\n{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


if __name__ == "__main__":
    main()
