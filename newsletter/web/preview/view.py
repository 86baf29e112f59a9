"""Everything one rendering of the preview page shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from newsletter.config.settings import Settings
from newsletter.models import Subscriber
from newsletter.pipeline import BuildResult
from newsletter.web.preview.personal import Personal
from newsletter.web.preview.problems import Problem


@dataclass(frozen=True)
class PageView:
    """Everything one rendering of the page shows."""

    version: str
    settings: Settings | None
    result: BuildResult | None
    built_at: datetime
    problem: Problem | None = None
    warnings: tuple[str, ...] = ()
    personal: Personal | None = None
    personal_problem: Problem | None = None
    wanted: str = ""
    choices: tuple[Subscriber, ...] = ()
    choices_note: str = ""
    watched: tuple[Path, ...] = ()
    lead_url: str = ""
