"""Settings: ``newsletter.toml`` plus secrets from the environment, validated at once.

Every problem in the file is collected and reported together, each naming its key.
Paths resolve against the folder of the config file, never the working directory.
Without a config file the bundled sample publication is used.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from newsletter.dkim import DkimSettings, parse_dkim
from newsletter.errors import ConfigError
from newsletter.timetable import Schedule, parse_schedules, resolve_path, resolve_source

CONFIG_NAME = "newsletter.toml"
ENV_SIGNING_KEY = "NEWSLETTER_SIGNING_KEY"
ENV_SMTP_PASSWORD = "NEWSLETTER_SMTP_PASSWORD"  # noqa: S105 - a variable name, not a secret
ENV_CONFIG = "NEWSLETTER_CONFIG"

PACKAGE_DIR = Path(__file__).resolve().parent
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


@dataclass(frozen=True)
class Colors:
    """The theme's colours (CSS hex)."""

    primary: str = "#12355b"
    accent: str = "#c8102e"
    background: str = "#f3f4f6"
    surface: str = "#ffffff"
    text: str = "#1f2933"
    muted: str = "#52606d"


@dataclass(frozen=True)
class Link:
    """A labelled link (social profiles, footer links)."""

    label: str
    url: str


@dataclass(frozen=True)
class Publication:
    """Who publishes the newsletter: shown in the masthead and footer."""

    name: str = "The Meridian Post"
    site_url: str = "https://meridianpost.example"
    logo_url: str = ""
    tagline: str = ""
    language: str = "en"
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    postal_address: str = "1 Example Street, Example City"
    contact_email: str = ""
    contact_phone: str = ""
    copyright: str = ""
    colors: Colors = field(default_factory=Colors)
    social: tuple[Link, ...] = ()
    links: tuple[Link, ...] = ()  # feedback, subscribe, disclaimer, terms, privacy … in order


@dataclass(frozen=True)
class Sender:
    """The From and Reply-To of every message."""

    name: str = "The Meridian Post"
    address: str = "newsletter@meridianpost.example"
    reply_to: str = ""

    @property
    def domain(self) -> str:
        """The sender's domain: Message-IDs are made on it."""
        return self.address.rpartition("@")[2].lower()


@dataclass(frozen=True)
class ListSettings:
    """The mailing list: List-Id and the unsubscribe endpoints."""

    id: str = "daily.meridianpost.example"
    name: str = "The Meridian Post Daily"
    unsubscribe_url: str = "https://meridianpost.example/unsubscribe"
    unsubscribe_mailto: str = "unsubscribe@meridianpost.example"


@dataclass(frozen=True)
class SelectionRules:
    """How the digest is chosen (see ``selection.select``)."""

    trending: int = 4
    opinion: int = 4
    lookback_hours: float = 72.0
    region_cap: int = 2
    lead_sections: tuple[str, ...] = ("news",)
    opinion_sections: tuple[str, ...] = ("opinion", "blog", "interview", "analysis")
    min_summary_length: int = 0
    title_similarity: float = 0.85
    repeat_editions: int = 7
    lead_url: str = ""


@dataclass(frozen=True)
class EmailSettings:
    """Subject, preheader and greeting. Subject/preheader default from the lead."""

    subject: str = ""
    preheader: str = ""
    greeting: str = "Hello {name},"
    greeting_anonymous: str = "Hello,"
    utm: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SmtpSettings:
    """How live mail is handed to a relay. The password comes from the environment."""

    host: str = ""
    port: int = 0  # 0: the default for the security mode (587, 465 or 25)
    security: str = "starttls"  # starttls | ssl | none
    username: str = ""
    password: str = field(default="", repr=False)
    verify: bool = True
    allow_insecure: bool = False  # plain SMTP to a host that is not loopback
    timeout: float = 30.0
    pool: int = 4
    rate: float = 0.0  # messages per second over the whole run; 0 = unlimited
    max_per_connection: int = 1000
    retries: int = 5
    envelope_from: str = ""
    in_flight: str = "resend"  # resend | hold: what to do with a message in flight at a crash

    @property
    def effective_port(self) -> int:
        """The port, or the usual one for the security mode."""
        if self.port:
            return self.port
        return {"ssl": 465, "starttls": 587}.get(self.security, 25)


@dataclass(frozen=True)
class Paths:
    """Where things are. All absolute."""

    root: Path = field(default_factory=lambda: SAMPLE_DIR)
    config_file: Path | None = None
    sources: tuple[str, ...] = ()
    subscribers: Path = field(default_factory=lambda: resource_path("subscribers.example.csv"))
    templates: Path = field(default_factory=lambda: resource_path("templates"))
    build_dir: Path = field(default_factory=lambda: Path("out").resolve())
    outbox: Path = field(default_factory=lambda: Path("outbox").resolve())
    state_dir: Path = field(default_factory=lambda: Path(".newsletter").resolve())

    @property
    def state_db(self) -> Path:
        """The SQLite state file (history, delivery ledger, schedules)."""
        return self.state_dir / "state.sqlite3"


@dataclass(frozen=True)
class Settings:
    """Everything the pipeline needs. Nothing reads raw TOML after loading."""

    publication: Publication = field(default_factory=Publication)
    sender: Sender = field(default_factory=Sender)
    list: ListSettings = field(default_factory=ListSettings)
    selection: SelectionRules = field(default_factory=SelectionRules)
    email: EmailSettings = field(default_factory=EmailSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    paths: Paths = field(default_factory=Paths)
    section_map: Mapping[str, str] = field(default_factory=dict)
    region_map: Mapping[str, str] = field(default_factory=dict)
    schedules: tuple[Schedule, ...] = ()
    dkim: DkimSettings | None = field(default=None, repr=False)
    strict_sources: bool = False
    signing_key: bytes = field(default=b"", repr=False)
    is_sample: bool = False

    @property
    def has_signing_key(self) -> bool:
        """Whether a real signing key came from the environment."""
        return bool(self.signing_key)


# --------------------------------------------------------------------------- loading

T = TypeVar("T")


class _Reader:
    """Reads typed values from a TOML table, collecting problems instead of stopping."""

    def __init__(self, data: Mapping[str, Any], problems: list[str], prefix: str = "") -> None:
        self.data = dict(data)
        self.problems = problems
        self.prefix = prefix
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def _get(self, name: str, kind: type | tuple[type, ...], what: str) -> Any:
        self.seen.add(name)
        if name not in self.data:
            return None
        value = self.data[name]
        if isinstance(value, bool) and kind in (int, float, (int, float)):
            self.problems.append(f"{self.key(name)}: expected {what}, got {value!r}")
            return None
        if not isinstance(value, kind):
            self.problems.append(
                f"{self.key(name)}: expected {what}, got {type(value).__name__} {value!r}"
            )
            return None
        return value

    def text(self, name: str, default: str) -> str:
        value = self._get(name, str, "a string")
        return default if value is None else value.strip()

    def flag(self, name: str, default: bool) -> bool:
        value = self._get(name, bool, "true or false")
        return default if value is None else bool(value)

    def whole(self, name: str, default: int, low: int = 0, high: int = 10**9) -> int:
        value = self._get(name, int, "a whole number")
        if value is None:
            return default
        if not low <= value <= high:
            self.problems.append(f"{self.key(name)}: {value} is out of range ({low} to {high})")
            return default
        return int(value)

    def number(self, name: str, default: float, low: float = 0.0, high: float = 1e12) -> float:
        value = self._get(name, (int, float), "a number")
        if value is None:
            return default
        if not low <= value <= high:
            self.problems.append(f"{self.key(name)}: {value} is out of range ({low} to {high})")
            return default
        return float(value)

    def strings(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self._get(name, list, "a list of strings")
        if value is None:
            return default
        if not all(isinstance(v, str) for v in value):
            self.problems.append(f"{self.key(name)}: every entry must be a string")
            return default
        return tuple(v.strip() for v in value)

    def table(self, name: str) -> _Reader:
        value = self._get(name, dict, "a table")
        return _Reader(value or {}, self.problems, f"{self.key(name)}.")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default)
        if value not in choices:
            self.problems.append(f"{self.key(name)}: {value!r} is not one of {', '.join(choices)}")
            return default
        return value

    def url(self, name: str, default: str, *, required: bool = False) -> str:
        value = self.text(name, default)
        if not value:
            if required:
                self.problems.append(f"{self.key(name)}: required (an absolute https:// URL)")
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            self.problems.append(
                f"{self.key(name)}: {value!r} is not an absolute http(s) URL "
                "(write it like https://example.org/page)"
            )
            return default
        return value

    def address(self, name: str, default: str, *, required: bool = False) -> str:
        value = self.text(name, default)
        if not value:
            if required:
                self.problems.append(f"{self.key(name)}: required (an email address)")
            return value
        if "@" not in value or any(c in value for c in ' \r\n<>,"') or value.startswith("@"):
            self.problems.append(f"{self.key(name)}: {value!r} is not an email address")
            return default
        return value

    def finish(self) -> None:
        """Report keys nobody asked for: usually typos."""
        for name in self.data:
            if name not in self.seen:
                hint = difflib.get_close_matches(name, sorted(self.seen), n=1)
                tip = f"; did you mean {self.key(hint[0])!r}?" if hint else ""
                self.problems.append(f"{self.key(name)}: unknown key{tip}")


def _hex_colour(reader: _Reader, name: str, default: str) -> str:
    value = reader.text(name, default)
    digits = value[1:]
    if not (
        value.startswith("#")
        and len(digits) in (3, 6)
        and all(c in "0123456789abcdefABCDEF" for c in digits)
    ):
        reader.problems.append(f"{reader.key(name)}: {value!r} is not a colour like #12355b")
        return default
    return value


def _links(reader: _Reader, name: str) -> tuple[Link, ...]:
    table = reader.table(name)
    links: list[Link] = []
    for label in list(table.data):
        url = table.url(label, "")
        if url:
            links.append(Link(label=label, url=url))
    table.finish()
    return tuple(links)


def _mapping(reader: _Reader, name: str) -> dict[str, str]:
    table = reader.table(name)
    out: dict[str, str] = {}
    for term in list(table.data):
        value = table.text(term, "")
        if value:
            out[term.strip().casefold()] = value
    table.finish()
    return out


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
    top = _Reader(data, problems)

    p = top.table("publication")
    tz_name = p.text("timezone", "UTC")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(
            f"publication.timezone: {tz_name!r} is not an IANA time zone "
            "(for example Europe/London, Asia/Kolkata, America/New_York)"
        )
        tz = ZoneInfo("UTC")
    c = p.table("colors")
    colors = Colors(
        **{
            name: _hex_colour(c, name, getattr(Colors(), name))
            for name in Colors.__dataclass_fields__
        }
    )
    c.finish()
    name = p.text("name", "")
    if not name:
        problems.append("publication.name: required (the publication's name)")
    publication = Publication(
        name=name,
        site_url=p.url("site_url", "", required=True),
        logo_url=p.url("logo_url", ""),
        tagline=p.text("tagline", ""),
        language=p.text("language", "en") or "en",
        timezone=tz,
        postal_address=p.text("postal_address", ""),
        contact_email=p.address("contact_email", ""),
        contact_phone=p.text("contact_phone", ""),
        copyright=p.text("copyright", ""),
        colors=colors,
        social=_links(p, "social"),
        links=_links(p, "links"),
    )
    if not publication.postal_address:
        problems.append(
            "publication.postal_address: required (bulk mail must show a postal address)"
        )
    p.finish()

    s = top.table("sender")
    sender = Sender(
        name=s.text("name", publication.name),
        address=s.address("address", "", required=True),
        reply_to=s.address("reply_to", ""),
    )
    s.finish()

    li = top.table("list")
    list_settings = ListSettings(
        id=li.text("id", ""),
        name=li.text("name", publication.name),
        unsubscribe_url=li.url("unsubscribe_url", "", required=True),
        unsubscribe_mailto=li.address("unsubscribe_mailto", ""),
    )
    if not list_settings.id or any(ch in list_settings.id for ch in " <>\r\n@"):
        problems.append(
            "list.id: required, a dotted name without spaces such as 'daily.example.org' (List-Id)"
        )
    li.finish()

    co = top.table("content")
    sources = tuple(resolve_source(root, v) for v in co.strings("sources", ()) if v)
    strict = co.flag("strict", False)
    co.finish()

    r = top.table("selection")
    defaults = SelectionRules()
    rules = SelectionRules(
        trending=r.whole("trending", defaults.trending, 0, 50),
        opinion=r.whole("opinion", defaults.opinion, 0, 50),
        lookback_hours=r.number("lookback_hours", defaults.lookback_hours, 1, 24 * 365),
        region_cap=r.whole("region_cap", defaults.region_cap, 0, 50),
        lead_sections=tuple(
            v.casefold() for v in r.strings("lead_sections", defaults.lead_sections)
        ),
        opinion_sections=tuple(
            v.casefold() for v in r.strings("opinion_sections", defaults.opinion_sections)
        ),
        min_summary_length=r.whole("min_summary_length", 0, 0, 10000),
        title_similarity=r.number("title_similarity", defaults.title_similarity, 0.5, 1.0),
        repeat_editions=r.whole("repeat_editions", defaults.repeat_editions, 0, 1000),
        lead_url=r.url("lead_url", ""),
    )
    r.finish()

    e = top.table("email")
    utm_table = e.table("utm")
    utm = tuple((k, utm_table.text(k, "")) for k in list(utm_table.data))
    utm_table.finish()
    email = EmailSettings(
        subject=e.text("subject", ""),
        preheader=e.text("preheader", ""),
        greeting=e.text("greeting", EmailSettings.greeting),
        greeting_anonymous=e.text("greeting_anonymous", EmailSettings.greeting_anonymous),
        utm=tuple((k, v) for k, v in utm if v),
    )
    for key, text in (("email.subject", email.subject), ("email.preheader", email.preheader)):
        if "\n" in text or "\r" in text:
            problems.append(f"{key}: must be one line")
    e.finish()

    m = top.table("smtp")
    smtp = SmtpSettings(
        host=m.text("host", ""),
        port=m.whole("port", 0, 0, 65535),
        security=m.choice("security", "starttls", ("starttls", "ssl", "none")),
        username=m.text("username", ""),
        password=env.get(ENV_SMTP_PASSWORD, ""),
        verify=m.flag("verify", True),
        allow_insecure=m.flag("allow_insecure", False),
        timeout=m.number("timeout", 30.0, 1, 600),
        pool=m.whole("pool", 4, 1, 64),
        rate=m.number("rate", 0.0, 0, 100000),
        max_per_connection=m.whole("max_per_connection", 1000, 1, 10**7),
        retries=m.whole("retries", 5, 0, 100),
        envelope_from=m.address("envelope_from", ""),
        in_flight=m.choice("in_flight", "resend", ("resend", "hold")),
    )
    if "password" in m.data:
        m.seen.add("password")
        problems.append(
            f"smtp.password: do not put the password in the file; set {ENV_SMTP_PASSWORD} instead"
        )
    m.finish()

    sub = top.table("subscribers")
    subscribers_value = sub.text("file", "")
    sub.finish()
    out = top.table("output")
    build_dir = out.text("build_dir", "out")
    outbox = out.text("outbox", "outbox")
    state_dir = out.text("state_dir", ".newsletter")
    out.finish()
    t = top.table("templates")
    templates_value = t.text("dir", "")
    t.finish()

    top.seen.add("dkim")
    dkim_table = data.get("dkim", {})
    dkim: DkimSettings | None = None
    if isinstance(dkim_table, dict):
        dkim, dkim_problems = parse_dkim(
            dkim_table, root, environ=env, default_domain=sender.domain
        )
        problems.extend(dkim_problems)
    else:
        problems.append('dkim: expected a table like [dkim] selector = "news"')

    top.seen.add("schedule")
    schedules: tuple[Schedule, ...] = ()
    try:
        schedules = parse_schedules(data.get("schedule"), root, default_timezone=tz)
    except ConfigError as err:
        problems.extend(err.problems)

    section_map = _mapping(top, "sections")
    region_map = _mapping(top, "regions")
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
        selection=rules,
        email=email,
        smtp=smtp,
        paths=Paths(
            root=root,
            config_file=config_file,
            sources=sources,
            subscribers=subscribers,
            templates=templates,
            build_dir=resolve_path(base, build_dir),
            outbox=resolve_path(base, outbox),
            state_dir=resolve_path(base, state_dir),
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
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            "no such config file; run 'newsletter init DIR' to create one", file
        ) from None
    except OSError as err:
        raise ConfigError(f"cannot read the config file: {err.strerror}", file) from err
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"not UTF-8 text (byte {err.start}); save it as UTF-8", file) from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"not valid TOML: {err}", file) from err
    settings = parse_settings(
        data,
        file.resolve().parent,
        config_file=file.resolve(),
        environ=environ,
        is_sample=is_sample,
    )
    return overrides(settings) if overrides else settings
