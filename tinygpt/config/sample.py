"""The sampling controls of ``generate`` (and of the explore page's writing)."""

from __future__ import annotations

from dataclasses import dataclass

from tinygpt.config.fields import MAX_ALTERNATIVES, MAX_SEED, check_seed, check_types, documented
from tinygpt.errors import Opt, UsageError


@dataclass
class SampleConfig:
    """Sampling controls for ``generate``."""

    max_new_tokens: int = documented(500, "Tokens to generate.")
    temperature: float = documented(0.8, "Softmax temperature; 0 is greedy.")
    top_k: int | None = documented(200, "Sample among the k most likely tokens.")
    top_p: float | None = documented(
        None, "Nucleus sampling: smallest set with this probability mass."
    )
    seed: int | None = documented(None, "Random seed (same seed, same sample; sample i: seed+i).")
    num_samples: int = documented(1, "Independent samples, drawn as one batch.")
    kv_cache: bool = documented(
        True, "Reuse past keys/values (--no-kv-cache recomputes every step)."
    )
    stop: tuple[str, ...] = documented(
        (),
        "End a sample where this text first appears (not printed); repeatable; "
        "\\n and \\t are a newline and a tab.",
        default_text=None,
        metavar="<str>",
    )
    stop_at_record: bool = documented(
        True,
        "On a records model, end a sample at its end-of-record token "
        "(--no-stop-at-record: go on to the next record).",
    )
    alternatives: int = documented(
        0,
        "With --json: for each token, this many of the model's most likely tokens "
        "with their probabilities.",
    )

    def validate(self) -> SampleConfig:
        check_types(self)
        if self.seed is not None:
            check_seed(self.seed)
        if self.max_new_tokens < 0:
            raise UsageError(Opt("max_new_tokens"), f" must be >= 0, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise UsageError(
                Opt("temperature"), f" must be >= 0 (0 means greedy), got {self.temperature}"
            )
        if self.top_k is not None and self.top_k <= 0:
            raise UsageError(Opt("top_k"), f" must be a positive integer, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise UsageError(Opt("top_p"), f" must be in (0, 1], got {self.top_p}")
        if self.num_samples <= 0:
            raise UsageError(
                Opt("num_samples"), f" must be a positive integer, got {self.num_samples}"
            )
        if self.seed is not None and self.seed + self.num_samples - 1 > MAX_SEED:
            raise UsageError(
                Opt("seed"),
                " + ",
                Opt("num_samples"),
                f" must stay within {MAX_SEED} (sample i uses seed + i)",
            )
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise UsageError(Opt("stop"), " needs a non-empty text")
        if not 0 <= self.alternatives <= MAX_ALTERNATIVES:
            raise UsageError(
                Opt("alternatives"),
                f" must be between 0 and {MAX_ALTERNATIVES}, got {self.alternatives}",
            )
        return self
