"""Who a send goes to: the subscriber list and the subscribers the tool holds, less the suppressed.

The rules, for every send (live, dry run, test copy, scheduled, resumed):

- The list (``[subscribers] file``, a CSV) is read as ``subscribers.reader`` reads it:
  its active rows are mailed, in its order.
- The subscribers the tool holds (``Members``: confirmed through the subscribe form, or
  imported) are mailed too, after the list, in the order they joined. An address on
  both is mailed once, as the list has it.
- The list's status wins over the tool's members: an address with a non-active status
  anywhere in the file (unsubscribed, bounced …) is not mailed.
- The suppression list wins over both: a suppressed address is never mailed; each one
  left out is counted (``Reach.suppressed``). A test copy (``--to``) to a suppressed
  address is not sent either; a warning says so.

A shard takes its part of the whole; a limit counts from the start of the whole.
Addresses are compared by ``state.api.normalize_email``.
"""

from __future__ import annotations

from collections.abc import Container, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from newsletter.errors import SubscriberError
from newsletter.models import Subscriber
from newsletter.redaction import mask_address
from newsletter.state.api import Ledger, normalize_email
from newsletter.state.lists import Member
from newsletter.state.openers import Place, open_members, open_suppressions
from newsletter.state.watch import SuppressionWatch, suppressed_reply
from newsletter.subscribers.addresses import check_address
from newsletter.subscribers.reader import SubscriberScan, empty_message, read_subscribers
from newsletter.subscribers.shard import in_shard

# Ledger states a suppressed recipient of a resumed send leaves (``in_flight``: when its
# message is sent again, as under ``resend``).
_NOT_DONE = ("pending", "deferred")


@dataclass(frozen=True)
class Audience:
    """Who a send goes to: the list (sharded, limited) or one test address."""

    subscribers_path: Path
    shard: tuple[int, int] | None = None
    limit: int | None = None
    to: str | None = None


@dataclass
class Reach:
    """What one read of an audience found: the list's scan, and what the state changed."""

    scan: SubscriberScan
    mailed: int = 0  # subscribers handed out to mail, members included
    members: int = 0  # subscribers the tool holds who are not on the list, mailed
    suppressed: int = 0  # addresses left out: on the suppression list

    @classmethod
    def of(cls, audience: Audience) -> Reach:
        """A fresh reach for one read of ``audience``."""
        return cls(SubscriberScan(path=audience.subscribers_path))


@dataclass(frozen=True)
class Held:
    """What the state holds for a send: its members, and the suppressed keys.

    ``suppressed`` answers ``key in suppressed`` for a ``normalize_email`` key.
    """

    members: Sequence[Member] = ()
    suppressed: Container[str] = field(default_factory=frozenset)


def held_in(place: Place) -> Held:
    """The members and the suppressed keys in the state, as they are now."""
    with open_suppressions(place) as suppressions:
        _cursor, keys = suppressions.changes(0)
    return Held(members_in(place), frozenset(keys))


@contextmanager
def watching(place: Place) -> Iterator[tuple[Held, SuppressionWatch]]:
    """For a live send: what the state holds now, and a watch that keeps learning.

    The list is read against the suppressions as they are when the send starts, so the
    count it sets out to reach holds; one suppressed after that is left out by the
    sender when it comes to claim it (``SuppressionWatch.reason``) and recorded.
    """
    with open_suppressions(place) as suppressions:
        watch = SuppressionWatch(suppressions)
        yield Held(members_in(place), watch.snapshot()), watch


def members_in(place: Place) -> tuple[Member, ...]:
    """Every subscriber the tool holds, in the order they joined."""
    with open_members(place) as members:
        return tuple(members.all())


def recipients(audience: Audience, reach: Reach, held: Held) -> Iterator[Subscriber]:
    """Stream the subscribers this send goes to, counting what was left out in ``reach``.

    Raises ``SubscriberError`` (at the end) when no one at all is left to mail.
    """
    if audience.to:
        return _test_copy(audience.to, reach, held)
    stream = _everyone(audience, reach, held)
    return islice(stream, audience.limit) if audience.limit is not None else stream


def count_recipients(audience: Audience, held: Held) -> int:
    """How many subscribers a send will go to (reads the list once; errors surface here)."""
    return sum(1 for _ in recipients(audience, Reach.of(audience), held))


def expected(audience: Audience, held: Held, known: Mapping[str, str]) -> int:
    """How many a send sets out to reach: those in its ledger (``known``) and those new."""
    listed = recipients(audience, Reach.of(audience), held)
    return len(known) + sum(1 for s in listed if normalize_email(s.email) not in known)


def normalize_address(address: str) -> str:
    """Validate a ``--to`` address by the subscriber list's rule; return it normalized."""
    result = check_address(address)
    if isinstance(result, str):
        return result
    raise SubscriberError(f"--to {address!r}: {result}; give a valid address")


def _test_copy(address: str, reach: Reach, held: Held) -> Iterator[Subscriber]:
    if normalize_email(address) in held.suppressed:
        reach.suppressed += 1
        reach.scan.warnings.append(
            f"the test copy to {mask_address(address)} is not sent: the address is on the "
            "suppression list ('newsletter suppressions list'; remove it there to send to it)"
        )
        return
    reach.mailed += 1
    yield Subscriber(email=address, name="", line=0)


def _list_then_members(
    audience: Audience, reach: Reach, held: Held
) -> Iterator[tuple[str, Subscriber, bool]]:
    """The list's active subscribers, then the members not on it: key, subscriber, member."""
    pending = {normalize_email(m.email): m for m in held.members}
    listed = read_subscribers(
        audience.subscribers_path, scan=reach.scan, include_inactive=True, allow_empty=True
    )
    for subscriber in listed:
        key = normalize_email(subscriber.email)
        pending.pop(key, None)  # on the list: the list's row (and status) wins
        if subscriber.active:
            yield key, subscriber, False
    for key, member in pending.items():
        yield key, Subscriber(email=member.email, name=member.name, line=0), True


def _everyone(audience: Audience, reach: Reach, held: Held) -> Iterator[Subscriber]:
    """The list's active subscribers, then the members not on it; the suppressed left out."""
    shard, suppressed = audience.shard, held.suppressed
    candidates = unsuppressed = 0  # whoever would be mailed, in any shard
    for key, subscriber, member in _list_then_members(audience, reach, held):
        candidates += 1
        mine = in_shard(subscriber.email, shard)
        if key in suppressed:
            reach.suppressed += mine
            continue
        unsuppressed += 1
        if mine:
            reach.members += member
            reach.mailed += 1
            yield subscriber
    if not unsuppressed:
        raise SubscriberError(_nobody(reach, candidates))


def _nobody(reach: Reach, candidates: int) -> str:
    """Explain why no one is left to mail."""
    scan = reach.scan
    if not candidates:
        return empty_message(scan, str(scan.path))
    return (
        f"no one to mail: all {candidates} active subscriber(s) of {scan.path} and of the "
        "subscribers the tool holds are on the suppression list (see 'newsletter "
        "suppressions list')"
    )


def close_suppressed(
    ledger: Ledger,
    edition_id: str,
    known: Mapping[str, str],
    watch: SuppressionWatch,
    *,
    resend: bool,
) -> int:
    """Finish the recipients of a resumed send who were suppressed since it began.

    They are left out of the send; the ledger records them ``failed`` with the reply
    ``suppressed: <reason>``, so ``status`` adds up and says why. ``in_flight`` ones are
    included when ``resend`` (they would be sent again), else left for a person.
    Returns how many were finished.
    """
    states = (*_NOT_DONE, "in_flight") if resend else _NOT_DONE
    finished = 0
    for email, state in known.items():
        if state not in states:
            continue
        reason = watch.reason(email)
        if reason is not None:
            ledger.finish(edition_id, email, "failed", suppressed_reply(reason))
            finished += 1
    return finished
