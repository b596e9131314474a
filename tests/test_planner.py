"""The --max-time planner (tinygpt/training/planner.py): steady steps set the pace; a
compiling first
step or evaluation is time spent, never a rate; no plan before a steady step."""

import itertools

import pytest

from tests.conftest import FakeClock, ctrl_c_after
from tinygpt.checkpoint.store import open_checkpoint
from tinygpt.training.planner import DeadlinePlanner
from tinygpt.training.trainer import Trainer


def test_no_plan_before_a_steady_step_and_warm_up_is_not_a_rate():
    planner = DeadlinePlanner(max_time=120, eval_every=100, eval_forward_passes=400)
    planner.step_done(20.0)  # the first step: 20 s of compilation
    assert planner.steps_left(20.0) is None  # not "no time left"
    planner.step_done(20.1)  # then 0.1 s a step
    planner.step_done(20.2)
    left = planner.steps_left(20.2)
    # 99.8 s left, less the final evaluation (400 forward passes at a third of a 0.1 s step:
    # 13.3 s) and one such evaluation every 100 steps: about 370 steps, not the 0 that a 20 s
    # step would give.
    evaluation = 400 * 0.1 / 3
    assert left == pytest.approx((120 - 20.2 - evaluation) / (0.1 + evaluation / 100), abs=1)
    assert "took 20.0s" in planner.summary() and "100 ms a step" in planner.summary()


def test_evaluations_are_priced_at_their_measured_cost():
    planner = DeadlinePlanner(max_time=100, eval_every=10, eval_forward_passes=2)
    planner.step_done(1.0)
    planner.step_done(2.0)
    planner.step_done(3.0)
    planner.evaluation_done(4.0)
    assert planner.eval_cost == 4.0
    # 10 s in: 2 steady steps cost (10 - 1 warm-up - 4 evaluating) / 2 = 2.5 s
    assert planner.steps_left(10.0) == int((100 - 10 - 4) / (2.5 + 4 / 10))


def test_one_slow_evaluation_does_not_space_out_the_rest():
    """A 5-minute run whose fourth evaluation took 2.5 s (the machine busy a moment) against
    0.9 s for the others spaced the rest 125 s apart (2.5 s / EVAL_SHARE), the last 126 s
    of the run without a line: the mean prices them, 1.3 s, 65 s apart."""
    planner = DeadlinePlanner(
        max_time=300, eval_every=None, eval_forward_passes=20, eval_seconds=37.5
    )
    for seconds in (0.9, 0.9, 0.9, 2.5):
        planner.evaluation_done(seconds)
    assert planner.eval_interval() == pytest.approx((0.9 * 3 + 2.5) / 4 / 0.02)


@pytest.mark.parametrize("schedule", ["wsd", "cosine"])
@pytest.mark.slow
def test_a_compiling_first_step_does_not_end_the_run(tiny_run, monkeypatch, schedule):
    # The H100 report: a 20 s first step (compilation); the old planner took it as the speed
    # of every step, and stopped at step 20 of a 120 s budget.
    clock = FakeClock(0.01)  # about 0.05 s a steady step
    real_init, real_step, real_evaluate = Trainer.__init__, Trainer.train_step, Trainer.evaluate
    seen = {"steps": 0}

    def compiled_init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        self.clock, self.compiled = clock, True  # priced as compiled, run eagerly

    def train_step(self):
        seen["steps"] += 1
        if seen["steps"] == 1:
            clock.now += 20.0
        return real_step(self)

    def evaluate(self, *args, **kwargs):
        clock.now += 2.0  # 2 x 50 batches: more than the planner assumes before measuring one
        return real_evaluate(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "__init__", compiled_init)
    monkeypatch.setattr(Trainer, "train_step", train_step)
    monkeypatch.setattr(Trainer, "evaluate", evaluate)
    result = tiny_run(
        max_steps=100000, max_time=60.0, eval_every=100, eval_batches=50, min_lr=1e-4,
        schedule=schedule, warmup_steps=20,
    )  # fmt: skip
    assert result.step > 300 and result.stopped_by_time
    assert abs(clock.now - 60.0) <= 6.0  # within 10% of the deadline
    assert open_checkpoint(result.out_dir).config.train.max_steps == result.step


def test_only_the_total_the_deadline_planned_is_called_its_end():
    """An early stop shortens the schedule too; ending there is not the deadline's doing."""
    from tinygpt.config.train import TrainConfig
    from tinygpt.training.planner import Deadline

    deadline = Deadline(TrainConfig(max_time=60, max_steps=1000), start=0.0, compiled=False)
    total = deadline.plan(1.0, 1, 1000, agree=lambda n: n)  # no steady step yet: unchanged
    assert deadline.planned == total == 1000
    assert not deadline.ends_early(1000, 1000)  # --max-steps itself, not a planned end
    deadline.planned = 400  # as a plan that settled on 400
    assert deadline.ends_early(400, 400)
    assert not deadline.ends_early(250, 250)  # a total set elsewhere (an early stop)


@pytest.mark.parametrize("evaluation, interval", [(0.3, 20.0), (0.4, 20.0), (4.0, 200.0)])
def test_evaluations_by_time_are_priced_as_the_ones_still_due(evaluation, interval):
    """Due every 20 s, or every 50 evaluations' time where that is longer: evaluating then
    takes 2% of the run (EVAL_SHARE), however slow an evaluation is against a step."""
    planner = DeadlinePlanner(max_time=100, eval_every=None, eval_forward_passes=2, eval_seconds=20)
    for t in (1.0, 2.0, 3.0):
        planner.step_done(t)
    planner.evaluation_done(evaluation)
    assert planner.eval_interval() == pytest.approx(interval)
    # 10 s in: two steady steps in 9 s less the evaluation; what is left after the final
    # evaluation holds left / interval evaluations still due
    per_step, left = (10 - 1 - evaluation) / 2, 100 - 10 - evaluation
    assert planner.steps_left(10.0) == int((left - left / interval * evaluation) / per_step)


def test_once_the_decay_began_a_slower_machine_shrinks_the_plan_and_it_is_said_once():
    from tinygpt.config.train import TrainConfig
    from tinygpt.training.planner import Deadline

    cfg = TrainConfig(max_time=100, max_steps=10_000, warmup_steps=10, eval_every=10_000)
    deadline = Deadline(cfg, start=0.0, compiled=False)
    now, step, total, notes, totals = 0.0, 0, 10_000, [], []
    while step < total and now < 100:
        now += 0.1 if now < 50 else 0.2  # the machine slows to half speed midway
        step += 1
        total = deadline.plan(now, step, total, agree=lambda n: n)
        notes += [note] if (note := deadline.take_note()) is not None else []
        if deadline.first_plan is not None:  # the decay has begun: the plan only shrinks
            assert total <= (totals or [total])[-1]
            totals.append(total)
    assert step == total and 97 <= now <= 100  # the decay ends at the deadline, not after it
    assert deadline.first_plan is not None and total < 0.9 * deadline.first_plan
    assert len(notes) == 1 and "training slowed" in str(notes[0])


def test_a_slow_spell_in_the_decay_does_not_end_the_run_early_nor_raise_the_rate():
    """The machine slows to a third of its speed for 6 s early in the decay, then recovers: the
    plan shrinks, then grows back as the pace allows, the rate never rising, and the run ends
    at the deadline (without growing back it ended at 78 s of 100)."""
    from tinygpt.config.train import TrainConfig
    from tinygpt.training.planner import Deadline
    from tinygpt.training.schedule import lr_at

    cfg = TrainConfig(max_time=100, max_steps=10_000, warmup_steps=10, eval_every=10_000)
    deadline = Deadline(cfg, start=0.0, compiled=False)
    now, step, total, rates, totals = 0.0, 0, 10_000, [], []
    while step < total and now < 100:
        now += 0.3 if 62 <= now < 68 else 0.1
        step += 1
        total = deadline.plan(now, step, total, agree=lambda n: n)
        totals.append(total)
        if deadline.first_plan is not None:
            rates.append(lr_at(step, cfg, total))
    assert all(b <= a for a, b in itertools.pairwise(rates)), "the rate rose in the decay"
    assert min(totals[-300:]) < max(totals[-50:])  # it shrank, then grew back
    assert step == total and 98 <= now <= 100


def test_a_deadline_without_a_step_count_is_not_capped():
    """--max-time alone runs to its deadline: the default 2,000 steps would end a 5-minute run
    early on a machine faster than this project's. A step count from the command line, a
    preset or a config file stays a cap, and the header says which."""
    from tinygpt.config.train import NO_STEP_CAP, TrainConfig
    from tinygpt.training.presets import resolve_options
    from tinygpt.training.progress import _length
    from tinygpt.training.schedule import describe

    assert resolve_options(None, None, {"max_time": 300.0})["max_steps"] == NO_STEP_CAP
    assert resolve_options(None, None, {"max_time": 300.0, "max_steps": 500})["max_steps"] == 500
    assert resolve_options("tiny", None, {"max_time": 60.0})["max_steps"] == 300
    assert "max_steps" not in resolve_options(None, None, {})  # no deadline: the default 2,000
    free = TrainConfig(max_time=300.0, max_steps=NO_STEP_CAP)
    assert "at most" not in _length(free) and "at most" not in describe(free)
    capped = TrainConfig(max_time=300.0, max_steps=500)
    assert "at most 500 steps" in _length(capped) and "at most 500 steps" in describe(capped)


def test_a_deadline_run_stopped_before_its_plan_resumes_to_the_default_total(
    small_text, tmp_path, monkeypatch
):
    """Stopped at its first step (a warm-up step: no total planned yet), a --max-time run's
    saved total is 'no cap'; a resume without --max-time takes the default total, not that."""

    import tinygpt
    from tests.conftest import TINY
    from tinygpt.config.train import NO_STEP_CAP, TrainConfig

    options = {k: v for k, v in TINY.items() if k != "max_steps"}
    ctrl_c_after(monkeypatch, 1)
    cut = tinygpt.train(small_text, out_dir=tmp_path / "run", max_time=60.0, **options)
    monkeypatch.undo()
    assert cut.interrupted and open_checkpoint(cut.out_dir).config.train.max_steps == NO_STEP_CAP
    seen: list[int] = []

    def record_total(self):
        seen.append(self.cfg.max_steps)
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "fit", record_total)
    with pytest.raises(KeyboardInterrupt):
        tinygpt.train(small_text, out_dir=cut.out_dir, resume=True, **options)
    assert seen == [TrainConfig().max_steps]


@pytest.mark.parametrize("eval_every", [10, None])
def test_a_budget_near_the_largest_float_plans_a_count_not_infinity(eval_every):
    # left / per_step overflowed to inf and int(inf) raised (tinygpt train --max-time 1e308)
    planner = DeadlinePlanner(
        max_time=1.7976931348623157e308, eval_every=eval_every, eval_forward_passes=2,
        eval_seconds=None if eval_every else 20.0,
    )  # fmt: skip
    for t in (1.0, 1.001, 1.002):
        planner.step_done(t)
    left = planner.steps_left(1.002)
    assert isinstance(left, int) and left >= 2**60
