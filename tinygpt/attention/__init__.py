"""Attention analysis: capture, head scores, probes, ablation, and its terminal, HTML and figure views."""
