"""Cutting a long summary: at a word boundary, with an ellipsis, still valid sanitized HTML."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.rendering.excerpt import ELLIPSIS, MARKUP_PER_CHAR, cut_summary
from newsletter.sanitize import clean_html, plain_text

GATES = "<p>The council of <b>Marivel</b> voted 31–6 on Wednesday to build &amp; run gates"
SUMMARY = clean_html(
    "<p>The council of <b>Marivel</b> voted 31–6 on Wednesday to build &amp; run gates.</p>"
    '<p>Engineers say <a href="https://x.example/a">the barrier</a>, due in 2030, will hold.</p>'
)


@pytest.mark.parametrize(
    ("limit", "cut"),
    [
        (20, "<p>The council of…</p>"),
        (28, "<p>The council of <b>Marivel…</b></p>"),
        (60, "<p>The council of <b>Marivel</b> voted 31–6 on Wednesday to build &amp;…</p>"),
        (
            76,
            f"{GATES}…</p>",
        ),
        (
            101,
            f"{GATES}.</p>"
            '<p>Engineers say <a href="https://x.example/a" rel="noopener">the barrier</a>,'
            " due…</p>",
        ),
    ],
)
def test_a_long_summary_is_cut_at_a_word_and_its_tags_closed(limit: int, cut: str) -> None:
    assert cut_summary(SUMMARY, limit) == cut
    assert len(plain_text(cut)) <= limit


def test_a_summary_within_the_limit_is_left_alone() -> None:
    assert cut_summary(SUMMARY, len(plain_text(SUMMARY))) == SUMMARY
    assert cut_summary("", 100) == ""


def test_one_long_word_is_cut_inside_it() -> None:
    assert cut_summary("<p>" + "x" * 50 + "</p>", 11) == "<p>" + "x" * 10 + "…</p>"


def test_the_ellipsis_never_sits_in_an_element_left_empty() -> None:
    link = '<a href="https://x.example/?a=1&amp;b=2" rel="noopener">'
    fragment = f"{link}&lt;&lt;&lt;&lt;<p></p></a>{link}</a>"  # over the markup budget
    cut = cut_summary(fragment, 5)
    assert cut == f"{link}&lt;&lt;&lt;&lt;…</a>"
    assert plain_text(cut) == "<<<<…"


def test_markup_without_much_text_is_cut_too() -> None:
    empty = "<p></p>" * 5000 + "<p>text</p>"
    cut = cut_summary(clean_html(empty), 100)
    assert len(cut) <= 100 * MARKUP_PER_CHAR
    linked = clean_html(" ".join(f'<a href="https://x.example/{n}">w</a>' for n in range(3000)))
    cut = cut_summary(linked, 100)
    assert len(cut) <= 100 * MARKUP_PER_CHAR + 20
    assert cut.endswith(f"{ELLIPSIS}")


FRAGMENTS = st.lists(
    st.one_of(
        st.text(alphabet="ab cd&<>é.,", min_size=1, max_size=30),
        st.sampled_from(["<p>", "</p>", "<b>", "</b>", "<br>", "<ul><li>", "</li></ul>", "<em>"]),
        st.just('<a href="https://x.example/?a=1&b=2">'),
        st.just("</a>"),
    ),
    max_size=40,
).map(lambda parts: clean_html("".join(parts)))


@settings(max_examples=500, deadline=None)
@given(fragment=FRAGMENTS, limit=st.integers(min_value=1, max_value=120))
def test_any_cut_is_short_valid_and_a_prefix(fragment: str, limit: int) -> None:
    cut = cut_summary(fragment, limit)
    assert clean_html(cut) == cut  # valid sanitized HTML: cleaning it again changes nothing
    text, whole = plain_text(cut), plain_text(fragment)
    if cut == fragment:
        assert len(whole) <= limit
        return
    assert len(text) <= limit
    assert text.endswith(ELLIPSIS)
    kept = text.removesuffix(ELLIPSIS).rstrip()
    assert whole.startswith(kept.rstrip(" ,;:.-–—"))
