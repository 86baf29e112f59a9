"""Tie a report to the subscriber and the edition it is about.

In order of trust:

1. a VERP return path of ours in the report (the address it was sent to, or the
   original's ``Return-Path``): its signed token names edition and recipient;
2. the original's Message-ID (``<edition.hash@domain>``, see ``messages``): its
   edition part names the edition and its hash, checked against that edition's
   recipients in the ledger, the recipient (complaints often withhold the address);
3. the original's ``List-Unsubscribe`` URL, whose token is signed for the address;
4. the addresses the report itself names (``Original-Recipient``, ``Final-Recipient``,
   ``X-Failed-Recipients``, ``Original-Rcpt-To``), with the edition of the Message-ID.

One message of ours has one recipient, so a report tied to a recipient by 1–3 is about
that address, even when a forwarding address failed further on. A report about another
list (its original's ``List-Id``) is left alone. An unsubscribe mail counts only when
its token verifies for its From address (HMAC, constant time).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from newsletter.bounces.report import (
    COMPLAINT,
    DELAYED,
    HARD,
    MAILTO,
    SOFT,
    UNSUBSCRIBE,
    Failure,
    Report,
)
from newsletter.config.settings import Settings
from newsletter.messages import message_id_digest, message_id_left
from newsletter.state.api import EditionStore, Ledger, normalize_email
from newsletter.tokens import ReturnPath, Signer, read_subscriber_ref, verp_edition_tag

_RANK = {HARD: 3, COMPLAINT: 3, UNSUBSCRIBE: 3, SOFT: 2, DELAYED: 1}


@dataclass(frozen=True)
class Target:
    """One address a report asks something of (``normalize_email``), and its edition ("")."""

    email: str
    kind: str
    status: str
    diagnostic: str
    edition_id: str


@dataclass
class _Edition:
    """One edition's recipients as the ledger knows them, hashed the ways reports name them."""

    states: dict[str, str]
    by_digest: dict[str, str] = field(default_factory=dict)
    by_verp: dict[str, str] = field(default_factory=dict)


class Matcher:
    """Resolve reports against the ledger; editions are looked at once per run, when needed."""

    def __init__(self, settings: Settings, ledger: Ledger, editions: EditionStore) -> None:
        self._ledger = ledger
        self._stored = editions
        self._list_id = settings.list.id.lower()
        key = settings.signing_key
        # Without the real key no token can be trusted: the development key is not secret.
        self._signer = Signer(key, settings.list.id) if key else None
        self._return_path = ReturnPath(key, settings.list.id, settings.return_path) if key else None
        self._editions: dict[str, _Edition] = {}
        self._ids: list[str] | None = None
        self._by_verp_tag: dict[str, list[str]] = {}

    # ------------------------------------------------------------------ what the ledger knows

    def _edition_ids(self) -> list[str]:
        if self._ids is None:
            self._ids = self._stored.ids()  # every edition that started going out
            for edition_id in self._ids:
                self._by_verp_tag.setdefault(verp_edition_tag(edition_id), []).append(edition_id)
        return self._ids

    def _edition(self, edition_id: str) -> _Edition:
        known = self._editions.get(edition_id)
        if known is None:
            states = self._ledger.states(edition_id)
            known = _Edition(states)
            for email in states:
                known.by_digest[message_id_digest(edition_id, email)] = email
            if self._return_path is not None:
                paths = self._return_path.edition(edition_id)
                known.by_verp = {paths.tag(email): email for email in states}
            self._editions[edition_id] = known
        return known

    def state(self, edition_id: str, email: str) -> str | None:
        """The ledger state of ``email`` in ``edition_id`` as this run knows it."""
        return self._edition(edition_id).states.get(normalize_email(email))

    def note_state(self, edition_id: str, email: str, state: str) -> None:
        """Remember that this run changed a recipient's state."""
        self._edition(edition_id).states[normalize_email(email)] = state

    # ------------------------------------------------------------------ the ways in

    def _by_verp(self, report: Report) -> tuple[str, str] | None:
        if self._return_path is None:
            return None
        tokens = self._return_path.tokens_in(report.text)
        if tokens:
            self._edition_ids()
        for edition_tag, tag in tokens:
            for edition_id in self._by_verp_tag.get(edition_tag, []):
                email = self._edition(edition_id).by_verp.get(tag)
                if email is not None:
                    return email, edition_id
        return None

    def _by_unsubscribe_link(self, report: Report) -> str | None:
        if self._signer is None or not report.original.list_unsubscribe:
            return None
        for part in report.original.list_unsubscribe.split(","):
            query = parse_qs(urlsplit(part.strip().strip("<>")).query)
            refs, tokens = query.get("s", []), query.get("token", [])
            if len(refs) != 1 or len(tokens) != 1:
                continue
            try:
                email = read_subscriber_ref(refs[0])
            except (ValueError, UnicodeError):
                continue
            if self._signer.verify(email, tokens[0]):
                return email
        return None

    def _editions_of(self, report: Report) -> tuple[list[str], str]:
        """The editions whose Message-IDs look like the original's, and its hash part."""
        message_id = report.original.message_id.strip("<>")
        left, _, digest = message_id.partition("@")[0].rpartition(".")
        if not left or len(digest) != 16:
            return [], ""
        return [e for e in self._edition_ids() if message_id_left(e) == left], digest

    # ------------------------------------------------------------------ the report

    def targets(self, report: Report) -> tuple[list[Target], str]:
        """What ``report`` asks of whom; or nothing, and why."""
        if report.form == MAILTO:
            return self._unsubscribe(report)
        list_id = report.original.list_id
        if list_id and list_id != self._list_id:
            return [], f"a {report.form} about another list ({list_id})"
        failures = [f for f in report.failures if f.kind != DELAYED]
        if not failures:
            return [], report.note or "a delay warning: the server still tries"
        editions, digest = self._editions_of(report)
        edition = editions[0] if len(editions) == 1 else ""
        found = self._by_verp(report) or self._by_message_id(editions, digest)
        if found is None and (email := self._by_unsubscribe_link(report)) is not None:
            found = email, edition
        if found is not None:  # one message, one reader: the worst of what the report says
            worst = max(failures, key=lambda f: _RANK.get(f.kind, 0))
            return [_target(worst, *found)], ""
        targets = [_target(f, f.email, edition) for f in failures if f.email]
        return targets, "" if targets else f"a {report.form} naming no recipient we can tell"

    def _by_message_id(self, editions: list[str], digest: str) -> tuple[str, str] | None:
        for edition_id in editions:
            email = self._edition(edition_id).by_digest.get(digest)
            if email is not None:
                return email, edition_id
        return None

    def _unsubscribe(self, report: Report) -> tuple[list[Target], str]:
        if self._signer is None:
            return [], "an unsubscribe mail; NEWSLETTER_SIGNING_KEY is needed to check its token"
        if not report.sender or not self._signer.verify(report.sender, report.token):
            return [], "an unsubscribe mail whose token is not its sender's"
        failure = Failure(report.sender, UNSUBSCRIBE)
        return [_target(failure, report.sender, "")], ""


def _target(failure: Failure, email: str, edition_id: str) -> Target:
    return Target(
        normalize_email(email), failure.kind, failure.status, failure.diagnostic, edition_id
    )
