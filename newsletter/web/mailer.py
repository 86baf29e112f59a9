"""Confirmation emails, sent in the background so every subscribe request is answered alike.

A subscribe request is answered before any SMTP work starts: the answer looks and takes
the same whether the address is new, already subscribed, or gets no email at all. The
email is built from the theme's ``confirm_email.txt`` (and ``confirm_email_subject.txt``),
DKIM-signed when ``[dkim]`` is set, and handed to the configured relay by one of
``THREADS`` threads (``delivery.smtp.single``). Logs name the address masked only.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from newsletter.clock import now_utc
from newsletter.config.settings import Settings
from newsletter.delivery.signing import signed
from newsletter.delivery.smtp.connection import Relay
from newsletter.delivery.smtp.single import relay_for, send_single
from newsletter.dkim.signer import DkimSigner
from newsletter.errors import NewsletterError
from newsletter.notices import notice
from newsletter.redaction import mask_address
from newsletter.rendering.pages import PageRenderer
from newsletter.web.expiring import ConfirmLinks

log = logging.getLogger("newsletter.web")

THREADS = 2


class Mailer:
    """Send confirmation emails through ``[smtp]``; ``available`` is false without a host."""

    def __init__(self, settings: Settings, pages: PageRenderer, links: ConfirmLinks) -> None:
        self.settings = settings
        self._pages = pages
        self._links = links
        self.available = bool(settings.smtp.host.strip())
        envelope = settings.return_path  # bounces of confirmations reach the bounce mailbox too
        # Unusable [smtp] settings stop the service at start, naming the key.
        self._relay: Relay | None = relay_for(settings.smtp, envelope) if self.available else None
        self._signer = DkimSigner(settings.dkim) if settings.dkim is not None else None
        self._signing = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="mail")

    def submit(self, email: str, name: str) -> Future[None]:
        """Send ``email`` its confirmation link in the background."""
        return self._pool.submit(self._send, email, name)

    def _send(self, email: str, name: str) -> None:
        shown = mask_address(email)
        try:
            self.send_now(email, name)
        except NewsletterError as err:
            why = str(err).replace(email, shown)
            log.warning("confirmation to %s not sent: %s", shown, why)
        except Exception as err:  # a bug: logged by kind only (its text may hold the address)
            log.error("confirmation to %s failed: %s", shown, type(err).__name__)
        else:
            log.info("confirmation sent to %s", shown)

    def send_now(self, email: str, name: str) -> None:
        """Build, sign and send the confirmation to ``email``; ``NewsletterError`` if it fails."""
        if self._relay is None:
            raise NewsletterError("no [smtp] host is set")
        context = {
            "link": self._links.link(email, name),
            "name": name,
            "email": email,
            "hours": self.settings.web.confirm_hours,
        }
        subject = self._pages.render("confirm_email_subject.txt", context).strip()
        text = self._pages.render("confirm_email.txt", context)
        message = notice(self.settings, email, name, subject, text, at=now_utc())
        if self._signer is not None:
            with self._signing:
                message = signed(message, self._signer)
        send_single(self._relay, message)

    def close(self) -> None:
        """Wait for the emails under way and queued, then stop the threads."""
        self._pool.shutdown(wait=True)
