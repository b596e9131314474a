"""What a trained model does, read through its named hook points: tensors in, dataclasses out,
nothing drawn here. Attention: capture, explain, scores, labels, probes, snapshot (through
training), ablation, attention_report. The prediction: predictions, attribution, lens, patching,
inputs, interpret_report, evaluation. commands.py: each inspect command as one call.
"""
