"""``review-scheduler status``: the service's health, usable as a health check."""

from __future__ import annotations

from pathlib import Path

import click

from scheduler.commands.options import config_option, emit, format_option, now, settings_for
from scheduler.render.status import STATUS_FORMATS
from scheduler.usecases import reminders


@click.command(
    "status",
    epilog="Exit codes: 0 healthy; 1 unhealthy, each reason named (the last cycle failed or "
    "was interrupted, scheduled cycles were missed, delivery keeps failing, failed messages "
    "wait, the state store cannot be read, or with --require-daemon no daemon runs); 2 "
    "configuration error.",
)
@config_option
@format_option(STATUS_FORMATS)
@click.option(
    "--require-daemon",
    is_flag=True,
    help="Unhealthy when no daemon runs on the state store (for monitoring).",
)
def command(config_path: Path | None, fmt: str, require_daemon: bool) -> int:
    """Show the last cycle, the next scheduled one, the outbox, whether a daemon runs, and
    what makes the service unhealthy.

    Usable as a health check: the exit code is non-zero when something needs attention. It only
    reads the state store: it works on a read-only one and never creates one.
    """
    settings = settings_for(config_path)
    status = reminders.status(settings, Path.cwd(), now(), require_daemon=require_daemon)
    emit(STATUS_FORMATS, fmt, status)
    return 0 if status.healthy else 1
