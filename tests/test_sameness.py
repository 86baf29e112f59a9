"""When two articles are the same story: page keys and the near-duplicate title rule."""

from __future__ import annotations

from difflib import SequenceMatcher

from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.sameness import (
    MIN_FUZZY_TITLE,
    TITLE_COMPARE_CHARS,
    TitleIndex,
    TitleMatcher,
    title_key,
)


def same(a: str, b: str, threshold: float = 0.85) -> bool:
    """Tell whether title ``b`` is a near-duplicate of the kept title ``a``."""
    return TitleMatcher(title_key(b), threshold).matches(title_key(a))


def test_title_key_is_casefolded_plain_text() -> None:
    assert (
        title_key("  <b>Floods</b>   hit\tthe  COAST &amp; hills ")
        == "floods hit the coast & hills"
    )
    assert title_key("Straße") == "strasse"
    assert len(title_key("x" * 1000)) == TITLE_COMPARE_CHARS


def test_equal_titles_are_the_same_even_when_short_or_strict() -> None:
    assert same("Live", "LIVE")
    assert same("Budget passes", "budget  passes", threshold=1.0)


def test_near_identical_titles_are_the_same() -> None:
    assert same("Budget passes after late-night vote", "BUDGET PASSES AFTER LATE NIGHT VOTE!")
    assert not same("Budget passes after late-night vote", "Budget talks collapse before the vote")


def test_threshold_is_the_difflib_ratio() -> None:
    a, b = "parliament passes the budget bill", "parliament passes the budget bills"
    ratio = SequenceMatcher(None, a, b, autojunk=False).ratio()
    assert same(a, b, threshold=ratio)
    assert not same(a, b, threshold=1.0)


def test_short_and_empty_titles_match_only_when_equal_and_not_empty() -> None:
    assert len("Live!") < MIN_FUZZY_TITLE
    assert not same("Live", "Live!", threshold=0.5)
    assert not same("", "")
    assert not same("", "Budget passes")


def test_index_finds_a_near_duplicate_among_kept_titles() -> None:
    index = TitleIndex(0.85)
    for title in ("Chess champion retires", "Budget passes after late-night vote", "Rain"):
        index.add(title_key(title))
    assert index.similar(title_key("Budget passes after late night vote!")) == (
        "budget passes after late-night vote"
    )
    assert index.similar(title_key("Rain!")) is None
    assert index.similar(title_key("Ferry timetable changes")) is None


WORDS = ["budget", "passes", "vote", "floods", "coast", "hit", "the", "a", "bill", "bills", "!"]
titles = st.lists(st.sampled_from(WORDS), min_size=0, max_size=7).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(
    kept=st.lists(titles, max_size=12),
    new=titles,
    threshold=st.floats(0.5, 1.0),
)
def test_index_agrees_with_comparing_every_kept_title(
    kept: list[str], new: str, threshold: float
) -> None:
    index = TitleIndex(threshold)
    keys = sorted({title_key(t) for t in kept})
    for key in keys:
        index.add(key)
    matcher = TitleMatcher(title_key(new), threshold)
    matching = [k for k in keys if k != matcher.key and matcher.matches(k)]
    assert index.similar(title_key(new)) == min(matching, key=lambda k: (len(k), k), default=None)
