"""Read the bounce mailbox and act: suppress, count, mark the ledger; once per report.

For each message: read it (``parse``), skip it if the bounce log has its key, tie it to
a subscriber and an edition (``match``), then act:

- a hard bounce or a complaint suppresses the address at once (reason ``bounce`` or
  ``complaint``, source ``bounces``, the edition, the status code as detail);
- a soft bounce is recorded; the address is suppressed when it has ``soft_limit`` of
  them within ``soft_window_days``;
- an unsubscribe mail with a valid token suppresses its sender (source ``mailto``);
- a hard or soft bounce of a recipient the ledger has as ``sent`` (or ``in_flight``)
  turns it ``failed``, the reply saying it bounced: the relay accepted the message, and
  the receiving server refused it later, so the reader did not get it.

The actions are idempotent and come before the report is recorded, and the message is
flagged or moved last: a run stopped half-way repeats nothing harmful. A dry run reads
and decides the same, and writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from newsletter.bounces.imap import ImapMailbox, parse_imap_url
from newsletter.bounces.mailboxes import Mail, Mailbox, Maildir, Mbox
from newsletter.bounces.match import Matcher, Target
from newsletter.bounces.parse import UNREADABLE, read_report
from newsletter.bounces.report import COMPLAINT, DELAYED, HARD, SOFT, UNSUBSCRIBE
from newsletter.clock import now_utc
from newsletter.config.settings import Settings
from newsletter.errors import UsageProblem
from newsletter.state.api import MAX_REPLY, EditionStore, Ledger
from newsletter.state.lists import BounceEvent, BounceLog, Suppressions
from newsletter.state.openers import (
    open_bounce_log,
    open_editions,
    open_ledger,
    open_suppressions,
)

_REASON = {HARD: "bounce", SOFT: "bounce", COMPLAINT: "complaint", UNSUBSCRIBE: "unsubscribe"}
_MARKED = ("sent", "in_flight")  # ledger states a bounce turns into "failed"


@dataclass(frozen=True)
class MailboxChoice:
    """Which mailbox to read (exactly one of the three) and what to do with handled mail."""

    imap: str = ""
    maildir: Path | None = None
    mbox: Path | None = None
    move_to: str = ""


def open_mailbox(choice: MailboxChoice, environ: Mapping[str, str], *, dry_run: bool) -> Mailbox:
    """Open the chosen mailbox; ``UsageProblem`` unless exactly one is chosen."""
    given = [bool(choice.imap), choice.maildir is not None, choice.mbox is not None]
    if sum(given) != 1:
        raise UsageProblem("give one mailbox: --imap URL, --maildir DIR or --mbox FILE")
    if choice.move_to and not choice.imap:
        raise UsageProblem("--move-to is for an IMAP mailbox (--imap)", "--move-to")
    if choice.imap:
        address = parse_imap_url(choice.imap)
        return ImapMailbox(address, environ, move_to=choice.move_to, read_only=dry_run)
    if choice.maildir is not None:
        return Maildir(choice.maildir)
    assert choice.mbox is not None
    return Mbox(choice.mbox)


@dataclass
class BounceSummary:
    """What one run found and did (``would`` have done, in a dry run)."""

    where: str
    dry_run: bool = False
    read: int = 0
    hard: int = 0
    soft: int = 0
    complaints: int = 0
    unsubscribes: int = 0
    suppressed: int = 0  # addresses suppressed by this run
    failed: int = 0  # ledger recipients marked failed
    delays: int = 0  # delay warnings: nothing to do
    unmatched: int = 0
    already: int = 0  # reports handled by an earlier run
    unreadable: int = 0
    notes: list[str] = field(default_factory=list)  # each unmatched and unreadable, and why
    warnings: list[str] = field(default_factory=list)

    @property
    def acted(self) -> int:
        """Addresses this run did something about."""
        return self.hard + self.soft + self.complaints + self.unsubscribes

    def lines(self) -> list[str]:
        """The summary for a person: the counts, then each unmatched and unreadable report."""
        would = " (dry run: nothing was changed)" if self.dry_run else ""
        rows = [
            ("hard bounces", self.hard),
            ("soft bounces", self.soft),
            ("complaints", self.complaints),
            ("unsubscribes", self.unsubscribes),
            ("suppressed now", self.suppressed),
            ("marked failed in the ledger", self.failed),
            ("delay warnings", self.delays),
            ("unmatched", self.unmatched),
            ("already processed", self.already),
            ("unreadable", self.unreadable),
        ]
        head = f"{self.where}: {self.read} report{'s' * (self.read != 1)} read{would}"
        return [head, *(f"  {label:<28} {count}" for label, count in rows), *self.notes]


def process_mailbox(
    settings: Settings, mailbox: Mailbox, *, dry_run: bool = False, now: datetime | None = None
) -> BounceSummary:
    """Read every new report in ``mailbox`` and act on it (see the module notes)."""
    place = settings.paths.state
    summary = BounceSummary(where=mailbox.where, dry_run=dry_run)
    with (
        closing(mailbox),
        open_suppressions(place) as suppressions,
        open_bounce_log(place) as log,
        open_ledger(place) as ledger,
        open_editions(place) as editions,
    ):
        stores = _Stores(suppressions, log, ledger, editions)
        run = _Run(settings, stores, summary, dry_run, now or now_utc())
        for mail in mailbox.messages():
            run.handle(mail)
            if not dry_run:
                mailbox.done(mail)
        summary.warnings.extend(mailbox.warnings)
    return summary


@dataclass(frozen=True)
class _Stores:
    """The parts of the state a run reads and writes."""

    suppressions: Suppressions
    log: BounceLog
    ledger: Ledger
    editions: EditionStore


class _Run:
    """One run's state: the stores, the matcher, the summary, the keys seen in this run."""

    def __init__(
        self,
        settings: Settings,
        stores: _Stores,
        summary: BounceSummary,
        dry_run: bool,
        now: datetime,
    ) -> None:
        self.bounces = settings.bounces
        self.suppressions, self.log, self.ledger = stores.suppressions, stores.log, stores.ledger
        self.matcher = Matcher(settings, stores.ledger, stores.editions)
        self.summary, self.dry_run, self.now = summary, dry_run, now
        self.keys: set[str] = set()

    def handle(self, mail: Mail) -> None:
        summary = self.summary
        summary.read += 1
        if mail.problem:
            summary.unreadable += 1
            summary.notes.append(f"unreadable: {mail.ref}: {mail.problem}")
            return
        report = read_report(mail.raw)
        if report.form == UNREADABLE:
            summary.unreadable += 1
            summary.notes.append(f"unreadable: {report.label} ({mail.ref}): {report.note}")
            return
        if report.key in self.keys or self.log.seen(report.key):
            summary.already += 1
            return
        self.keys.add(report.key)
        targets, why = self.matcher.targets(report)
        if not targets:
            if report.failures and all(f.kind == DELAYED for f in report.failures):
                summary.delays += 1
            else:
                summary.unmatched += 1
                summary.notes.append(f"unmatched: {report.label}: {why}")
            return
        at = min(report.at or self.now, self.now)
        events = [self._act(target, at) for target in targets]
        if not self.dry_run:
            self.log.record(report.key, events)

    def _act(self, target: Target, at: datetime) -> BounceEvent:
        self._count(target.kind)
        detail = target.status or ("abuse" if target.kind == COMPLAINT else "")
        if target.kind == SOFT:
            since = at - self.bounces.soft_window
            earlier = self.log.count(target.email, SOFT, since, at)
            if earlier + 1 >= self.bounces.soft_limit:
                days = self.bounces.soft_window_days
                detail = f"{target.status or 'soft'}: {earlier + 1} soft bounces in {days} days"
                self._suppress(target, detail, at)
        else:
            self._suppress(target, detail or target.kind, at)
        if target.kind in (HARD, SOFT) and target.edition_id:
            self._mark(target)
        return BounceEvent(target.email, target.kind, at, target.edition_id, target.status)

    def _count(self, kind: str) -> None:
        summary = self.summary
        match kind:
            case "hard":
                summary.hard += 1
            case "soft":
                summary.soft += 1
            case "complaint":
                summary.complaints += 1
            case _:
                summary.unsubscribes += 1

    def _suppress(self, target: Target, detail: str, at: datetime) -> None:
        source = "mailto" if target.kind == UNSUBSCRIBE else "bounces"
        if self.dry_run:
            added = self.suppressions.get(target.email) is None
        else:
            added = self.suppressions.add(
                target.email,
                _REASON[target.kind],
                source,
                edition_id=target.edition_id,
                detail=detail,
                at=at,
            )
        self.summary.suppressed += int(added)

    def _mark(self, target: Target) -> None:
        """Turn the recipient's ``sent`` into ``failed``: the message bounced after acceptance."""
        if self.matcher.state(target.edition_id, target.email) not in _MARKED:
            return
        reply = f"bounced ({target.kind}): {target.status} {target.diagnostic}".strip()
        if not self.dry_run:
            self.ledger.finish(target.edition_id, target.email, "failed", reply[:MAX_REPLY])
            self.matcher.note_state(target.edition_id, target.email, "failed")
        self.summary.failed += 1
