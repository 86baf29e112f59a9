"""The preview page as one self-contained file beside the edition: ``preview.html``."""

from __future__ import annotations

from pathlib import Path

from newsletter.config.settings import Settings
from newsletter.errors import NewsletterError, OutputExistsError
from newsletter.models import Subscriber
from newsletter.pipeline import BuildResult, Messages
from newsletter.preflight.sample import sample_subscriber
from newsletter.web.preview.page import static_page
from newsletter.web.preview.personal import personalize
from newsletter.web.preview.view import PageView

STATIC_NAME = "preview.html"


def static_preview_html(
    result: BuildResult, settings: Settings, subscriber: Subscriber | None = None
) -> str:
    """Render the preview page as one self-contained document (no server, no live reload)."""
    who = subscriber or sample_subscriber(settings)
    made = personalize(
        result,
        Messages(settings, result.edition),
        who,
        is_sample=who == sample_subscriber(settings),
    )
    view = PageView(
        version=result.edition.id,
        settings=settings,
        result=result,
        warnings=result.warnings,
        personal=made,
        built_at=result.edition.created,
    )
    return static_page(view)


def write_static_preview(
    result: BuildResult,
    settings: Settings,
    out_dir: Path,
    *,
    force: bool = False,
    subscriber: Subscriber | None = None,
) -> Path:
    """Write ``preview.html`` into ``out_dir``; refuse to replace it without ``force``."""
    target = Path(out_dir) / STATIC_NAME
    if target.exists() and not force:
        raise OutputExistsError(
            f"{target} already exists; use --force to replace it or choose another --out"
        )
    text = static_preview_html(result, settings, subscriber)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8", newline="")
    except OSError as err:
        raise NewsletterError(f"{target}: cannot write the preview ({err.strerror})") from err
    return target
