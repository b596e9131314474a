"""Typed configuration, one dataclass per stage: ``ModelConfig``, ``TrainConfig``,
``SampleConfig``, and ``RunConfig`` (what a checkpoint records). Each validates itself and
raises a ``UsageError`` naming the option to fix, so the CLI and the Python API say the same.
"""
