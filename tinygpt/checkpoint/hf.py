"""Hugging Face interop: export to a ``GPT2LMHeadModel`` directory, import from one.

The gpt2 recipe has GPT-2's layout, so the conversion is a renaming plus one transpose (GPT-2's
``Conv1D`` weights are (in, out), ``nn.Linear``'s (out, in)); other recipes are refused. Exact
GELU travels as ``gelu``, the tanh approximation as ``gelu_new``, so logits match both ways.
Neither direction needs transformers.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import safetensors.torch
import torch

from tinygpt.checkpoint.lock import directory_lock
from tinygpt.checkpoint.manifest import (
    CONFIG_FILE,
    JSON_LIMIT,
    MODEL_FILE,
    TOKENIZER_FILE,
    is_checkpoint,
)
from tinygpt.checkpoint.save import check_writable_destination, write_checkpoint
from tinygpt.checkpoint.store import Checkpoint, check_tokenizer_spec
from tinygpt.checkpoint.weights import check_weight_shapes, weights_bytes
from tinygpt.config.model import ModelConfig, parameter_bound
from tinygpt.config.run import RunConfig
from tinygpt.config.train import TrainConfig
from tinygpt.data.tokenizer import Tokenizer, build_tokenizer, tokenizer_from_dict
from tinygpt.errors import CheckpointError, Opt, UsageError
from tinygpt.io.files import atomic_write_bytes, describe_os_error, read_bounded
from tinygpt.model import GPT
from tinygpt.recipe import GPT2

_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh"}
LAYER_NORM_EPS = 1e-5  # torch's LayerNorm default, which tinygpt uses


# What GPT-2 can represent: the gpt2 recipe's switches, but any bias (zero biases compute what
# no bias does) and either GELU.
_FREE = {"bias", "activation"}
_GPT2_SWITCHES = {k: v for k, v in GPT2.model_options().items() if k not in _FREE}


def check_exportable(m: ModelConfig) -> None:
    """Refuse a model GPT2LMHeadModel would compute differently (one line naming why)."""
    differ = [f"{k}={getattr(m, k)}" for k, v in _GPT2_SWITCHES.items() if getattr(m, k) != v]
    if m.activation not in ("gelu", "gelu_tanh"):
        differ.append(f"activation={m.activation}")
    if not m.mlp:
        differ.append("mlp=False")
    if differ:
        raise UsageError(
            f"this model can't be exported as GPT-2: it is a {m.arch} model ({', '.join(differ)}); "
            "only models trained with ",
            Opt("arch", "gpt2"),
            " can be",
        )


EXPORT_FILES = ("config.json", "model.safetensors", "tinygpt_tokenizer.json")
TOKENIZER_EXPORT = EXPORT_FILES[2]


def _end_of_text(ck: Checkpoint) -> int | None:
    """GPT-2's bos and eos: the encoding's end-of-text token, or None (a char vocabulary has
    none, and GPT-2's default 50256 lies outside it)."""
    if ck.tokenizer_spec.get("type") != "tiktoken":
        return None
    eot = getattr(ck.tokenizer, "eot_token", None)
    return eot if isinstance(eot, int) and eot < ck.config.model.vocab_size else None


def check_export_destination(out: Path, overwrite: bool = False) -> None:
    """Refuse to export over a tinygpt checkpoint (its files have the export's names) ever, and
    over anything else without ``overwrite``."""
    if is_checkpoint(out):
        raise UsageError(
            f"{out} holds a tinygpt checkpoint; exporting there would destroy it. Export to "
            f"a new directory"
        )
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file; export writes a directory")
    if not overwrite and out.is_dir() and any(out.iterdir()):
        raise UsageError(
            f"{out} is not empty; export to a new directory, or pass ",
            Opt("overwrite", True),
            " to replace the exported files in it",
        )


def export_hf(ck: Checkpoint, out: Path, overwrite: bool = False) -> Path:
    """Write ``out/config.json`` and ``out/model.safetensors`` loadable by GPT2LMHeadModel."""
    out = Path(out)
    check_export_destination(out, overwrite)
    m = ck.config.model
    check_exportable(m)
    tensors = _hf_tensors(ck.load_model("cpu"), m)
    contents = (
        json.dumps(_hf_config(ck), indent=2).encode(),
        safetensors.torch.save(tensors, metadata={"format": "pt"}),
        # The tokenizer in tinygpt's format (GPT2TokenizerFast has gpt2's ranks too).
        json.dumps(ck.tokenizer_spec).encode(),
    )
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, data in zip(EXPORT_FILES, contents, strict=True):
            atomic_write_bytes(out / name, data)
    except OSError as exc:
        raise UsageError(f"cannot write to {out}: {exc.strerror or exc}") from None
    return out


def _hf_tensors(model: GPT, m: ModelConfig) -> dict[str, torch.Tensor]:
    """``model``'s weights under GPT2LMHeadModel's names and in its Conv1D layout."""
    tensors: dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        if key == "lm_head.weight":
            continue  # tied to the token embedding, as GPT-2's loader expects
        value = value.detach().clone()
        if key.endswith(_CONV1D):
            value = value.t().contiguous()
        name = "transformer." + key.replace("blocks.", "h.", 1)
        tensors[name] = value
        if not m.bias and key.endswith(".weight") and not key.startswith(("wte.", "wpe.")):
            # GPT-2 always has biases: zeros compute exactly what no bias does
            tensors[name.removesuffix("weight") + "bias"] = torch.zeros(value.shape[-1])
    return tensors


def _hf_config(ck: Checkpoint) -> dict[str, Any]:
    """The config.json GPT2LMHeadModel reads for ``ck``'s model."""
    m = ck.config.model
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": m.vocab_size,
        "n_positions": m.block_size,
        "n_ctx": m.block_size,
        "n_embd": m.n_embd,
        "n_layer": m.n_layer,
        "n_head": m.n_head,
        "n_inner": None,
        "activation_function": "gelu" if m.activation == "gelu" else "gelu_new",
        "resid_pdrop": m.dropout,
        "embd_pdrop": m.dropout,
        "attn_pdrop": m.dropout,
        "layer_norm_epsilon": LAYER_NORM_EPS,
        "initializer_range": 0.02,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        "bos_token_id": _end_of_text(ck),
        "eos_token_id": _end_of_text(ck),
    }


def _read_hf_weights(src: Path, config: ModelConfig) -> dict[str, torch.Tensor]:
    """The weights beside config.json, read bounded (float64 for every parameter at most): a
    FIFO or a device in their place fails at once."""
    limit = 8 * parameter_bound(config) + (16 << 20)
    for name in ("model.safetensors", "pytorch_model.bin"):
        path = src / name
        if not (path.exists() or path.is_symlink()):
            continue
        try:
            data = read_bounded(path, limit)
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {describe_os_error(exc)}") from None
        try:
            if name == "model.safetensors":
                state = safetensors.torch.load(data)
            else:
                state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:
            raise UsageError(
                f"refusing {path}: not a file of plain tensors ({type(exc).__name__})"
            ) from None
        if not isinstance(state, dict) or not all(
            isinstance(v, torch.Tensor) for v in state.values()
        ):
            raise UsageError(f"refusing {path}: not a dictionary of tensors")
        integers = [k for k, v in state.items() if not v.is_floating_point()]
        if integers:  # as load_weights refuses in a checkpoint (a bool model sampled nothing)
            raise UsageError(f"refusing {path}: {integers[0]} holds integers, not weights")
        return state
    raise UsageError(f"{src} has neither model.safetensors nor pytorch_model.bin")


def _exported_tokenizer(src: Path, run: RunConfig) -> dict[str, Any] | None:
    """The tokenizer ``tinygpt export`` stored beside the weights, checked, or None."""
    path = src / TOKENIZER_EXPORT
    if not path.exists():
        return None
    try:
        spec = json.loads(read_bounded(path, JSON_LIMIT))
        check_tokenizer_spec(spec, run.model.vocab_size)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {describe_os_error(exc)}") from None
    except ValueError as exc:  # bad JSON, or not a tokenizer this model can use
        raise UsageError(f"{path} is not a usable tokenizer: {exc}") from None
    return spec


def _import_tokenizer(src: Path, name: str | None, run: RunConfig) -> Tokenizer:
    """``name`` when given (BPE), else the exported one, else GPT-2's encoding."""
    spec = _exported_tokenizer(src, run) if name in (None, "char") else None
    if name == "char" and (spec is None or spec["type"] != "char"):
        raise UsageError(
            f"a char vocabulary is not stored in Hugging Face files: {src} has no "
            f"{TOKENIZER_EXPORT} (what `tinygpt export` writes); give a BPE ",
            Opt("tokenizer"),
        )
    tok = tokenizer_from_dict(spec) if spec is not None else build_tokenizer(name or "gpt2")
    if tok.vocab_size > run.model.vocab_size:
        what = (
            (Opt("tokenizer", tok.name),) if name else (f"{tok.name} (no ", Opt("tokenizer"), ")")
        )
        raise UsageError(
            *what, f" has {tok.vocab_size} tokens, the model only {run.model.vocab_size}"
        )
    return tok


def check_import_destination(src: Path, out: Path, overwrite: bool = False) -> None:
    """Refuse to import over the model being read (its files have a checkpoint's names), and
    over a checkpoint or into a non-empty directory without ``overwrite``."""
    with contextlib.suppress(OSError):
        if Path(out).resolve() == Path(src).resolve():
            raise UsageError(
                f"--out {out} is the model being imported; writing there would destroy it. "
                f"Give another --out"
            )
    if is_checkpoint(out) and not overwrite:
        raise UsageError(f"{out} already holds a checkpoint; pass --overwrite or another --out")
    check_writable_destination(out, overwrite, Opt("overwrite", True))


def _hf_model_config(src: Path) -> ModelConfig:
    """The ModelConfig a GPT-2 ``src/config.json`` describes, read bounded (a FIFO can't hang
    it); a UsageError naming the problem otherwise."""
    path = src / "config.json"
    if is_checkpoint(src):
        raise UsageError(f"{src} is a tinygpt checkpoint already; use it as it is (-c {src})")
    try:
        cfg = json.loads(read_bounded(path, JSON_LIMIT))
    except FileNotFoundError:
        raise UsageError(f"{src} has no config.json; give a Hugging Face model directory") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {describe_os_error(exc)}") from None
    except RecursionError:
        raise UsageError(f"{path} is nested too deeply") from None
    except ValueError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(cfg, dict):
        raise UsageError(f"{path} must hold a JSON object, not {type(cfg).__name__}")
    if cfg.get("model_type") != "gpt2":
        raise UsageError(f"{path} is a {cfg.get('model_type')!r:.40} model; only gpt2 is supported")
    function = cfg.get("activation_function", "gelu_new")
    activation = _ACTIVATIONS.get(function) if isinstance(function, str) else None
    if activation is None:
        raise UsageError(f"unsupported activation_function {function!r:.60} in {path}")
    try:
        epsilon = cfg.get("layer_norm_epsilon", LAYER_NORM_EPS)
        if isinstance(epsilon, bool) or abs(float(epsilon) - LAYER_NORM_EPS) > 1e-12:
            raise UsageError(f"layer_norm_epsilon {epsilon!r:.40} in {path} is not 1e-5")
        if cfg.get("n_inner") not in (None, 4 * cfg["n_embd"]):
            raise UsageError(f"n_inner {cfg['n_inner']!r:.40} in {path} is not 4 x n_embd")
        model_cfg = ModelConfig(
            vocab_size=cfg["vocab_size"],
            block_size=cfg["n_positions"],
            n_layer=cfg["n_layer"],
            n_head=cfg["n_head"],
            n_embd=cfg["n_embd"],
            dropout=0.0,
            **{**GPT2.model_options(), "activation": activation},
        )
    except KeyError as exc:
        raise UsageError(f"{path} has no {exc.args[0]}; it is not a GPT-2 config") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise UsageError(f"{path} is not a usable GPT-2 config: {exc}") from None
    try:
        return model_cfg.validate()
    except UsageError as exc:  # in the file's names (n_head), not flags import-hf lacks
        raise UsageError(f"{path} is not a usable GPT-2 config: {exc}") from None


def import_hf(src: Path, out: Path, tokenizer: str | None = None, overwrite: bool = False) -> Path:
    """Turn a local GPT-2 style Hugging Face directory into a tinygpt checkpoint. The tokenizer:
    ``tokenizer``, else the one ``tinygpt export`` wrote (a char model keeps its vocabulary),
    else GPT-2's encoding."""
    check_import_destination(src, out, overwrite)
    model_cfg = _hf_model_config(src)
    train = TrainConfig(data=str(src), out_dir=str(out), **GPT2.train_options())
    run = RunConfig(model=model_cfg, train=train)
    tok = _import_tokenizer(src, tokenizer, run)
    run = replace(run, train=replace(train, tokenizer=tok.name))
    state: dict[str, torch.Tensor] = {}
    for key, value in _read_hf_weights(src, model_cfg).items():
        if not isinstance(key, str):
            raise UsageError(f"{src}: a weight name that is not a string ({key!r:.40})")
        key = key.removeprefix("transformer.")
        if key.endswith((".attn.bias", ".attn.masked_bias")) and value.dim() > 1:
            continue  # old GPT-2 checkpoints store the causal mask as a buffer
        key = key.replace("h.", "blocks.", 1) if key.startswith("h.") else key
        if key.endswith(_CONV1D):
            value = value.t().contiguous()
        state[key] = value
    state.setdefault("lm_head.weight", state.get("wte.weight", torch.empty(0)))
    try:  # before building: a config.json may declare far more than the weights hold
        check_weight_shapes(model_cfg, {k: tuple(v.shape) for k, v in state.items()}, str(src))
    except CheckpointError as exc:
        raise UsageError(
            str(exc).replace("in its config.json", "its config.json declares")
        ) from None
    model = GPT(model_cfg)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise UsageError(
            f"{src}: weights do not fit its config: {str(exc).splitlines()[-1].strip()}"
        ) from None
    model.lm_head.weight = model.wte.weight
    files = {
        CONFIG_FILE: json.dumps(run.to_dict(), indent=2).encode(),
        TOKENIZER_FILE: json.dumps(tok.to_dict()).encode(),
        MODEL_FILE: weights_bytes(model),
    }
    with directory_lock(out):  # the same one-writer rule as `train`
        check_import_destination(src, out, overwrite)  # again, now that no one else writes
        write_checkpoint(out, files, step=0)
    return out
