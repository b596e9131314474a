"""From options to a trained checkpoint: ``train()`` merges the options, locks the output
directory, checks a resume, joins the process group, tokenizes and runs the Trainer.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from tinygpt.checkpoint.lock import directory_lock
from tinygpt.checkpoint.manifest import is_checkpoint
from tinygpt.checkpoint.save import check_manifests, check_writable_destination, recover
from tinygpt.checkpoint.store import Checkpoint, open_checkpoint
from tinygpt.config.model import ModelConfig
from tinygpt.config.run import RunConfig
from tinygpt.config.train import TrainConfig
from tinygpt.data.corpus import prepare_corpus
from tinygpt.data.sources import check_encoding
from tinygpt.data.token_cache import Corpus
from tinygpt.errors import ANY, Opt, UsageError
from tinygpt.training import finetune
from tinygpt.training.distributed import launch_rank, setup, teardown
from tinygpt.training.monitors import monitors
from tinygpt.training.presets import resolve_options
from tinygpt.training.result import TrainResult
from tinygpt.training.sizing import default_tokenizer
from tinygpt.training.trainer import Trainer, TrainerCallback
from tinygpt.training.validation import tokenizer_refusal, val_file_ids


def split_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sort keyword options into model-shape and training options; reject unknown names."""
    model_names = {f.name for f in fields(ModelConfig)}
    train_names = {f.name for f in fields(TrainConfig)}
    model_opts, train_opts = {}, {}
    for key, value in options.items():
        if value is None:  # not given: the preset, config file or dataclass default stands
            continue
        if key in model_names:
            model_opts[key] = value
        elif key in train_names:
            train_opts[key] = value
        else:
            raise UsageError(f"unknown training option {key!r}")
    return model_opts, train_opts


def default_out_dir(data: str | Path) -> Path:
    """checkpoints/<file stem>; for a glob, the name of the folder it searches."""
    path = Path(data)
    while any(ch in path.name for ch in "*?[") and path.name != path.parent.name:
        path = path.parent
    return Path("checkpoints") / (path.stem or "corpus")


@dataclass
class _Request:
    """What ``train()`` was asked for, once the options are merged and split."""

    data: str | Path
    out: Path
    model_opts: dict[str, Any]
    train_opts: dict[str, Any]
    from_recipe: set[str]  # switches a recipe (not the caller) set
    notes: list[str]
    init: Checkpoint | None = None  # --init-from's source, for a new run


def train(
    data: str | Path,
    *,
    out_dir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    callbacks: Sequence[TrainerCallback] = (),
    cache_dir: str | Path | None = None,
    preset: str | None = None,
    config: str | Path | None = None,
    **options: Any,
) -> TrainResult:
    """Train a GPT on the text file ``data`` and write a checkpoint directory.

    ``options`` are any :class:`ModelConfig` or :class:`TrainConfig` fields; they override a
    ``preset`` and a ``config`` file. With ``resume=True`` the run in ``out_dir`` continues
    (``max_steps`` is then the new total). ``callbacks`` listen to the run's events.
    """
    if resume and overwrite:  # the one would keep what the other throws away
        raise UsageError("give ", Opt("resume", True), " or ", Opt("overwrite", True), ", not both")
    out = Path(out_dir) if out_dir else default_out_dir(data)
    model_opts, train_opts = split_options(resolve_options(preset, config, options))
    if not resume:  # before the lock writes its file: a user's own .lock there stays theirs
        check_writable_destination(out, overwrite, Opt("overwrite", True))
    # One writer per directory (rank 0 writes for a torchrun job); taking the lock also proves
    # that --out can be written, before any work is done.
    guard = directory_lock(out) if launch_rank() == 0 else nullcontext()
    # Model options the caller did not spell out came from a recipe (--arch, a preset, a config
    # file): a message about them names the recipe, not a --position no command line has.
    from_recipe = {k for k in model_opts if k not in options}
    with guard as lock_note:
        notes = [lock_note] if lock_note else []
        request = _Request(data, out, model_opts, train_opts, from_recipe, notes)
        _open_init_source(request, resume)
        if not resume:
            _prepare_fresh(request, overwrite)
        source = _resumed(request) if resume else None
        return _run(request, source, callbacks, None if cache_dir is None else Path(cache_dir))


def _open_init_source(request: _Request, resume: bool) -> None:
    """With ``init_from``: the source checkpoint, checked against the options; its tokenizer
    becomes the run's."""
    path = request.train_opts.get("init_from")
    if path is None:
        return
    if resume:
        raise UsageError(
            Opt("init_from"),
            " starts a new run; drop it to continue one with ",
            Opt("resume", True),
        )
    source = finetune.open_source(path, request.out)
    finetune.check_options(source, request.model_opts, request.train_opts)
    request.train_opts["tokenizer"] = source.tokenizer_name
    request.train_opts.update(source.record_options)  # config.json says what it uses
    request.train_opts["init_from"] = str(path)
    request.init = source
    request.notes.append(
        f"starting from the weights of {path} (step {source.step}, "
        f"tokenizer {source.tokenizer_name}); a fresh optimizer and schedule"
    )


def _resumed(request: _Request) -> Checkpoint:
    out = request.out
    if not is_checkpoint(out):
        raise UsageError(
            Opt("resume", True),
            f": no checkpoint in {out} to resume; drop ",
            Opt("resume", True),
            " to start",
        )
    # The writer (it holds the lock) first finishes a save a crash cut short after its
    # commit point, so the evaluations it logged are resumed with its weights.
    if launch_rank() == 0:
        recover(out)
    source = open_checkpoint(out)
    source.fitting_weights()  # before a model of the declared size is built
    _check_resume_options(source.config, source.step, request)
    return source


def _prepare_fresh(request: _Request, overwrite: bool) -> None:
    """A new run may write ``out``; picks its tokenizer when no option named one."""
    out, existing = request.out, is_checkpoint(request.out)
    if existing and not overwrite:
        raise UsageError(
            f"{out} already holds a checkpoint; pass ",
            Opt("resume", True),
            " to continue it, ",
            Opt("out_dir", ANY),
            " to train elsewhere, or ",
            Opt("overwrite", True),
            " to replace it",
        )
    if existing:  # its first save would refuse a damaged manifest: say so now, not then
        check_manifests(out)
    check_writable_destination(out, overwrite, Opt("overwrite", True))
    if "tokenizer" not in request.train_opts:  # not named by a flag, a preset or a config file
        request.train_opts["tokenizer"], picked = default_tokenizer(
            request.data, request.model_opts
        )
        request.notes += [picked] if picked else []


def _check_resume_options(run: RunConfig, step: int, request: _Request) -> None:
    """Refuse options a resumed run can't honour, each with the reason (never "corrupt": the
    checkpoint is sound)."""
    for key, value in request.model_opts.items():
        current = getattr(run.model, key)
        if current == value:
            continue
        if key in request.from_recipe:
            raise UsageError(
                f"the recipe sets {key} {value}, but the checkpoint's {run.model.arch} "
                f"model has {key} {current}; a resumed run keeps its model: drop the ",
                Opt("arch"),
                ", ",
                Opt("preset"),
                " or ",
                Opt("config"),
                " that sets it",
            )
        raise UsageError(
            Opt(key, value),
            f" differs from the checkpoint's {current}; a resumed run keeps its model shape",
        )
    train_opts = request.train_opts
    # The ids (and where records end), and the optimizer state, were made for these.
    for key in ("tokenizer", "records", "separator", "optimizer"):
        if key in train_opts and train_opts[key] != (current := getattr(run.train, key)):
            trained = "without it" if current is None else f"with {current}"
            raise UsageError(
                Opt(key, train_opts[key]),
                " can't change on ",
                Opt("resume", True),
                f": the checkpoint was trained {trained}; train elsewhere (",
                Opt("out_dir", ANY),
                f") to start over with {train_opts[key]}",
            )
    trained_on = run.train.data
    if trained_on and Path(request.data).resolve() != Path(trained_on).resolve():
        request.notes.append(
            f"resuming on {request.data}, but the run trained on {trained_on}: its validation "
            f"losses, and which weights are best, now compare two texts"
        )
    if train_opts.get("max_steps", step) < step:
        raise UsageError(
            Opt("max_steps", train_opts["max_steps"]),
            f": the run is already at step {step}; on ",
            Opt("resume", True),
            f" it is the new total, so give more than {step}",
        )


def _train_config(request: _Request, source: Checkpoint | None) -> TrainConfig:
    where = {"data": str(request.data), "out_dir": str(request.out)}
    if source is None:
        return TrainConfig(**{**request.train_opts, **where}).validate()
    # --max-time is this invocation's budget: a stored one is not applied again (with a
    # fresh budget, on every resume) unless given again. The total it planned is kept.
    stored = {**asdict(source.config.train), "max_time": None}
    if source.config.train.step_cap is None:  # stopped before its deadline planned a total
        del stored["max_steps"]  # so the default, not a billion steps
    return TrainConfig(**{**stored, **request.train_opts, **where}).validate()


def _run(
    request: _Request,
    source: Checkpoint | None,
    callbacks: Sequence[TrainerCallback],
    cache_dir: Path | None,
) -> TrainResult:
    train_cfg = _train_config(request, source)
    check_encoding(train_cfg.encoding)
    dist = setup(train_cfg.device)  # a no-op unless started by torchrun with several processes
    try:
        if not dist.is_main:
            dist.barrier()  # rank 0 tokenizes into the shared cache first; the others reuse it
        corpus = _corpus(request, source, train_cfg, cache_dir)
        val_ids = val_file_ids(train_cfg, corpus.tokenizer, cache_dir, request.init)
        if dist.is_main:
            dist.barrier()
        if source is not None:
            model_cfg = source.config.model
        elif request.init is not None:
            model_cfg = finetune.model_config(request.init, request.model_opts)
        else:
            vocab = corpus.tokenizer.vocab_size
            model_cfg = ModelConfig(**{**request.model_opts, "vocab_size": vocab})
        run = RunConfig(model=model_cfg.validate(), train=train_cfg)
        before, after = monitors(train_cfg)  # the sample before the display shows the record
        trainer = Trainer(
            run,
            corpus,
            resume_from=source,
            callbacks=[*before, *callbacks, *after],
            dist=dist,
            notes=request.notes,
            init_from=request.init,
            val_ids=val_ids,
        )
        result = trainer.fit()
        # Leave together: a rank tearing down while its peer is still finishing can abort it.
        # (Only on success: after an error the other ranks may never arrive.)
        dist.barrier()
        return result
    finally:
        teardown()


def _corpus(
    request: _Request, source: Checkpoint | None, cfg: TrainConfig, cache_dir: Path | None
) -> Corpus:
    """The training corpus, in a resumed run's or an ``init_from`` source's tokenizer if any."""
    init = request.init
    origin = source if source is not None else init
    tokenizer = origin.tokenizer if origin is not None else cfg.tokenizer
    try:
        return prepare_corpus(
            request.data,
            tokenizer,
            cfg.encoding,
            cache_dir,
            exclude=request.out,
            records=cfg.record_spec,
            val_fraction=cfg.val_fraction,
        )
    except UsageError as exc:
        if origin is None or "tokenizer" not in exc.options:
            raise
        # The advice to pick another tokenizer does not apply: the run or the weights need theirs.
        if init is not None:
            opt, whose = Opt("init_from", init.directory), "its"
        else:
            opt, whose = Opt("resume"), "the run's"
        whose = f"{whose} {origin.tokenizer_name}"
        raise tokenizer_refusal(exc, opt, whose, str(request.data)) from None
