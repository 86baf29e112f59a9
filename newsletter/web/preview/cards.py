"""The side column of the preview page: subscriber, size, warnings, message, stories."""

from __future__ import annotations

import base64
import os
from urllib.parse import urlencode

from newsletter.limits import HTML_CLIP_BYTES, HTML_WARN_BYTES
from newsletter.models import Article, Skip
from newsletter.web.preview.markup import card, esc, problem_box
from newsletter.web.preview.personal import SAMPLE, Personal
from newsletter.web.preview.reasons import explain
from newsletter.web.preview.view import PageView

MAX_SKIPPED = 200
MAX_WATCHED_SHOWN = 200


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


def subscriber_card(view: PageView, made: Personal, *, live: bool) -> str:
    """Who the message is for, and (live) the forms that pick another subscriber."""
    if not live:
        return card(
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
    trouble = problem_box(view.personal_problem) if view.personal_problem else ""
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
    return card("sub", "Subscriber", body)


def headers_card(view: PageView, made: Personal, *, live: bool) -> str:
    """The message's headers and preheader, and the .eml to download."""
    rows = "".join(
        f'<tr><th scope="row">{esc(name)}</th><td>{esc(value)}</td></tr>'
        for name, value in made.headers
    )
    preheader = view.result.edition.preheader if view.result else ""
    rows += f'<tr><th scope="row">Preheader</th><td>{esc(preheader)}</td></tr>'
    if live:
        href = "/message.eml?" + urlencode({"subscriber": made.query})
    else:
        href = "data:message/rfc822;base64," + base64.b64encode(made.data).decode("ascii")
    link = (
        f'<p><a class="button" href="{esc(href)}" download="{esc(made.filename)}">'
        f'Download the .eml</a> <span class="dim">{len(made.data) / 1000:.1f} KB, '
        "exactly the bytes that would be sent</span></p>"
    )
    return card("headers", "Message", f'<table class="headers">{rows}</table>{link}')


def size_card(made: Personal) -> str:
    """The HTML size against Gmail's clipping limit."""
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
    return card("size", "Size", body)


def warnings_card(view: PageView) -> str:
    """The build's warnings, paths shown relative to the project ("" if none)."""
    if not view.warnings:
        return ""
    root = f"{view.settings.paths.root}{os.sep}" if view.settings else ""
    items = "".join(f"<li>{esc(w.replace(root, '') if root else w)}</li>" for w in view.warnings)
    title = f"Warnings ({len(view.warnings)})"
    return card("warnings", title, f'<ul class="warnings">{items}</ul>')


def _article_line(article: Article) -> str:
    regions = (
        f' <span class="tag">{esc(", ".join(article.regions))}</span>' if article.regions else ""
    )
    return (
        f'<a href="{esc(article.url)}" target="_blank" rel="noopener noreferrer">'
        f"{esc(article.title)}</a>{regions}"
    )


def selection_card(view: PageView) -> str:
    """Why each story is in, the rules, and every skipped article with its reason."""
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
    return card(
        "selection", "Why these stories", f'<ol class="picks">{chosen}</ol>{summary}{skipped_html}'
    )


def watched_card(view: PageView) -> str:
    """The files the preview watches, folded ("" if none)."""
    if not view.watched:
        return ""
    items = "".join(f"<li><code>{esc(p)}</code></li>" for p in view.watched[:MAX_WATCHED_SHOWN])
    return (
        '<section class="card"><details><summary>'
        f'Watching {len(view.watched)} files</summary><ul class="files">{items}</ul>'
        "</details></section>"
    )
