"""The ``newsletter`` command group: every command, and errors turned into exit codes."""

from __future__ import annotations

import sys
from typing import Any

import click

from newsletter import __version__
from newsletter.cli.edition import build, check, init, preview, sources
from newsletter.cli.schedules import schedule_group
from newsletter.cli.send import send
from newsletter.cli.state import state_group
from newsletter.cli.status import status
from newsletter.errors import (
    EXIT_NOTHING_NEW,
    EXIT_PROBLEM,
    NewsletterError,
    NothingToSend,
    UsageProblem,
)


class UserError(click.ClickException):
    """A ``NewsletterError`` shown as ``error: …`` (exit code 1)."""

    exit_code = EXIT_PROBLEM

    def show(self, file: Any = None) -> None:
        """Print the message to stderr, without a traceback."""
        click.secho(f"error: {self.format_message()}", fg="red", err=True)


class NothingNew(UserError):
    """Nothing new to send: a skip, not a failure (exit code 3)."""

    exit_code = EXIT_NOTHING_NEW

    def show(self, file: Any = None) -> None:
        """Print the reason to stderr."""
        click.echo(self.format_message(), err=True)


class Commands(click.Group):
    """The command group: turns ``NewsletterError`` into a message and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; known errors become ``UserError``."""
        try:
            return super().invoke(ctx)
        except NothingToSend as err:
            for warning in err.warnings:
                click.secho(f"warning: {warning}", fg="yellow", err=True)
            raise NothingNew(str(err)) from err
        except UsageProblem as err:
            raise click.BadParameter(str(err), param_hint=err.option or None) from err
        except NewsletterError as err:
            raise UserError(str(err)) from err
        except BrokenPipeError:
            sys.stderr.close()
            raise click.exceptions.Exit(1) from None


@click.group(
    cls=Commands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="newsletter")
def cli() -> None:
    """Build an email digest from your publication's content and deliver it."""


for command in (init, build, send, preview, check, sources, status, schedule_group, state_group):
    cli.add_command(command)


def main() -> None:
    """Run the command line."""
    cli(prog_name="newsletter")
