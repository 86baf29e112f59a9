"""Check what an edition goes out with: values left from the starter, and the subscriber list.

``newsletter check`` runs these beside the edition's own preflight; a send does not,
as it reads the list itself and stops on the same file-level problems. The caller may
say how the subscribers are read (``ListRead``: the send's audience, with the
subscribers the tool holds and the suppressed left out); by default, the list alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from newsletter.config.leftovers import Leftover, starter_leftovers
from newsletter.config.settings import Settings
from newsletter.errors import SubscriberError
from newsletter.hosts import is_example_domain
from newsletter.models import Edition, Subscriber
from newsletter.preflight.findings import Finding, Report, show
from newsletter.subscribers.reader import SubscriberScan, read_subscribers


@dataclass(frozen=True)
class ListRead:
    """How to read the subscribers for a check: the scan the read fills, and the read."""

    scan: SubscriberScan
    read: Callable[[], Iterable[Subscriber]]

    @classmethod
    def of_list(cls, path: Path) -> ListRead:
        """Read the list at ``path`` alone."""
        scan = SubscriberScan(path=path)
        return cls(scan, lambda: read_subscribers(path, scan=scan))


@dataclass(frozen=True)
class ProjectCheck:
    """The findings, and what reading the subscriber list counted (None if it cannot be read)."""

    findings: list[Finding]
    subscribers: SubscriberScan | None


def check_project(
    settings: Settings, edition: Edition, subscribers: ListRead | None = None
) -> ProjectCheck:
    """Check the config for starter values, the stories' links, and the subscriber list.

    With the bundled sample every value is a placeholder: only the list is checked.
    """
    out = Report()
    starter = not settings.is_sample
    if starter and settings.paths.config_file is not None:
        for leftover in starter_leftovers(settings.paths.config_file):
            out.warning("starter-value", describe(leftover))
    if starter:
        check_story_links(edition, out)
    listing = subscribers or ListRead.of_list(settings.paths.subscribers)
    scan = check_subscribers(listing, out, examples=starter)
    return ProjectCheck(out.findings, scan)


def describe(leftover: Leftover) -> str:
    """Say which key holds a starter value, why it is one, and what to set."""
    if leftover.is_sample and leftover.domain:
        why = f"the sample publication's (on the example domain {leftover.domain})"
    elif leftover.is_sample:
        why = "the sample publication's"
    else:
        why = f"on the example domain {leftover.domain}, which no one can reach"
    return f"{leftover.key} is {show(leftover.value, 60)}, {why}; set {leftover.hint}"


def check_story_links(edition: Edition, out: Report) -> None:
    """Warn when the stories link to example domains: the content is still the sample's."""
    articles = edition.digest.articles()
    example = [a.url for a in articles if is_example_domain(urlsplit(a.url).hostname or "")]
    if example:
        out.warning(
            "starter-content",
            f"{len(example)} of the edition's {len(articles)} stories link to example domains "
            f"(such as {show(example[0], 60)}): the content is still the starter's sample; "
            "set [content] sources to your own feed or articles file",
        )


def check_subscribers(
    listing: ListRead, out: Report, *, examples: bool = True
) -> SubscriberScan | None:
    """Read the whole list: an error if it is unreadable or has no one to mail, row warnings.

    With ``examples``, also warn about active addresses on example domains.
    """
    scan, path = listing.scan, listing.scan.path
    on_example = mailed = 0
    try:
        for subscriber in listing.read():
            mailed += 1
            on_example += is_example_domain(subscriber.email.rpartition("@")[2])
    except SubscriberError as err:
        out.error("subscribers", str(err))
        return None
    for warning in scan.warnings:
        out.warning("subscriber-row", warning)
    if examples and on_example:
        out.warning(
            "subscribers-example",
            f"{path}: {on_example} of {mailed} active address(es) are on example domains, "
            "which receive no mail; replace them with your subscribers",
        )
    return scan
