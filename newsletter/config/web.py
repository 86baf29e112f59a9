"""The ``[web]`` table: where the public service listens and the public URLs it answers.

The service answers the paths of the public URLs (``list.unsubscribe_url``, and under
``public_url`` the subscribe form and the archive), so a reverse proxy passes them on
unchanged.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from newsletter.config.reader import TableReader
from newsletter.config.settings import ListSettings, WebSettings


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def read_web(top: TableReader, list_settings: ListSettings) -> WebSettings:
    """Read ``[web]``; ``public_url`` defaults to the origin of ``list.unsubscribe_url``."""
    w = top.table("web")
    public_url = w.url("public_url", "") or _origin(list_settings.unsubscribe_url)
    web = WebSettings(
        host=w.text("host", WebSettings.host),
        port=w.whole("port", WebSettings.port, 0, 65535),
        public_url=public_url.rstrip("/"),
        trusted_proxies=w.strings("trusted_proxies", WebSettings.trusted_proxies),
        max_body_bytes=w.whole("max_body_bytes", WebSettings.max_body_bytes, 1024, 10**7),
        confirm_hours=w.number("confirm_hours", WebSettings.confirm_hours, 0.25, 24 * 30),
        subscribes_per_minute=w.whole(
            "subscribes_per_minute", WebSettings.subscribes_per_minute, 1, 10_000
        ),
        confirmations_per_hour=w.whole(
            "confirmations_per_hour", WebSettings.confirmations_per_hour, 1, 10**7
        ),
    )
    w.finish()
    return web
