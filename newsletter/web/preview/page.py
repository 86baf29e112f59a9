"""Build the preview page from escaped pieces, for the live server and as one static file.

The email never mixes with the page: it sits in a sandboxed iframe, loaded from its own
URL (live) or from ``srcdoc`` (static). The page's own stylesheet and script sit beside
this module.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from importlib import resources
from urllib.parse import urlencode

from newsletter.web.preview.cards import (
    headers_card,
    selection_card,
    size_card,
    subscriber_card,
    warnings_card,
    watched_card,
)
from newsletter.web.preview.darkmode import force_dark
from newsletter.web.preview.markup import esc, problem_box
from newsletter.web.preview.personal import Personal
from newsletter.web.preview.view import PageView

MOBILE_WIDTH = 375
DESKTOP_WIDTH = 700
ASSETS = ("preview.css", "preview.js")
SANDBOX = "allow-popups allow-popups-to-escape-sandbox"


def asset(name: str) -> str:
    """Return one of the page's own files (``preview.css``, ``preview.js``)."""
    if name not in ASSETS:
        raise KeyError(name)
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


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


def _frame(view: PageView, made: Personal, *, live: bool) -> str:
    name = made.subscriber.name or made.subscriber.email
    title = f"The email as {name} receives it"
    if live:
        base = {"subscriber": made.query}
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


def panels(view: PageView, *, live: bool = True) -> str:
    """The part of the page that is replaced when the edition is rebuilt."""
    title = _title(view)
    made = view.personal
    parts: list[str] = []
    if view.problem is not None:
        parts.append(problem_box(view.problem, role="alert"))
    side: list[str] = []
    if made is not None and view.result is not None:
        edition = view.result.edition
        parts.append(_frame(view, made, live=live))
        side += [
            f'<p class="meta">Edition <code>{esc(edition.id)}</code> · '
            f"built {esc(_when(view, view.built_at))}</p>",
            subscriber_card(view, made, live=live),
            size_card(made),
            warnings_card(view),
            headers_card(view, made, live=live),
        ]
    else:
        side.append(warnings_card(view))
    side.append(selection_card(view))
    if live:
        side.append(watched_card(view))
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
