"""``review-scheduler history``: reviews, snoozes and reminders sent, per document."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path

import click

from scheduler.commands.options import config_option, date_option, emit, format_option, settings_for
from scheduler.render.history import HISTORY_FORMATS
from scheduler.usecases import reviews


@click.command("history")
@click.argument("path", required=False, type=click.Path(path_type=Path), metavar="[PATH]")
@config_option
@date_option("--since", "since", "Only what happened on this date or later.")
@format_option(HISTORY_FORMATS)
def command(config_path: Path | None, path: Path | None, since: date | None, fmt: str) -> int:
    """Show the review history: reviews (with editor and outcome), reviews made by editing the
    date by hand, snoozes and reminders sent, per document (or for PATH only)."""
    settings = settings_for(config_path)
    start = datetime.combine(since, time(), settings.review.zone) if since else None
    emit(HISTORY_FORMATS, fmt, reviews.history(settings, Path.cwd(), path, start))
    return 0
