"""Checks of dark mode: the HTML has dark rules, and they darken every light block.

The check is static: it reads the rules inside ``@media (prefers-color-scheme: dark)``
and matches their selectors (tags, classes, descendant and child combinators) against
each element that carries a light background of its own. What it cannot read (pseudo-
classes, attribute selectors, sibling combinators) it leaves out, so an unusual selector
can only make it quieter, never louder.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from newsletter.preflight.findings import Report, listing
from newsletter.preflight.scan import Box, HtmlFacts, Step, hex_color, parse_color
from newsletter.rendering.palette import DARK_SURFACE, is_light

_DARK_MEDIA = re.compile(r"@media[^{]*prefers-color-scheme\s*:\s*dark[^{]*\{", re.IGNORECASE)
_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_UNREAD = re.compile(r"\[[^\]]*\]|::?[\w-]+(?:\([^)]*\))?")  # attributes, pseudo-classes
_COMBINATOR = re.compile(r"\s*([>+~])\s*|\s+")
_COMPOUND = re.compile(r"\A(\*|[A-Za-z][\w-]*)?((?:[.#][\w-]+)*)\Z")
_BACKGROUND = re.compile(r"(?:^|;)\s*background(?:-color)?\s*:\s*([^;]*)", re.IGNORECASE)


@dataclass(frozen=True)
class _Compound:
    """One step of a selector: a tag (or any) and the classes it needs."""

    tag: str
    classes: frozenset[str]

    def matches(self, step: Step) -> bool:
        """Tell whether an element (tag, classes) fits this step."""
        tag, classes = step
        return self.tag in ("", "*", tag) and self.classes <= classes


# A selector read right to left: the element's own step first, then each step to its
# left with the combinator that joins it to the step on its right (">" or " ").
_Selector = tuple[tuple[_Compound, str], ...]


def _compound(text: str) -> _Compound | None:
    match = _COMPOUND.match(text)
    if match is None or not text:
        return None
    names = re.findall(r"([.#])([\w-]+)", match.group(2))
    return _Compound(
        (match.group(1) or "").lower(), frozenset(n for kind, n in names if kind == ".")
    )


def parse_selector(text: str) -> _Selector | None:
    """Read one selector, or None when nothing usable is left of it."""
    text = _UNREAD.sub("", text).strip()
    parts = _COMBINATOR.split(text)
    tokens = [p for p in parts if p is not None and p.strip() != ""] if text else []
    words: list[str] = []
    joins: list[str] = []
    for token in tokens:
        if token in (">", "+", "~"):
            joins.append(token)
        else:
            if len(joins) < len(words):
                joins.append(" ")
            words.append(token)
    if not words or len(joins) != len(words) - 1:
        return None
    for sibling in ("+", "~"):  # keep only what follows a sibling combinator
        if sibling in joins:
            start = len(joins) - joins[::-1].index(sibling)
            words, joins = words[start:], joins[start:]
    compounds = [_compound(word) for word in words]
    if any(c is None for c in compounds):
        return None
    steps = list(zip(compounds, [*joins, ""], strict=True))
    return tuple((c, join) for c, join in reversed(steps) if c is not None)


def matches(selector: _Selector, path: Sequence[Step]) -> bool:
    """Tell whether ``selector`` picks the last element of ``path``."""
    (own, _), rest = selector[0], selector[1:]
    return bool(path) and own.matches(path[-1]) and _above(rest, path[:-1])


def _above(selector: _Selector, ancestors: Sequence[Step]) -> bool:
    if not selector:
        return True
    compound, join = selector[0]
    if join == ">":
        return (
            bool(ancestors)
            and compound.matches(ancestors[-1])
            and _above(selector[1:], ancestors[:-1])
        )
    return any(
        compound.matches(ancestors[i]) and _above(selector[1:], ancestors[:i])
        for i in range(len(ancestors) - 1, -1, -1)
    )


def dark_backgrounds(style_blocks: Iterable[str]) -> list[_Selector]:
    """The selectors inside the dark media blocks that give their elements a dark background."""
    found: list[_Selector] = []
    for block in style_blocks:
        css = _COMMENT.sub("", block)
        for start in _DARK_MEDIA.finditer(css):
            for selectors, declarations in _RULE.findall(_inner(css, start.end())):
                values = _BACKGROUND.findall(declarations)
                colours = [parse_color(v) for v in values]
                if not values or any(c is not None and is_light(hex_color(c)) for c in colours):
                    continue
                parsed = (parse_selector(s) for s in selectors.split(","))
                found.extend(s for s in parsed if s is not None)
    return found


def _inner(css: str, start: int) -> str:
    """The text of the block that opens just before ``start``, up to its closing brace."""
    depth = 1
    for index in range(start, len(css)):
        depth += {"{": 1, "}": -1}.get(css[index], 0)
        if depth == 0:
            return css[start:index]
    return css[start:]


def _describe(path: Sequence[Step]) -> str:
    """Name an element by its classes, or by its tag inside the nearest element with a class."""
    tag, classes = path[-1]
    if classes:
        return f'<{tag} class="{" ".join(sorted(classes))}">'
    outer = next(((t, c) for t, c in reversed(path[:-1]) if c), None)
    if outer is None:
        return f"<{tag}>"
    return f'<{tag}> in <{outer[0]} class="{" ".join(sorted(outer[1]))}">'


def light_blocks(facts: HtmlFacts) -> tuple[list[Box], list[Box]]:
    """Split the light blocks into those no dark rule darkens and those one does."""
    selectors = dark_backgrounds(facts.style_blocks)
    left: list[Box] = []
    darkened: list[Box] = []
    for box in facts.boxes:
        if box.holds_blocks and is_light(hex_color(box.color)):
            covered = any(matches(s, box.path) for s in selectors)
            (darkened if covered else left).append(box)
    return left, darkened


def check_dark_mode(facts: HtmlFacts, out: Report) -> None:
    """Check that the HTML has dark rules and that they leave no block light."""
    if not facts.has_dark_mode:
        out.warning(
            "dark-mode-missing",
            "no @media (prefers-color-scheme: dark) rules in the HTML; include the theme's "
            "dark.css",
        )
        return
    left, darkened = light_blocks(facts)
    if not left:
        return
    shown = Counter(f"{_describe(b.path)} {hex_color(b.color)}" for b in left)
    named = [f"{name} ×{n}" if n > 1 else name for name, n in shown.items()]
    own = next((sorted(b.path[-1][1])[0] for b in left if b.path[-1][1]), "my-block")
    usual = Counter(c for b in darkened for c in b.path[-1][1]).most_common(1)
    hint = ""
    if usual:
        hint = (
            f"give each the class the dark rules darken (.{usual[0][0]}; in MJML a "
            "section's own css-class replaces the one from <mj-attributes>, so list both: "
            f'css-class="{usual[0][0]} {own}"), or '
        )
    out.warning(
        "dark-mode-light-block",
        f"{len(left)} block(s) stay light in dark mode, as no rule inside @media "
        f"(prefers-color-scheme: dark) gives them a dark background: {listing(named)}; "
        f"{hint}add a rule for them to the theme's dark.css, e.g. .{own}, .{own} > table "
        f"{{ background: {DARK_SURFACE} !important; }}",
    )
