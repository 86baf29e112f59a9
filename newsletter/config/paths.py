"""Where things are: the bundled sample and templates, and configured paths resolved.

Paths in the config resolve against the folder of the config file, never the
working directory.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

CONFIG_NAME = "newsletter.toml"

PACKAGE_DIR = Path(__file__).resolve().parent.parent
SAMPLE_DIR = PACKAGE_DIR / "sample"


def resource_path(name: str) -> Path:
    """Find a bundled resource: inside the installed package, else the source checkout."""
    packaged = {
        "templates": PACKAGE_DIR / "templates",
        "subscribers.example.csv": SAMPLE_DIR / "subscribers.example.csv",
    }[name]
    if packaged.exists():
        return packaged
    return PACKAGE_DIR.parent / name


def resolve_path(root: Path, value: str) -> Path:
    """Resolve a configured path against the config file's folder."""
    return (root / Path(value).expanduser()).resolve()


def resolve_source(root: Path, value: str) -> str:
    """A source is a URL (kept as is) or a path (resolved against the config folder)."""
    if urlsplit(value).scheme in ("http", "https"):
        return value
    return str(resolve_path(root, value))
