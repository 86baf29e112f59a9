"""The one orchestration: build an edition; send it (dry run or live).

Everything expensive happens once per edition in ``build_edition``; sending
only fills personal placeholders per subscriber (``messages.MessageFactory``).
``send_edition`` is the one path of every send, whoever starts it (``send``,
``send --to``, ``send --slot``, the scheduler): it alone decides build-or-resume,
refuses a new edition too soon after the last, runs the preflight gate, stores the
edition, sends through the ledger and counts the articles as sent once a message was
accepted (``bookkeeping``). Who it goes to is ``audience``'s: the list and the members,
less the suppressed (checked again while the send goes). Callers parse, confirm and
print; the scheduler decides *when*.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from newsletter.audience import (
    Audience,
    Held,
    Reach,
    close_suppressed,
    expected,
    held_in,
    recipients,
    watching,
)
from newsletter.bookkeeping import (
    Abandoned,
    CountOnFirstAcceptance,
    check_spacing,
    count_if_reached,
    give_up,
    unfinished_edition,
)
from newsletter.clock import in_zone, now_utc
from newsletter.config.settings import Settings
from newsletter.config.state import PostgresUrl
from newsletter.delivery.crew import Joined, SharedSend, join, send_shared
from newsletter.delivery.dryrun import DryRunResult, write_outbox
from newsletter.delivery.signing import sign_ahead, signed
from newsletter.delivery.smtp.outcome import SendSummary
from newsletter.delivery.smtp.pool import send_messages
from newsletter.delivery.smtp.settings import check_smtp_settings
from newsletter.dkim.signer import DkimSigner
from newsletter.errors import (
    ContentError,
    DeliveryError,
    NewsletterError,
    NothingToSend,
    UsageProblem,
)
from newsletter.messages import MessageFactory
from newsletter.models import Article, Digest, Edition, OutgoingMessage, Subscriber
from newsletter.preflight.findings import ERROR, Finding, raise_for_errors
from newsletter.preflight.run import preflight
from newsletter.preflight.sample import sample_subscriber
from newsletter.rendering.renderer import Renderer
from newsletter.selection import SENT_BEFORE, select
from newsletter.sources import Collection, collect, describe_failures
from newsletter.state.openers import (
    open_crew,
    open_editions,
    open_history,
    open_ledger,
    open_lock,
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


# --------------------------------------------------------------------------- one send


@dataclass(frozen=True)
class Resume:
    """Which interrupted live edition a send finishes before it builds a new one.

    ``edition_id``: always this one (a slot resuming its own edition). Otherwise the
    most recent interrupted edition, if it was created at or after ``not_before`` (any
    age when ``None``).
    """

    edition_id: str = ""
    not_before: datetime | None = None


@dataclass(frozen=True)
class DryRun:
    """Write the messages to ``outbox`` instead of sending them."""

    outbox: Path
    force: bool = False
    mode: str = "eml"
    sample: int | None = None


@dataclass(frozen=True)
class SendPlan:
    """Everything one send needs to know: who, what to build, and how to deliver.

    ``resume`` is ``None`` for sends that never finish an interrupted edition (test
    copies, dry runs). A plan with ``dry_run`` touches no network. ``spaced``: a new
    live edition is refused within ``[send] min_interval_hours`` of the last finished
    one (a send by hand; a schedule's slot is its own guard, and ``--allow-early``
    drops it); test copies, dry runs and resuming are never refused.
    """

    audience: Audience
    build: BuildOptions = BuildOptions()
    resume: Resume | None = Resume()
    dry_run: DryRun | None = None
    spaced: bool = False

    @property
    def test_copy(self) -> bool:
        """Whether this send is a test copy to one address (``--to``)."""
        return self.audience.to is not None


@dataclass(frozen=True)
class Prepared:
    """An edition that passed the preflight gate, about to go out.

    ``list_size``: how many recipients the edition's list in the state holds, when the
    senders sharing it stored it already (``None``: the list is read from its file).
    """

    edition: Edition
    selection: dict[str, Any]
    resumed: bool
    findings: tuple[Finding, ...] = ()
    list_size: int | None = None


def _ignore(*_args: object) -> None:
    return None


@dataclass(frozen=True)
class SendHooks:
    """How a caller follows a send: warnings, a last word before it starts, progress.

    ``ready`` runs after the preflight gate and before the first message; raising
    there (a declined confirmation) stops the send with nothing sent. ``stop`` ends a
    live send after the messages under way.
    """

    warn: Callable[[str], None] = _ignore
    ready: Callable[[Prepared], None] = _ignore
    progress: Callable[[str, str], None] | None = None
    stop: threading.Event | None = None


@dataclass(frozen=True)
class SendReport:
    """What one send did: the edition, who it reached, the live summary or dry-run result."""

    prepared: Prepared
    reach: Reach
    summary: SendSummary | None = None
    written: DryRunResult | None = None
    stopped: bool = False

    @property
    def scan(self) -> SubscriberScan:
        """What reading the subscriber list found."""
        return self.reach.scan

    @property
    def suppressed(self) -> int:
        """Recipients left out as suppressed: before the send, and since it began."""
        during = self.summary.suppressed if self.summary is not None else 0
        return self.reach.suppressed + during

    @property
    def complete(self) -> bool:
        """Whether the send reached its end (not paused, not stopped)."""
        return not self.stopped and (self.summary is None or not self.summary.paused)


def send_edition(settings: Settings, plan: SendPlan, hooks: SendHooks = SendHooks()) -> SendReport:
    """Send an edition: the one path of every send, live or dry, by hand or on schedule.

    Decides build-or-resume (a new edition too soon after the last raises ``TooSoon``
    for a ``spaced`` plan), runs the preflight gate (an error stops the send before
    the first message), then writes the outbox or, live, stores the edition and sends
    through the ledger; its articles count as sent from the first accepted message.
    """
    if plan.dry_run is None:
        check_live_settings(settings)
    if settings.paths.state.shared and plan.dry_run is None and not plan.test_copy:
        return _send_shared(settings, plan, hooks)
    prepared = _prepare(settings, plan, hooks.warn)
    hooks.ready(prepared)
    if plan.dry_run is not None:
        written, reach = _write_outbox(settings, prepared, plan.audience, plan.dry_run)
        return SendReport(prepared=prepared, reach=reach, written=written)
    summary, reach = _live_send(settings, prepared, plan.audience, hooks)
    stopped = hooks.stop is not None and hooks.stop.is_set()
    return SendReport(prepared=prepared, reach=reach, summary=summary, stopped=stopped)


def check_live_settings(settings: Settings) -> None:
    """Raise unless these settings can send live mail (SMTP settings, a signing key)."""
    check_smtp_settings(settings.smtp)
    if not settings.has_signing_key:
        raise DeliveryError(
            "NEWSLETTER_SIGNING_KEY is not set: refusing to send live mail whose unsubscribe "
            "links could be forged; set it to a long random secret (keep it the same for "
            "every send) or use --dry-run"
        )


def _prepare(settings: Settings, plan: SendPlan, warn: Callable[[str], None]) -> Prepared:
    """Resume an interrupted edition or build a new one; run the preflight gate."""
    resumed = _resumable(settings, plan.resume, warn) if plan.resume is not None else None
    if resumed is not None:
        edition, selection = resumed
    else:
        if plan.spaced and plan.dry_run is None and not plan.test_copy:
            check_spacing(settings, now_utc())
        try:
            result = build_edition(settings, plan.build)
        except NewsletterError as err:
            for warning in err.warnings:  # through the hook, so a schedule logs them too
                warn(warning)
            err.warnings = ()
            raise
        for warning in result.warnings:
            warn(warning)
        edition, selection = result.edition, result.selection
    findings = tuple(preflight_edition(settings, edition))
    for finding in findings:
        if finding.level != ERROR:
            warn(f"[{finding.code}] {finding.message}")
    raise_for_errors(findings)
    return Prepared(edition, selection, resumed=resumed is not None, findings=findings)


def _resumable(
    settings: Settings, rule: Resume, warn: Callable[[str], None]
) -> tuple[Edition, dict[str, Any]] | None:
    found = unfinished_edition(settings)
    if found is None:
        return None
    edition = found[0]
    if rule.edition_id and edition.id == rule.edition_id:
        return found
    if rule.not_before is None or edition.created >= rule.not_before:
        return found
    with open_ledger(settings.paths.state) as ledger:  # left behind: did it reach anyone?
        count_if_reached(settings, edition, found[1], ledger)
    warn(
        f"edition {edition.id} was interrupted earlier but is older than the max age, so the "
        "schedule does not resume it; finish it with 'newsletter send --yes' if it should "
        "still go out"
    )
    return None


def _write_outbox(
    settings: Settings, prepared: Prepared, audience: Audience, plan: DryRun
) -> tuple[DryRunResult, Reach]:
    """Write one .eml per recipient (or one mbox) and a manifest; touch no network."""
    factory = MessageFactory(prepared.edition, settings)
    reach = Reach.of(audience)
    outcome = write_outbox(
        prepared.edition,
        factory,
        recipients(audience, reach, held_in(settings.paths.state)),
        plan.outbox,
        force=plan.force,
        selection=prepared.selection,
        mode=plan.mode,
        sample=plan.sample,
    )
    return outcome, reach


@contextmanager
def send_lock(
    settings: Settings, why: str = "a second one would mail people twice"
) -> Iterator[None]:
    """Hold the state folder's send lock: one live send (or abandon) at a time."""
    lock = open_lock(settings.paths.state, SEND_LOCK)
    if not lock.acquire():
        raise DeliveryError(
            f"another send is running from {settings.paths.state.where} (pid {lock.holder()}); "
            f"wait for it to finish, or stop it: {why}"
        )
    try:
        yield
    finally:
        lock.release()


def _live_send(
    settings: Settings, prepared: Prepared, audience: Audience, hooks: SendHooks
) -> tuple[SendSummary, Reach]:
    """Send over SMTP, one sender per state folder, every recipient through the ledger."""
    with send_lock(settings):
        return _send_through_ledger(settings, prepared, audience, hooks)


def _send_through_ledger(
    settings: Settings, prepared: Prepared, audience: Audience, hooks: SendHooks
) -> tuple[SendSummary, Reach]:
    edition, test_copy = prepared.edition, audience.to is not None
    started = now_utc()
    messages = Messages(settings, edition, date=started)
    reach = Reach.of(audience)
    ledger_id = edition.id
    if test_copy:  # a test copy: its own ledger entry, so it can be sent again
        ledger_id = f"{edition.id}+test-{started:%Y%m%dT%H%M%S%f}"
    envelope = settings.return_path
    state = settings.paths.state
    with open_ledger(state) as ledger, watching(state) as (held, watch):
        known = ledger.states(ledger_id)
        close_suppressed(
            ledger, ledger_id, known, watch, resend=settings.smtp.in_flight == "resend"
        )
        total = expected(audience, held, known)  # the list's errors surface here
        progress = hooks.progress
        if not test_copy:
            with open_editions(state) as archive:
                archive.save(edition, prepared.selection, started)
            # A resumed send whose earlier run reached someone counts at once (a crash may
            # have come between the first acceptance and its record); else at the first.
            counted = count_if_reached(settings, edition, prepared.selection, ledger)
            progress = CountOnFirstAcceptance(
                settings, edition, prepared.selection, progress, counted=counted
            )
        ledger.start(ledger_id, edition.subject, total)
        with closing(messages.stream(recipients(audience, reach, held), reach.scan)) as stream:
            summary = send_messages(
                stream,
                settings.smtp,
                ledger,
                ledger_id,
                envelope_from=envelope,
                progress=progress,
                stop=hooks.stop,
                suppressed=watch.reason,
            )
    stopped = hooks.stop is not None and hooks.stop.is_set()
    if not test_copy and not summary.paused and not stopped:
        with open_editions(state) as archive:
            archive.set_status(edition.id, "done", now_utc())
    return summary, reach


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


def abandon_edition(settings: Settings, edition_id: str) -> Abandoned:
    """Give up an unfinished edition: never resumed; the next send builds a new one.

    Its ledger stays for the record; its articles stay counted only if a message of it
    reached someone. Refused while a send is running (with a shared state: while a
    sender holds a lease on it).
    """
    place = settings.paths.state
    if not place.exists():
        raise NewsletterError(
            f"no stored edition {edition_id!r}: nothing was sent from {place.where}"
        )
    if not isinstance(place, PostgresUrl):
        with send_lock(settings, "an edition cannot be given up while it is being sent"):
            return give_up(settings, edition_id, now_utc())
    with edition_lock(settings, wait=False):
        with open_crew(place) as crew:
            live = [w for w in crew.workers(edition_id) if w.live]
        if live:
            who = ", ".join(f"pid {w.pid} on {w.host}" for w in live)
            raise DeliveryError(
                f"edition {edition_id} is being sent by {len(live)} sender(s) ({who}); stop "
                "them or let them finish: an edition cannot be given up while it is being sent"
            )
        return give_up(settings, edition_id, now_utc())


# --------------------------------------------------------------------------- shared sends


@contextmanager
def edition_lock(
    settings: Settings, *, wait: bool = True, hooks: SendHooks = SendHooks()
) -> Iterator[None]:
    """Hold the shared state's edition lock: one sender at a time decides what is sent.

    The sender that holds it finds the edition to join, or builds one and stores it with
    its list; the others wait for it (``wait``), then join what it stored.
    """
    lock = open_lock(settings.paths.state, EDITION_LOCK)
    if not lock.acquire():
        if not wait:
            raise DeliveryError(
                f"a sender (pid {lock.holder()}) is preparing an edition in "
                f"{settings.paths.state.where}; try again when it has started sending"
            )
        hooks.warn(f"waiting for the sender that prepares the edition (pid {lock.holder()})")
        if not lock.acquire(wait=None, stop=hooks.stop or threading.Event()):
            raise DeliveryError("stopped while waiting to join the edition; nothing was sent")
    try:
        yield
    finally:
        lock.release()


def _send_shared(settings: Settings, plan: SendPlan, hooks: SendHooks) -> SendReport:
    """Send an edition together with any other senders of the same state (PostgreSQL).

    Under the edition lock: join the edition being sent, or build one; then the preflight
    gate, and the list stored once with the edition. Then this sender's part
    (``delivery.crew``); whichever sender finds nothing left marks the edition done.
    """
    place, audience = settings.paths.state, plan.audience
    assert isinstance(place, PostgresUrl)  # a shared state
    if audience.shard is not None:
        raise UsageProblem(
            "--shard splits a list between senders that share no state; with the state in "
            "PostgreSQL ([state] url) the senders share the edition's list: run 'newsletter "
            "send' on each host without --shard",
            "--shard",
        )
    reach = Reach.of(audience)
    with watching(place) as (held, watch):
        with edition_lock(settings, hooks=hooks):
            prepared, joined, counted = _join_or_start(settings, plan, hooks, reach, held)
        edition = prepared.edition
        messages = Messages(settings, edition, date=now_utc())
        counting = CountOnFirstAcceptance(
            settings, edition, prepared.selection, hooks.progress, counted=counted
        )
        job = SharedSend(
            place=place,
            edition_id=edition.id,
            messages=lambda people, unusable: messages.stream(people, reach.scan, unusable),
            smtp=settings.smtp,
            envelope_from=settings.smtp.envelope_from or settings.sender.address,
            progress=counting,
            stop=hooks.stop or threading.Event(),
            suppressed=watch.reason,
        )
        summary = send_shared(job, joined)
    if not counting.counted:  # its first acceptance came while the database was away
        with open_ledger(place) as ledger:
            count_if_reached(settings, edition, prepared.selection, ledger)
    return SendReport(prepared=prepared, reach=reach, summary=summary, stopped=job.stop.is_set())


def _join_or_start(
    settings: Settings, plan: SendPlan, hooks: SendHooks, reach: Reach, held: Held
) -> tuple[Prepared, Joined, bool]:
    """Join the edition being sent, or build one and store it with its list (under the lock).

    The list stored is the audience's (``audience``: the list file and the members, less
    the suppressed); those suppressed later are caught when a sender claims them
    (``Crew.claim``), and again just before each message (``SuppressionWatch``).
    Returns the edition, this sender's place in it, and whether its articles count
    already.
    """
    place, audience = settings.paths.state, plan.audience
    prepared = _prepare(settings, plan, hooks.warn)
    edition = prepared.edition
    with open_crew(place) as crew:
        size = crew.list_size(edition.id)
    if size is not None and audience.limit is not None:
        hooks.warn(f"--limit does not apply: edition {edition.id}'s list is stored already")
    prepared = replace(prepared, list_size=size)
    hooks.ready(prepared)
    with open_editions(place) as archive:
        archive.save(edition, prepared.selection, now_utc())
    with open_ledger(place) as ledger:
        ledger.start(edition.id, edition.subject)
        counted = count_if_reached(settings, edition, prepared.selection, ledger)
    if size is None:
        with open_crew(place) as crew:
            listed = recipients(audience, reach, held)  # the list's errors surface here
            crew.store_list(edition.id, listed, settings.smtp.in_flight)
    assert isinstance(place, PostgresUrl)  # a shared state
    return prepared, join(place, edition.id), counted
