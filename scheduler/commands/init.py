"""``review-scheduler init``: write a commented starter config, inferred from the pages found."""

from __future__ import annotations

from pathlib import Path

import click

from scheduler.text import shown
from scheduler.usecases.init import CONFIG_NAME, infer, write


@click.command(
    "init",
    epilog="Exit codes: 0 written (or printed); 2 the file exists and --force was not given, "
    "or it cannot be written; 3 unexpected failure.",
)
@click.option("--force", is_flag=True, help=f"Replace an existing {CONFIG_NAME}.")
@click.option(
    "--dry-run", is_flag=True, help="Print the config and what it was inferred from; write nothing."
)
def command(force: bool, dry_run: bool) -> int:
    """Write a starter review-scheduler.toml into the current folder.

    The pages below the current folder are read (their frontmatter only) to infer the
    convention: the seed's lastReviewed/reviewFrequency, GOV.UK tech-docs, Docusaurus, Hugo,
    Jekyll, or next-review dates (review_by). What was inferred is printed with the counts behind
    it. An existing file is left alone unless --force is given.
    """
    cwd = Path.cwd()
    starter = infer(cwd)
    if dry_run:
        click.echo(starter.text, nl=False)
    else:
        write(cwd, starter.text, force)

    def say(text: str) -> None:  # with --dry-run, the config alone goes to stdout
        click.echo(text, err=dry_run)

    say(
        f"Found {starter.pages} page{'s' if starter.pages != 1 else ''} with frontmatter"
        + (f" ({starter.without_frontmatter} without)" if starter.without_frontmatter else "")
        + "."
    )
    say(f"Inferred: {starter.convention}")
    for key, count in starter.counts:
        say(f"  {shown(key)} in {count} of {starter.pages} pages")
    say(f"  content root: {shown(starter.root)}")
    if starter.default_frequency is not None:
        say(f'  default_frequency = "{starter.default_frequency}" for pages that name none')
    for note in starter.notes:
        say(f"Note: {shown(note)}")
    if not dry_run:
        say(f"Wrote {CONFIG_NAME}. Check it with: review-scheduler validate")
    return 0
