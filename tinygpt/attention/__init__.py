"""Attention analysis: capture, head scores, probes and ablation, with terminal, HTML and figure
views of one report object (:class:`tinygpt.attention.report.AttentionReport`)."""
