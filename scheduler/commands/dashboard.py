"""``review-scheduler dashboard``: the HTML freshness dashboard, as a static site."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from scheduler.commands.options import as_of_option, config_option, settings_for, today_for
from scheduler.usecases.publish import publish_dashboard


@click.command("dashboard")
@config_option
@as_of_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The folder to write the site to. Default: [dashboard] out, else 'dashboard'.",
)
def command(config_path: Path | None, as_of: date | None, out: Path | None) -> int:
    """Write the freshness dashboard: a self-contained static site (index.html and a calendar
    feed per editor) that works from file:// and any static host."""
    settings = settings_for(config_path)
    today = today_for(settings, as_of)
    folder = out or settings.dashboard.out or Path("dashboard")
    written = publish_dashboard(settings, Path.cwd(), today, folder)
    click.echo(
        f"Dashboard for {today.isoformat()} written to {written.index}: "
        f"{written.documents} documents, {written.feeds} calendar feeds.",
        err=True,
    )
    return 0
