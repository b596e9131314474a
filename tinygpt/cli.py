"""The ``tinygpt`` command line: a thin Typer layer over the library.

Each command parses its options, calls one function of :mod:`tinygpt.api` (or another library
module) and prints the result. Options default to ``None`` so that the dataclass defaults in
:mod:`tinygpt.config` stay the one source of truth, and so ``--resume`` can tell which options
the user actually changed. Nothing heavy is imported at module level: ``--help`` and
``--version`` answer without loading torch; each command imports what it uses.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer

from tinygpt import __version__
from tinygpt.config import ModelConfig, SampleConfig, TrainConfig
from tinygpt.console import announce_picked
from tinygpt.errors import Interrupted, TinyGPTError, UsageError
from tinygpt.repeats import RepeatsConfig
from tinygpt.spelling import cli_spelling

app = typer.Typer(
    name="tinygpt",
    help="Train, sample and understand a small GPT.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

_M, _T, _S, _R = ModelConfig(), TrainConfig(), SampleConfig(), RepeatsConfig()


def _d(value: Any) -> str:
    """Help text naming a default that Typer cannot show itself (the option defaults to None).

    The bracket is escaped: with rich markup on, "[default: x]" would be read as a style tag and
    vanish from ``--help``."""
    return f" \\[default: {value}]"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tinygpt {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full tracebacks instead of one-line errors.")
    ] = False,
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = None,
) -> None:
    """Train, sample and understand a small GPT."""


def _err(message: str) -> None:
    from tinygpt.console import printable

    # Messages quote paths and file contents: never let them drive the terminal.
    typer.echo(f"error: {printable(message)}", err=True)


def _command(*args: Any, **kwargs: Any) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """``app.command`` for a command that ends in one line and 128 + signal when interrupted.

    Typer would turn Ctrl-C into a silent exit 130, and SIGTERM or SIGHUP (see ``main``) need
    their own codes; the wrapper catches the interrupt inside the command instead. Messages
    raised inside a command name command-line flags (``--out``), not Python arguments.
    """

    def register(func: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(func)
        def run(*a: Any, **k: Any) -> None:
            try:
                with cli_spelling(), announce_picked(_say_picked):
                    func(*a, **k)
            except KeyboardInterrupt as exc:
                signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
                _err(f"interrupted ({signal.Signals(signum).name})")
                raise typer.Exit(128 + signum) from None

        return app.command(*args, **kwargs)(run)

    return register


def _say_picked(path: Path) -> None:
    # On stderr, so stdout (a sample, a JSON document) stays the command's output alone.
    typer.echo(
        f"using {path}, the newest checkpoint under checkpoints/ (-c DIR for another)", err=True
    )


def _write_stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------------
@_command()
def train(
    file: Annotated[
        Path | None,
        typer.Argument(help="Text file to train on (UTF-8)." + _d("data/tinyshakespeare.txt")),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Checkpoint directory." + _d("checkpoints/<file stem>")),
    ] = None,
    tokenizer: Annotated[
        str | None,
        typer.Option(
            help="char, gpt2, or any tiktoken encoding."
            + _d(f"{_T.tokenizer}; char for a text too small for its model")
        ),
    ] = None,
    encoding: Annotated[
        str | None, typer.Option(help="Text encoding of FILE." + _d(_T.encoding))
    ] = None,
    n_layer: Annotated[
        int | None, typer.Option(help="Transformer blocks." + _d(_M.n_layer))
    ] = None,
    n_head: Annotated[
        int | None, typer.Option(help="Attention heads per block." + _d(_M.n_head))
    ] = None,
    n_embd: Annotated[int | None, typer.Option(help="Model width." + _d(_M.n_embd))] = None,
    block_size: Annotated[
        int | None, typer.Option(help="Context length in tokens." + _d(_M.block_size))
    ] = None,
    dropout: Annotated[
        float | None, typer.Option(help="Dropout probability." + _d(_M.dropout))
    ] = None,
    bias: Annotated[
        bool | None,
        typer.Option("--bias/--no-bias", help="Biases in Linear and LayerNorm." + _d(_M.bias)),
    ] = None,
    mlp: Annotated[
        bool | None,
        typer.Option("--mlp/--no-mlp", help="--no-mlp: attention-only blocks." + _d(_M.mlp)),
    ] = None,
    arch: Annotated[
        str | None,
        typer.Option(
            help="Recipe: modern (RoPE, QK-norm, ReLU², RMSNorm, untied soft-capped head, Muon) "
            "or gpt2 (the 2019 recipe; Hugging Face export)." + _d("modern")
        ),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Sequences per micro-batch." + _d(_T.batch_size))
    ] = None,
    grad_accum: Annotated[
        int | None, typer.Option(help="Micro-batches per optimizer step." + _d(_T.grad_accum))
    ] = None,
    optimizer: Annotated[
        str | None,
        typer.Option(
            help="muon (Muon for the blocks' matrices, AdamW for the rest) or adamw."
            + _d(_T.optimizer)
        ),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(help="Peak AdamW rate: head and scalars (adamw: everything)." + _d(_T.lr)),
    ] = None,
    matrix_lr: Annotated[
        float | None, typer.Option(help="Peak Muon rate for the matrices." + _d(_T.matrix_lr))
    ] = None,
    embed_lr: Annotated[
        float | None,
        typer.Option(help="Peak AdamW rate for the embeddings (muon)." + _d(_T.embed_lr)),
    ] = None,
    schedule: Annotated[
        str | None,
        typer.Option(help="wsd (warmup, stable, linear decay) or cosine (gpt2)." + _d(_T.schedule)),
    ] = None,
    decay_fraction: Annotated[
        float | None,
        typer.Option(help="wsd: share of the steps spent decaying." + _d(_T.decay_fraction)),
    ] = None,
    min_lr: Annotated[
        float | None,
        typer.Option(help="Learning rate at the end of the schedule." + _d(_T.min_lr)),
    ] = None,
    warmup_steps: Annotated[
        int | None, typer.Option(help="Linear warmup steps." + _d(_T.warmup_steps))
    ] = None,
    max_steps: Annotated[
        int | None,
        typer.Option(help="Total optimizer steps (on --resume: the new total)." + _d(_T.max_steps)),
    ] = None,
    max_time: Annotated[
        float | None,
        typer.Option(
            help="Time budget in seconds: the schedule is planned to end at the deadline "
            "(--max-steps caps it), then the run evaluates and saves."
        ),
    ] = None,
    weight_decay: Annotated[
        float | None, typer.Option(help="Weight decay (matrices only)." + _d(_T.weight_decay))
    ] = None,
    grad_clip: Annotated[
        float | None, typer.Option(help="Clip the gradient norm; 0 disables." + _d(_T.grad_clip))
    ] = None,
    eval_every: Annotated[
        int | None, typer.Option(help="Evaluate and save every N steps." + _d(_T.eval_every))
    ] = None,
    eval_batches: Annotated[
        int | None, typer.Option(help="Batches per loss estimate." + _d(_T.eval_batches))
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps." + _d(_T.device)),
    ] = None,
    dtype: Annotated[
        str | None,
        typer.Option(
            help="auto (bf16 autocast on capable CUDA, else fp32), float32, bfloat16, float16."
            + _d(_T.dtype)
        ),
    ] = None,
    attention: Annotated[
        str | None,
        typer.Option(help="auto (= sdpa), sdpa (fused) or manual (explicit)." + _d(_T.attention)),
    ] = None,
    compile: Annotated[
        bool | None,
        typer.Option(
            "--compile/--no-compile", help="torch.compile the model." + _d("on for CUDA only")
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed." + _d(_T.seed))] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            help="Start from a named configuration: tiny, shakespeare-char, induction, gpt2-small."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="Options from a TOML or JSON file (a checkpoint's config.json works)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out exactly where it stopped.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a checkpoint already in --out.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print a JSON summary of the run on stdout.")
    ] = False,
) -> None:
    """Train a GPT on a text file and write a checkpoint directory."""
    options = {
        k: v
        for k, v in locals().items()
        if k not in {"file", "out", "resume", "overwrite", "quiet", "preset", "config", "json_out"}
        and v is not None
    }
    from tinygpt.api import train as run_training
    from tinygpt.datasets import default_corpus

    if file is None:
        file = default_corpus()
        if not file.exists():
            raise UsageError(
                "give a text FILE to train on, or run `tinygpt data shakespeare` first"
            )

    result = run_training(
        file,
        out_dir=out,
        resume=resume,
        overwrite=overwrite,
        quiet=quiet,
        preset=preset,
        config=config,
        **options,
    )
    resume_cmd = f"tinygpt train {file} --out {result.out_dir} --resume"
    # 128 + the signal, as a shell reports a process that signal ended (Ctrl-C: 130).
    interrupted_code = 128 + (result.signal or signal.SIGINT)
    if not result.is_main:  # other data-parallel ranks: rank 0 speaks for the job
        raise typer.Exit(interrupted_code if result.interrupted else 0)
    if json_out:
        best = result.best_val_loss if math.isfinite(result.best_val_loss) else None
        summary = {
            "out_dir": str(result.out_dir),
            "step": result.step,
            "best_val_loss": best,
            "interrupted": result.interrupted,
            "stopped_by_time": result.stopped_by_time,
            **(result.parameters.to_dict() if result.parameters else {}),
        }
        typer.echo(json.dumps(summary))
    if result.interrupted:  # a clean stop the user asked for: said plainly, not as an error
        name = signal.Signals(result.signal or signal.SIGINT).name
        typer.echo(
            f"interrupted at step {result.step} ({name}); saved the checkpoint in "
            f"{result.out_dir}. Resume with: {resume_cmd}",
            err=True,
        )
        raise typer.Exit(interrupted_code)
    if not quiet:
        typer.echo(
            f"done: step {result.step}, best val loss {result.best_val_loss:.4f}; checkpoint in "
            f"{result.out_dir}. Sample with: tinygpt generate --checkpoint {result.out_dir}",
            err=True,
        )


# ---------------------------------------------------------------------------------------------
CheckpointOpt = Annotated[
    Path | None,
    typer.Option(
        "--checkpoint", "-c", help="Checkpoint directory." + _d("the newest under checkpoints/")
    ),
]


@_command()
def generate(
    checkpoint: CheckpointOpt = None,
    prompt: Annotated[
        str, typer.Option("--prompt", "-p", help="Text to continue; '-' reads stdin.")
    ] = "",
    max_new_tokens: Annotated[int, typer.Option(help="Tokens to generate.")] = _S.max_new_tokens,
    temperature: Annotated[
        float, typer.Option(help="Softmax temperature; 0 is greedy.")
    ] = _S.temperature,
    top_k: Annotated[
        int | None, typer.Option(help="Sample among the k most likely tokens." + _d(_S.top_k))
    ] = None,
    top_p: Annotated[
        float | None,
        typer.Option(help="Nucleus sampling: smallest set with this probability mass."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed (same seed, same sample; sample i: seed+i).")
    ] = None,
    num_samples: Annotated[
        int, typer.Option(help="Independent samples, drawn as one batch.")
    ] = _S.num_samples,
    stop: Annotated[
        list[str] | None,
        typer.Option(
            "--stop",
            metavar="<str>",
            help="End a sample where this text first appears (not printed); repeatable; "
            "\\n and \\t are a newline and a tab.",
        ),
    ] = None,
    alternatives: Annotated[
        int,
        typer.Option(
            help="With --json: for each token, this many of the model's most likely tokens "
            "with their probabilities."
        ),
    ] = _S.alternatives,
    interactive: Annotated[
        bool,
        typer.Option(
            "--interactive",
            "-i",
            help="Prompt after prompt, the model loaded once (Ctrl-C stops a sample, "
            "Ctrl-D leaves).",
        ),
    ] = False,
    kv_cache: Annotated[
        bool,
        typer.Option(
            "--kv-cache/--no-kv-cache",
            help="Reuse past keys/values (--no-kv-cache recomputes every step).",
        ),
    ] = True,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    attention: Annotated[str, typer.Option(help="auto, sdpa or manual.")] = "auto",
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON document instead of streaming.")
    ] = False,
) -> None:
    """Sample text from a trained checkpoint, streaming it as it is produced."""
    from tinygpt.api import generate as run_generate

    options: dict[str, Any] = dict(
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_k=top_k if top_k is not None else _S.top_k,
        top_p=top_p,
        seed=seed,
        num_samples=num_samples,
        kv_cache=kv_cache,
        stop=tuple(_unescape(s) for s in stop or ()),
        alternatives=alternatives,
    )
    if alternatives and not json_out:
        raise UsageError("--alternatives goes with --json (the alternatives are listed there)")
    if interactive:
        _interactive(checkpoint, prompt, json_out, device, attention, options)
        return
    if prompt == "-":
        prompt = sys.stdin.read()
    on_text = None if json_out else _write_stdout
    result = run_generate(
        checkpoint, prompt, device=device, attention=attention, on_text=on_text, **options
    )
    for notice in result.notices:
        typer.echo(f"note: {notice}", err=True)
    if json_out:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        _write_stdout("\n")


def _unescape(text: str) -> str:
    """``\\n``, ``\\t`` and ``\\\\`` as typed in a shell, so a stop at a blank line is
    ``--stop '\\n\\n'``."""
    escapes = {"n": "\n", "t": "\t", "\\": "\\"}
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in escapes:
            out.append(escapes[text[i + 1]])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _interactive(
    checkpoint: Path | None,
    prompt: str,
    json_out: bool,
    device: str,
    attention: str,
    options: dict[str, Any],
) -> None:
    from tinygpt.api import interactive_session

    if prompt or json_out:
        flag = "--prompt" if prompt else "--json"
        raise UsageError(f"--interactive reads its prompts from the terminal; drop {flag}")
    tty = sys.stdin.isatty()
    if tty:
        with contextlib.suppress(ImportError):  # line editing and history for input()
            import readline  # noqa: F401
        typer.echo("Type a prompt and Enter; Ctrl-C stops a sample, Ctrl-D leaves.", err=True)

    def read_line() -> str:
        if tty:
            return input("> ")
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")

    interactive_session(
        checkpoint, read_line, _write_stdout, device=device, attention=attention, **options
    )


# ---------------------------------------------------------------------------------------------
@_command("eval")
def eval_command(
    file: Annotated[Path, typer.Argument(help="Text file to score.")],
    checkpoint: CheckpointOpt = None,
    best: Annotated[bool, typer.Option("--best", help="Use the best-validation weights.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    encoding: Annotated[str, typer.Option(help="Text encoding of FILE.")] = "utf-8",
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Cross-entropy, perplexity and bits per byte of a checkpoint on a whole text file."""
    from tinygpt.api import evaluate

    result = evaluate(checkpoint, file, device=device, encoding=encoding, best=best, progress=True)
    if json_out:
        typer.echo(json.dumps(result.to_dict()))
    else:
        typer.echo(
            f"loss {result.loss:.4f} nats/token  perplexity {result.perplexity:.2f}  "
            f"bits/byte {result.bits_per_byte:.4f}  "
            f"({result.tokens:,} tokens, {result.bytes:,} bytes)"
        )


# ---------------------------------------------------------------------------------------------
@_command("inspect-attention")
def inspect_attention(
    ctx: typer.Context,
    checkpoint: CheckpointOpt = None,
    prompt: Annotated[
        str, typer.Option("--prompt", "-p", help="Text to look at; '-' reads stdin.")
    ] = "",
    layer: Annotated[int | None, typer.Option(help="Focus on one layer.")] = None,
    head: Annotated[
        str | None,
        typer.Option(
            help="Focus on one head: L1H2 as the tables print it, or a number with --layer."
        ),
    ] = None,
    query: Annotated[
        str | None, typer.Option(help="Query position (negative from the end) or token text.")
    ] = None,
    explain: Annotated[
        bool,
        typer.Option("--explain", help="Step through the mechanism for one query of one head."),
    ] = False,
    induction: Annotated[
        bool,
        typer.Option(
            "--induction", help="Run the repeated-random-tokens probe (no prompt needed)."
        ),
    ] = False,
    show_rollout: Annotated[
        bool, typer.Option("--rollout", help="Show attention rollout across layers.")
    ] = False,
    window: Annotated[
        int, typer.Option(help="Tokens shown per heatmap (long prompts are windowed).")
    ] = 24,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON document on stdout instead of the view.")
    ] = False,
    json_file: Annotated[
        Path | None,
        typer.Option("--json-file", help="Write the same JSON document to a file."),
    ] = None,
    html_file: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML page.")
    ] = None,
    queries: Annotated[
        str | None,
        typer.Option(help="Only queries A:B (positions; the prompt is cut after B-1, exactly)."),
    ] = None,
    png_file: Annotated[
        Path | None,
        typer.Option("--png", help="Write a PNG figure: the focused head, layer, or all heads."),
    ] = None,
    svg_file: Annotated[
        Path | None, typer.Option("--svg", help="Write the same figure as SVG.")
    ] = None,
    npz_file: Annotated[
        Path | None, typer.Option("--npz", help="Write the raw tensors (attention, q, k, v).")
    ] = None,
    ablate: Annotated[
        list[str] | None,
        typer.Option(help="Ablate a head, L1H2 (or 1.2), repeatable; report the loss change."),
    ] = None,
    ablation: Annotated[
        str, typer.Option(help="zero, mean or pattern (pattern-preserving).")
    ] = "mean",
    trajectory: Annotated[
        Path | None,
        typer.Option(help="A run's head scores, losses and role changes by step (no prompt)."),
    ] = None,
    compare: Annotated[
        tuple[Path, Path] | None,
        typer.Option(help="Two checkpoints: per-head score changes and pattern divergence."),
    ] = None,
    best: Annotated[bool, typer.Option("--best", help="Use the best-validation weights.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "cpu",
) -> None:
    """Show what each layer and head attends to, and why."""
    mode = _inspect_mode(ctx)
    layer, head_index = _focus(layer, head)
    if prompt == "-":
        prompt = sys.stdin.read()
    from tinygpt import api
    from tinygpt.attention import view
    from tinygpt.attention.files import ReportFiles, write_bytes, write_report
    from tinygpt.console import stdout_console

    console = stdout_console()
    if mode == "trajectory":
        records = api.trajectory(trajectory)
        _show(console, json_out, lambda: records, lambda: view.trajectory(records))
        if png_file:
            from tinygpt.attention.trajectory_figure import trajectory_png

            write_bytes(png_file, trajectory_png(records))
            _wrote(png_file)
        return
    if mode == "ablate":
        result = api.ablation_report(checkpoint, ablate, ablation, prompt, device=device)
        _show(console, json_out, lambda: result, lambda: view.ablation_table(result))
        if json_file:
            write_bytes(json_file, json.dumps(result).encode())
            _wrote(json_file)
        return
    if mode == "compare":
        deltas = api.compare_attention(*compare, prompt or "\n", device=device)
        names = (compare[0].name, compare[1].name)
        _show(console, json_out, lambda: deltas, lambda: view.comparison(deltas, names))
        if json_file:
            write_bytes(json_file, json.dumps(deltas).encode())
            _wrote(json_file)
        return
    if window < 2:
        raise UsageError("--window must be at least 2")
    report = api.attention_report(
        checkpoint,
        prompt,
        device=device,
        best=best,
        induction=induction,
        queries=queries,
        layer=layer,
        head=head_index,
        query=query,
        explain=explain,
    )
    for notice in report.notices:
        typer.echo(f"note: {notice}", err=True)
    _show(
        console,
        json_out,
        report.to_dict,
        lambda: view.report_view(
            report, layer, head_index, query, window, console.width, show_rollout
        ),
    )
    files = ReportFiles(json=json_file, html=html_file, png=png_file, svg=svg_file, npz=npz_file)
    title = "".join(report.tokens)[:80]
    for path in write_report(report, files, layer, head_index, title, rollout=show_rollout):
        _wrote(path)


# Which inspect-attention options each mode reads; any other option given is a usage error.
_COMMON = {"device"}
_MODE_OPTIONS = {
    "trajectory": {"trajectory", "json_out", "png_file"},
    "ablate": {"checkpoint", "prompt", "ablate", "ablation", "json_out", "json_file", *_COMMON},
    "compare": {"compare", "prompt", "json_out", "json_file", *_COMMON},
    "normal": {
        "checkpoint",
        "prompt",
        "layer",
        "head",
        "query",
        "explain",
        "induction",
        "show_rollout",
        "window",
        "json_out",
        "json_file",
        "html_file",
        "queries",
        "png_file",
        "svg_file",
        "npz_file",
        "best",
        *_COMMON,
    },
}
_MODE_FLAGS = {"trajectory": "--trajectory", "ablate": "--ablate", "compare": "--compare"}


def _focus(layer: int | None, head: str | None) -> tuple[int | None, int | None]:
    """The layer and head index that --layer and --head name. --head takes the label the tables
    print (L1H2, which names the layer too) or a number, which needs --layer: alone it would
    name no head, and ignoring it would show something the user did not ask for."""
    from tinygpt.attention.labels import parse_head_spec

    if head is None:
        return layer, None
    if head.strip().isdigit():
        if layer is None:
            raise UsageError(f"--head {head} needs --layer (or name the head as L1H{head.strip()})")
        return layer, int(head)
    try:
        named_layer, index = parse_head_spec(head)
    except ValueError:
        raise UsageError(f"--head takes a label such as L1H2 or a number, got {head!r}") from None
    if layer is not None and layer != named_layer:
        raise UsageError(f"--head {head} is in layer {named_layer}, not --layer {layer}")
    return named_layer, index


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether the option was on the command line (not its default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def _inspect_mode(ctx: typer.Context) -> str:
    """The mode the options select (--trajectory, --ablate, --compare, else the normal view);
    an option the mode does not read is refused rather than silently ignored."""
    given = [p for p in ctx.command.params if p.name is not None and _given(ctx, p.name)]
    names = {p.name for p in given}
    mode = next((m for m in ("trajectory", "ablate", "compare") if m in names), "normal")
    for p in given:
        if p.name in _MODE_OPTIONS[mode]:
            continue
        if mode in _MODE_FLAGS:
            raise UsageError(f"{p.opts[0]} does not apply with {_MODE_FLAGS[mode]}")
        modes = [_MODE_FLAGS[m] for m in _MODE_FLAGS if p.name in _MODE_OPTIONS[m]]
        raise UsageError(f"{p.opts[0]} applies only with {' or '.join(modes)}")
    return mode


def _show(
    console: Any, json_out: bool, document: Callable[[], Any], render: Callable[[], Any]
) -> None:
    """With --json, one JSON document is all that goes to stdout; else the terminal view."""
    if json_out:
        typer.echo(json.dumps(document()))
    else:
        console.print(render())


def _wrote(path: Path) -> None:
    typer.echo(f"wrote {path}", err=True)


# ---------------------------------------------------------------------------------------------
@_command()
def info(
    checkpoint: CheckpointOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What a checkpoint holds: size, shape, tokenizer, steps, losses, tokens, time, device."""
    from tinygpt.runs import checkpoint_info

    data = checkpoint_info(checkpoint)
    if json_out:
        typer.echo(json.dumps(data))
        return
    from rich.table import Table
    from rich.text import Text

    from tinygpt.console import printable, stdout_console

    table = Table(show_header=False, box=None, pad_edge=False)
    shape = data["shape"]
    best = data["best_val_loss"]
    rows = [
        ("checkpoint", data["checkpoint"]),
        ("parameters", _parameters(data).describe(exact=True)),
        (
            "shape",
            f"{shape['n_layer']} layers, {shape['n_head']} heads, {shape['n_embd']} wide, "
            f"block {shape['block_size']}, dropout {shape['dropout']}, "
            f"bias {'on' if shape['bias'] else 'off'}",
        ),
        ("recipe", data["arch"]),
        *_training_rows(data),
        ("tokenizer", f"{data['tokenizer']} (vocab {shape['vocab_size']:,})"),
        (
            "steps",
            f"{data['steps']:,} of {data['max_steps']:,}"
            if data["trained_here"]
            else "none: imported (import-hf), not trained here",
        ),
        ("best val loss", "-" if best is None else f"{best:.4f}"),
        ("tokens seen", f"{data['tokens_seen']:,}"),
        ("training time", f"{data['training_seconds']:.0f}s"),
        (
            "device",
            f"{data['device'] or '-'} ({data['dtype'] or '-'}), effective batch "
            f"{data['effective_batch_size']}",
        ),
        ("data", data["data"]),
        ("saved", data["saved"]),
    ]
    for key, value in rows:
        # Text: a path like a[/b] is not markup; printable: a name from a file can't drive
        # the terminal
        table.add_row(key, Text(printable(str(value))))
    stdout_console().print(table)


def _training_rows(data: dict[str, Any]) -> list[tuple[str, str]]:
    """``info``'s optimizer and schedule; none for an imported model, which was not trained
    here (its "steps" row says so instead of "0 of 0")."""
    from tinygpt.optim import GroupInfo, groups_line

    if not data["trained_here"]:
        return []
    return [
        ("optimizer", groups_line([GroupInfo(**g) for g in data["optimizer_groups"]])),
        ("schedule", data["schedule"]),
    ]


def _parameters(record: dict[str, Any]) -> Any:
    """The parameter count of an ``info`` or ``runs`` record, to describe it the one way."""
    from tinygpt.model import ParameterCount

    return ParameterCount(record["parameters"], record["position_embedding_parameters"])


@_command()
def runs(
    root: Annotated[Path, typer.Option("--root", help="Where runs live.")] = Path("checkpoints"),
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The runs under checkpoints/ as a table, newest first."""
    from tinygpt.runs import list_runs

    rows = list_runs(root)
    if json_out:
        typer.echo(json.dumps(rows))
        return
    if not rows:
        typer.echo(f"no runs under {root}/; start one with `tinygpt train FILE`", err=True)
        return
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from tinygpt.console import printable, stdout_console

    table = Table(pad_edge=False, box=box.SIMPLE_HEAD)
    for name in ("run", "params", "steps", "best val", "tokens", "tokenizer", "saved"):
        table.add_column(
            name,
            justify="left" if name in ("run", "tokenizer") else "right",
            no_wrap=name != "run",
            overflow="ellipsis" if name == "run" else "fold",
            min_width=15 if name == "run" else None,
        )
    broken = []
    for r in rows:
        # Text, not str: a run named ck[red]x is shown as it is, never as markup.
        if "error" in r:
            # A short mark in the table, the reason below it: a long cell would squeeze the run
            # names out of an 80-column terminal.
            table.add_row(Text(printable(r["name"])), "", "", "", "", "", "broken")
            broken.append(Text(f"{printable(r['name'])}: {printable(r['error'])}"))
            continue
        best = "-" if r["best_val_loss"] is None else f"{r['best_val_loss']:.4f}"
        table.add_row(
            Text(printable(r["name"])),
            _parameters(r).short(),
            f"{r['steps']:,}",
            best,
            f"{r['tokens_seen'] / 1e6:.1f}M",
            Text(printable(r["tokenizer"])),
            r["saved"][5:],
        )
    console = stdout_console()
    console.print(table)
    for line in broken:
        console.print(line)


@_command()
def plot(
    checkpoint: CheckpointOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write a .svg or .png file.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Train and validation loss by step, in the terminal (and as SVG or PNG with --out)."""
    from tinygpt.api import run_metrics
    from tinygpt.draw.plot import terminal_plot, write_plot

    ck, metrics = run_metrics(checkpoint)
    typer.echo(json.dumps(metrics) if json_out else terminal_plot(metrics))
    if out:
        from tinygpt.console import printable

        # printable: a folder name's control characters are invalid XML, its non-UTF-8 bytes
        # can't be written
        write_plot(out, metrics, f"{printable(ck.directory.name)}: loss by step")
        typer.echo(f"wrote {out}", err=True)


# ---------------------------------------------------------------------------------------------
@_command()
def export(
    out: Annotated[Path, typer.Argument(help="Directory to write.")],
    checkpoint: CheckpointOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="Only hf (Hugging Face GPT-2).")] = "hf",
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Write into a non-empty OUT (never a checkpoint)."),
    ] = False,
) -> None:
    """Write a checkpoint as a Hugging Face GPT2LMHeadModel directory (identical logits)."""
    from tinygpt.checkpoint import find_checkpoint
    from tinygpt.hf import check_export_destination, export_hf

    if fmt != "hf":
        raise UsageError(f"--format must be hf, got {fmt!r}")
    check_export_destination(out, overwrite)  # before loading anything
    path = export_hf(find_checkpoint(checkpoint), out, overwrite)
    typer.echo(f"wrote {path}; load it with transformers.GPT2LMHeadModel.from_pretrained", err=True)


@_command("import-hf")
def import_hf_command(
    source: Annotated[Path, typer.Argument(help="A local Hugging Face GPT-2 model directory.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Checkpoint directory to write.")
    ] = None,
    tokenizer: Annotated[
        str | None,
        typer.Option(
            help="The model's BPE encoding." + _d("the one `tinygpt export` stored, else gpt2")
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a checkpoint in --out.")
    ] = False,
) -> None:
    """Turn a local GPT-2 style Hugging Face model into a tinygpt checkpoint."""
    from tinygpt.hf import import_hf

    target = out or Path("checkpoints") / source.resolve().name
    import_hf(source, target, tokenizer, overwrite)
    typer.echo(f"wrote {target}; try: tinygpt generate --checkpoint {target}", err=True)


# ---------------------------------------------------------------------------------------------
@_command()
def data(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            help="shakespeare (download) or repeats (write random strings that repeat)."
        ),
    ] = "shakespeare",
    directory: Annotated[Path, typer.Option("--dir", help="Where to put it.")] = Path("data"),
    url: Annotated[
        str | None, typer.Option(help="shakespeare: download from this mirror instead.")
    ] = None,
    alphabet: Annotated[
        str, typer.Option(help="repeats: the characters strings are drawn from.")
    ] = _R.alphabet,
    min_length: Annotated[int, typer.Option(help="repeats: shortest string.")] = _R.min_length,
    max_length: Annotated[int, typer.Option(help="repeats: longest string.")] = _R.max_length,
    min_gap: Annotated[
        int, typer.Option(help="repeats: fewest characters between the copies.")
    ] = _R.min_gap,
    max_gap: Annotated[
        int, typer.Option(help="repeats: most characters between the copies.")
    ] = _R.max_gap,
    lines: Annotated[int, typer.Option(help="repeats: records (lines) to write.")] = _R.lines,
    seed: Annotated[int, typer.Option(help="repeats: random seed.")] = _R.seed,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Download a standard small corpus into data/ (checked against its sha256), or write the
    repeated-strings corpus for watching an induction head form (`tinygpt data repeats`)."""
    from tinygpt.datasets import fetch

    if name == "repeats":
        if _given(ctx, "url"):
            raise UsageError("--url applies only to downloads; repeats is written here")
        from tinygpt.repeats import REPEATS_FILE, write_repeats

        cfg = RepeatsConfig(alphabet, min_length, max_length, min_gap, max_gap, lines, seed)
        path = write_repeats(directory / REPEATS_FILE, cfg)
    else:
        given = [f.name for f in fields(RepeatsConfig) if _given(ctx, f.name)]
        if given:
            raise UsageError(f"--{given[0].replace('_', '-')} applies only to `data repeats`")
        path = fetch(name, directory, url=url)
    typer.echo(json.dumps({"path": str(path)}) if json_out else str(path))


# ---------------------------------------------------------------------------------------------
def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


def _stop_on_signals() -> None:
    """SIGTERM and SIGHUP end a command the way Ctrl-C does: one line, 128 + signal (training
    installs its own handlers, to finish the step and save first)."""
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _raise_interrupted)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: one-line errors and exit codes instead of tracebacks."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or os.environ.get("TINYGPT_DEBUG") == "1"
    _stop_on_signals()
    try:
        app(args=args, prog_name="tinygpt")
    except TinyGPTError as exc:
        if debug:
            raise
        _err(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:  # outside a command (they report their own)
        if debug:
            raise
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        _err("interrupted")
        sys.exit(128 + signum)
    except BrokenPipeError:
        # `tinygpt generate | head`: the reader left; nothing to report.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except Exception as exc:  # a bug: still one line unless asked for the traceback
        if debug:
            raise
        _err(f"unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback)")
        sys.exit(1)
