"""Spam score: the real sample edition, built by the real pipeline, scored by SpamAssassin offline.

``spamassassin -L`` runs only local rules (no DNS, no network). Outside CI the test
skips when SpamAssassin is not installed; with ``CI`` set it fails instead.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from newsletter.config.load import load_settings
from newsletter.models import Subscriber
from newsletter.pipeline import BuildOptions, Messages, build_edition

MAX_SCORE = 1.0
NOW = "2026-03-04T18:00:00+05:30"
_RULE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s+(.*)$")
_SCORE = re.compile(r"Content analysis details:\s+\((-?\d+(?:\.\d+)?) points")


def _spamassassin() -> str:
    path = shutil.which("spamassassin")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the spam check: apt-get install -y spamassassin")
        pytest.skip("spamassassin is not installed (apt-get install -y spamassassin)")
    return path


def _sample_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """Build the bundled sample edition and one personalized message, as a send would."""
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None)
    result = build_edition(settings, BuildOptions(now=datetime.fromisoformat(NOW)))
    reader = Subscriber(email="ana.souza@example.org", name="Ana Souza")
    return Messages(settings, result.edition).build(reader).data


def score(spamassassin: str, data: bytes, home: Path) -> tuple[float, list[tuple[float, str, str]]]:
    """Run SpamAssassin with local rules only; return the score and the rules that hit."""
    env = {**os.environ, "HOME": str(home)}
    done = subprocess.run(
        [spamassassin, "-L", "-t"],
        input=data,
        capture_output=True,
        timeout=300,
        check=False,
        env=env,
    )
    report = done.stdout.decode("utf-8", "replace")
    details = report.split("Content analysis details:", 1)
    match = _SCORE.search(report)
    if done.returncode not in (0, 1) or match is None or len(details) < 2:
        pytest.fail(f"spamassassin failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    rules = []
    for line in details[1].splitlines():
        hit = _RULE.match(line)
        if hit:
            rules.append((float(hit.group(1)), hit.group(2), hit.group(3).strip()))
    return float(match.group(1)), rules


@pytest.mark.slow
def test_sample_edition_scores_at_most_one_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spamassassin = _spamassassin()
    data = _sample_message(tmp_path, monkeypatch)
    total, rules = score(spamassassin, data, tmp_path)
    print(f"SpamAssassin score {total} (limit {MAX_SCORE})")
    for points, name, description in rules:
        print(f"  {points:5.1f} {name:28} {description}")
    scoring = [f"{name} ({points})" for points, name, _ in rules if points > 0]
    assert total <= MAX_SCORE, f"score {total} > {MAX_SCORE}: {', '.join(scoring)}"


@pytest.mark.slow
def test_the_scorer_sees_a_broken_message(tmp_path: Path) -> None:
    """Guard the harness: a message without Date and text part must score, and be parsed."""
    spamassassin = _spamassassin()
    data = (
        b"From: Promo <promo@deals.example>\r\nTo: a@example.org\r\nSubject: HELLO THERE FRIEND\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><body><p>Hi</p></body></html>\r\n"
    )
    total, rules = score(spamassassin, data, tmp_path)
    names = {name for _points, name, _ in rules}
    assert "MISSING_DATE" in names
    assert total > MAX_SCORE
