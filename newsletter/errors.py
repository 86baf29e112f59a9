"""One exception family; ``cli.py`` turns each into a message and an exit code.

Every message names the place (file, line, item, config key) and the next step.
"""

from __future__ import annotations

from collections.abc import Sequence

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_NOTHING_NEW = 3


class NewsletterError(Exception):
    """A problem the user can fix; the message says where and how.

    ``warnings`` are what the work found on the way (reading the sources, say), which
    often explain the problem: they are shown before the message.
    """

    exit_code = EXIT_PROBLEM

    def __init__(self, message: str = "", warnings: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.warnings = tuple(warnings)


class ConfigError(NewsletterError):
    """The configuration file or environment is wrong."""

    def __init__(self, problems: list[str] | str, path: object = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        where = f"{path}: " if path else ""
        if len(self.problems) == 1:
            text = f"{where}{self.problems[0]}"
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            text = f"{where}{len(self.problems)} problems in the configuration:\n{lines}"
        super().__init__(text)


class ContentError(NewsletterError):
    """A content source cannot be read at all."""


class SubscriberError(NewsletterError):
    """The subscriber list cannot be used."""


class SelectionError(NewsletterError):
    """The editor's pick cannot be honoured: a lead URL that matches no usable article."""


class RenderError(NewsletterError):
    """A template failed to render."""


class DeliveryError(NewsletterError):
    """Messages could not be written or handed to the server."""


class StateError(NewsletterError):
    """The state database (history, ledger, schedules) cannot be used."""


class MailboxError(NewsletterError):
    """The bounce mailbox cannot be read: unreachable, the login refused, not a mailbox."""


class StateUnavailable(StateError):
    """The state database cannot be reached (down, restarting, or the network between)."""


class OutputExistsError(NewsletterError):
    """An output folder already exists; nothing is overwritten without --force."""


class UsageProblem(NewsletterError):
    """A command-line value is malformed (exit code 2); ``option`` names the flag."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, option: str = "") -> None:
        super().__init__(message)
        self.option = option


class NothingToSend(NewsletterError):
    """No new content: not a failure, a skip (distinct exit code).

    Only when every source could be read: a source that could not is a ``ContentError``.
    """

    exit_code = EXIT_NOTHING_NEW
