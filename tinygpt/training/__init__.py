"""Training a GPT, one job per module.

``run.py`` turns options into a run and hands it to ``trainer.py``, whose loop steps and asks
the other modules: the ``--max-time`` planner, the stop protocol, validation, the saved state.
"""
