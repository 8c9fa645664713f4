"""``review-scheduler cache clear``: forget what the parse cache holds."""

from __future__ import annotations

from pathlib import Path

import click

from scheduler.commands.options import config_option, settings_for
from scheduler.usecases.check import clear_cache


@click.group("cache")
def group() -> None:
    """The parse cache: what was read from each document, kept in the state store so that a
    run reads only the documents that changed."""


@group.command("clear")
@config_option
def clear(config_path: Path | None) -> int:
    """Forget everything the parse cache holds: the next run (and cycle) reads every document."""
    settings = settings_for(config_path)
    cleared = clear_cache(settings, Path.cwd())
    if cleared.removed is None:
        click.echo(f"No state store at {cleared.location}: nothing to clear.")
    else:
        what = "1 document" if cleared.removed == 1 else f"{cleared.removed} documents"
        click.echo(f"Cleared the parse cache in {cleared.location} ({what}).")
    return 0
