"""One build of the preview: the settings, the edition, or the problem that stopped it.

``build_snapshot`` never raises for a user's mistake: a bad config, template, content
file or subscriber list becomes a ``Problem`` the page shows, with the file and line.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

from newsletter.config.load import load_settings
from newsletter.config.settings import Settings
from newsletter.errors import (
    ConfigError,
    ContentError,
    NewsletterError,
    NothingToSend,
    RenderError,
    SubscriberError,
)
from newsletter.models import Subscriber
from newsletter.pipeline import BuildOptions, BuildResult, Messages, build_edition
from newsletter.sources.fetch import is_url
from newsletter.subscribers.reader import read_subscribers
from newsletter.web.preview.problems import Problem, problem
from newsletter.web.preview.watch import Signature, Watch

MAX_CHOICES = 50

_TITLES = {
    "config": "The configuration has a problem",
    "template": "A template could not be rendered",
    "content": "The content could not be read",
    "nothing": "Nothing to send",
    "subscribers": "The subscriber list has a problem",
    "build": "The edition could not be built",
}


@dataclass(frozen=True)
class PreviewOptions:
    """What the preview builds: the config (``None``: the bundled sample) and build flags.

    A naive ``build.now`` is taken in the publication's time zone. ``subscriber`` is the
    address shown when the page's URL names none (default: the sample subscriber).
    """

    config: Path | None = None
    build: BuildOptions = field(default_factory=BuildOptions)
    subscriber: str = ""


@dataclass(frozen=True, eq=False)
class Snapshot:
    """One build of the preview: the edition or the problem that stopped it."""

    version: str
    built_at: datetime
    watch: Watch
    signature: Signature
    settings: Settings | None = None
    result: BuildResult | None = None
    messages: Messages | None = None
    problem: Problem | None = None
    warnings: tuple[str, ...] = ()
    choices: tuple[Subscriber, ...] = ()
    choices_note: str = ""

    @property
    def ok(self) -> bool:
        """Whether there is an edition to show."""
        return self.result is not None and self.messages is not None


def watch_for(settings: Settings | None, options: PreviewOptions) -> Watch:
    """List what the preview depends on: config, templates, local sources, subscribers."""
    files: list[Path] = []
    folders: list[Path] = []
    if options.config is not None:
        files.append(options.config.resolve())
    if settings is None:
        return Watch(tuple(files))
    if settings.paths.config_file and settings.paths.config_file not in files:
        files.append(settings.paths.config_file)
    folders.append(settings.paths.templates)
    for spec in options.build.sources or settings.paths.sources:
        if is_url(spec):
            continue
        path = Path(spec).expanduser().resolve()
        (folders if path.is_dir() else files).append(path)
    files.append(settings.paths.subscribers)
    return Watch(tuple(dict.fromkeys(files)), tuple(dict.fromkeys(folders)))


def build_snapshot(options: PreviewOptions, version: str) -> Snapshot:
    """Load the settings and build the edition; every user mistake becomes a ``Problem``."""
    started = datetime.now(UTC)
    try:
        settings = load_settings(options.config)
    except ConfigError as err:
        watch = watch_for(None, options)
        return Snapshot(
            version, started, watch, watch.signature(), problem=_problem(err, watch, "config")
        )
    watch = watch_for(settings, options)
    choices, note = _choices(settings)
    base = Snapshot(
        version, started, watch, watch.signature(), settings, choices=choices, choices_note=note
    )
    try:
        result = build_edition(settings, options.build)
        messages = Messages(settings, result.edition)
    except NewsletterError as err:
        found = _problem(err, watch, _kind(err), err.warnings)
        return replace(base, problem=found, warnings=err.warnings)
    except Exception:  # the preview outlives a bug in any stage, and shows it
        trace = traceback.format_exc()
        print(trace, file=sys.stderr)
        return replace(base, problem=problem("The preview hit a bug", trace, "bug"))
    return replace(base, result=result, messages=messages, warnings=result.warnings)


def _problem(err: NewsletterError, watch: Watch, kind: str, clues: Iterable[str] = ()) -> Problem:
    return problem(_TITLES[kind], str(err), kind, watch.paths(), "\n".join(clues))


def _kind(err: NewsletterError) -> str:
    for cls, kind in (
        (NothingToSend, "nothing"),
        (ConfigError, "config"),
        (RenderError, "template"),
        (ContentError, "content"),
        (SubscriberError, "subscribers"),
    ):
        if isinstance(err, cls):
            return kind
    return "build"


def _choices(settings: Settings) -> tuple[tuple[Subscriber, ...], str]:
    """The first active subscribers for the picker, or why the list cannot be read."""
    try:
        found = tuple(islice(read_subscribers(settings.paths.subscribers), MAX_CHOICES))
    except SubscriberError as err:
        return (), str(err)
    return found, ""
