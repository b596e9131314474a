"""tinygpt against nanoGPT, side by side on this machine, in one run.

    python scripts/bench_vs_nanogpt.py --nanogpt PATH/TO/nanoGPT [--budget 120]

Needs a nanoGPT checkout (not shipped with tinygpt); it is copied to a temporary directory and
run there with its own train.py on its own char-level Shakespeare data preparation. Both tools
train the same model shape with the same hyper-parameters:

* ``--config cpu`` (default without a GPU): the CPU configuration from nanoGPT's README, 4 layers,
  4 heads, 128 wide, block 64, batch 12, dropout 0.
* ``--config full``: ``config/train_shakespeare_char.py``, 6 layers, 6 heads, 384 wide, block 256,
  batch 64, dropout 0.2 (for a GPU).

Reported:
(a) training tokens/s, median of the per-iteration times (evaluation steps excluded), for the
    same model (tinygpt ``--arch gpt2``, nanoGPT's recipe) and for tinygpt's default recipe;
(b) validation loss after the same wall-clock training budget: each tool runs as many steps as its
    measured speed allows in ``--budget`` seconds, with its LR schedule spanning those steps
    (tinygpt: its default recipe, planned to the deadline by ``--max-time``); both final models are
    then scored by one evaluator on the same validation text (the last 10%);
(c) sampling tokens/s for 500 new tokens (top-k 200, temperature 0.8) on identical weights (the
    nanoGPT model, converted), nanoGPT's ``generate`` against tinygpt's sampler, median of runs;
(d) time to nanoGPT's loss: nanoGPT's README CPU run (2,000 iterations, schedule over all of them)
    sets the target, its validation loss under the shared evaluator; tinygpt's default recipe
    (same shape and block; its own batch size and rates) then trains with ``--max-time B`` for
    growing budgets B, a fresh run each (so the schedule is annealed at each deadline), until a
    run reaches the target. The figure is the process wall time of that run against nanoGPT's.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from benchutil import machine, median_seconds

from tinygpt.checkpoint import clean_state_dict, open_checkpoint
from tinygpt.config import ModelConfig, SampleConfig
from tinygpt.device import resolve_device
from tinygpt.evaluation import evaluate_text
from tinygpt.model import GPT
from tinygpt.recipe import RECIPES
from tinygpt.sampling import make_generator, stream_tokens
from tinygpt.tokenizer import CharTokenizer

CONFIGS = {
    "cpu": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, dropout=0.0),
    "full": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=64, dropout=0.2),
}
SHARED = dict(lr=1e-3, min_lr=1e-4, warmup=100, beta2=0.99, weight_decay=0.1, grad_clip=1.0)
ITER_LINE = re.compile(r"iter (\d+): loss ([\d.]+), time ([\d.]+)ms")
# Both tools compile or neither (set in main): compile is nanoGPT's default, and tinygpt's, on
# CUDA; on the CPU compiling costs more than a short run gains.
COMPILE = [False]


def run(cmd: list[str], cwd: Path, log: Path) -> float:
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode:
        sys.exit(f"command failed ({proc.returncode}), see {log}: {' '.join(cmd)}")
    return time.perf_counter() - t0


def nanogpt_cmd(cfg: dict, steps: int, device: str, eval_at: int) -> list[str]:
    return [
        sys.executable,
        "train.py",
        "config/train_shakespeare_char.py",
        f"--device={device}",
        f"--compile={COMPILE[0]}",
        "--log_interval=1",
        f"--eval_interval={eval_at}",
        "--eval_iters=1",
        "--always_save_checkpoint=True",
        f"--max_iters={steps}",
        f"--lr_decay_iters={steps}",
        f"--block_size={cfg['block_size']}",
        f"--batch_size={cfg['batch_size']}",
        f"--n_layer={cfg['n_layer']}",
        f"--n_head={cfg['n_head']}",
        f"--n_embd={cfg['n_embd']}",
        f"--dropout={cfg['dropout']}",
        f"--learning_rate={SHARED['lr']}",
        f"--min_lr={SHARED['min_lr']}",
        f"--warmup_iters={SHARED['warmup']}",
        "--dtype=float32" if device == "cpu" else "--dtype=bfloat16",
    ]


def tinygpt_cmd(
    cfg: dict, data: Path, out: Path, steps: int, device: str, max_time: float | None
) -> list[str]:
    """tinygpt with nanoGPT's model and hyper-parameters (the gpt2 recipe without biases)."""
    cmd = [
        sys.executable,
        "-m",
        "tinygpt",
        "train",
        str(data),
        "--out",
        str(out),
        "--overwrite",
        "--tokenizer",
        "char",
        "--arch",
        "gpt2",
        "--no-bias",
        "--device",
        device,
        "--compile" if COMPILE[0] else "--no-compile",
        "--n-layer",
        str(cfg["n_layer"]),
        "--n-head",
        str(cfg["n_head"]),
        "--n-embd",
        str(cfg["n_embd"]),
        "--block-size",
        str(cfg["block_size"]),
        "--batch-size",
        str(cfg["batch_size"]),
        "--dropout",
        str(cfg["dropout"]),
        "--lr",
        str(SHARED["lr"]),
        "--min-lr",
        str(SHARED["min_lr"]),
        "--warmup-steps",
        str(SHARED["warmup"]),
        "--max-steps",
        str(steps),
        "--eval-every",
        str(min(steps, 50)),
        "--eval-batches",
        "1",
        "--quiet",
    ]
    return cmd + (["--max-time", str(max_time)] if max_time else [])


def tinygpt_default_cmd(
    cfg: dict, data: Path, out: Path, device: str, max_time: float, steps: int = 100000
) -> list[str]:
    """tinygpt's default recipe at nanoGPT's shape and block: only the shape is given."""
    shape = [
        f"--{k.replace('_', '-')}={cfg[k]}" for k in ("n_layer", "n_head", "n_embd", "block_size")
    ]
    return [
        sys.executable, "-m", "tinygpt", "train", str(data), "--out", str(out), "--overwrite",
        "--tokenizer", "char", "--device", device, "--compile" if COMPILE[0] else "--no-compile",
        f"--dropout={cfg['dropout']}",
        *shape, f"--max-steps={steps}", f"--max-time={max_time}", "--eval-every=100000",
        "--eval-batches=1", "--quiet",
    ]  # fmt: skip


def time_to_loss(
    cfg: dict, data: Path, work: Path, device: str, target: float, val_text: str, start: float
) -> tuple[float, float, int, list[tuple[float, float]]]:
    """The smallest --max-time budget (grown by 1.25x from ``start``) whose run reaches
    ``target``: (process seconds, val loss, steps, every budget tried with its loss)."""
    tried = []
    budget = start
    while budget < 20 * start:
        out = work / f"tiny_ttl_{budget:.0f}"
        wall = run(tinygpt_default_cmd(cfg, data, out, device, budget), work, work / "ttl.log")
        ck = open_checkpoint(out)
        loss = evaluate_text(ck.load_model(), ck.tokenizer, val_text).loss
        tried.append((budget, loss))
        print(f"    --max-time {budget:.1f}: val {loss:.4f} at step {ck.step} ({wall:.1f}s)")
        if loss <= target:
            return wall, loss, ck.step, tried
        budget *= 1.25
    return math.inf, math.nan, 0, tried


def nanogpt_tok_s(log: Path, tokens_per_iter: int) -> float:
    """Median per-iteration time after the first ten (start-up, compilation)."""
    times = [
        float(m.group(3)) for m in ITER_LINE.finditer(log.read_text()) if int(m.group(1)) >= 10
    ]
    return tokens_per_iter / (statistics.median(times) / 1e3)


def tinygpt_tok_s(out: Path) -> float:
    """Median of the evaluation windows' tokens/s after the first (start-up, compilation)."""
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return statistics.median(r["tokens_per_sec"] for r in lines[1:] or lines)


def nanogpt_to_tinygpt(state: dict, vocab: int, cfg: dict) -> GPT:
    """nanoGPT's weights in tinygpt's model (same layout: GPT-2 blocks, tied head)."""
    renamed = {}
    for key, value in clean_state_dict(state).items():
        if key.endswith(".attn.bias"):  # nanoGPT's causal-mask buffer, when it has one
            continue
        key = key.removeprefix("transformer.").replace("h.", "blocks.", 1)
        renamed[key] = value
    renamed["lm_head.weight"] = renamed["wte.weight"]
    shape = {k: cfg[k] for k in ("n_layer", "n_head", "n_embd", "block_size")}
    gpt2 = RECIPES["gpt2"].model_options()
    model = GPT(ModelConfig(vocab_size=vocab, **{**gpt2, "bias": False}, **shape))
    model.load_state_dict(renamed, strict=True)
    model.lm_head.weight = model.wte.weight
    return model.eval()


def compare_sampling(
    theirs: torch.nn.Module,
    ours: GPT,
    tok: CharTokenizer,
    block: int,
    repeats: int,
    device: torch.device,
    n_new: int = 500,
) -> float:
    """Print and return tinygpt's sampling speed over nanoGPT's on the same weights."""
    theirs, ours = theirs.to(device), ours.to(device)
    start = tok.encode("\n")
    prompt = torch.tensor([start], device=device)
    greedy = SampleConfig(max_new_tokens=block - 1, temperature=0)
    our_greedy = list(stream_tokens(ours, start, greedy))
    with torch.no_grad():
        their_greedy = theirs.generate(prompt, block - 1, top_k=1)
    same = our_greedy == their_greedy[0, 1:].tolist()

    def run_theirs() -> None:
        torch.manual_seed(0)
        with torch.no_grad():
            theirs.generate(prompt, n_new, temperature=0.8, top_k=200)

    def run_ours() -> None:
        cfg_s = SampleConfig(max_new_tokens=n_new, temperature=0.8, top_k=200)
        for _ in stream_tokens(ours, start, cfg_s, make_generator(device, 0)):
            pass

    nano_gen = n_new / median_seconds(run_theirs, repeats, device)
    tiny_gen = n_new / median_seconds(run_ours, repeats, device)
    c = ours.config
    print(
        f"(c) sampling tokens/s [{device.type}, float32], {n_new} new, "
        f"{c.n_layer}x{c.n_embd} block {block}: nanoGPT "
        f"{nano_gen:,.0f}, tinygpt {tiny_gen:,.0f}, ratio {tiny_gen / nano_gen:.1f}x "
        f"(greedy tokens identical within the block: {same})",
        flush=True,
    )
    return tiny_gen / nano_gen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nanogpt", required=True, type=Path, help="a nanoGPT checkout")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared/data/tinyshakespeare.txt",
    )
    parser.add_argument("--config", choices=sorted(CONFIGS), default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--budget", type=float, default=120.0, help="training seconds for (b)")
    parser.add_argument(
        "--speed-steps", type=int, default=None, help="iterations for (a): 40 CPU, 300 GPU"
    )
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="compile both tools (default: on CUDA, as both do by default there)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--readme-iters", type=int, default=2000, help="nanoGPT's README CPU run, for (d)"
    )
    parser.add_argument(
        "--ttl-start", type=float, default=12.0, help="first tinygpt budget tried in (d)"
    )
    args = parser.parse_args()
    device = resolve_device(args.device).type
    cfg = CONFIGS[args.config or ("full" if device == "cuda" else "cpu")]
    COMPILE[0] = args.compile if args.compile is not None else device == "cuda"
    args.speed_steps = args.speed_steps or (300 if device == "cuda" else 40)
    precision = "bf16 autocast" if device == "cuda" else "float32"
    how = f"[{device}, {precision}, {'compiled' if COMPILE[0] else 'not compiled'}]"
    if not (args.nanogpt / "train.py").exists():
        sys.exit(f"{args.nanogpt} does not look like a nanoGPT checkout (no train.py)")
    work = Path(tempfile.mkdtemp(prefix="bench-nanogpt-"))
    nano = work / "nanoGPT"
    shutil.copytree(args.nanogpt, nano, ignore=shutil.ignore_patterns(".git"))
    prep = nano / "data" / "shakespeare_char"
    shutil.copy(args.data, prep / "input.txt")
    subprocess.run([sys.executable, "prepare.py"], cwd=prep, check=True, capture_output=True)
    text = args.data.read_text(encoding="utf-8")
    val_text = text[int(len(text) * 0.9) :]
    tokens_per_iter = cfg["batch_size"] * cfg["block_size"]
    print(f"machine: {machine()}")
    print(f"config: {cfg}, hyper-parameters {SHARED}\n")

    # (a) training speed
    nano_log = work / "nano_speed.log"
    run(nanogpt_cmd(cfg, args.speed_steps, device, 10**6), nano, nano_log)
    nano_speed = nanogpt_tok_s(nano_log, tokens_per_iter)
    tiny_out = work / "tiny_speed"
    run(
        tinygpt_cmd(cfg, args.data, tiny_out, args.speed_steps, device, None),
        work,
        work / "tiny_speed.log",
    )
    tiny_speed = tinygpt_tok_s(tiny_out)
    default_out = work / "tiny_speed_default"
    speed_cmd = tinygpt_default_cmd(cfg, args.data, default_out, device, 1e9, args.speed_steps)
    speed_cmd += [f"--batch-size={cfg['batch_size']}", f"--eval-every={min(args.speed_steps, 50)}"]
    run(speed_cmd, work, work / "tiny_speed_default.log")
    default_speed = tinygpt_tok_s(default_out)
    print(
        f"(a) training tokens/s {how}, same model: nanoGPT {nano_speed:,.0f}, tinygpt --arch gpt2 "
        f"{tiny_speed:,.0f}, ratio {tiny_speed / nano_speed:.2f}; tinygpt's default recipe "
        f"{default_speed:,.0f} ({default_speed / nano_speed:.2f}x nanoGPT: RoPE, QK-norm and "
        f"Muon cost time per step)",
        flush=True,
    )

    # (b) validation loss after the same training budget
    nano_steps = max(1, int(args.budget * nano_speed / tokens_per_iter))
    nano_wall = run(nanogpt_cmd(cfg, nano_steps, device, nano_steps), nano, work / "nano_b.log")
    tiny_out = work / "tiny_b"
    tiny_wall = run(
        tinygpt_default_cmd(cfg, args.data, tiny_out, device, args.budget),
        work,
        work / "tiny_b.log",
    )
    tok = open_checkpoint(tiny_out).tokenizer
    assert isinstance(tok, CharTokenizer)
    nano_ck = torch.load(
        nano / "out-shakespeare-char" / "ckpt.pt", map_location="cpu", weights_only=True
    )
    nano_model = nanogpt_to_tinygpt(nano_ck["model"], tok.vocab_size, cfg)
    tiny_ck = open_checkpoint(tiny_out)
    nano_val = evaluate_text(nano_model, tok, val_text).loss
    tiny_val = evaluate_text(tiny_ck.load_model(), tok, val_text).loss
    print(
        f"(b) val loss after a {args.budget:.0f}s budget {how} (tinygpt: default recipe): "
        f"nanoGPT {nano_val:.4f} "
        f"({nano_steps} steps, process {nano_wall:.0f}s), tinygpt {tiny_val:.4f} "
        f"({tiny_ck.step} steps, process {tiny_wall:.0f}s): "
        f"{'tinygpt lower' if tiny_val < nano_val else 'tinygpt NOT lower'}",
        flush=True,
    )

    # (c) sampling speed on identical weights: the trained model, and the full-config shape
    sys.path.insert(0, str(nano))
    from model import GPT as NanoGPT  # nanoGPT's own model.py, from the checkout
    from model import GPTConfig as NanoConfig

    theirs = NanoGPT(NanoConfig(**nano_ck["model_args"]))
    theirs.load_state_dict({k.removeprefix("_orig_mod."): v for k, v in nano_ck["model"].items()})
    ratios = {}
    for label, shape in (("trained", cfg), ("full", CONFIGS["full"])):
        if label == "full":  # nanoGPT's char-Shakespeare shape, untrained: speed needs no training
            torch.manual_seed(0)
            sizes = {k: shape[k] for k in ("n_layer", "n_head", "n_embd", "block_size")}
            theirs = NanoGPT(NanoConfig(**{**nano_ck["model_args"], **sizes, "dropout": 0.0}))
        theirs.eval()
        ours = nanogpt_to_tinygpt(theirs.state_dict(), tok.vocab_size, shape)
        ratios[label] = compare_sampling(
            theirs, ours, tok, shape["block_size"], args.repeats, torch.device(device)
        )
    gen_ratio = ratios["full"]

    # (d) time to the loss of nanoGPT's README CPU run
    readme_log = work / "nano_readme.log"
    readme_wall = run(
        nanogpt_cmd(cfg, args.readme_iters, device, args.readme_iters), nano, readme_log
    )
    readme_ck = torch.load(
        nano / "out-shakespeare-char" / "ckpt.pt", map_location="cpu", weights_only=True
    )
    target = evaluate_text(
        nanogpt_to_tinygpt(readme_ck["model"], tok.vocab_size, cfg), tok, val_text
    ).loss
    print(
        f"(d) nanoGPT's README CPU run {how}: {args.readme_iters} iterations, val {target:.4f}, "
        f"process {readme_wall:.1f}s; tinygpt's default recipe, growing --max-time:",
        flush=True,
    )
    ttl_wall, ttl_loss, ttl_steps, _ = time_to_loss(
        cfg, args.data, work, device, target, val_text, args.ttl_start
    )
    ttl_ratio = ttl_wall / readme_wall
    print(
        f"(d) time to nanoGPT's loss {target:.4f}: tinygpt {ttl_wall:.1f}s ({ttl_steps} steps, "
        f"val {ttl_loss:.4f}) vs nanoGPT {readme_wall:.1f}s: {ttl_ratio:.2f} of nanoGPT's time",
        flush=True,
    )
    ok = (tiny_speed / nano_speed >= 1.0, tiny_val < nano_val, gen_ratio >= 5, ttl_ratio <= 0.25)
    print(
        f"\ntargets: (a) >= 1.0: {'met' if ok[0] else 'NOT met'}; (b) tinygpt lower: "
        f"{'met' if ok[1] else 'NOT met'}; (c) >= 5x at nanoGPT's char-Shakespeare shape: "
        f"{'met' if ok[2] else 'NOT met'} (at the CPU shape: {ratios['trained']:.1f}x); "
        f"(d) <= 0.25 of nanoGPT's time: {'met' if ok[3] else 'NOT met'}"
    )
    print(f"logs and checkpoints in {work}")
    if not math.isfinite(nano_val + tiny_val):
        sys.exit(1)


if __name__ == "__main__":
    main()
