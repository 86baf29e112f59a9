"""The starter project ``newsletter init`` writes: the sample publication, dated to now.

The sample articles are written for one moment, ``SAMPLE_NOW``. A starter moves
every article's times by the same amount, so its newest story is as fresh at
``init`` as it was then, and ``newsletter build`` finds news on any day.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from newsletter import clock
from newsletter.config.paths import CONFIG_NAME, SAMPLE_DIR, resource_path
from newsletter.errors import NewsletterError

# The moment the sample content is written for (its newest story is 39 minutes old then),
# with the offset of the sample publication's time zone.
SAMPLE_NOW = datetime.fromisoformat("2026-03-04T18:00:00+05:30")
ARTICLES = Path("content") / "articles.json"
TIME_FIELDS = ("published", "updated")

STARTER_TABLES = (
    '\n[subscribers]\nfile = "subscribers.csv"\n'
    '\n[templates]\ndir = "templates"   # edit these to restyle the email\n'
    '\n[output]\nbuild_dir = "out"\noutbox = "outbox"\nstate_dir = ".newsletter"\n'
    '\n[smtp]\n# host = "smtp.example.org"\n# port = 587\n# security = "starttls"\n'
    '# username = "newsletter"   # password: NEWSLETTER_SMTP_PASSWORD\n'
)


def write_starter(directory: Path, now: datetime) -> None:
    """Write a starter project into ``directory`` (new or empty), its articles dated to ``now``.

    A time without an offset is taken in the sample publication's time zone.
    """
    if directory.exists() and any(directory.iterdir()):
        raise NewsletterError(
            f"{directory} is not empty; choose a new folder so nothing is overwritten"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copytree(SAMPLE_DIR / "content", directory / "content")
        shutil.copytree(resource_path("templates"), directory / "templates")
        shutil.copyfile(resource_path("subscribers.example.csv"), directory / "subscribers.csv")
        articles = (SAMPLE_DIR / ARTICLES).read_text(encoding="utf-8")
        shift = sample_shift(clock.in_zone(now, SAMPLE_NOW.tzinfo or UTC))
        (directory / ARTICLES).write_text(dated(articles, shift), encoding="utf-8")
        config = (SAMPLE_DIR / CONFIG_NAME).read_text(encoding="utf-8") + STARTER_TABLES
        (directory / CONFIG_NAME).write_text(config, encoding="utf-8")
    except OSError as err:
        raise NewsletterError(f"{directory}: cannot write the starter ({err.strerror})") from err


def sample_shift(now: datetime) -> timedelta:
    """How far to move the sample's times so they read as if written at ``now`` (whole minutes)."""
    return timedelta(minutes=(now - SAMPLE_NOW) // timedelta(minutes=1))


def dated(articles_json: str, shift: timedelta) -> str:
    """The sample's articles file with every article's times moved by ``shift``."""
    data = json.loads(articles_json)
    for article in data["articles"]:
        for key in TIME_FIELDS:
            if article.get(key):
                moved = datetime.fromisoformat(article[key]) + shift
                article[key] = moved.isoformat()
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
