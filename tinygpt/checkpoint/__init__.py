"""A run on disk: the format's manifest (manifest.py), weights as bytes (weights.py), crash-safe
saving (save.py), opening a verified checkpoint (store.py), one writer at a time (lock.py), the
evaluation log (metrics.py), and Hugging Face export and import (hf.py).

It sits between the model and training: training writes checkpoints, and sampling, analysis and
the views only read them."""
