"""A subscriber's status: which cell values mean active, which mean not, and the rest."""

from __future__ import annotations

import re

from .cells import clean_cell

ACTIVE = "active"
MAX_STATUS = 40

# fmt: off
# Status values, compared without case, spaces, hyphens or underscores ("Opted-In" → optedin).
_ACTIVE_VALUES = frozenset({
    "", "active", "subscribed", "subscriber", "yes", "y", "true", "1", "confirmed",
    "optedin", "optin", "ok", "on", "enabled",
})
_INACTIVE_VALUES = frozenset({
    "unsubscribed", "unsubscribe", "optedout", "optout", "bounced", "bounce", "hardbounce",
    "softbounce", "cleaned", "complained", "complaint", "spam", "spamcomplaint", "abuse",
    "inactive", "disabled", "deleted", "archived", "blocked", "suppressed", "pending",
    "unconfirmed", "no", "n", "false", "0", "off",
})
# fmt: on
_STATUS_NOISE = re.compile(r"[\s_-]+")
# Non-active statuses that mean "never mail again", and the suppression reason each is
# (``state.lists.SUPPRESSION_REASONS``); the others (inactive, pending, soft bounce …) do not.
_SUPPRESSING = {
    **dict.fromkeys(("unsubscribed", "unsubscribe", "optedout", "optout"), "unsubscribe"),
    **dict.fromkeys(("bounced", "bounce", "hardbounce", "cleaned"), "bounce"),
    **dict.fromkeys(("complained", "complaint", "spam", "spamcomplaint", "abuse"), "complaint"),
    **dict.fromkeys(("suppressed", "blocked"), "manual"),
}
# The status a subscriber export writes for each suppression reason (read back as it).
STATUS_FOR_REASON = {
    "unsubscribe": "unsubscribed",
    "bounce": "bounced",
    "complaint": "complained",
    "manual": "suppressed",
}


def parse_status(raw: str) -> tuple[str, bool]:
    """Return the normalized status of a cell and whether it is a known value."""
    if raw.casefold() in _ACTIVE_VALUES:
        return ACTIVE, True
    text, _cut = clean_cell(raw, MAX_STATUS)
    value = _STATUS_NOISE.sub(" ", text.casefold()).strip()
    key = value.replace(" ", "")
    if key in _ACTIVE_VALUES:
        return ACTIVE, True
    return value, key in _INACTIVE_VALUES


def suppression_reason(status: str) -> str | None:
    """The suppression reason a (parsed) non-active status stands for, or None."""
    return _SUPPRESSING.get(status.replace(" ", ""))
