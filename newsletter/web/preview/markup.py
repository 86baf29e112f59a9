"""The small pieces of the preview page's HTML: escaping, a card, a problem box.

Every value shown (subjects, headers, names, errors, file contents) goes through ``esc``.
"""

from __future__ import annotations

import html

from newsletter.web.preview.problems import Problem


def esc(value: object) -> str:
    """Escape any value for HTML text and double-quoted attributes."""
    return html.escape(str(value), quote=True)


def card(ident: str, title: str, body: str) -> str:
    """A titled section of the side column."""
    return (
        f'<section class="card" aria-labelledby="h-{ident}">'
        f'<h2 id="h-{ident}">{esc(title)}</h2>{body}</section>'
    )


def problem_box(found: Problem, *, role: str = "alert") -> str:
    """A problem: its title, the file and the lines around the one named, the message."""
    where = ""
    loc = found.location
    if loc is not None:
        line = f", line {loc.line}" if loc.line else ""
        where = f'<p class="where">In <code>{esc(loc.path)}</code>{line}</p>'
        if loc.snippet:
            rows = "".join(
                f'<span class="{"hit" if n == loc.line else "ctx"}">'
                f'<span class="ln">{n}</span>{esc(text)}\n</span>'
                for n, text in loc.snippet
            )
            where += (
                f'<pre class="snippet" aria-label="The lines around line {loc.line}">{rows}</pre>'
            )
    hint = (
        "Fix the file and save it: the preview updates by itself."
        if found.kind not in ("subscriber", "bug")
        else ""
    )
    tail = f'<p class="hint">{hint}</p>' if hint else ""
    tone = "notice" if found.kind == "nothing" else "error"
    return (
        f'<section class="problem {tone}" role="{role}" aria-labelledby="problem-title">'
        f'<h2 id="problem-title">{esc(found.title)}</h2>{where}'
        f'<pre class="message">{esc(found.message)}</pre>{tail}</section>'
    )
