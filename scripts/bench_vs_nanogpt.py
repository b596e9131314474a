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
from dataclasses import dataclass
from pathlib import Path

import torch
from benchutil import machine, median_seconds

from tinygpt.analysis.evaluation import evaluate_text
from tinygpt.checkpoint.store import open_checkpoint
from tinygpt.checkpoint.weights import clean_state_dict
from tinygpt.config.model import ModelConfig
from tinygpt.config.sample import SampleConfig
from tinygpt.data.tokenizer import CharTokenizer
from tinygpt.model import GPT
from tinygpt.model.device import resolve_device
from tinygpt.recipe import RECIPES
from tinygpt.sampling import make_generator, stream_tokens

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


def time_to_loss(b: Bench, target: float, start: float, refine: int) -> tuple[float, float, int]:
    """The smallest --max-time budget whose run reaches ``target``: budgets grow by 1.25x from
    ``start`` until one does (or, when ``start`` already does, shrink by 1.25x until one falls
    short), then ``refine`` halvings of the interval between the last budget that fell short and
    the first that reached it. Returns (process seconds, val loss, steps) of the smallest budget
    that reached it."""

    def attempt(budget: float) -> tuple[float, float, int]:
        out = b.work / f"tiny_ttl_{budget:.1f}"
        cmd = tinygpt_default_cmd(b.cfg, b.args.data, out, b.device, budget)
        wall = run(cmd, b.work, b.work / "ttl.log")
        ck = open_checkpoint(out)
        loss = evaluate_text(ck.load_model(), b.tok, b.val_text).loss
        print(f"    --max-time {budget:.1f}: val {loss:.4f} at step {ck.step} ({wall:.1f}s)")
        return wall, loss, ck.step

    short, budget = 0.0, start
    reached = attempt(budget)
    while reached[1] <= target and budget > start / 4:  # reached at once: the time is shorter
        tried = attempt(budget / 1.25)
        if tried[1] > target:
            short = budget / 1.25
            break
        budget, reached = budget / 1.25, tried
    while reached[1] > target:
        if budget >= 20 * start:
            return math.inf, math.nan, 0
        short, budget = budget, budget * 1.25
        reached = attempt(budget)
    for _ in range(refine if short else 0):
        middle = (short + budget) / 2
        tried = attempt(middle)
        if tried[1] <= target:
            budget, reached = middle, tried
        else:
            short = middle
    return reached


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


@dataclass
class Bench:
    """What every part shares: the options, the model shape, the working copy of nanoGPT."""

    args: argparse.Namespace
    cfg: dict
    device: str
    how: str  # "[device, precision, compiled]", on every figure
    work: Path
    nano: Path
    val_text: str
    tok: CharTokenizer
    measured_speed: float | None = None  # nanoGPT's tokens/s, once a part measured it

    @property
    def tokens_per_iter(self) -> int:
        return self.cfg["batch_size"] * self.cfg["block_size"]

    @property
    def nanogpt_checkpoint(self) -> Path:
        return self.nano / "out-shakespeare-char" / "ckpt.pt"

    def nanogpt_state(self) -> dict:
        """The last nanoGPT run's weights, as nanoGPT names them."""
        state = torch.load(self.nanogpt_checkpoint, map_location="cpu", weights_only=True)
        return {k.removeprefix("_orig_mod."): v for k, v in state["model"].items()}

    def nanogpt_speed(self) -> float:
        """nanoGPT's training tokens/s over ``--speed-steps`` iterations, measured once."""
        if self.measured_speed is None:
            log = self.work / "nano_speed.log"
            run(nanogpt_cmd(self.cfg, self.args.speed_steps, self.device, 10**6), self.nano, log)
            self.measured_speed = nanogpt_tok_s(log, self.tokens_per_iter)
        return self.measured_speed

    def nanogpt_model(self) -> GPT:
        """The last nanoGPT run's weights in tinygpt's model."""
        return nanogpt_to_tinygpt(self.nanogpt_state(), self.tok.vocab_size, self.cfg)


def part_a(b: Bench) -> bool:
    """(a) training tokens/s, the same model in both tools and tinygpt's default recipe."""
    args, cfg = b.args, b.cfg
    nano_speed = b.nanogpt_speed()
    tiny_out = b.work / "tiny_speed"
    cmd = tinygpt_cmd(cfg, args.data, tiny_out, args.speed_steps, b.device, None)
    run(cmd, b.work, b.work / "tiny_speed.log")
    tiny_speed = tinygpt_tok_s(tiny_out)
    default_out = b.work / "tiny_speed_default"
    cmd = tinygpt_default_cmd(cfg, args.data, default_out, b.device, 1e9, args.speed_steps)
    cmd += [f"--batch-size={cfg['batch_size']}", f"--eval-every={min(args.speed_steps, 50)}"]
    run(cmd, b.work, b.work / "tiny_speed_default.log")
    default_speed = tinygpt_tok_s(default_out)
    print(
        f"(a) training tokens/s {b.how}, same model: nanoGPT {nano_speed:,.0f}, tinygpt --arch "
        f"gpt2 {tiny_speed:,.0f}, ratio {tiny_speed / nano_speed:.2f}; tinygpt's default recipe "
        f"{default_speed:,.0f} ({default_speed / nano_speed:.2f}x nanoGPT: RoPE, QK-norm and "
        f"Muon cost time per step)",
        flush=True,
    )
    return tiny_speed / nano_speed >= 1.0


def part_b(b: Bench) -> bool:
    """(b) validation loss after the same wall-clock training budget."""
    nano_steps = max(1, int(b.args.budget * b.nanogpt_speed() / b.tokens_per_iter))
    nano_wall = run(
        nanogpt_cmd(b.cfg, nano_steps, b.device, nano_steps), b.nano, b.work / "nano_b.log"
    )
    tiny_out = b.work / "tiny_b"
    cmd = tinygpt_default_cmd(b.cfg, b.args.data, tiny_out, b.device, b.args.budget)
    tiny_wall = run(cmd, b.work, b.work / "tiny_b.log")
    tiny_ck = open_checkpoint(tiny_out)
    nano_val = evaluate_text(b.nanogpt_model(), b.tok, b.val_text).loss
    tiny_val = evaluate_text(tiny_ck.load_model(), b.tok, b.val_text).loss
    print(
        f"(b) val loss after a {b.args.budget:.0f}s budget {b.how} (tinygpt: default recipe): "
        f"nanoGPT {nano_val:.4f} ({nano_steps} steps, process {nano_wall:.0f}s), tinygpt "
        f"{tiny_val:.4f} ({tiny_ck.step} steps, process {tiny_wall:.0f}s): "
        f"{'tinygpt lower' if tiny_val < nano_val else 'tinygpt NOT lower'}",
        flush=True,
    )
    return tiny_val < nano_val


def part_c(b: Bench) -> bool:
    """(c) sampling speed on identical weights: a nanoGPT model of the benchmark's shape (as
    (b) trained it, or untrained) and one of nanoGPT's char-Shakespeare shape."""
    sys.path.insert(0, str(b.nano))
    from model import GPT as NanoGPT  # nanoGPT's own model.py, from the checkout
    from model import GPTConfig as NanoConfig

    ratios = {}
    for label, shape in (("trained", b.cfg), ("full", CONFIGS["full"])):
        torch.manual_seed(0)
        sizes = {k: shape[k] for k in ("n_layer", "n_head", "n_embd", "block_size")}
        theirs = NanoGPT(NanoConfig(vocab_size=b.tok.vocab_size, bias=False, dropout=0.0, **sizes))
        if label == "trained" and b.nanogpt_checkpoint.exists():  # (b)'s model
            theirs.load_state_dict(b.nanogpt_state())
        theirs.eval()
        ours = nanogpt_to_tinygpt(theirs.state_dict(), b.tok.vocab_size, shape)
        device = torch.device(b.device)
        ratios[label] = compare_sampling(
            theirs, ours, b.tok, shape["block_size"], b.args.repeats, device
        )
    print(f"    (at the CPU shape: {ratios['trained']:.1f}x)")
    return ratios["full"] >= 5


def part_d(b: Bench) -> bool:
    """(d) time to the loss of nanoGPT's README CPU run."""
    iters = b.args.readme_iters
    readme_wall = run(nanogpt_cmd(b.cfg, iters, b.device, iters), b.nano, b.work / "readme.log")
    target = evaluate_text(b.nanogpt_model(), b.tok, b.val_text).loss
    print(
        f"(d) nanoGPT's README CPU run {b.how}: {iters} iterations, val {target:.4f}, "
        f"process {readme_wall:.1f}s; tinygpt's default recipe, growing --max-time:",
        flush=True,
    )
    wall, loss, steps = time_to_loss(b, target, b.args.ttl_start, b.args.ttl_refine)
    ratio = wall / readme_wall
    print(
        f"(d) time to nanoGPT's loss {target:.4f}: tinygpt {wall:.1f}s ({steps} steps, "
        f"val {loss:.4f}) vs nanoGPT {readme_wall:.1f}s: {ratio:.2f} of nanoGPT's time",
        flush=True,
    )
    return ratio <= 0.20


PARTS = {
    "a": (part_a, ">= 1.0"),
    "b": (part_b, "tinygpt lower"),
    "c": (part_c, ">= 5x at nanoGPT's char-Shakespeare shape"),
    "d": (part_d, "<= 0.20 of nanoGPT's time"),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nanogpt", required=True, type=Path, help="a nanoGPT checkout")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared/data/tinyshakespeare.txt",
    )
    parser.add_argument("--parts", default="abcd", help="which figures, e.g. d (default abcd)")
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
    parser.add_argument(
        "--ttl-refine", type=int, default=2, help="(d): halvings between the last two budgets"
    )
    args = parser.parse_args()
    if not set(args.parts) <= set(PARTS):
        parser.error(f"--parts takes letters of {''.join(PARTS)}, got {args.parts!r}")
    if not (args.nanogpt / "train.py").exists():
        parser.error(f"{args.nanogpt} does not look like a nanoGPT checkout (no train.py)")
    return args


def setup(args: argparse.Namespace) -> Bench:
    """nanoGPT copied to a temporary directory with its char data prepared by its own script."""
    device = resolve_device(args.device).type
    cfg = CONFIGS[args.config or ("full" if device == "cuda" else "cpu")]
    COMPILE[0] = args.compile if args.compile is not None else device == "cuda"
    args.speed_steps = args.speed_steps or (300 if device == "cuda" else 40)
    precision = "bf16 autocast" if device == "cuda" else "float32"
    how = f"[{device}, {precision}, {'compiled' if COMPILE[0] else 'not compiled'}]"
    work = Path(tempfile.mkdtemp(prefix="bench-nanogpt-"))
    nano = work / "nanoGPT"
    shutil.copytree(args.nanogpt, nano, ignore=shutil.ignore_patterns(".git"))
    prep = nano / "data" / "shakespeare_char"
    shutil.copy(args.data, prep / "input.txt")
    subprocess.run([sys.executable, "prepare.py"], cwd=prep, check=True, capture_output=True)
    text = args.data.read_text(encoding="utf-8")
    val_text = text[int(len(text) * 0.9) :]
    return Bench(args, cfg, device, how, work, nano, val_text, CharTokenizer.from_text(text))


def main() -> None:
    bench = setup(parse_args())
    print(f"machine: {machine()}")
    print(f"config: {bench.cfg}, hyper-parameters {SHARED}\n")
    met = {part: PARTS[part][0](bench) for part in bench.args.parts}
    verdicts = [
        f"({part}) {PARTS[part][1]}: {'met' if ok else 'NOT met'}" for part, ok in met.items()
    ]
    print("\ntargets: " + "; ".join(verdicts))
    print(f"logs and checkpoints in {bench.work}")


if __name__ == "__main__":
    main()
