"""The public service's pages, from Jinja templates in the theme's ``web/`` folder.

A theme that has no ``web/`` folder, or lacks one of its pages, gets the bundled page,
so a theme copied before the service existed keeps working. Every page is autoescaped;
a ``.txt`` template (the text of an email the service sends) is not.
Each page gets the publication (name, colours, links) as ``publication`` besides what
the caller passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

from newsletter.config.paths import resource_path
from newsletter.config.settings import Settings
from newsletter.errors import RenderError

WEB_FOLDER = "web"


class PageRenderer:
    """Render the service's pages; the templates are read once and cached by Jinja."""

    def __init__(self, settings: Settings) -> None:
        folders = [settings.paths.templates / WEB_FOLDER, resource_path("templates") / WEB_FOLDER]
        unique = list(dict.fromkeys(folders))
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(f) for f in unique if f.is_dir()]),
            autoescape=jinja2.select_autoescape(disabled_extensions=("txt",), default=True),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._globals: dict[str, Any] = {
            "publication": settings.publication,
            "list": settings.list,
            "web": settings.web,
        }

    def render(self, name: str, context: Mapping[str, Any] | None = None) -> str:
        """Render the page ``name`` (such as ``unsubscribe.html``) with ``context``."""
        try:
            template = self._env.get_template(name)
            return template.render({**self._globals, **(context or {})})
        except jinja2.TemplateError as err:
            raise RenderError(f"web page {name}: {err}") from err


def page_folder(theme: Path) -> Path:
    """Where a theme keeps its web pages."""
    return theme / WEB_FOLDER
