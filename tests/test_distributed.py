"""Data-parallel training on CPU with gloo: 2 processes, no fixed ports."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from tests.conftest import MICRO_ARGS, SMALL_TEXT, TINY, FakeClock, pin_float32

OPTIONS = {**TINY, "max_steps": 6, "eval_every": 3, "dropout": 0.0}
pytestmark = pytest.mark.slow  # every test here starts processes that train


def _as_rank(rank: int, world: int, root: str) -> None:
    """This spawned process as torchrun's rank ``rank`` of ``world``, one thread."""
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        TINYGPT_DIST_INIT_METHOD=f"file://{root}/rendezvous",
        TINYGPT_CACHE_DIR=f"{root}/cache",
    )
    torch.set_num_threads(1)


def _worker(rank: int, world: int, root: str) -> None:
    _as_rank(rank, world, root)
    import tinygpt

    pin_float32(setattr)  # as the single process's float32_cpu

    # Rank 1 is given a directory of its own: it must never write into it.
    out = f"{root}/out" if rank == 0 else f"{root}/out-rank1"
    result = tinygpt.train(f"{root}/small.txt", out_dir=out, **OPTIONS)
    torch.save(result.model.state_dict(), f"{root}/weights-{rank}.pt")


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    (root / "small.txt").write_text(SMALL_TEXT)
    mp.spawn(_worker, args=(2, str(root)), nprocs=2, join=True)
    return root


def _weights(path):
    return torch.load(path, weights_only=True)


def _choice_worker(rank: int, world: int, root: str) -> None:
    import torch.distributed as dist

    from tinygpt.model import device
    from tinygpt.training import muon, setup
    from tinygpt.training.distributed import DistContext

    dist.init_process_group("gloo", init_method=f"file://{root}/choice", rank=rank, world_size=2)
    device.cpu_has_bfloat16 = lambda: True  # as on a CPU with the flag
    device.cpu_bfloat16_pays = lambda: rank == 1  # the ranks timed differently
    try:
        _, dtype = muon.newton_schulz_for(torch.device("cpu"))
        ctx = DistContext(rank=rank, local_rank=rank, world_size=2)
        precision = setup.precision("auto", torch.device("cpu"), ctx)
        Path(f"{root}/choice-{rank}").write_text(f"{dtype} {precision}")
    finally:
        dist.destroy_process_group()


def test_every_rank_takes_rank_zeros_newton_schulz_type_and_precision(tmp_path):
    mp.spawn(_choice_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    chosen = {(tmp_path / f"choice-{rank}").read_text() for rank in range(2)}
    # Rank 0's, though rank 1 measured bfloat16 faster.
    assert chosen == {f"{torch.float32} {torch.float32}"}


def _clock_worker(rank: int, world: int, root: str) -> None:
    """A --max-time run evaluating by the clock, rank 1's clock running 30% fast; each rank
    writes the steps it saved at."""
    _as_rank(rank, world, root)
    import tinygpt
    from tinygpt.training.trainer import Trainer

    tick = 0.01 if rank == 0 else 0.013
    real_init, real_save, saved = Trainer.__init__, Trainer.save, []

    def with_own_clock(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        self.clock = FakeClock(tick)

    def logged_save(self):
        saved.append(self.step)
        real_save(self)

    Trainer.__init__, Trainer.save = with_own_clock, logged_save
    options = {**OPTIONS, "max_steps": 100000, "max_time": 3.0, "eval_every": None}
    tinygpt.train(f"{root}/small.txt", out_dir=f"{root}/out-{rank}", **options)
    Path(f"{root}/saved-{rank}").write_text(json.dumps(saved))


def test_ranks_whose_clocks_differ_evaluate_at_the_same_steps(tmp_path):
    """Evaluating by the clock, each rank reads its own: any rank's due evaluation is
    everyone's, else one rank would enter the save's collectives while another trained on
    (and hang or fail)."""
    (tmp_path / "small.txt").write_text(SMALL_TEXT)
    context = mp.start_processes(_clock_worker, (2, str(tmp_path)), nprocs=2, join=False)
    for _ in range(120):  # seconds; a rank waiting on a collective the other skipped hangs
        if context.join(timeout=1):
            break
    else:
        for process in context.processes:
            process.kill()
        pytest.fail("the ranks did not finish: their evaluations fell at different steps")
    saved = [json.loads((tmp_path / f"saved-{rank}").read_text()) for rank in range(2)]
    assert saved[0] == saved[1] and len(saved[0]) >= 3, saved


def test_replicas_hold_identical_weights(ddp_run):
    a, b = _weights(ddp_run / "weights-0.pt"), _weights(ddp_run / "weights-1.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_two_ranks_equal_one_process_on_the_combined_batch(ddp_run, tmp_path, float32_cpu):
    # float32_cpu: both sides compute in float32, Muon's iteration too (the workers set it
    # themselves)
    import tinygpt

    single = tinygpt.train(
        ddp_run / "small.txt",
        out_dir=tmp_path / "single",
        **{**OPTIONS, "batch_size": 2 * OPTIONS["batch_size"]},
    )
    ddp = _weights(ddp_run / "weights-0.pt")
    one = single.model.state_dict()
    for key in ddp:
        torch.testing.assert_close(ddp[key], one[key], rtol=1e-4, atol=1e-5)
    # and the run really moved away from its initialisation
    assert single.metrics[-1]["train_loss"] < single.metrics[0]["train_loss"] + 1


def test_only_rank_zero_wrote_files(ddp_run):
    assert (ddp_run / "out" / "manifest.json").exists()
    assert not (ddp_run / "out-rank1").exists()
    config = json.loads((ddp_run / "out" / "config.json").read_text())
    assert config["train"]["world_size"] == 2
    assert config["train"]["effective_batch_size"] == 2 * OPTIONS["batch_size"]


def test_torchrun_cli_trains_and_resumes(tmp_path):
    (tmp_path / "small.txt").write_text(SMALL_TEXT)
    args = [
        *MICRO_ARGS,
        "--eval-every",
        "5",
        "--eval-batches",
        "1",
        "--device",
        "cpu",
        "--quiet",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TINYGPT_CACHE_DIR": str(tmp_path / "cache")}

    def torchrun(*extra):
        # --standalone lets torchrun pick a free port itself.
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                "--nproc_per_node=2",
                "-m",
                "tinygpt",
                "train",
                "small.txt",
                *args,
                *extra,
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )

    first = torchrun("--max-steps", "5")
    assert first.returncode == 0, first.stderr[-6000:]
    again = torchrun("--max-steps", "10", "--resume")
    assert again.returncode == 0, again.stderr[-6000:]
    from tinygpt.checkpoint.metrics import read_metrics
    from tinygpt.checkpoint.store import open_checkpoint

    ck = open_checkpoint(tmp_path / "checkpoints" / "small")
    assert ck.step == 10 and ck.load_state()["world_size"] == 2
    assert json.loads((ck.directory / "config.json").read_text())["train"]["world_size"] == 2
    assert [m["step"] for m in read_metrics(ck.directory)] == [5, 10]
    bad = torchrun("--max-steps", "10", "--n-embd", "30")  # usage error on every rank
    assert bad.returncode != 0


def _rank_pid(launcher: int, rank: int) -> int | None:
    """The worker process of ``rank`` that torchrun (pid ``launcher``) started."""
    children = Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split()
    for pid in children:
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ:
            return int(pid)
    return None


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs Linux /proc")
def test_sigterm_to_one_rank_stops_every_rank_at_one_step_and_saves(tmp_path):
    import signal
    import time

    (tmp_path / "small.txt").write_text(SMALL_TEXT)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TINYGPT_CACHE_DIR": str(tmp_path / "cache"),
        "NO_COLOR": "1",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "tinygpt",
            "train",
            "small.txt",
            *MICRO_ARGS,
            "--device",
            "cpu",
            "--max-steps",
            "1000000",
            "--eval-every",
            "1000000",
            "--out",
            "out",
        ],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    deadline = time.time() + 240
    while time.time() < deadline:  # rank 0 prints its summary once the loop has started
        line = proc.stderr.readline()
        lines.append(line)
        if not line or line.startswith("output "):
            break
    assert proc.poll() is None, "".join(lines)
    time.sleep(2)
    rank1 = _rank_pid(proc.pid, 1)
    assert rank1 is not None
    os.kill(rank1, signal.SIGTERM)  # only one rank hears it, as with a targeted kill
    _, err = proc.communicate(timeout=180)
    assert "interrupted at step" in err and "(SIGTERM)" in err, err[-4000:]
    assert "SIGABRT" not in err and "Aborted" not in err, err[-4000:]
    from tinygpt.checkpoint.store import open_checkpoint

    ck = open_checkpoint(tmp_path / "out")
    step = int(err.split("interrupted at step ")[1].split(" ")[0])
    assert ck.step == step > 0
