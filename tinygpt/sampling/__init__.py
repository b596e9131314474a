"""Sampling: choosing tokens, the batched decode loop, stop texts, and samples as text.

* :mod:`~tinygpt.sampling.choose`: temperature, top-k, top-p, greedy; the model's alternatives.
* :mod:`~tinygpt.sampling.decoder`: the context window and the KV cache, prefill apart from the
  one-token step (graphed on CUDA).
* :mod:`~tinygpt.sampling.tokens`: the token loop over a batch of rows, a generator per row.
* :mod:`~tinygpt.sampling.stops`: stop texts matched across token boundaries.
* :mod:`~tinygpt.sampling.text`: prompts to ids, streamed ids to text.
* :mod:`~tinygpt.sampling.generate`: N samples as one batch, streamed in order.
* :mod:`~tinygpt.sampling.interactive`: one prompt after another, the model loaded once.
"""

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
