"""Stop texts: a sample ends where one first appears, even across token boundaries. A tail that
could still grow into a stop text is held back until the next piece shows whether it does."""

from __future__ import annotations

from collections.abc import Sequence


class StopMatcher:
    """Watches one sample's generated text for the first of ``stops``."""

    def __init__(self, stops: Sequence[str] = ()) -> None:
        self.stops = tuple(stops)
        self.pending = ""  # text held back: it may be the start of a stop text
        self.found: str | None = None  # the stop text that ended the sample

    def feed(self, piece: str) -> str:
        """The text that can be shown now, given the next piece of the sample."""
        if self.found is not None:
            return ""
        text = self.pending + piece
        hits = [(text.find(s), len(s), s) for s in self.stops if s in text]
        if hits:
            # The earliest; at the same place the shortest, which completed first.
            index, _, self.found = min(hits)
            self.pending = ""
            return text[:index]
        hold = self._partial(text)
        self.pending = text[len(text) - hold :] if hold else ""
        return text[: len(text) - hold]

    def flush(self) -> str:
        """At the end of the sample: what was held back was no stop after all."""
        text, self.pending = self.pending, ""
        return text

    def _partial(self, text: str) -> int:
        """Length of the longest tail of ``text`` that begins some stop text."""
        longest = min(len(text), max((len(s) - 1 for s in self.stops), default=0))
        for size in range(longest, 0, -1):
            tail = text[-size:]
            if any(s.startswith(tail) for s in self.stops):
                return size
        return 0
