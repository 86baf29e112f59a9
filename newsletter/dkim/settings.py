"""The ``[dkim]`` settings: who signs (domain, selectors) and with which keys.

The private key comes from ``key_file`` or the environment (``NEWSLETTER_DKIM_KEY``;
``NEWSLETTER_DKIM_KEY_2`` for ``also[0]``, and so on), the passphrase of an encrypted
key from ``NEWSLETTER_DKIM_PASSPHRASE`` (``_2``…). A key never appears in output,
errors or reprs. ``also`` adds keys that sign every message too (RSA and Ed25519).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from newsletter.dkim.keys import ED25519_HINT, GENERATE_HINT, KeyProblem, usable_pem

ENV_DKIM_KEY = "NEWSLETTER_DKIM_KEY"
ENV_DKIM_PASSPHRASE = "NEWSLETTER_DKIM_PASSPHRASE"  # noqa: S105 - the variable name, not a secret
MAX_KEY_FILE_BYTES = 64 * 1024

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_SELECTOR = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")
_NUMBERED_KEY = re.compile(rf"{ENV_DKIM_KEY}_([0-9]+)")
_KNOWN_KEYS = ("selector", "domain", "key_file", "also")
_ALSO_KEYS = ("selector", "domain", "key_file")
_ALSO_EXAMPLE = '[{ selector = "ed2026", key_file = "dkim-ed25519.pem" }]'


@dataclass(frozen=True)
class DkimSettings:
    """Who signs (``d=`` domain, selector) with which key (PEM, never shown), and who else."""

    selector: str
    domain: str
    private_key: bytes = field(repr=False)
    key_origin: str = ""
    also: tuple[DkimSettings, ...] = ()

    @property
    def record_name(self) -> str:
        """The DNS name that holds the public key."""
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def keys(self) -> tuple[DkimSettings, ...]:
        """Every key that signs, in the order of the signatures (this one first)."""
        return (self, *self.also)


def env_names(number: int) -> tuple[str, str]:
    """The variables that hold key ``number`` (1 for the first) and its passphrase."""
    if number == 1:
        return ENV_DKIM_KEY, ENV_DKIM_PASSPHRASE
    return f"{ENV_DKIM_KEY}_{number}", f"{ENV_DKIM_PASSPHRASE}_{number}"


def parse_dkim(
    table: Mapping[str, Any],
    root: Path,
    *,
    environ: Mapping[str, str] | None = None,
    default_domain: str = "",
) -> tuple[DkimSettings | None, list[str]]:
    """Validate ``[dkim]`` and the keys; return the settings (None when off) and all problems."""
    env = os.environ if environ is None else environ
    numbered = sorted(
        int(m.group(1))
        for name, value in env.items()
        if (m := _NUMBERED_KEY.fullmatch(name)) and value.strip()
    )
    if not table and not env.get(ENV_DKIM_KEY, "").strip() and not numbered:
        return None, []
    problems = _unknown_keys(table, _KNOWN_KEYS, "dkim", ENV_DKIM_KEY)
    domain = (_string(table, "domain", "dkim", problems) or default_domain).lower().rstrip(".")
    primary = _one_key(table, "dkim", 1, domain, root, env, problems)
    also = _also(table.get("also"), domain, root, env, problems)
    problems += _stray_numbered_keys(numbered, len(also))
    problems += _repeated_selectors([primary, *also])
    if problems or primary is None or any(key is None for key in also):
        return None, problems
    extra = tuple(k for k in also if k is not None)
    return DkimSettings(
        primary.selector, primary.domain, primary.private_key, primary.key_origin, extra
    ), []


def _string(table: Mapping[str, Any], name: str, prefix: str, problems: list[str]) -> str:
    value = table.get(name, "")
    if not isinstance(value, str):
        problems.append(f"{prefix}.{name}: expected a string, got {type(value).__name__}")
        return ""
    return value.strip()


def _unknown_keys(
    table: Mapping[str, Any], known: tuple[str, ...], prefix: str, key_name: str
) -> list[str]:
    problems = []
    for name in table:
        if name in known:
            continue
        if name in ("key", "private_key"):
            problems.append(
                f"{prefix}.{name}: do not put the key in the file; use {prefix}.key_file "
                f"or set {key_name} to the PEM text"
            )
            continue
        hint = difflib.get_close_matches(name, known, n=1)
        tip = f"; did you mean '{prefix}.{hint[0]}'?" if hint else ""
        problems.append(f"{prefix}.{name}: unknown key{tip}")
    return problems


def _one_key(
    table: Mapping[str, Any],
    prefix: str,
    number: int,
    domain: str,
    root: Path,
    env: Mapping[str, str],
    problems: list[str],
    domain_problems: list[str] | None = None,
) -> DkimSettings | None:
    """Validate one key's selector, domain and PEM; None (with problems) when unusable.

    Problems with the domain go to ``domain_problems`` when given (and then do not count).
    """
    before = len(problems)
    said = problems if domain_problems is None else domain_problems
    selector = _string(table, "selector", prefix, problems)
    key_file = _string(table, "key_file", prefix, problems)
    if not selector:
        problems.append(
            f"{prefix}.selector: required, the DNS label of the key (for example 'news2026')"
        )
    elif not _SELECTOR.fullmatch(selector):
        problems.append(
            f"{prefix}.selector: {selector!r} is not a DNS label (letters, digits, '-', dots)"
        )
    if not domain:
        said.append(f"{prefix}.domain: required, the signing domain (usually the From domain)")
    elif not _DOMAIN.fullmatch(domain):
        said.append(f"{prefix}.domain: {domain!r} is not a domain name like example.org")
    key_name, passphrase_name = env_names(number)
    pem, origin = _key_text(prefix, key_file, env.get(key_name, ""), key_name, root, problems)
    if pem is None:
        return None
    try:
        usable = usable_pem(pem, env.get(passphrase_name, ""), passphrase_name)
    except KeyProblem as problem:
        problems.append(f"{origin}: {problem}")
        return None
    if len(problems) > before:
        return None
    return DkimSettings(selector=selector, domain=domain, private_key=usable, key_origin=origin)


def _key_text(
    prefix: str, key_file: str, env_key: str, key_name: str, root: Path, problems: list[str]
) -> tuple[bytes | None, str]:
    """Read the PEM from the file or the environment; report a missing or double source."""
    hint = GENERATE_HINT if prefix == "dkim" else ED25519_HINT
    if key_file and env_key.strip():
        problems.append(f"{prefix}.key_file and {key_name} are both set: keep only one")
        return None, ""
    if env_key.strip():
        text = env_key.replace("\\n", "\n") if "\n" not in env_key.strip() else env_key
        return _normalize_pem(text.encode("utf-8", "replace")), f"${key_name}"
    if not key_file:
        problems.append(
            f"{prefix}: no key; set {prefix}.key_file to a PEM private key or {key_name} "
            f"to its text ({hint})"
        )
        return None, ""
    path = (root / Path(key_file).expanduser()).resolve()
    origin = f"{prefix}.key_file {path}"
    try:
        if path.stat().st_size > MAX_KEY_FILE_BYTES:
            problems.append(f"{origin}: too large to be a private key")
            return None, origin
        data = path.read_bytes()
    except FileNotFoundError:
        problems.append(f"{origin}: no such file ({hint})")
        return None, origin
    except IsADirectoryError:
        problems.append(f"{origin}: is a folder; point it at the PEM key file")
        return None, origin
    except OSError as err:
        problems.append(f"{origin}: cannot read it ({err.strerror})")
        return None, origin
    return _normalize_pem(data), origin


def _normalize_pem(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").strip() + b"\n"


def _also(
    raw: Any, domain: str, root: Path, env: Mapping[str, str], problems: list[str]
) -> list[DkimSettings | None]:
    """Validate ``dkim.also``: more keys that sign every message alongside the first."""
    if raw is None:
        return []
    if isinstance(raw, dict):
        problems.append(
            f"dkim.also: write the extra keys as a list of tables, also = {_ALSO_EXAMPLE} "
            "or [[dkim.also]] with double brackets, not [dkim.also]"
        )
        return []
    if not isinstance(raw, list):
        problems.append(
            f"dkim.also: expected a list of tables like {_ALSO_EXAMPLE}, got {type(raw).__name__}"
        )
        return []
    keys: list[DkimSettings | None] = []
    for index, entry in enumerate(raw):
        prefix = f"dkim.also[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{prefix}: expected a table, got {type(entry).__name__}")
            keys.append(None)
            continue
        problems += _unknown_keys(entry, _ALSO_KEYS, prefix, env_names(index + 2)[0])
        own = _string(entry, "domain", prefix, problems).lower().rstrip(".")
        if own:
            keys.append(_one_key(entry, prefix, index + 2, own, root, env, problems))
        else:  # the first key's domain, whose problems are reported once, for dkim.domain
            keys.append(_one_key(entry, prefix, index + 2, domain, root, env, problems, []))
    return keys


def _stray_numbered_keys(numbered: list[int], also: int) -> list[str]:
    """Report a NEWSLETTER_DKIM_KEY_<n> that no ``also`` entry uses."""
    problems = []
    for number in numbered:
        name = f"{ENV_DKIM_KEY}_{number}"
        if number < 2:
            problems.append(
                f"{name}: the first key is {ENV_DKIM_KEY}; dkim.also[0] takes {ENV_DKIM_KEY}_2"
            )
        elif number > also + 1:
            problems.append(
                f"{name} is set but there is no dkim.also[{number - 2}] for it; add "
                f"also = {_ALSO_EXAMPLE} to [dkim] (without key_file) or unset it"
            )
    return problems


def _repeated_selectors(keys: list[DkimSettings | None]) -> list[str]:
    """Each key needs its own DNS record, so its own selector."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    for index, key in enumerate(keys):
        if key is None:
            continue
        where = "dkim" if index == 0 else f"dkim.also[{index - 1}]"
        if key.record_name in seen:
            problems.append(
                f"{where}.selector: {key.selector!r} is already {seen[key.record_name]}; "
                "each key needs its own selector (its own DNS record)"
            )
        else:
            seen[key.record_name] = f"{where}.selector"
    return problems
