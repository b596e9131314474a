"""A run on disk: the manifest, weights as bytes, crash-safe saving, verified opening (store.py),
one writer at a time (lock.py), the evaluation log, and Hugging Face export and import."""
