"""From where a head looks to what it did: what the model predicted (predictions.py), which
component wrote the target's logit (attribution.py), the prediction layer by layer (lens.py), and
which activation carries the difference between two prompts (patching.py).

Each is tensors in, dataclasses out, read and changed through the model's named hook points
(tinygpt/model/hooks.py); rendering lives in view.py and the attention package's HTML page.
"""
