"""The one orchestration: build an edition; send it (dry run or live).

Everything expensive happens once per edition in ``build_edition``; sending
only fills personal slots per subscriber (``messages.MessageFactory``).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

from newsletter.clock import in_zone, now_utc
from newsletter.config import Settings
from newsletter.delivery.dryrun import DryRunResult, write_outbox
from newsletter.delivery.smtp import SendSummary, check_smtp_settings, send_messages
from newsletter.dkim import DkimSigner
from newsletter.errors import DeliveryError, NothingToSend, OutputExistsError, SubscriberError
from newsletter.locks import FileLock
from newsletter.messages import EXAMPLE_READER, MessageFactory
from newsletter.models import Article, Digest, Edition, OutgoingMessage, Subscriber
from newsletter.preflight import Finding, preflight, sample_subscriber
from newsletter.rendering import Renderer
from newsletter.selection import SENT_BEFORE, select
from newsletter.sources import Collection, SourceReport, collect
from newsletter.state.openers import open_editions, open_history, open_ledger
from newsletter.subscribers import SubscriberScan, in_shard, read_subscribers

SEND_LOCK = "live-send.lock"
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


def source_report(report: SourceReport) -> dict[str, Any]:
    """One source's summary for ``newsletter sources``: items, sections, regions, warnings."""
    return {
        "spec": report.spec,
        "kind": report.kind,
        "items": len(report.articles),
        "sections": dict(Counter(a.section for a in report.articles).most_common()),
        "regions": dict(Counter(r for a in report.articles for r in a.regions).most_common()),
        "warnings": list(report.warnings),
        "error": report.error,
    }


def build_edition(settings: Settings, options: BuildOptions = BuildOptions()) -> BuildResult:
    """Read the sources, select the digest and render it once; raise NothingToSend if empty."""
    now = in_zone(options.now, settings.publication.timezone) if options.now else now_utc()
    specs = options.sources or settings.paths.sources
    strict = settings.strict_sources if options.strict is None else options.strict
    collection = collect(specs, settings, strict=strict, now=now)
    with open_history(settings.paths.state_db) as history:
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
        lead_url=options.lead_url or settings.selection.lead_url or None,
    )
    if digest.is_empty:
        raise NothingToSend(_nothing_new_message(collection, digest, last))
    warnings = list(collection.warnings)
    if not settings.has_signing_key:
        warnings.append(DEV_KEY_WARNING)
    edition = Renderer(settings).render(digest, warnings=warnings)
    return BuildResult(edition=edition, collection=collection, selection=selection_summary(digest))


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


def write_build(
    settings: Settings, result: BuildResult, out_dir: Path, *, force: bool = False
) -> list[Path]:
    """Write edition.html, edition.txt and edition.json into ``out_dir``.

    The HTML and text are as an example reader without a name would get them.
    """
    edition = result.edition
    out_dir.mkdir(parents=True, exist_ok=True)
    html, text = MessageFactory(edition, settings).parts(EXAMPLE_READER)  # as a reader sees it
    targets = {
        "edition.html": html,
        "edition.txt": text,
        "edition.json": json.dumps(edition_info(result), ensure_ascii=False, indent=2) + "\n",
    }
    paths = [out_dir / name for name in targets]
    existing = [p for p in paths if p.exists()]
    if existing and not force:
        raise OutputExistsError(
            f"{existing[0]} already exists; use --force to replace it or choose another --out"
        )
    for path, content in zip(paths, targets.values(), strict=True):
        path.write_text(content, encoding="utf-8", newline="")
    return paths


def edition_info(result: BuildResult) -> dict[str, Any]:
    """The edition's metadata: id, subject, preheader, sizes, warnings and selection."""
    edition = result.edition
    return {
        "id": edition.id,
        "subject": edition.subject,
        "preheader": edition.preheader,
        "created": edition.created.isoformat(),
        "html_bytes": edition.html_size,
        "text_bytes": len(edition.text.encode("utf-8")),
        "warnings": list(edition.warnings),
        "selection": result.selection,
    }


def preflight_edition(
    settings: Settings, edition: Edition, *, check_links: bool = False
) -> list[Finding]:
    """Check the edition and one personalized message: size, links, headers, unsubscribe …"""
    sample = MessageFactory(edition, settings).build(sample_subscriber(settings))
    return preflight(edition, sample.data, settings, check_links=check_links)


@dataclass(frozen=True)
class Audience:
    """Who a send goes to: the list (sharded, limited) or one test address."""

    subscribers_path: Path
    shard: tuple[int, int] | None = None
    limit: int | None = None
    to: str | None = None


def recipients(audience: Audience, scan: SubscriberScan) -> Iterator[Subscriber]:
    """Stream the active subscribers this send goes to."""
    if audience.to:
        yield Subscriber(email=audience.to, name="", line=0)
        return
    stream = (
        s
        for s in read_subscribers(audience.subscribers_path, scan=scan)
        if in_shard(s.email, audience.shard)
    )
    yield from (islice(stream, audience.limit) if audience.limit is not None else stream)


def count_recipients(audience: Audience) -> int:
    """How many subscribers a send will go to (reads the list once; errors surface here)."""
    if audience.to:
        return 1
    return sum(1 for _ in recipients(audience, SubscriberScan(path=audience.subscribers_path)))


def dry_run(
    settings: Settings,
    result: BuildResult,
    audience: Audience,
    outbox: Path,
    *,
    force: bool = False,
    mode: str = "eml",
    sample: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[DryRunResult, SubscriberScan]:
    """Write one .eml per recipient (or one mbox) and a manifest; touch no network."""
    factory = MessageFactory(result.edition, settings)
    scan = SubscriberScan(path=audience.subscribers_path)
    outcome = write_outbox(
        result.edition,
        factory,
        recipients(audience, scan),
        outbox,
        force=force,
        selection=result.selection,
        mode=mode,
        sample=sample,
        progress=progress,
    )
    return outcome, scan


def normalize_address(address: str) -> str:
    """Validate a ``--to`` address; return it normalized."""
    from email_validator import EmailNotValidError, validate_email

    try:
        return str(validate_email(address, check_deliverability=False).normalized)
    except EmailNotValidError as err:
        raise SubscriberError(f"--to {address!r}: {err}") from err


def live_send(
    settings: Settings,
    edition: Edition,
    selection: dict[str, Any],
    audience: Audience,
    *,
    record: bool = True,
    progress: Callable[[str, str], None] | None = None,
    stop: threading.Event | None = None,
) -> tuple[SendSummary, SubscriberScan]:
    """Send ``edition`` over SMTP, recording every recipient in the ledger; resumable."""
    check_smtp_settings(settings.smtp)
    if not settings.has_signing_key:
        raise DeliveryError(
            "NEWSLETTER_SIGNING_KEY is not set: refusing to send live mail whose unsubscribe "
            "links could be forged; set it to a long random secret (keep it the same for "
            "every send) or use --dry-run"
        )
    lock = FileLock(settings.paths.state_dir / SEND_LOCK)
    if not lock.acquire():
        raise DeliveryError(
            f"another send is running from {settings.paths.state_dir} (pid {lock.holder()}); "
            "wait for it to finish, or stop it: a second one would mail people twice"
        )
    try:
        return _live_send(settings, edition, selection, audience, record, progress, stop)
    finally:
        lock.release()


def _live_send(
    settings: Settings,
    edition: Edition,
    selection: dict[str, Any],
    audience: Audience,
    record: bool,
    progress: Callable[[str, str], None] | None,
    stop: threading.Event | None,
) -> tuple[SendSummary, SubscriberScan]:
    started = now_utc()
    factory = MessageFactory(edition, settings, date=started)
    scan = SubscriberScan(path=audience.subscribers_path)
    ledger_id = edition.id
    if audience.to:  # a test copy: its own ledger entry, so it can be sent again
        ledger_id = f"{edition.id}+test-{started:%Y%m%dT%H%M%S%f}"
    if record and not audience.to:
        with open_editions(settings.paths.state_db) as archive:
            archive.save(edition, selection, started)
        with open_history(settings.paths.state_db) as history:
            history.record(edition.id, edition.created, _selected_ids(selection))
    envelope = settings.smtp.envelope_from or settings.sender.address
    payload = settings.dkim is None  # a signature changes the data
    messages = _buildable(factory, recipients(audience, scan), scan, payload=payload)
    if settings.dkim is not None:
        signer = DkimSigner(settings.dkim)
        messages = (
            OutgoingMessage(m.recipient, m.message_id, signer.sign(m.data)) for m in messages
        )
    with open_ledger(settings.paths.state_db) as ledger:
        ledger.start(ledger_id, edition.subject)
        summary = send_messages(
            messages,
            settings.smtp,
            ledger,
            ledger_id,
            envelope_from=envelope,
            progress=progress,
            stop=stop,
        )
    complete = not summary.paused and not (stop and stop.is_set())
    if record and not audience.to and complete:
        with open_editions(settings.paths.state_db) as archive:
            archive.set_status(edition.id, "done", now_utc())
    return summary, scan


def _buildable(
    factory: MessageFactory,
    subscribers: Iterable[Subscriber],
    scan: SubscriberScan,
    *,
    payload: bool,
) -> Iterator[OutgoingMessage]:
    """Build each message (and its SMTP payload if asked); skip unusable addresses, warning."""
    for subscriber in subscribers:
        try:
            yield factory.build(subscriber, payload=payload)
        except DeliveryError as err:
            scan.invalid += 1
            scan.warnings.append(str(err))


def _selected_ids(selection: dict[str, Any]) -> Sequence[str]:
    ids = [selection["lead"]["id"]] if selection.get("lead") else []
    ids += [a["id"] for a in selection.get("trending", [])]
    ids += [a["id"] for a in selection.get("opinion", [])]
    return ids


def unfinished_edition(settings: Settings) -> tuple[Edition, dict[str, Any]] | None:
    """The edition whose live send was interrupted, if any (resumed before building anew)."""
    if not settings.paths.state_db.exists():
        return None
    with open_editions(settings.paths.state_db) as archive:
        found = archive.unfinished()
    if found is None:
        return None
    return found.edition, dict(found.selection)
