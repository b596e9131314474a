"""What a trained model does, read through its named hook points (tinygpt/model/hooks.py):
tensors in, dataclasses out, nothing drawn here.

- Attention: capture.py (weights of every head for a prompt), explain.py (one query step by step),
  scores.py and labels.py (head scores, roles and their names: one table), probes.py (induction,
  previous-token), snapshot.py (scores through training), ablation.py (does a head matter),
  attention_report.py (what every attention view shows).
- The prediction: predictions.py, attribution.py (which head wrote the logit), lens.py (layer by
  layer), patching.py (which activation carries a difference), inputs.py (the position and target
  a user names), interpret_report.py (what those views show), evaluation.py (loss on a file).
- commands.py: each inspect command as one call, from a checkpoint and a prompt to a report.
"""
