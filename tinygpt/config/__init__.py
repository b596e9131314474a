"""Typed configuration that travels through tinygpt: one dataclass per stage.

``ModelConfig`` (model.py) fixes the network's shape, ``TrainConfig`` (train.py) the
optimisation run and ``SampleConfig`` (sample.py) the sampling controls; ``RunConfig`` (run.py)
is what a checkpoint records. Each validates itself and raises ``UsageError`` with a message
that names the option to fix, so the CLI and the Python API report the same thing. fields.py
holds what they share (how a field declares its help, the type check, the limits); specs.py the
syntax of the tokenizer and records settings.
"""
