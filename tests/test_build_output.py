"""What a build owns in its output folder: its own files are replaced, others only by force."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from newsletter.build_output import MANIFEST, claim, foreign_files, owned_files
from newsletter.errors import OutputExistsError

NAMES = ("edition.html", "edition.txt", "edition.json", "preview.html")


def test_a_new_folder_is_claimed_and_recorded(tmp_path: Path) -> None:
    folder = tmp_path / "out" / "deep"
    claim(folder, NAMES)
    record = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    assert record["files"] == sorted(NAMES)
    assert owned_files(folder) == set(NAMES)


def test_its_own_files_are_replaced_and_others_left_alone(tmp_path: Path) -> None:
    claim(tmp_path, NAMES)
    for name in NAMES:
        (tmp_path / name).write_text("built", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    assert foreign_files(tmp_path, NAMES) == []
    claim(tmp_path, NAMES)  # a rebuild: no error


def test_files_no_build_wrote_are_named(tmp_path: Path) -> None:
    (tmp_path / "edition.html").write_text("mine", encoding="utf-8")
    with pytest.raises(OutputExistsError, match=r"edition\.html already exists and was not"):
        claim(tmp_path, NAMES)
    (tmp_path / "preview.html").write_text("mine", encoding="utf-8")
    with pytest.raises(OutputExistsError, match=r"edition\.html, preview\.html already exist"):
        claim(tmp_path, NAMES)
    assert not (tmp_path / MANIFEST).exists()  # refusing records nothing
    claim(tmp_path, NAMES, force=True)
    assert owned_files(tmp_path) == set(NAMES)


def test_a_manifest_that_is_not_ours_is_someone_elses_file(tmp_path: Path) -> None:
    (tmp_path / MANIFEST).write_text("{not json", encoding="utf-8")
    (tmp_path / "edition.txt").write_text("x", encoding="utf-8")
    assert owned_files(tmp_path) is None
    assert foreign_files(tmp_path, NAMES) == ["edition.txt", MANIFEST]
    (tmp_path / MANIFEST).write_text('{"written_by": "someone", "files": []}', encoding="utf-8")
    assert owned_files(tmp_path) is None


def test_a_name_the_last_build_did_not_record_is_foreign(tmp_path: Path) -> None:
    claim(tmp_path, NAMES[:3])
    (tmp_path / "preview.html").write_text("mine", encoding="utf-8")
    assert foreign_files(tmp_path, NAMES) == ["preview.html"]
