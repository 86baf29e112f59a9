"""When two articles are the same story: page keys and the near-duplicate title rule."""

from __future__ import annotations

from difflib import SequenceMatcher

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.sameness import (
    MIN_FUZZY_TITLE,
    TITLE_COMPARE_CHARS,
    TitleIndex,
    TitleMatcher,
    content_words,
    stem,
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


# Real-world-style headline pairs: the same story worded by two outlets, and two stories
# that share most of their words. Every pair of different stories but the last looks
# alike enough (a letter ratio of 0.85 or more) that letters alone would merge them.
SAME_STORY = [
    ("Council approves harbour budget", "Council approves the harbour budget"),
    ("Fed raises interest rates by a quarter point", "Fed raises interest rates by quarter point"),
    ("Apple unveils new iPhone at annual event", "Apple unveils its new iPhone at annual event"),
    (
        "Magnitude 7.1 earthquake strikes off Japan's coast",
        "Magnitude 7.1 earthquake strikes off Japan coast",
    ),
    (
        "Prime minister resigned after losing confidence vote",
        "Prime Minister resigns after losing confidence vote",
    ),
    (
        "Wildfires force thousands to evacuate in California",
        "Wildfire forces thousands to evacuate in California",
    ),
    ("‘We will rebuild,’ says mayor after floods", "'We will rebuild', says mayor after floods"),
    (
        "Scientists discover new species of deep-sea fish",
        "Scientists discovered a new species of deep sea fish",
    ),
    ("Strike shuts down London Underground", "Strike shuts down the London Underground"),
    (
        "Government announces plan to cut energy bills",
        "Government announces plans to cut energy bills",
    ),
    ("Budget passes after late-night vote", "BUDGET PASSES AFTER LATE NIGHT VOTE!"),
    ("Storm Ciara batters northern England", "Storm Ciara batters Northern England."),
    ("UN warns of famine in Sudan", "U.N. warns of famine in Sudan"),
    (
        "Police arrest suspect in Bristol stabbing",
        "Police arrest a suspect in the Bristol stabbing",
    ),
]
DIFFERENT_STORIES = [
    ("Council approves harbour budget", "Council rejects harbour budget"),  # opposite verbs
    ("Bank of England raises interest rates", "Bank of England cuts interest rates"),
    ("Shares rise after quarterly results", "Shares fall after quarterly results"),
    ("Senate passes bill on border security", "Senate blocks bill on border security"),
    ("Mayor wins re-election in Lisbon", "Mayor loses re-election in Lisbon"),
    ("Airport reopens after heavy snow", "Airport closes after heavy snow"),
    ("Man arrested over Bristol stabbing", "Man charged over Bristol stabbing"),
    ("Apple shares hit record high", "Apple shares hit record low"),
    ("Union votes for strike at Ford plant", "Union votes against strike at Ford plant"),
    ("Minister backs plan for new runway", "Minister backs plan without new runway"),
    ("Shares fall before quarterly results", "Shares fall after quarterly results"),
    (
        "Five killed in motorway crash near Leeds",
        "Six killed in motorway crash near Leeds",
    ),  # numbers
    ("3 killed in motorway crash near Leeds", "4 killed in motorway crash near Leeds"),
    ("Unemployment rises to 4.2%", "Unemployment rises to 4.4%"),
    ("Flooding closes 40 schools in Wales", "Flooding closes 14 schools in Wales"),
    ("Leeds United 2-1 Derby County", "Leeds United 1-2 Derby County"),  # the score turned round
    ("Arsenal beat Chelsea in FA Cup semi-final", "Arsenal beat Everton in FA Cup semi-final"),
    ("Storm Ciara hits northern England", "Storm Dennis hits northern England"),  # names
    ("Floods close schools in Devon", "Floods close schools in Kent"),  # places
    ("President to visit China next week", "President to visit India next week"),
    ("Rain expected across the north on Monday", "Rain expected across the north on Tuesday"),
    ("Council approves harbour budget", "Council approves harbour budget cuts"),  # a word added
    ("Man bites dog in Lisbon park", "Dog bites man in Lisbon park"),  # same words, other order
]


@pytest.mark.parametrize(("first", "second"), SAME_STORY)
def test_the_same_story_worded_by_two_outlets_is_one(first: str, second: str) -> None:
    assert same(first, second)
    assert same(second, first)


@pytest.mark.parametrize(("first", "second"), DIFFERENT_STORIES)
def test_different_stories_sharing_most_words_stay_two(first: str, second: str) -> None:
    assert not same(first, second)
    assert not same(second, first)


def test_the_table_needs_more_than_letters() -> None:
    alike = [
        pair
        for pair in DIFFERENT_STORIES
        if SequenceMatcher(None, title_key(pair[0]), title_key(pair[1]), autojunk=False).ratio()
        >= 0.85
    ]
    assert alike == DIFFERENT_STORIES[:-1]
    assert len(SAME_STORY) + len(DIFFERENT_STORIES) >= 20


@pytest.mark.parametrize(
    ("title", "words"),
    [
        ("Council approves the harbour budget", {"council", "approv", "harbour", "budget"}),
        ("U.N. warns of famine", {"un", "warn", "famin"}),
        ("Japan's coast: 7.1 quake, 2-1 win", {"japan", "coast", "7.1", "quak", "2-1", "win"}),
        ("Police stopped cutting costs", {"polic", "stop", "cut", "cost"}),
        ("It's what they won't say", {"what", "they", "won't", "say"}),
    ],
)
def test_content_words_are_stems_without_function_words(title: str, words: set[str]) -> None:
    assert content_words(title_key(title)) == words


def test_stem_strips_one_english_inflection() -> None:
    assert {stem(w) for w in ("approve", "approves", "approved", "approving")} == {"approv"}
    assert {stem(w) for w in ("pass", "passes", "passed")} == {"pass"}
    assert {stem(w) for w in ("study", "studies", "studied")} == {"study"}
    assert stem("kills") == stem("killed") == "kill"
    assert stem("bus") == "bus"


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
