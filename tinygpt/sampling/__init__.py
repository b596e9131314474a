"""Sampling: choosing tokens (choose.py), the batched decode loop (decoder.py, tokens.py), stop
texts (stops.py), prompts and streamed text (text.py), N samples streamed in order and
one prompt after another (generate.py)."""

from tinygpt.sampling.choose import Alternatives, alternatives, choose, filter_logits
from tinygpt.sampling.decoder import Decoder, keep_after_crop
from tinygpt.sampling.generate import GenerationResult, Sample, generate_text
from tinygpt.sampling.stops import StopMatcher
from tinygpt.sampling.text import StreamDecoder, encode_prompt
from tinygpt.sampling.tokens import make_generator, sample_tokens, stream_tokens

__all__ = [
    "Alternatives",
    "Decoder",
    "GenerationResult",
    "Sample",
    "StopMatcher",
    "StreamDecoder",
    "alternatives",
    "choose",
    "encode_prompt",
    "filter_logits",
    "generate_text",
    "keep_after_crop",
    "make_generator",
    "sample_tokens",
    "stream_tokens",
]
