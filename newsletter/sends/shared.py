"""A send shared by any number of senders through a PostgreSQL state.

Under the edition lock a sender joins the edition being sent, or builds one and stores
it with its list; then it sends its part (``delivery.crew``).
"""

from __future__ import annotations

import threading
from dataclasses import replace

from newsletter.audience import (
    Held,
    Reach,
    recipients,
    watching,
)
from newsletter.bookkeeping import (
    CountOnFirstAcceptance,
    count_if_reached,
)
from newsletter.clock import now_utc
from newsletter.config.settings import Settings
from newsletter.config.state import PostgresUrl
from newsletter.delivery.crew import Joined, SharedSend, join, send_shared
from newsletter.errors import UsageProblem
from newsletter.pipeline import Messages
from newsletter.sends.gate import prepare
from newsletter.sends.locks import edition_lock
from newsletter.sends.plan import Prepared, SendHooks, SendPlan, SendReport
from newsletter.state.openers import open_crew, open_editions, open_ledger


def send_shared_edition(settings: Settings, plan: SendPlan, hooks: SendHooks) -> SendReport:
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
            envelope_from=settings.return_path,
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
    prepared = prepare(settings, plan, hooks.warn)
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
