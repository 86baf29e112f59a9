"""The edition and its messages: build an edition once; make each subscriber's message.

Everything expensive happens once per edition in ``build_edition``; sending only fills
personal placeholders per subscriber (``messages.MessageFactory``), and ``Messages``
makes a subscriber's message exactly as a live send does (signed with DKIM). Sending
itself is ``newsletter.sends``: ``sends.edition.send_edition`` is the one path of every
send, whoever starts it.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from newsletter.clock import in_zone, now_utc
from newsletter.config.settings import Settings
from newsletter.delivery.signing import sign_ahead, signed
from newsletter.dkim.signer import DkimSigner
from newsletter.errors import (
    ContentError,
    DeliveryError,
    NewsletterError,
    NothingToSend,
)
from newsletter.messages import MessageFactory
from newsletter.models import Article, Digest, Edition, OutgoingMessage, Subscriber
from newsletter.preflight.findings import Finding
from newsletter.preflight.run import preflight
from newsletter.preflight.sample import sample_subscriber
from newsletter.rendering.renderer import Renderer
from newsletter.selection import SENT_BEFORE, select
from newsletter.sources import Collection, collect, describe_failures
from newsletter.state.openers import (
    open_history,
)
from newsletter.subscribers.reader import SubscriberScan

SEND_LOCK = "live-send.lock"
EDITION_LOCK = "shared-edition.lock"
DEV_KEY_WARNING = (
    "NEWSLETTER_SIGNING_KEY is not set: unsubscribe links are signed with a development key; "
    "set it to a long random secret before sending for real"
)


@dataclass(frozen=True)
class BuildOptions:
    """What a user may change for one build (command-line flags)."""

    sources: tuple[str, ...] = ()
    now: datetime | None = None
    strict: bool | None = None
    lead_url: str | None = None
    allow_repeats: bool = False
    max_age: timedelta | None = None  # a schedule's: no lead story older than this


@dataclass(frozen=True)
class BuildResult:
    """An edition and how it came to be."""

    edition: Edition
    collection: Collection
    selection: dict[str, Any]

    @property
    def warnings(self) -> tuple[str, ...]:
        """Every warning, from sources through rendering."""
        return self.edition.warnings


def article_summary(article: Article) -> dict[str, Any]:
    """The manifest view of one selected article."""
    return {
        "id": article.id,
        "title": article.title,
        "url": article.url,
        "section": article.section,
        "regions": list(article.regions),
    }


def selection_summary(digest: Digest) -> dict[str, Any]:
    """The selection as plain data for edition.json and manifest.json."""
    return {
        "lead": article_summary(digest.lead) if digest.lead else None,
        "trending": [article_summary(a) for a in digest.trending],
        "opinion": [article_summary(a) for a in digest.opinion],
        "skipped": [
            {"id": s.article_id, "title": s.title, "reason": s.reason} for s in digest.skipped
        ],
    }


def build_edition(settings: Settings, options: BuildOptions = BuildOptions()) -> BuildResult:
    """Read the sources, select the digest and render it once.

    Raises ``NothingToSend`` when there is nothing (fresh) to send and every source was
    read, and ``ContentError`` naming each failed source when some could not be: then
    "nothing new" may only mean "not read".
    """
    now = in_zone(options.now, settings.publication.timezone) if options.now else now_utc()
    if options.max_age is not None:
        settings = lookback_within(settings, options.max_age)
    specs = options.sources or settings.paths.sources
    strict = settings.strict_sources if options.strict is None else options.strict
    collection = collect(specs, settings, strict=strict, now=now)
    with open_history(settings.paths.state) as history:
        recent = (
            frozenset()
            if options.allow_repeats
            else history.recent_article_ids(settings.selection.repeat_editions)
        )
        last = history.last_edition()
    digest = select(
        collection.articles,
        settings.selection,
        now,
        recent,
        lead_url=options.lead_url,
    )
    try:
        if digest.is_empty:
            raise NothingToSend(_nothing_new_message(collection, digest, last))
        if options.max_age is not None:
            check_fresh(digest.lead, now, options.max_age)
    except NothingToSend as err:
        raise _unread_or_nothing_new(err, collection, len(specs)) from None
    warnings = list(collection.warnings)
    if not settings.has_signing_key:
        warnings.append(DEV_KEY_WARNING)
    edition = Renderer(settings).render(digest, warnings=warnings)
    return BuildResult(edition=edition, collection=collection, selection=selection_summary(digest))


class StaleNews(NothingToSend):
    """The lead story is older than a schedule allows: a skip, not a failure."""


def lookback_within(settings: Settings, max_age: timedelta) -> Settings:
    """The settings with a lookback no longer than ``max_age``."""
    hours = max_age.total_seconds() / 3600
    if hours >= settings.selection.lookback_hours:
        return settings
    return replace(settings, selection=replace(settings.selection, lookback_hours=hours))


def check_fresh(lead: Article | None, now: datetime, limit: timedelta) -> None:
    """Raise ``StaleNews`` unless the lead changed within ``limit`` before ``now``."""
    if lead is None:
        raise NothingToSend("nothing to send: the edition has no lead story")
    changed = lead.last_changed
    hours = f"{limit.total_seconds() / 3600:g} h"
    if changed is None:
        raise StaleNews(
            f"stale: the lead story {lead.title!r} has no date, so it cannot be shown to be "
            f"newer than {hours} (max_age_hours); not sending it"
        )
    if changed.tzinfo is None:
        changed = changed.replace(tzinfo=UTC)
    if changed < now - limit:
        raise StaleNews(
            f"stale: the lead story {lead.title!r} last changed "
            f"{changed.astimezone(UTC):%Y-%m-%d %H:%M} UTC, more than {hours} before "
            f"{now.astimezone(UTC):%Y-%m-%d %H:%M} UTC (max_age_hours); not sending old news"
        )


def _unread_or_nothing_new(
    err: NothingToSend, collection: Collection, sources: int
) -> NewsletterError:
    """``err`` with the sources' warnings, or a ``ContentError`` when a source failed."""
    if not collection.failed:
        return type(err)(str(err), warnings=collection.warnings)
    message = describe_failures(collection.failed, sources)
    if len(collection.failed) < sources:
        message += f"\nthe other source(s) were read: {err}"
    message += "\nfix the failed source(s) or remove them from the sources, then run again"
    return ContentError(message, warnings=collection.warnings_besides_failures())


def _nothing_new_message(collection: Collection, digest: Digest, last: str | None) -> str:
    if not collection.articles:
        return "nothing to send: the sources gave no usable articles (see the warnings above)"
    repeats = sum(1 for s in digest.skipped if s.reason == SENT_BEFORE)
    since = f" since {last}" if last else ""
    if repeats:
        return (
            f"nothing new to send{since}: {repeats} article(s) already went out; "
            "use --allow-repeats to send them again"
        )
    return (
        f"nothing new to send{since}: no article in the lookback window "
        "qualifies for the lead (check --now, [selection] lookback_hours and lead_sections)"
    )


class Messages:
    """One edition's messages exactly as a live send makes them: personal, signed with DKIM.

    The preview shows these bytes; a live send hands them to SMTP. Signatures are made
    over the finished bytes; a send signs ahead of the sending threads, in worker
    processes (``delivery.signing``).
    """

    def __init__(self, settings: Settings, edition: Edition, *, date: datetime | None = None):
        self.factory = MessageFactory(edition, settings, date=date)
        self.signer = DkimSigner(settings.dkim) if settings.dkim is not None else None

    def build(self, subscriber: Subscriber, *, token: str | None = None) -> OutgoingMessage:
        """The message for ``subscriber`` (``DeliveryError`` for an unusable address).

        ``token`` replaces the signed unsubscribe token (the preview's stand-in for an
        address that is not on the list).
        """
        made = self.factory.build(subscriber, token=token)
        return made if self.signer is None else signed(made, self.signer)

    def stream(
        self,
        subscribers: Iterable[Subscriber],
        scan: SubscriberScan,
        unusable: Callable[[Subscriber, str], None] | None = None,
    ) -> Generator[OutgoingMessage, None, None]:
        """Every message with its SMTP payload, in order; unusable addresses warned and skipped.

        ``unusable`` hears of each skipped address, with the reason. Close the stream when
        done with it: that ends the signing processes at once.
        """
        built = _buildable(self.factory, subscribers, scan, unusable)
        return built if self.signer is None else sign_ahead(built, self.signer)


def preflight_edition(
    settings: Settings, edition: Edition, *, check_links: bool = False
) -> list[Finding]:
    """Check the edition and one personalized message: size, links, headers, unsubscribe …"""
    sample = MessageFactory(edition, settings).build(sample_subscriber(settings))
    return preflight(edition, sample.data, settings, check_links=check_links)


def _buildable(
    factory: MessageFactory,
    subscribers: Iterable[Subscriber],
    scan: SubscriberScan,
    unusable: Callable[[Subscriber, str], None] | None = None,
) -> Generator[OutgoingMessage, None, None]:
    """Build each message and its SMTP payload; skip unusable addresses, warning."""
    for subscriber in subscribers:
        try:
            yield factory.build(subscriber, payload=True)
        except DeliveryError as err:
            scan.invalid += 1
            scan.warnings.append(str(err))
            if unusable is not None:
                unusable(subscriber, str(err))
