"""A corpus for watching an induction head form: random strings that repeat later in the line.

Each line is ``S F S``: a string ``S`` and a filler ``F`` of random characters from ``alphabet``,
their lengths varying by line. Only the second ``S`` can be predicted, and only by copying the
first: what an induction head does. The gaps vary, or a head looking a fixed distance back would
do without one. Plain text (``--tokenizer char``); the same seed gives the same file.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from pathlib import Path

from tinygpt.config.fields import check_seed, documented
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
        for floor, low, high in ((1, "min_length", "max_length"), (0, "min_gap", "max_gap")):
            lo, hi = getattr(self, low), getattr(self, high)
            if not floor <= lo <= hi:
                raise UsageError(
                    f"need {floor} <= ", Opt(low), " <= ", Opt(high), f", got {lo}..{hi}"
                )
        record = 2 * self.max_length + self.max_gap + 1
        if record > MAX_RECORD:
            raise UsageError(
                "a record would be longer than ",
                f"{MAX_RECORD:,} characters (2 x ",
                Opt("max_length"),
                " + ",
                Opt("max_gap"),
                f" + 1 = {record:,})",
            )
        check_seed(self.seed)  # random.Random takes -1 as 1: two seeds, one file
        if self.lines < 1:
            raise UsageError(Opt("lines"), f" must be at least 1, got {self.lines}")
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
    """Write the corpus to ``path`` (atomically) and return it. A file already there is kept
    when it holds exactly this corpus, and never replaced (it may be the user's own)."""
    target = Path(path)
    data = "".join(line + "\n" for line in records(cfg)).encode("utf-8")
    taken = f"{target} exists and holds something else; delete it, or write to another --dir"
    if target.parent.exists() and not target.parent.is_dir():
        raise UsageError(f"--dir {target.parent} is not a directory")
    try:
        if target.exists() or target.is_symlink():
            if read_bounded(target, len(data)) == data:
                return target
            raise UsageError(taken)
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, data)
    except TooLarge:
        raise UsageError(taken) from None
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {describe_os_error(exc)}") from None
    return target
