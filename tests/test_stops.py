"""Stop texts (tinygpt/sampling/stops.py): the first occurrence, across token boundaries."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygpt.data.tokenizer import build_tokenizer
from tinygpt.sampling import StopMatcher, StreamDecoder


def run(pieces, stops):
    matcher = StopMatcher(stops)
    shown = "".join(matcher.feed(p) for p in pieces)
    if matcher.found is None:
        shown += matcher.flush()
    return shown, matcher.found


def test_stop_split_over_pieces_is_found_and_not_shown():
    assert run(["ab", "c\n", "\nde"], ["\n\n"]) == ("abc", "\n\n")


def test_text_that_only_began_a_stop_is_released():
    matcher = StopMatcher(["END"])
    assert matcher.feed("xE") == "x"  # "E" may begin END: held back
    assert matcher.feed("N") == ""
    assert matcher.feed("d") == "ENd"  # it did not
    assert matcher.found is None


def test_earliest_stop_wins_and_nothing_after_it():
    matcher = StopMatcher(["zz", "b"])
    assert matcher.feed("azzb") == "a" and matcher.found == "zz"
    assert matcher.feed("more") == ""


@given(
    st.text("abc", max_size=30),
    st.lists(st.integers(1, 5), max_size=12),
    st.text("abc", min_size=1, max_size=3),
)
def test_any_split_gives_the_text_before_the_first_occurrence(text, cuts, stop):
    pieces, i = [], 0
    for cut in cuts:
        pieces.append(text[i : i + cut])
        i += cut
    pieces.append(text[i:])
    shown, found = run(pieces, [stop])
    index = text.find(stop)
    assert shown == (text if index < 0 else text[:index])
    assert found == (None if index < 0 else stop)


def test_stop_split_over_two_bpe_tokens(gpt2_encoding):
    tok = build_tokenizer("gpt2")
    text = "ROMEO: O, she doth teach the torches to burn bright!"
    ids = tok.encode(text)
    pieces = [tok.decode([i]) for i in ids]
    # A stop made of the end of one token and the start of the next.
    k = next(k for k in range(len(pieces) - 1) if len(pieces[k]) > 1 and len(pieces[k + 1]) > 1)
    stop = pieces[k][-2:] + pieces[k + 1][:2]
    assert not any(stop in p for p in pieces)
    decoder = StreamDecoder(tok)
    shown, found = run([decoder.feed(i) for i in ids], [stop])
    assert found == stop and shown == text[: text.find(stop)]


@pytest.mark.parametrize("stops", [[], ["never"]])
def test_without_a_match_everything_is_shown(stops):
    assert run(["to be", " or not"], stops) == ("to be or not", None)
