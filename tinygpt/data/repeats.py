"""A corpus for watching an induction head form: random strings that repeat later in the line.

Each line of the file is one record::

    <string S> <filler F> <string S again> "\\n"

``S`` is ``length`` characters drawn uniformly (with replacement) from ``alphabet``, ``F`` is
``gap`` more such characters, and the lengths and gaps vary from line to line (uniform over
their ranges). Nothing in the file can be predicted from the characters before it except the
second copy of ``S``, and only by looking back at the first copy: a model gets below
``ln(len(alphabet))`` nats per character on the repeats only through in-context copying, which
is what an induction head (a previous-token head in one layer, a head in the next that attends
to the token after the earlier occurrence of the current one) does. The gaps must vary, or a
single head that looks a fixed distance back does the job without any induction circuit.

The file is plain text and ``tinygpt train`` reads it like any other (``--tokenizer char``); the
same seed gives the same file.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from pathlib import Path

from tinygpt.config.fields import documented
from tinygpt.errors import Opt, UsageError
from tinygpt.io.console import printable
from tinygpt.io.files import TooLarge, atomic_write_bytes, describe_os_error, read_bounded

REPEATS_FILE = "repeats.txt"  # what `tinygpt data repeats` writes into --dir
MAX_RECORD = 10_000  # one line's characters: well above any block size tinygpt trains with
# The whole file's characters at most (the longest records): the text is built in memory, and
# --lines 99999999999999999999999 must be refused at once, not fill the disk.
MAX_CHARS = 1 << 30


@dataclass(frozen=True)
class RepeatsConfig:
    """What ``tinygpt data repeats`` writes (defaults: the corpus of docs/induction.md)."""

    alphabet: str = documented(
        string.ascii_lowercase, "repeats: the characters strings are drawn from."
    )
    min_length: int = documented(6, "repeats: shortest string.")
    max_length: int = documented(16, "repeats: longest string.")
    min_gap: int = documented(0, "repeats: fewest characters between the copies.")
    max_gap: int = documented(24, "repeats: most characters between the copies.")
    lines: int = documented(20_000, "repeats: records (lines) to write.")
    seed: int = documented(0, "repeats: random seed.")

    def validate(self) -> RepeatsConfig:
        if len(set(self.alphabet)) < 2:
            raise UsageError(Opt("alphabet"), " needs at least two different characters")
        if "\n" in self.alphabet or "\r" in self.alphabet:
            raise UsageError(Opt("alphabet"), " must not hold a line break (it ends each record)")
        if not 1 <= self.min_length <= self.max_length:
            raise UsageError(
                "need 1 <= ",
                Opt("min_length"),
                " <= ",
                Opt("max_length"),
                f", got {self.min_length}..{self.max_length}",
            )
        if not 0 <= self.min_gap <= self.max_gap:
            raise UsageError(
                "need 0 <= ",
                Opt("min_gap"),
                " <= ",
                Opt("max_gap"),
                f", got {self.min_gap}..{self.max_gap}",
            )
        if 2 * self.max_length + self.max_gap + 1 > MAX_RECORD:
            raise UsageError(f"a record would be longer than {MAX_RECORD} characters")
        if self.lines < 1:
            raise UsageError(Opt("lines"), f" must be at least 1, got {self.lines}")
        record = 2 * self.max_length + self.max_gap + 1
        if self.lines * record > MAX_CHARS:
            raise UsageError(
                Opt("lines", self.lines),
                f" could write {self.lines * record:,} characters, more than the {MAX_CHARS:,} "
                "allowed; use ",
                Opt("lines", MAX_CHARS // record),
                " or fewer",
            )
        try:
            self.alphabet.encode("utf-8")
        except UnicodeEncodeError:  # bytes of the command line that are no text (surrogates)
            raise UsageError(
                Opt("alphabet", printable(ascii(self.alphabet))),
                " is not valid text in this terminal's encoding",
            ) from None
        return self


def records(cfg: RepeatsConfig) -> list[str]:
    """The lines of the corpus, each ``S F S`` without its newline."""
    cfg.validate()
    rng = random.Random(cfg.seed)
    letters = sorted(set(cfg.alphabet))
    out = []
    for _ in range(cfg.lines):
        s = "".join(rng.choices(letters, k=rng.randint(cfg.min_length, cfg.max_length)))
        f = "".join(rng.choices(letters, k=rng.randint(cfg.min_gap, cfg.max_gap)))
        out.append(s + f + s)
    return out


def write_repeats(path: str | Path, cfg: RepeatsConfig) -> Path:
    """Write the corpus to ``path`` (atomically) and return it.

    A file already there is kept when it holds exactly this corpus, and never replaced
    otherwise (as ``data shakespeare`` never replaces a file): it may be the user's own.
    """
    target = Path(path)
    data = "".join(line + "\n" for line in records(cfg)).encode("utf-8")
    if target.parent.exists() and not target.parent.is_dir():
        raise UsageError(f"--dir {target.parent} is not a directory")
    try:
        if target.exists() or target.is_symlink():
            if read_bounded(target, len(data)) == data:
                return target
            raise UsageError(
                f"{target} exists and holds something else; delete it, or write to another --dir"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, data)
    except TooLarge:
        raise UsageError(
            f"{target} exists and holds something else; delete it, or write to another --dir"
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {describe_os_error(exc)}") from None
    return target
