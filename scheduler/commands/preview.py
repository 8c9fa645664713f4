"""``review-scheduler preview``: the digest an editor would get today."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from scheduler.commands.options import (
    as_of_option,
    config_option,
    emit,
    format_option,
    settings_for,
    today_for,
)
from scheduler.render.digest import PREVIEW_FORMATS
from scheduler.usecases import reminders


@click.command("preview")
@config_option
@as_of_option
@click.option("--editor", required=True, metavar="EMAIL", help="Whose digest to show.")
@format_option(PREVIEW_FORMATS)
def command(config_path: Path | None, as_of: date | None, editor: str, fmt: str) -> int:
    """Show the digest an editor would get today, listing all they have outstanding.

    Nothing is written or sent. Documents the editor has not been told about yet are marked new.
    """
    settings = settings_for(config_path)
    today = today_for(settings, as_of)
    rendered = reminders.preview(settings, Path.cwd(), today, editor)
    if rendered is None:
        click.echo(f"Nothing outstanding for {editor} on {today.isoformat()}.", err=True)
        return 0
    emit(PREVIEW_FORMATS, fmt, rendered)
    return 0
