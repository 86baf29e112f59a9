"""When two articles are the same story: the same page, or near-duplicate titles.

Pages
    The canonical form of a URL (``sanitize.canonical_url``) is the one normalization;
    ``page_key`` drops its scheme, so the http and https links of a page are one page.

Titles
    A title is compared by its key: its plain text, casefolded, cut to
    ``TITLE_COMPARE_CHARS``. Two keys are near-duplicates when they are equal and not
    empty, or when both have at least ``MIN_FUZZY_TITLE`` characters and
    ``difflib.SequenceMatcher(None, other, key).ratio()`` reaches the threshold (``key``
    is the title being checked, ``other`` one already kept). ``sources.merge`` and
    ``selection`` both use this rule, with the publication's ``title_similarity``.
"""

from __future__ import annotations

import bisect
from difflib import SequenceMatcher

from newsletter.sanitize import absolute_url, canonical_url, plain_text

MIN_FUZZY_TITLE = 8  # shorter titles are the same only when equal: a few letters match too easily
TITLE_COMPARE_CHARS = 300  # difflib's work grows with the square of the length


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


class TitleMatcher:
    """Tell whether title keys are near-duplicates of one key (its analysis done once)."""

    def __init__(self, key: str, threshold: float) -> None:
        self.key = key
        self.threshold = threshold
        self.fuzzy = len(key) >= MIN_FUZZY_TITLE and threshold < 1.0
        self._matcher = SequenceMatcher(None, b=key, autojunk=False)

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
