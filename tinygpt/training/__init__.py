"""Training a GPT, one job per module.

``run.py`` turns options into a run (configs, lock, process group, corpus) and hands it to
``trainer.py``, whose loop only loops: it steps, asks the ``--max-time`` planner
(tinygpt/planner.py) for the schedule's total, checks the stop protocol (``stopping.py``),
evaluates (``validation.py``) and saves (``state.py``), and tells its callbacks. ``setup.py``
builds what the loop uses (device, dtype, seeds, model, optimizer, DDP and compile wrapping);
``state.py`` holds what changes as the run goes, apart from the configuration, which does not;
``sizing.py`` warns when a model dwarfs its text. ``tinygpt.trainer`` re-exports the public names.
"""
