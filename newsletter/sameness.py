"""When two articles are the same story: the same page, whatever the scheme of its link.

The canonical form of a URL (``sanitize.canonical_url``) is the one normalization;
this module only says what counts as the same page when stories are compared.
"""

from __future__ import annotations

from newsletter.sanitize import absolute_url, canonical_url


def page_key(url: str) -> str | None:
    """Reduce an http(s) URL to what identifies the page, or ``None`` if it is not one.

    The canonical URL without its scheme, so the http and https addresses of one page
    are the same page.
    """
    if absolute_url(url) is None:
        return None
    return canonical_url(url).partition("://")[2]
