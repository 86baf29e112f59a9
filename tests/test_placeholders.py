"""Personal placeholders: what ``newsletter.placeholders`` promises the renderer and the factory."""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import pytest

from newsletter import placeholders
from newsletter.config.load import load_settings
from newsletter.models import Edition
from newsletter.pipeline import BuildOptions, build_edition

DEMO_NOW = datetime.fromisoformat("2026-03-04T18:00:00+05:30")  # the sample content's day
SLOTS = {  # how a theme names each token (``slots.greeting`` …)
    "greeting": placeholders.GREETING,
    "email": placeholders.EMAIL,
    "unsubscribe_url": placeholders.UNSUBSCRIBE_URL,
}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Edition, Path]]:
    """Render the bundled sample edition for real; yield it and its theme folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("sample"))  # the sample keeps its state here
        settings = load_settings(None)
        yield build_edition(settings, BuildOptions(now=DEMO_NOW)).edition, settings.paths.templates


def places(theme: Path, pattern: str, slot: str) -> int:
    """Count the places the theme's templates matching ``pattern`` write ``slots.<slot>``.

    Every partial of the sample theme is included once and no slot sits in a loop, so a
    place in the source is one occurrence in the rendered part.
    """
    used = re.compile(rf"\bslots\.{slot}\b")
    return sum(len(used.findall(path.read_text("utf-8"))) for path in theme.glob(pattern))


def test_tokens_are_plain_ascii_letters() -> None:
    for token in placeholders.ALL:
        assert re.fullmatch("[A-Za-z]+", token), token
        assert html.escape(token) == token
        assert quote(token, safe="") == token


def test_all_holds_each_token_once() -> None:
    assert set(placeholders.ALL) == set(SLOTS.values())
    assert len(set(placeholders.ALL)) == len(placeholders.ALL)


def test_no_token_is_inside_another() -> None:
    for one, other in itertools.permutations(placeholders.ALL, 2):
        assert one not in other, (one, other)


@pytest.mark.parametrize("slot", SLOTS)
def test_each_token_survives_the_sample_render_once_per_place(
    sample: tuple[Edition, Path], slot: str
) -> None:
    edition, theme = sample
    token = SLOTS[slot]
    html_places, text_places = places(theme, "*.mjml.j2", slot), places(theme, "*.txt.j2", slot)
    assert html_places >= 1
    assert text_places >= 1
    assert edition.html.count(token) == html_places
    assert edition.text.count(token) == text_places
