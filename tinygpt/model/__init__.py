"""The transformer: :class:`GPT` (gpt.py), its layers, KV cache, hook points and size."""

from tinygpt.model.cache import KVCache
from tinygpt.model.gpt import GPT, MLP, Block, CausalSelfAttention, resolve_attention
from tinygpt.model.hooks import HookPoint, hook_points, hooks, run_with_cache
from tinygpt.model.layers import Rotary, causal_mask
from tinygpt.model.size import ParameterCount, count_parameters

__all__ = [
    "GPT",
    "MLP",
    "Block",
    "CausalSelfAttention",
    "HookPoint",
    "KVCache",
    "ParameterCount",
    "Rotary",
    "causal_mask",
    "count_parameters",
    "hook_points",
    "hooks",
    "resolve_attention",
    "run_with_cache",
]
