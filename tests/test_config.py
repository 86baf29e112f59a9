"""Settings: the sample loads, every problem is reported at once, paths resolve."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.config.load import find_config, load_settings
from newsletter.config.paths import SAMPLE_DIR, resource_path
from newsletter.config.settings import ENV_SIGNING_KEY, ENV_SMTP_PASSWORD
from newsletter.config.state import ENV_STATE_URL, PostgresUrl, Sharing, SqliteFile, mask_url
from newsletter.errors import ConfigError

MINIMAL = """
[publication]
name = "Harbor Ledger"
site_url = "https://harbor.example"
postal_address = "1 Quay Street"
timezone = "Europe/London"

[sender]
address = "news@harbor.example"

[list]
id = "daily.harbor.example"
unsubscribe_url = "https://harbor.example/unsubscribe"

[content]
sources = ["content/a.json", "https://feeds.example.org/rss"]

[subscribers]
file = "people.csv"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "newsletter.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_sample_publication_loads_without_a_config() -> None:
    settings = load_settings(None, environ={})
    assert settings.is_sample
    assert settings.publication.name == "The Meridian Post"
    assert str(settings.publication.timezone) == "Asia/Kolkata"
    assert settings.paths.sources == (str(SAMPLE_DIR / "content" / "articles.json"),)
    assert settings.paths.templates == resource_path("templates")
    assert settings.paths.subscribers == resource_path("subscribers.example.csv")
    assert [link.label for link in settings.publication.links][:2] == ["Feedback", "Subscribe"]
    assert not settings.has_signing_key


def test_paths_resolve_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path, MINIMAL)
    monkeypatch.chdir(Path("/"))
    settings = load_settings(config, environ={})
    assert settings.paths.sources == (
        str(tmp_path / "content" / "a.json"),
        "https://feeds.example.org/rss",
    )
    assert settings.paths.subscribers == tmp_path / "people.csv"
    assert settings.paths.state_db.parent == tmp_path / ".newsletter"
    assert settings.sender.name == "Harbor Ledger"  # defaults to the publication


def test_secrets_come_from_the_environment_and_stay_out_of_repr(tmp_path: Path) -> None:
    config = write(tmp_path, MINIMAL)
    settings = load_settings(
        config, environ={ENV_SIGNING_KEY: "k3y-value", ENV_SMTP_PASSWORD: "hunter2-secret"}
    )
    assert settings.signing_key == b"k3y-value"
    assert settings.smtp.password == "hunter2-secret"
    assert "hunter2-secret" not in repr(settings)
    assert "k3y-value" not in repr(settings)


def test_the_state_is_a_sqlite_file_unless_a_url_names_a_database(tmp_path: Path) -> None:
    config = write(tmp_path, MINIMAL)
    settings = load_settings(config, environ={})
    assert settings.paths.state == SqliteFile(tmp_path / ".newsletter" / "state.sqlite3")
    assert settings.paths.state.where == str(tmp_path / ".newsletter")

    in_file = "postgresql://newsletter:file-secret@db.internal/newsletter"
    config = write(tmp_path, MINIMAL + f'\n[state]\nurl = "{in_file}"\n')
    settings = load_settings(config, environ={})
    assert settings.paths.state == PostgresUrl(in_file)
    assert str(settings.paths.state) == "postgresql://newsletter:***@db.internal/newsletter"
    assert "file-secret" not in repr(settings)
    # The environment wins over the file.
    from_env = "postgres://sender@db.other/news"
    settings = load_settings(config, environ={ENV_STATE_URL: from_env})
    assert settings.paths.state == PostgresUrl(from_env)


def test_senders_sharing_a_database_take_their_lease_and_patience_from_state(
    tmp_path: Path,
) -> None:
    url = "postgresql://newsletter@db.internal/newsletter"
    table = f'\n[state]\nurl = "{url}"\nlease_seconds = 10\nreconnect_seconds = 300\n'
    settings = load_settings(write(tmp_path, MINIMAL + table), environ={})
    assert settings.paths.state == PostgresUrl(url, Sharing(10.0, 300.0))
    assert settings.paths.state.shared
    assert PostgresUrl(url).sharing == Sharing(lease_seconds=30.0, reconnect_seconds=120.0)
    assert not load_settings(write(tmp_path, MINIMAL), environ={}).paths.state.shared
    wrong = MINIMAL + '\n[state]\nlease_seconds = 0.5\nreconnect_seconds = "soon"\n'
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, wrong), environ={})
    assert caught.value.problems == [
        "state.lease_seconds: 0.5 is out of range (1.0 to 3600.0)",
        "state.reconnect_seconds: expected a number, got str 'soon'",
    ]


def test_a_state_url_that_is_not_postgresql_is_refused_without_quoting_it(
    tmp_path: Path,
) -> None:
    config = write(tmp_path, MINIMAL + '\n[state]\nurl = "mysql://u:hunter2@db/x"\nurll = 1\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    assert caught.value.problems == [
        "state.url: expected a PostgreSQL URL such as "
        "'postgresql://newsletter@db.internal/newsletter' (leave it out to keep the state in "
        "a SQLite file in output.state_dir)",
        "state.urll: unknown key; did you mean 'state.url'?",
    ]
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, MINIMAL), environ={ENV_STATE_URL: "user:hunter2@db"})
    assert str(caught.value).count(f"{ENV_STATE_URL}: expected a PostgreSQL URL") == 1
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:pw@db/x", "postgresql://u:***@db/x"),
        ("postgresql://u@db/x", "postgresql://u@db/x"),
        ("postgresql://db:5432/x", "postgresql://db:5432/x"),
        ("postgresql://:pw@db/x", "postgresql://:***@db/x"),
        ("postgresql://u:p%40ss@h1:5432,h2/x", "postgresql://u:***@h1:5432,h2/x"),
        (
            "postgresql:///x?host=/run&password=pw&user=u",
            "postgresql:///x?host=/run&password=***&user=u",
        ),
        ("postgresql://u:a:b@db/x", "postgresql://u:***@db/x"),
    ],
)
def test_mask_url_hides_the_password(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert mask_url(url, f"cannot reach {url}: bad") == f"cannot reach {masked}: bad"


def test_mask_url_hides_the_password_quoted_in_other_text() -> None:
    url = "postgresql://u:p%40ss-word@db/x"
    said = 'invalid token: "p%40ss-word"; password "p@ss-word" rejected'
    assert mask_url(url, said) == 'invalid token: "***"; password "***" rejected'


def test_every_problem_is_reported_at_once_with_its_key(tmp_path: Path) -> None:
    broken = MINIMAL.replace('timezone = "Europe/London"', 'timezone = "Mars/Olympus"')
    broken = broken.replace('address = "news@harbor.example"', 'address = "not-an-address"')
    broken += '\n[selection]\ntrending = -1\nlookbak_hours = 3\n\n[smtp]\npassword = "x"\n'
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, broken), environ={})
    message = str(caught.value)
    assert "newsletter.toml" in message
    for expected in (
        "publication.timezone",
        "sender.address",
        "selection.trending",
        "selection.lookbak_hours: unknown key; did you mean 'selection.lookback_hours'?",
        "smtp.password: do not put the password in the file",
    ):
        assert expected in message
    assert len(caught.value.problems) == 5


def test_a_time_zone_folder_is_reported_not_a_crash(tmp_path: Path) -> None:
    text = MINIMAL.replace('timezone = "Europe/London"', 'timezone = "America"')
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), environ={})
    assert caught.value.problems == [
        "publication.timezone: 'America' is not an IANA time zone "
        "(for example Europe/London, Asia/Kolkata, America/New_York)"
    ]


def test_wrong_types_and_bad_urls_name_the_key(tmp_path: Path) -> None:
    text = MINIMAL.replace('site_url = "https://harbor.example"', "site_url = 3")
    text = text.replace(
        'unsubscribe_url = "https://harbor.example/unsubscribe"',
        'unsubscribe_url = "/unsubscribe"',
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), environ={})
    message = str(caught.value)
    assert "publication.site_url: expected a string, got int 3" in message
    assert "list.unsubscribe_url: '/unsubscribe' is not an absolute http(s) URL" in message


def test_schedule_tables_are_read_like_every_other_table(tmp_path: Path) -> None:
    text = MINIMAL + (
        '\n[output]\noutbx = "box"\n\n[[schedule]]\nname = "daily"\ncron = "0 7 * * *"\n'
        'dry_run = "yes"\ngrace_minuts = 5\nsources = "content/a.json"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), environ={})
    assert caught.value.problems == [
        "output.outbx: unknown key; did you mean 'output.outbox'?",
        "schedule[0].dry_run: expected true or false, got str 'yes'",
        'schedule[0].sources: expected a list of strings, e.g. ["content/articles.json"]',
        # an entry of [[schedule]] hints the key as written inside the table
        "schedule[0].grace_minuts: unknown key; did you mean 'grace_minutes'?",
    ]


def test_invalid_toml_names_the_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"newsletter.toml: not valid TOML: .*line 2"):
        load_settings(write(tmp_path, '[publication]\nname = "x\n'), environ={})


def test_missing_config_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="newsletter init"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_find_config_prefers_flag_then_environment_then_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_config(None, environ={}) is None
    write(tmp_path, MINIMAL)
    assert find_config(None, environ={}) == tmp_path / "newsletter.toml"
    assert find_config(None, environ={"NEWSLETTER_CONFIG": "/x.toml"}) == Path("/x.toml")
    assert find_config(Path("a.toml"), environ={"NEWSLETTER_CONFIG": "/x.toml"}) == Path("a.toml")


def test_summary_max_chars_is_read_and_checked(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, MINIMAL), environ={}).email.summary_max_chars == 600
    config = write(tmp_path, MINIMAL + "\n[email]\nsummary_max_chars = 300\n")
    assert load_settings(config, environ={}).email.summary_max_chars == 300
    config = write(tmp_path, MINIMAL + "\n[email]\nsummary_max_chars = 20\n")
    with pytest.raises(ConfigError, match=r"email\.summary_max_chars: 20 is out of range"):
        load_settings(config, environ={})


def test_a_url_with_a_user_name_or_password_is_a_config_problem(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        'site_url = "https://harbor.example"',
        'site_url = "https://harbor.example"\nlogo_url = "https://cms:hunter2@harbor.example/l.png"',
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), environ={})
    message = str(caught.value)
    assert "publication.logo_url: 'https://…@harbor.example/l.png' carries a user name" in message
    assert "hunter2" not in message


def test_send_min_interval_hours(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, MINIMAL), environ={}).send.min_interval_hours == 12
    spaced = load_settings(
        write(tmp_path, MINIMAL + "[send]\nmin_interval_hours = 0\n"), environ={}
    )
    assert not spaced.send.min_interval
    with pytest.raises(ConfigError) as bad:
        load_settings(write(tmp_path, MINIMAL + "[send]\nmin_interval_hours = -1\n"), environ={})
    assert "send.min_interval_hours" in str(bad.value)
