"""The settings types: everything the pipeline needs, frozen and validated at load.

Nothing reads raw TOML after loading; ``newsletter.config.load`` builds these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from newsletter.config.paths import SAMPLE_DIR, resource_path
from newsletter.config.state import SQLITE_NAME, PostgresUrl, Sharing, SqliteFile, StateLocation
from newsletter.dkim.settings import DkimSettings

ENV_SIGNING_KEY = "NEWSLETTER_SIGNING_KEY"
ENV_SMTP_PASSWORD = "NEWSLETTER_SMTP_PASSWORD"  # noqa: S105 - a variable name, not a secret
ENV_CONFIG = "NEWSLETTER_CONFIG"

DEFAULT_GRACE_MINUTES = 60.0


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
class WebSettings:
    """``[web]``: the public service (unsubscribe, subscribe, archive) behind a proxy.

    ``public_url`` is where readers reach the service (no trailing slash): the subscribe
    form is ``{public_url}/subscribe`` and the archive ``{public_url}/archive/``; the
    service answers those paths, and the path of ``list.unsubscribe_url``.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "https://meridianpost.example"
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")  # whose X-Forwarded-For counts
    max_body_bytes: int = 65536
    confirm_hours: float = 48.0  # how long a subscription's confirmation link works
    subscribes_per_minute: int = 5  # subscribe requests one client may make per minute
    confirmations_per_hour: int = 300  # confirmation emails the service sends per hour, in all

    @property
    def base_path(self) -> str:
        """The path of ``public_url`` without a trailing slash ("" at the root)."""
        return urlsplit(self.public_url).path.rstrip("/")

    @property
    def subscribe_url(self) -> str:
        """The subscribe form's public URL."""
        return f"{self.public_url}/subscribe"

    @property
    def confirm_url(self) -> str:
        """Where a confirmation email's link leads (it gets ``?…&token=…``)."""
        return f"{self.subscribe_url}/confirm"

    @property
    def archive_url(self) -> str:
        """The archive index's public URL (ends in a slash)."""
        return f"{self.public_url}/archive/"

    def edition_url(self, edition_id: str) -> str:
        """The public URL of one edition's page in the archive (ends in a slash)."""
        return f"{self.archive_url}{edition_id}/"


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
    """Subject, preheader and greeting. Subject/preheader default from the lead.

    ``summary_max_chars``: a longer summary is cut at a word boundary (see
    ``rendering.excerpt``), so one huge article cannot push an edition over Gmail's clip.
    """

    subject: str = ""
    preheader: str = ""
    greeting: str = "Hello {name},"
    greeting_anonymous: str = "Hello,"
    utm: tuple[tuple[str, str], ...] = ()
    summary_max_chars: int = 600


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
class SendRules:
    """``[send]``: what a send by hand may do (a scheduled slot is guarded by its slot).

    ``min_interval_hours``: a new edition is refused this soon after the last one
    finished (``--allow-early`` overrides; 0 turns it off). Resuming is never refused.
    """

    min_interval_hours: float = 12.0

    @property
    def min_interval(self) -> timedelta:
        """``min_interval_hours`` as a span of time."""
        return timedelta(hours=self.min_interval_hours)


@dataclass(frozen=True)
class BounceSettings:
    """``[bounces]``: the return path of every message, and when soft bounces suppress.

    ``return_path`` is the envelope sender ("" : ``smtp.envelope_from``, else the
    sender's address; see ``Settings.return_path``). With ``verp`` each message's
    envelope sender is ``local+TOKEN@domain``, the token naming edition and recipient
    (``tokens.ReturnPath``). ``soft_limit`` soft bounces of one address within
    ``soft_window_days`` suppress it.
    """

    verp: bool = False
    return_path: str = ""
    soft_limit: int = 3
    soft_window_days: int = 30

    @property
    def soft_window(self) -> timedelta:
        """``soft_window_days`` as a span of time."""
        return timedelta(days=self.soft_window_days)


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
    state_url: str = field(default="", repr=False)  # a PostgreSQL URL; may hold a password
    sharing: Sharing = field(default_factory=Sharing)  # senders sharing that database

    @property
    def state_db(self) -> Path:
        """The SQLite state file (history, delivery ledger, schedules)."""
        return self.state_dir / SQLITE_NAME

    @property
    def state(self) -> StateLocation:
        """Where the state lives: the PostgreSQL database of ``state_url``, or ``state_db``."""
        if self.state_url:
            return PostgresUrl(self.state_url, self.sharing)
        return SqliteFile(self.state_db)


@dataclass(frozen=True)
class Schedule:
    """One ``[[schedule]]``: when to send what.

    ``cron`` has five fields (minute hour day-of-month month day-of-week), or a sixth
    for seconds, evaluated in ``timezone``. ``sources``/``subscribers``/``outbox``
    empty or ``None`` mean the settings' own. ``max_age_hours`` ``None`` means the
    selection's lookback window.
    """

    name: str
    cron: str
    timezone: ZoneInfo
    dry_run: bool = True
    sources: tuple[str, ...] = ()
    subscribers: Path | None = None
    outbox: Path | None = None
    grace: timedelta = timedelta(minutes=DEFAULT_GRACE_MINUTES)
    max_age_hours: float | None = None

    @property
    def mode(self) -> str:
        """``dry run`` or ``live``."""
        return "dry run" if self.dry_run else "live"


@dataclass(frozen=True)
class Settings:
    """Everything the pipeline needs. Nothing reads raw TOML after loading."""

    publication: Publication = field(default_factory=Publication)
    sender: Sender = field(default_factory=Sender)
    list: ListSettings = field(default_factory=ListSettings)
    web: WebSettings = field(default_factory=WebSettings)
    selection: SelectionRules = field(default_factory=SelectionRules)
    email: EmailSettings = field(default_factory=EmailSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    send: SendRules = field(default_factory=SendRules)
    bounces: BounceSettings = field(default_factory=BounceSettings)
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

    @property
    def return_path(self) -> str:
        """The envelope sender, where bounces go: ``[bounces]``, ``[smtp]`` or the sender's."""
        return self.bounces.return_path or self.smtp.envelope_from or self.sender.address
