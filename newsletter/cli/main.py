"""The ``newsletter`` command group: every command, and errors turned into exit codes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from newsletter import __version__
from newsletter.cli.edition import build, check, init, preview, sources
from newsletter.cli.options import group_config_option, print_warnings
from newsletter.cli.schedules import schedule_group
from newsletter.cli.send import send
from newsletter.cli.service import serve
from newsletter.cli.state import state_group
from newsletter.cli.status import status
from newsletter.cli.subscribers import subscribers_group
from newsletter.cli.suppressions import suppressions_group
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


class UsageMistake(click.UsageError):
    """A click usage error shown as ``error: …`` under the usage line (exit code 2)."""

    def show(self, file: Any = None) -> None:
        """Print the usage, where to get help, and the message, to stderr."""
        if self.ctx is not None:
            click.echo(self.ctx.get_usage(), err=True, color=self.ctx.color)
            click.echo(f"Try '{self.ctx.command_path} --help' for help.\n", err=True)
        click.secho(f"error: {self.format_message()}", fg="red", err=True)


def _as_ours(err: click.ClickException) -> click.ClickException:
    """Click's own errors in the tool's words; errors that print themselves stay as they are."""
    if isinstance(err, click.UsageError) and type(err).show is click.UsageError.show:
        return UsageMistake(err.format_message(), err.ctx)
    if type(err).show is click.ClickException.show:
        return UserError(err.format_message())
    return err


class Commands(click.Group):
    """The command group: turns ``NewsletterError`` into a message and its exit code."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        """Parse the group's own options; click's usage errors read ``error: …``."""
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.ClickException as err:
            raise _as_ours(err) from err

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; known errors become ``UserError``."""
        try:
            return self._invoke(ctx)
        except click.ClickException as err:
            raise _as_ours(err) from err

    def _invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NewsletterError as err:
            print_warnings(err.warnings)  # what was found on the way comes before the verdict
            if isinstance(err, NothingToSend):
                raise NothingNew(str(err)) from err
            if isinstance(err, UsageProblem):
                raise click.BadParameter(str(err), param_hint=err.option or None) from err
            raise UserError(str(err)) from err
        except BrokenPipeError:
            sys.stderr.close()
            raise click.exceptions.Exit(1) from None


@click.group(
    cls=Commands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="newsletter")
@group_config_option
def cli(config_path: Path | None) -> None:
    """Build an email digest from your publication's content and deliver it.

    Every command but init finds its config in --config FILE (before or after the
    command), else $NEWSLETTER_CONFIG, else ./newsletter.toml, else it uses the
    bundled sample publication.
    """


for command in (
    init,
    build,
    send,
    preview,
    check,
    sources,
    status,
    schedule_group,
    state_group,
    serve,
    suppressions_group,
    subscribers_group,
):
    cli.add_command(command)


def main() -> None:
    """Run the command line."""
    cli(prog_name="newsletter")
