"""The command-line entry points: the ``review-scheduler`` group and ``check-reviews``.

Each command lives in its own module and is imported only when it runs (or help lists it), so
that ``check-reviews`` never pays for the mail, template and scheduling libraries.

Exit codes: 0 clean, 1 findings (errors, overdue documents, failed deliveries), 2 usage or
configuration error, 3 unexpected failure (the traceback is written to a log file whose path is
printed).
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import click

from scheduler import __version__
from scheduler.commands.check import EPILOG as CHECK_EPILOG
from scheduler.commands.check import HELP as CHECK_HELP
from scheduler.commands.check import check_options, run_check
from scheduler.commands.logs import setup_logging
from scheduler.commands.options import color_option
from scheduler.errors import SchedulerError

EXIT_CODES_HELP = (
    "Exit codes: 0 clean; 1 findings; 2 usage or configuration error; 3 unexpected failure."
)

VERBOSE_HELP = (
    "Say on stderr which config and state store are used, how many documents were read or "
    "taken from the cache, and how long each stage took; -vv adds every document."
)

# name -> "module:attribute" of the click command
COMMANDS = {
    "check": "scheduler.commands.check:command",
    "validate": "scheduler.commands.validate:command",
    "send": "scheduler.commands.send:command",
    "preview": "scheduler.commands.preview:command",
    "outbox": "scheduler.commands.outbox:group",
    "daemon": "scheduler.commands.daemon:command",
    "status": "scheduler.commands.status:command",
    "cache": "scheduler.commands.cache:group",
    "dashboard": "scheduler.commands.dashboard:command",
    "calendar": "scheduler.commands.calendar:command",
    "mark-reviewed": "scheduler.commands.mark_reviewed:command",
    "snooze": "scheduler.commands.snooze:command",
    "history": "scheduler.commands.history:command",
    "schedule": "scheduler.commands.schedule:command",
    "init": "scheduler.commands.init:command",
}


class LazyGroup(click.Group):
    """A group whose commands are imported when they are used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EXIT_CODES_HELP,
)
@click.version_option(__version__, prog_name="review-scheduler")
@click.option("-v", "--verbose", count=True, help=VERBOSE_HELP)
@color_option
def cli(verbose: int) -> None:
    """Keep patient-facing health information reviewed on time.

    Validates document metadata, reports which documents are overdue or due soon, and reminds
    the responsible editors.
    """
    setup_logging(verbose)


@click.command(
    "check-reviews",
    help=CHECK_HELP,
    epilog=CHECK_EPILOG,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="check-reviews")
@click.option("-v", "--verbose", count=True, help=VERBOSE_HELP)
@color_option
@check_options
def check_reviews(verbose: int, **options: Any) -> int:
    setup_logging(verbose)
    return run_check(**options)


def run(command: click.Command, argv: Sequence[str] | None, prog_name: str) -> int:
    """Run ``command`` and turn every outcome into an exit code. Never raises."""
    try:
        result = command.main(
            args=list(argv) if argv is not None else None,
            prog_name=prog_name,
            standalone_mode=False,
        )
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except SchedulerError as exc:
        click.echo(f"{prog_name}: error: {exc}", err=True)
        return exc.exit_code
    except Exception:
        log_path = _write_crash_log(prog_name)
        click.echo(
            f"{prog_name}: unexpected error: {sys.exc_info()[1]!r}; details in {log_path}",
            err=True,
        )
        return 3
    return result if isinstance(result, int) else 0


def crash_log_folders(environ: Mapping[str, str]) -> list[str]:
    """Where a crash log goes, best first: the folder systemd made for the unit's logs
    (``LogsDirectory=``), else its state folder (``StateDirectory=``), which outlive the unit's
    private /tmp; else the temporary folder."""
    folders = [
        environ[name].split(":")[0]
        for name in ("LOGS_DIRECTORY", "STATE_DIRECTORY")
        if environ.get(name)
    ]
    return [*folders, tempfile.gettempdir()]


def _write_crash_log(prog_name: str) -> str:
    text = traceback.format_exc()
    for folder in crash_log_folders(os.environ):
        try:
            handle, name = tempfile.mkstemp(prefix=f"{prog_name}-crash-", suffix=".log", dir=folder)
        except OSError:
            continue
        with os.fdopen(handle, "w") as out:
            out.write(text)
        return name
    return "nowhere (no folder was writable): " + text.strip().splitlines()[-1]


def main(argv: Sequence[str] | None = None) -> None:
    sys.exit(run(cli, argv, "review-scheduler"))


def check_reviews_main(argv: Sequence[str] | None = None) -> None:
    sys.exit(run(check_reviews, argv, "check-reviews"))
