"""``review-scheduler status``: the service's health, usable as a health check."""

from __future__ import annotations

from pathlib import Path

import click

from scheduler.commands.options import config_option, emit, format_option, now, settings_for
from scheduler.render.status import STATUS_FORMATS
from scheduler.usecases import reminders


@click.command(
    "status",
    epilog="Exit codes: 0 healthy; 1 the last cycle failed or was interrupted, "
    "failed deliveries wait, or nothing can be delivered (the cause is shown); 2 configuration "
    "error.",
)
@config_option
@format_option(STATUS_FORMATS)
def command(config_path: Path | None, fmt: str) -> int:
    """Show the last cycle, the next scheduled one, the outbox, and whether a daemon runs.

    Usable as a health check: the exit code is non-zero when something needs attention.
    """
    status = reminders.status(settings_for(config_path), Path.cwd(), now())
    emit(STATUS_FORMATS, fmt, status)
    return 0 if status.healthy else 1
