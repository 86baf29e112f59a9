"""When two articles are the same story: the same page, or near-duplicate titles.

Pages
    The canonical form of a URL (``sanitize.canonical_url``) is the one normalization;
    ``page_key`` drops its scheme, so the http and https links of a page are one page.

Titles
    A title is compared by its key: its plain text, casefolded, cut to
    ``TITLE_COMPARE_CHARS``. Two keys are near-duplicates when they are equal and not
    empty, or when both hold:

    1. They look alike: both have at least ``MIN_FUZZY_TITLE`` characters and
       ``difflib.SequenceMatcher(None, other, key).ratio()`` reaches the threshold
       (``key`` is the title being checked, ``other`` one already kept).
    2. They say the same: their content words are the same (``content_words``).

    The second test is there because headlines of different stories often share most
    of their letters: "Council approves harbour budget" and "Council rejects harbour
    budget", "3 killed in crash" and "4 killed in crash", "Arsenal beat Chelsea" and
    "Arsenal beat Everton". What tells them apart is one word that carries meaning, a
    verb, a number, a name, a place; no threshold on letters can see that. So the
    words that differ may only be function words (articles, auxiliaries, a few
    prepositions), inflections ("resigns"/"resigned", "plan"/"plans"), case,
    punctuation and hyphens ("late-night"/"late night", "U.N."/"UN"). A content word
    that one title has and the other lacks, swapped ("approves"/"rejects") or added
    ("budget"/"budget cuts"), makes two stories. Synonyms ("passes"/"approves") are
    therefore two stories too: a missed merge shows two similar headlines, a wrong
    merge silently drops a story, and only the first can be seen and forgiven. The
    first test still matters: it keeps apart titles with the same words in another
    order ("Man bites dog", "Dog bites man").

    ``sources.merge`` and ``selection`` both use this rule, with the publication's
    ``title_similarity``.
"""

from __future__ import annotations

import bisect
import re
from difflib import SequenceMatcher
from functools import lru_cache

from newsletter.sanitize import absolute_url, canonical_url, plain_text

MIN_FUZZY_TITLE = 8  # shorter titles are the same only when equal: a few letters match too easily
TITLE_COMPARE_CHARS = 300  # difflib's work grows with the square of the length

# English words that carry no news of their own. No two of them may be opposites (so
# not "from" beside "to", "or" beside "and", "his" beside "her"): a swap must show.
# fmt: off
FUNCTION_WORDS = frozenset((
    "a", "an", "the", "of", "to", "in", "on", "at", "for", "by", "with", "as", "and",
    "is", "are", "was", "were", "be", "been", "being", "has", "have", "had", "it", "its", "that",
))
# fmt: on
_ACRONYM_DOT = re.compile(r"(?<=\b[^\W\d_])\.(?=[^\W\d_]\b)")  # U.N. → UN
_TOKEN = re.compile(r"\d+(?:[.,:/\-–]\d+)*|[^\W\d_]+(?:['’][^\W\d_]+)*")
_POSSESSIVE = ("'s", "’s")
_KEEP_DOUBLE = frozenset("lsz")  # "kill", "pass", "buzz" keep their double letter


def page_key(url: str) -> str | None:
    """Reduce an http(s) URL to what identifies the page, or ``None`` if it is not one.

    The canonical URL without its scheme, so the http and https addresses of one page
    are the same page.
    """
    if absolute_url(url) is None:
        return None
    return canonical_url(url).partition("://")[2]


def title_key(title: str) -> str:
    """Reduce a title to the form that near-duplicate checks compare."""
    return plain_text(title).casefold()[:TITLE_COMPARE_CHARS]


@lru_cache(maxsize=4096)
def content_words(key: str) -> frozenset[str]:
    """Return the meaning-bearing words of a title key, each reduced to its stem.

    Numbers stay whole (``2-1``, ``4.2``); possessives and function words go; the
    rest lose their English inflection (``stem``).
    """
    words: set[str] = set()
    for token in _TOKEN.findall(_ACRONYM_DOT.sub("", key)):
        if token[0].isdigit():
            words.add(token)
            continue
        if token.endswith(_POSSESSIVE):
            token = token[:-2]
        if token not in FUNCTION_WORDS:
            words.add(stem(token))
    return frozenset(words)


def stem(word: str) -> str:
    """Strip one English inflection: ``approves``, ``approved``, ``approving`` → ``approv``.

    Deliberately light: irregular forms ("won"/"wins") stay apart, which only keeps two
    titles apart, never merges two stories.
    """
    for suffix, replacement in (("ies", "y"), ("ied", "y"), ("ing", ""), ("ed", ""), ("es", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + replacement
            break
    else:
        if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
            word = word[:-1]
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in _KEEP_DOUBLE:
        word = word[:-1]  # "stopped" → "stopp" → "stop"
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]  # "approve" → "approv", like "approves" and "approved"
    return word


class TitleMatcher:
    """Tell whether title keys are near-duplicates of one key (its analysis done once)."""

    def __init__(self, key: str, threshold: float) -> None:
        self.key = key
        self.threshold = threshold
        self.fuzzy = len(key) >= MIN_FUZZY_TITLE and threshold < 1.0
        self._matcher = SequenceMatcher(None, b=key, autojunk=False)
        self._words = content_words(key) if self.fuzzy else frozenset()

    def matches(self, other: str) -> bool:
        """Tell whether ``other`` is a near-duplicate of this matcher's key."""
        if not other or not self.key:
            return False
        if other == self.key:
            return True
        if not self.fuzzy or len(other) < MIN_FUZZY_TITLE:
            return False
        matcher, threshold = self._matcher, self.threshold
        matcher.set_seq1(other)
        return (
            matcher.real_quick_ratio() >= threshold
            and matcher.quick_ratio() >= threshold
            and matcher.ratio() >= threshold
            and content_words(other) == self._words
        )

    def length_range(self) -> tuple[float, float]:
        """Return the lowest and highest length a different key may have and still match.

        The ratio of two keys is at most twice the shorter length over the sum of both.
        """
        size, threshold = len(self.key), self.threshold
        return size * threshold / (2 - threshold), size * (2 - threshold) / threshold


class TitleIndex:
    """Title keys kept so far, searched by length for a near-duplicate of a new one."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._by_length: list[tuple[int, str]] = []

    def add(self, key: str) -> None:
        """Remember a kept key (one short enough to match only when equal is left out)."""
        if len(key) >= MIN_FUZZY_TITLE:
            bisect.insort(self._by_length, (len(key), key))

    def similar(self, key: str) -> str | None:
        """Return the shortest kept key, other than ``key`` itself, that it nearly duplicates.

        An equal key is left to the caller, who looks it up directly; ``None`` if none.
        """
        matcher = TitleMatcher(key, self.threshold)
        if not matcher.fuzzy:
            return None
        low, high = matcher.length_range()
        start = bisect.bisect_left(self._by_length, (int(low), ""))
        for length, other in self._by_length[start:]:
            if length > high:
                break
            if other != key and matcher.matches(other):
                return other
        return None
