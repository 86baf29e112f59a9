"""Load the settings: ``newsletter.toml`` plus secrets from the environment, validated at once.

Every problem in the file is collected and reported together, each naming its key.
Paths resolve against the folder of the config file, never the working directory.
Without a config file the bundled sample publication is used.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from newsletter.config.bounces import read_bounces
from newsletter.config.delivery import read_list, read_send, read_sender, read_smtp
from newsletter.config.editorial import read_email, read_mapping, read_selection
from newsletter.config.paths import (
    CONFIG_NAME,
    SAMPLE_DIR,
    resolve_path,
    resolve_source,
    resource_path,
)
from newsletter.config.publication import read_publication
from newsletter.config.reader import TableReader
from newsletter.config.schedules import read_schedules
from newsletter.config.settings import (
    ENV_CONFIG,
    ENV_SIGNING_KEY,
    Paths,
    Settings,
)
from newsletter.config.state import read_state
from newsletter.config.web import read_web
from newsletter.dkim.settings import DkimSettings, parse_dkim
from newsletter.errors import ConfigError


def parse_settings(
    data: Mapping[str, Any],
    root: Path,
    *,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    is_sample: bool = False,
) -> Settings:
    """Validate parsed TOML into ``Settings``; raise one ``ConfigError`` listing all problems."""
    env = os.environ if environ is None else environ
    problems: list[str] = []
    top = TableReader(data, problems)

    publication = read_publication(top)
    sender = read_sender(top, publication.name)
    list_settings = read_list(top, publication.name)
    web = read_web(top, list_settings)

    co = top.table("content")
    sources = tuple(resolve_source(root, v) for v in co.strings("sources", ()) if v)
    strict = co.flag("strict", False)
    co.finish()

    rules = read_selection(top)
    email = read_email(top)
    smtp = read_smtp(top, env)
    send = read_send(top)
    bounces = read_bounces(top, smtp.envelope_from or sender.address)

    sub = top.table("subscribers")
    subscribers_value = sub.text("file", "")
    sub.finish()
    out = top.table("output")
    build_dir = out.text("build_dir", "out")
    outbox = out.text("outbox", "outbox")
    state_dir = out.text("state_dir", ".newsletter")
    out.finish()
    state_url, sharing = read_state(top, env)
    t = top.table("templates")
    templates_value = t.text("dir", "")
    t.finish()

    dkim_table = top.raw("dkim", {})
    dkim: DkimSettings | None = None
    if isinstance(dkim_table, dict):
        dkim, dkim_problems = parse_dkim(
            dkim_table, root, environ=env, default_domain=sender.domain
        )
        problems.extend(dkim_problems)
    else:
        problems.append('dkim: expected a table like [dkim] selector = "news"')

    schedules = read_schedules(top.raw("schedule"), root, problems, publication.timezone)

    section_map = read_mapping(top, "sections")
    region_map = read_mapping(top, "regions")
    top.finish()

    templates = (
        resolve_path(root, templates_value) if templates_value else resource_path("templates")
    )
    if templates_value and not templates.is_dir():
        problems.append(f"templates.dir: {templates} is not a folder")
    subscribers = (
        resolve_path(root, subscribers_value)
        if subscribers_value
        else resource_path("subscribers.example.csv")
    )
    if problems:
        raise ConfigError(problems, config_file)
    base = Path.cwd() if is_sample else root
    return Settings(
        publication=publication,
        sender=sender,
        list=list_settings,
        web=web,
        selection=rules,
        email=email,
        smtp=smtp,
        send=send,
        bounces=bounces,
        paths=Paths(
            root=root,
            config_file=config_file,
            sources=sources,
            subscribers=subscribers,
            templates=templates,
            build_dir=resolve_path(base, build_dir),
            outbox=resolve_path(base, outbox),
            state_dir=resolve_path(base, state_dir),
            state_url=state_url,
            sharing=sharing,
        ),
        section_map=section_map,
        region_map=region_map,
        schedules=schedules,
        dkim=dkim,
        strict_sources=strict,
        signing_key=env.get(ENV_SIGNING_KEY, "").encode("utf-8"),
        is_sample=is_sample,
    )


def find_config(
    explicit: Path | None = None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """Pick the config: ``--config``, $NEWSLETTER_CONFIG, ./newsletter.toml, or none."""
    env = os.environ if environ is None else environ
    if explicit is not None:
        return explicit
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG])
    here = Path.cwd() / CONFIG_NAME
    return here if here.is_file() else None


def read_config(file: Path) -> dict[str, Any]:
    """Read the TOML of the config ``file``; a ``ConfigError`` names the file and what to do."""
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            "no such config file; run 'newsletter init DIR' to create one", file
        ) from None
    except OSError as err:
        raise ConfigError(f"cannot read the config file: {err.strerror}", file) from err
    try:
        return tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"not UTF-8 text (byte {err.start}); save it as UTF-8", file) from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"not valid TOML: {err}", file) from err


def load_settings(
    path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Callable[[Settings], Settings] | None = None,
) -> Settings:
    """Load ``path`` (or the bundled sample when ``None``) into validated ``Settings``.

    With the sample, outputs (out/, outbox/, state) go to the working directory.
    """
    is_sample = path is None
    file = SAMPLE_DIR / CONFIG_NAME if path is None else Path(path)
    data = read_config(file)
    try:
        settings = parse_settings(
            data,
            file.resolve().parent,
            config_file=file.resolve(),
            environ=environ,
            is_sample=is_sample,
        )
    except ConfigError as err:  # name the file as the user gave it
        raise ConfigError(err.problems, file) from None
    return overrides(settings) if overrides else settings
