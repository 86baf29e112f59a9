"""Build the preview page from escaped pieces, for the live server and as one static file.

Every value shown (subjects, headers, names, errors, file contents) goes through ``esc``.
The email never mixes with the page: it sits in a sandboxed iframe, loaded from its own
URL (live) or from ``srcdoc`` (static).
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from urllib.parse import urlencode

from newsletter.config.settings import Settings
from newsletter.limits import HTML_CLIP_BYTES, HTML_WARN_BYTES
from newsletter.models import Article, Skip, Subscriber
from newsletter.pipeline import BuildResult
from newsletter.rendering.dates import stamp
from newsletter.sameness import page_key
from newsletter.selection import lead_score

MOBILE_WIDTH = 375
DESKTOP_WIDTH = 700
SNIPPET_CONTEXT = 3
MAX_SNIPPET_BYTES = 2_000_000
MAX_SNIPPET_CHARS = 300
MAX_SKIPPED = 200
MAX_WATCHED_SHOWN = 200
ASSETS = ("preview.css", "preview.js")
SANDBOX = "allow-popups allow-popups-to-escape-sandbox"
SAMPLE = "sample"  # the subscriber query that always means the sample subscriber

_PATH_LINE = re.compile(r"(?P<path>(?:[A-Za-z]:)?[\\/][^\s:'\"]+?):(?P<line>\d+)(?!\d)")
_AT_LINE = re.compile(r"\bat line (?P<line>\d+)(?!\d| of the rendered)")
_DARK_MEDIA = re.compile(r"@media[^{};]*\(\s*prefers-color-scheme\s*:\s*dark\s*\)[^{};]*\{", re.I)
_SCHEME_META = re.compile(
    r"(<meta\b[^>]*\bname=\"(?:supported-)?color-schemes?\"[^>]*\bcontent=\")[^\"]*(\")", re.I
)


def esc(value: object) -> str:
    """Escape any value for HTML text and double-quoted attributes."""
    return html.escape(str(value), quote=True)


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Location:
    """Where a problem is: a file, a line (0: unknown) and the lines around it."""

    path: Path
    line: int
    snippet: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class Problem:
    """Why there is nothing (or not everything) to show, and where to fix it."""

    title: str
    message: str
    kind: str
    location: Location | None = None


@dataclass(frozen=True)
class Personal:
    """One subscriber's message: the exact bytes and their decoded parts."""

    subscriber: Subscriber
    is_sample: bool
    data: bytes
    html: str
    text: str
    headers: tuple[tuple[str, str], ...]
    filename: str

    @property
    def html_bytes(self) -> int:
        """Size of the HTML part as Gmail counts it (UTF-8 bytes)."""
        return len(self.html.encode("utf-8"))


@dataclass(frozen=True)
class PageView:
    """Everything one rendering of the page shows."""

    version: str
    settings: Settings | None
    result: BuildResult | None
    built_at: datetime
    problem: Problem | None = None
    warnings: tuple[str, ...] = ()
    personal: Personal | None = None
    personal_problem: Problem | None = None
    wanted: str = ""
    choices: tuple[Subscriber, ...] = ()
    choices_note: str = ""
    watched: tuple[Path, ...] = ()
    lead_url: str = ""


@dataclass(frozen=True)
class Pick:
    """A selected story and why it was chosen."""

    place: str
    article: Article
    why: str


# --------------------------------------------------------------------------- problems


def problem(
    title: str, message: str, kind: str, candidates: Iterable[Path] = (), clues: str = ""
) -> Problem:
    """Make a ``Problem``, locating the file and line the message (or ``clues``) names."""
    known = list(candidates)
    return Problem(title, message, kind, locate(message, known) or locate(clues, known))


def locate(message: str, candidates: Iterable[Path]) -> Location | None:
    """Find the first known file a message names: ``path:line``, or a path and ``at line N``."""
    known = {str(path): path for path in candidates}
    for found in _PATH_LINE.finditer(message):
        path = known.get(found.group("path"))
        if path is not None:
            return _location(path, int(found.group("line")))
    for text in sorted(known, key=len, reverse=True):
        at = message.find(text)
        if at < 0:
            continue
        line = _AT_LINE.search(message, at + len(text))
        return _location(known[text], int(line.group("line")) if line else 0)
    return None


def _location(path: Path, line: int) -> Location:
    """Read the lines around ``line`` of a watched file (nothing if unreadable or huge)."""
    if line <= 0:
        return Location(path, 0)
    try:
        if path.stat().st_size > MAX_SNIPPET_BYTES:
            return Location(path, line)
        lines = path.read_text("utf-8", "replace").splitlines()
    except OSError:
        return Location(path, line)
    first = max(1, line - SNIPPET_CONTEXT)
    last = min(len(lines), line + SNIPPET_CONTEXT)
    snippet = tuple((n, lines[n - 1][:MAX_SNIPPET_CHARS]) for n in range(first, last + 1))
    return Location(path, line, snippet)


# --------------------------------------------------------------------------- dark mode


def force_dark(document: str) -> str:
    """Apply the email's dark-mode rules unconditionally, as a client in dark mode would.

    Each ``@media (prefers-color-scheme: dark) { … }`` block is unwrapped and the
    ``color-scheme`` meta tags say ``dark``; nothing else changes.
    """
    out: list[str] = []
    pos = 0
    while True:
        found = _DARK_MEDIA.search(document, pos)
        if found is None:
            break
        end = _block_end(document, found.end())
        if end is None:
            break
        out += [document[pos : found.start()], document[found.end() : end]]
        pos = end + 1
    out.append(document[pos:])
    return _SCHEME_META.sub(r"\1dark\2", "".join(out))


def _block_end(text: str, start: int) -> int | None:
    """Index of the ``}`` closing a block opened just before ``start``; ``None`` if absent."""
    depth = 1
    for index in range(start, len(text)):
        char = text[index]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index
        elif char == "<":
            return None
    return None


# --------------------------------------------------------------------------- selection


def explain(result: BuildResult, settings: Settings, lead_url: str = "") -> list[Pick]:
    """Say why each story is in the edition: editor's pick, pin, score, rank or recency."""
    digest = result.edition.digest
    picks: list[Pick] = []
    if digest.lead is not None:
        picks.append(
            Pick("Lead", digest.lead, _lead_reason(digest.lead, settings, lead_url, digest.now))
        )
    for number, article in enumerate(digest.trending, 1):
        picks.append(Pick(f"Trending {number}", article, _trending_reason(article)))
    zone = settings.publication.timezone
    for article in digest.opinion:
        when = article.last_changed
        dated = f", changed {stamp(when, zone)}" if when else ", undated"
        picks.append(Pick("Opinion", article, f"{article.section}: newest first{dated}"))
    return picks


def _lead_reason(article: Article, settings: Settings, lead_url: str, now: datetime | None) -> str:
    wanted = (lead_url or settings.selection.lead_url).strip()
    if wanted and (wanted == article.id or page_key(wanted) == page_key(article.url)):
        return "the editor's pick (--lead or [selection] lead_url)"
    if article.pinned:
        return "pinned by the editor"
    rules = settings.selection
    if now is None:
        return "the best lead score"
    facts = [
        "has an image" if article.image is not None and article.image.url else "no image",
        "has a summary" if article.summary.strip() else "no summary",
    ]
    if article.priority:
        facts.append(f"priority {article.priority}")
    if article.trending_rank:
        facts.append(f"trending rank {article.trending_rank}")
    when = article.last_changed
    if when is not None:
        hours = max((_aware(now) - _aware(when)).total_seconds(), 0.0) / 3600
        facts.insert(0, f"{hours:.1f} h old")
    score = lead_score(article, now, rules)
    sections = ", ".join(rules.lead_sections) or "any"
    return (
        f"the best lead score, {score:.2f}, among {sections} stories of the last "
        f"{rules.lookback_hours:g} h ({'; '.join(facts)})"
    )


def _aware(moment: datetime) -> datetime:
    """Take a naive time as UTC, as selection does."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _trending_reason(article: Article) -> str:
    region = f"; region {article.regions[0]}" if article.regions else ""
    if article.trending_rank is not None and article.trending_rank >= 1:
        return f"trending rank {article.trending_rank}{region}"
    if article.popularity is not None:
        return f"popularity {article.popularity:g}{region}"
    return f"among the most recent (no rank or popularity){region}"


# --------------------------------------------------------------------------- assets


def asset(name: str) -> str:
    """Return one of the page's own files (``preview.css``, ``preview.js``)."""
    if name not in ASSETS:
        raise KeyError(name)
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


# --------------------------------------------------------------------------- pieces


def _when(view: PageView, moment: datetime) -> str:
    if view.settings is None:
        return moment.strftime("%H:%M:%S UTC")
    local = moment.astimezone(view.settings.publication.timezone)
    return f"{local:%H:%M:%S} {local.tzname() or ''}".strip()


def _toggle(key: str, value: str, label: str, detail: str, pressed: bool) -> str:
    small = f' <span class="dim">{esc(detail)}</span>' if detail else ""
    return (
        f'<button type="button" class="toggle" data-key="{key}" data-value="{value}" '
        f'aria-pressed="{"true" if pressed else "false"}">{esc(label)}{small}</button>'
    )


def toolbar(view: PageView, *, live: bool) -> str:
    """The header with the width, colour-scheme and part toggles."""
    name = view.settings.publication.name if view.settings else "newsletter"
    groups = [
        ("width", "Width", [("mobile", "Mobile", f"{MOBILE_WIDTH} px"),
                            ("desktop", "Desktop", f"{DESKTOP_WIDTH} px")]),
        ("scheme", "Colours", [("light", "Light", ""), ("dark", "Dark", "")]),
        ("part", "Part", [("html", "HTML", ""), ("text", "Plain text", "")]),
    ]  # fmt: skip
    rendered = []
    for key, label, options in groups:
        buttons = "".join(
            _toggle(key, value, text, detail, index == 0)
            for index, (value, text, detail) in enumerate(options)
        )
        rendered.append(
            f'<div class="seg" role="group" aria-labelledby="label-{key}">'
            f'<span class="seg-label" id="label-{key}">{label}</span>{buttons}</div>'
        )
    status = (
        '<p id="live-status" class="live" role="status">Connecting…</p>'
        if live
        else '<p class="live">Static snapshot: run <code>newsletter preview</code> '
        "for live updates</p>"
    )
    return (
        '<header class="bar"><p class="brand"><strong>Preview</strong> '
        f'<span class="dim">{esc(name)}</span></p>'
        f'<div class="controls">{"".join(rendered)}</div>{status}</header>'
    )


def _problem_box(found: Problem, *, role: str = "alert") -> str:
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


def _frame(view: PageView, made: Personal, *, live: bool) -> str:
    name = made.subscriber.name or made.subscriber.email
    title = f"The email as {name} receives it"
    if live:
        base = {"subscriber": _query_value(made)}
        light = "/email.html?" + urlencode({**base, "v": view.version})
        dark = "/email.html?" + urlencode({**base, "scheme": "dark", "v": view.version})
        source = f'src="{esc(light)}" data-src-light="{esc(light)}" data-src-dark="{esc(dark)}"'
    else:
        source = f'srcdoc="{esc(made.html)}" data-srcdoc-dark="{esc(force_dark(made.html))}"'
    return (
        f'<section class="stage" aria-label="The email"><div class="device">'
        f'<iframe id="email-frame" class="email-frame" title="{esc(title)}" sandbox="{SANDBOX}" '
        f'referrerpolicy="no-referrer" {source}></iframe>'
        f'<pre id="text-part" class="text-part" tabindex="0" '
        f'aria-label="Plain-text part">{esc(made.text)}</pre></div></section>'
    )


def _query_value(made: Personal) -> str:
    """The ``subscriber`` query value that asks for this message again."""
    return SAMPLE if made.is_sample else made.subscriber.email


def _card(ident: str, title: str, body: str) -> str:
    return (
        f'<section class="card" aria-labelledby="h-{ident}">'
        f'<h2 id="h-{ident}">{esc(title)}</h2>{body}</section>'
    )


def _who(made: Personal) -> str:
    person = made.subscriber
    shown = (
        f"<strong>{esc(person.name)}</strong> &lt;{esc(person.email)}&gt;"
        if person.name
        else (f"<strong>{esc(person.email)}</strong>")
    )
    if made.is_sample:
        note = " (the sample subscriber)"
    elif not person.active:
        note = f" (status {esc(person.status)}: would not be mailed)"
    elif person.line:
        note = f" (list line {person.line})"
    else:
        note = " (not in the list)"
    return f"<p>Showing {shown}{note}.</p>"


def _subscriber_card(view: PageView, made: Personal, *, live: bool) -> str:
    if not live:
        return _card(
            "sub",
            "Subscriber",
            _who(made) + '<p class="dim">Run <code>newsletter preview</code> to pick '
            "another subscriber.</p>",
        )
    current = made.subscriber.email.casefold()
    chosen = " selected" if made.is_sample else ""
    options = [
        f'<option value="{SAMPLE}"{chosen}>Sample subscriber</option>',
        *(
            f'<option value="{esc(s.email)}"{" selected" if s.email.casefold() == current else ""}>'
            f"{esc(f'{s.name} <{s.email}>' if s.name else s.email)}</option>"
            for s in view.choices
        ),
    ]
    listed = {s.email.casefold() for s in view.choices} | {SAMPLE}
    typed = "" if view.wanted.strip().casefold() in listed else view.wanted
    trouble = _problem_box(view.personal_problem) if view.personal_problem else ""
    note = f'<p class="dim">{esc(view.choices_note)}</p>' if view.choices_note else ""
    body = (
        f"{_who(made)}{trouble}"
        '<form class="pick" method="get" action="/">'
        '<label for="pick-list">From the list</label>'
        f'<select id="pick-list" name="subscriber">{"".join(options)}</select>'
        '<button type="submit">Show</button></form>'
        '<form class="pick" method="get" action="/">'
        '<label for="pick-any">Any address</label>'
        f'<input id="pick-any" name="subscriber" type="text" inputmode="email" '
        f'autocomplete="off" spellcheck="false" placeholder="ana@example.com" value="{esc(typed)}">'
        f'<button type="submit">Show</button></form>{note}'
    )
    return _card("sub", "Subscriber", body)


def _headers_card(view: PageView, made: Personal, *, live: bool) -> str:
    rows = "".join(
        f'<tr><th scope="row">{esc(name)}</th><td>{esc(value)}</td></tr>'
        for name, value in made.headers
    )
    preheader = view.result.edition.preheader if view.result else ""
    rows += f'<tr><th scope="row">Preheader</th><td>{esc(preheader)}</td></tr>'
    if live:
        href = "/message.eml?" + urlencode({"subscriber": _query_value(made)})
    else:
        href = "data:message/rfc822;base64," + base64.b64encode(made.data).decode("ascii")
    link = (
        f'<p><a class="button" href="{esc(href)}" download="{esc(made.filename)}">'
        f'Download the .eml</a> <span class="dim">{len(made.data) / 1000:.1f} KB, '
        "exactly the bytes that would be sent</span></p>"
    )
    return _card("headers", "Message", f'<table class="headers">{rows}</table>{link}')


def _size_card(made: Personal) -> str:
    size = made.html_bytes
    text_kb = len(made.text.encode("utf-8")) / 1000
    share = size / HTML_CLIP_BYTES * 100
    if size >= HTML_CLIP_BYTES:
        level, note = (
            "clip",
            (
                "Gmail will clip this message (“[Message clipped]”): lower "
                "[selection] trending or opinion"
            ),
        )
    elif size >= HTML_WARN_BYTES:
        level, note = "warn", "Close to Gmail's clipping limit: trim the edition before it grows"
    else:
        level, note = (
            "ok",
            f"Fits: Gmail clips a message whose HTML passes about {HTML_CLIP_BYTES // 1000} KB",
        )
    body = (
        f'<p class="size {level}"><strong>{size / 1000:.1f} KB</strong> of HTML, '
        f"{share:.0f} % of Gmail's {HTML_CLIP_BYTES // 1000} KB limit</p>"
        f'<meter min="0" max="{HTML_CLIP_BYTES}" low="{HTML_WARN_BYTES * 3 // 4}" '
        f'high="{HTML_WARN_BYTES}" optimum="0" value="{size}" '
        f'aria-label="HTML size against the clipping limit">{share:.0f} %</meter>'
        f'<p class="dim">{esc(note)}. Plain text: {text_kb:.1f} KB.</p>'
    )
    return _card("size", "Size", body)


def _warnings_card(view: PageView) -> str:
    if not view.warnings:
        return ""
    root = f"{view.settings.paths.root}{os.sep}" if view.settings else ""
    items = "".join(f"<li>{esc(w.replace(root, '') if root else w)}</li>" for w in view.warnings)
    title = f"Warnings ({len(view.warnings)})"
    return _card("warnings", title, f'<ul class="warnings">{items}</ul>')


def _article_line(article: Article) -> str:
    regions = (
        f' <span class="tag">{esc(", ".join(article.regions))}</span>' if article.regions else ""
    )
    return (
        f'<a href="{esc(article.url)}" target="_blank" rel="noopener noreferrer">'
        f"{esc(article.title)}</a>{regions}"
    )


def _selection_card(view: PageView) -> str:
    if view.result is None or view.settings is None:
        return ""
    picks = explain(view.result, view.settings, view.lead_url)
    chosen = "".join(
        f'<li><span class="place">{esc(p.place)}</span> {_article_line(p.article)}'
        f'<br><span class="why">{esc(p.why)}</span></li>'
        for p in picks
    )
    skipped: tuple[Skip, ...] = view.result.edition.digest.skipped
    shown = "".join(
        f'<li><span class="title">{esc(s.title or s.article_id)}</span>'
        f'<br><span class="why">{esc(s.reason)}</span></li>'
        for s in skipped[:MAX_SKIPPED]
    )
    more = len(skipped) - MAX_SKIPPED
    if more > 0:
        shown += f"<li>… and {more} more</li>"
    rules = view.settings.selection
    summary = (
        f'<p class="dim">Trending: up to {rules.trending}, by rank, then popularity, then '
        f"recency; at most {rules.region_cap or 'any number'} per region. Opinion: up to "
        f"{rules.opinion} from {esc(', '.join(rules.opinion_sections))}, newest first.</p>"
    )
    skipped_html = (
        f"<details><summary>Skipped ({len(skipped)})</summary>"
        f'<ul class="picks skipped">{shown}</ul></details>'
        if skipped
        else '<p class="dim">Nothing was skipped.</p>'
    )
    return _card(
        "selection", "Why these stories", f'<ol class="picks">{chosen}</ol>{summary}{skipped_html}'
    )


def _watched_card(view: PageView) -> str:
    if not view.watched:
        return ""
    items = "".join(f"<li><code>{esc(p)}</code></li>" for p in view.watched[:MAX_WATCHED_SHOWN])
    return (
        '<section class="card"><details><summary>'
        f'Watching {len(view.watched)} files</summary><ul class="files">{items}</ul>'
        "</details></section>"
    )


def panels(view: PageView, *, live: bool = True) -> str:
    """The part of the page that is replaced when the edition is rebuilt."""
    title = _title(view)
    made = view.personal
    parts: list[str] = []
    if view.problem is not None:
        parts.append(_problem_box(view.problem, role="alert"))
    side: list[str] = []
    if made is not None and view.result is not None:
        edition = view.result.edition
        parts.append(_frame(view, made, live=live))
        side += [
            f'<p class="meta">Edition <code>{esc(edition.id)}</code> · '
            f"built {esc(_when(view, view.built_at))}</p>",
            _subscriber_card(view, made, live=live),
            _size_card(made),
            _warnings_card(view),
            _headers_card(view, made, live=live),
        ]
    else:
        side.append(_warnings_card(view))
    side.append(_selection_card(view))
    if live:
        side.append(_watched_card(view))
    parts.append(f'<div class="side">{"".join(side)}</div>')
    state = "state-ok" if view.problem is None else "state-problem"
    return (
        f'<main id="panels" class="panels {state}" data-version="{esc(view.version)}" '
        f'data-title="{esc(title)}">{"".join(parts)}</main>'
    )


def _title(view: PageView) -> str:
    if view.problem is not None:
        return f"Preview: {view.problem.title}"
    if view.result is not None:
        return f"Preview: {view.result.edition.subject}"
    return "Preview"


def _document(view: PageView, head: str, body: str, *, live: bool) -> str:
    lang = view.settings.publication.language if view.settings else "en"
    return (
        f'<!DOCTYPE html>\n<html lang="{esc(lang)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{esc(_title(view))}</title>{head}</head>"
        f'<body data-live="{"1" if live else "0"}" data-width="mobile" data-scheme="light" '
        f'data-part="html">{body}</body></html>\n'
    )


def live_page(view: PageView) -> str:
    """The page the preview server serves."""
    head = '<link rel="stylesheet" href="/preview.css"><script src="/preview.js" defer></script>'
    return _document(view, head, toolbar(view, live=True) + panels(view), live=True)


def static_page(view: PageView) -> str:
    """The same page as one file: email in ``srcdoc``, inline style and script, no live reload."""
    css = asset("preview.css")
    script = asset("preview.js")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    csp = (
        f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; "
        "img-src https: http: data:; font-src https: data:; base-uri 'none'; "
        "form-action 'none'; connect-src 'none'"
    )
    head = f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}"><style>{css}</style>'
    body = toolbar(view, live=False) + panels(view, live=False) + f"<script>{script}</script>"
    return _document(view, head, body, live=False)
