"""Training a GPT, one job per module.

``run.py`` turns options into a run (configs, lock, process group, corpus) and hands it to
``trainer.py``, whose loop only loops: it steps, asks the ``--max-time`` planner
(``planner.py``) for the schedule's total, checks the stop protocol (``stopping.py``),
evaluates (``validation.py``) and saves (``state.py``), tells its callbacks and returns a
``result.py``. ``setup.py`` builds what the loop uses (device, dtype, seeds, model,
optimizer, DDP and compile wrapping); ``state.py`` holds what changes as the run goes, apart
from the configuration, which does not; ``sizing.py`` warns when a model dwarfs its text. The
optimizer (optim.py, muon.py), the schedule, ``--max-time``'s planner and speed watch, data
parallelism (distributed.py), the progress display, presets and the run listing (runs.py)
live here too.
"""
