"""What every command shares: options, loading the settings, today's date, output settings."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from scheduler.config import Settings, find_config, load_settings
from scheduler.content.fields import explained, iso_date
from scheduler.render import Registry, RenderOptions
from scheduler.text import shown

if TYPE_CHECKING:
    from scheduler.rule_selection import RuleSelection

F = TypeVar("F", bound=Callable[..., Any])


def _parse_date(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return iso_date(value)  # the form frontmatter dates are read in, and no other
    except ValueError as exc:
        problem = explained(exc)
        if problem is None:
            raise
        message, hint = problem
        raise click.BadParameter(message + (f" ({hint})" if hint else "")) from None


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Config file (TOML). Default: $SCHEDULER_CONFIG, else the nearest "
    "review-scheduler.toml, .review-scheduler.toml or pyproject.toml with "
    "[tool.review-scheduler] in this folder or above, else config/scheduler.toml if present, "
    "else built-in defaults.",
)

as_of_option = click.option(
    "--as-of",
    "as_of",
    callback=_parse_date,
    metavar="YYYY-MM-DD",
    help="Evaluate as if today were this date. Default: today in the configured time zone.",
)


def date_option(name: str, dest: str, help: str) -> Callable[[F], F]:
    """An option taking a date written YYYY-MM-DD."""
    return click.option(name, dest, callback=_parse_date, metavar="YYYY-MM-DD", help=help)


paths_argument = click.argument(
    "paths", nargs=-1, type=click.Path(path_type=Path), metavar="[PATHS]..."
)

no_cache_option = click.option(
    "--no-cache",
    is_flag=True,
    help="Read every document anew; the parse cache is neither used nor updated.",
)


def discovery_options(func: F) -> F:
    """``--no-gitignore`` and ``--no-force-exclude``: what decides which files are read."""
    func = click.option(
        "--no-gitignore",
        "no_gitignore",
        is_flag=True,
        help="Read files that .gitignore files ignore ([content] respect_gitignore = false).",
    )(func)
    return click.option(
        "--no-force-exclude",
        "no_force_exclude",
        is_flag=True,
        help="Read files named as PATHS even when exclude or a .gitignore leaves them out "
        "([content] force_exclude = false).",
    )(func)


def with_discovery(settings: Settings, no_gitignore: bool, no_force_exclude: bool) -> Settings:
    """``settings`` with what ``--no-gitignore`` and ``--no-force-exclude`` turn off."""
    if not (no_gitignore or no_force_exclude):
        return settings
    content = dataclasses.replace(
        settings.content,
        respect_gitignore=settings.content.respect_gitignore and not no_gitignore,
        force_exclude=settings.content.force_exclude and not no_force_exclude,
    )
    return dataclasses.replace(settings, content=content)


def format_option(registry: Registry[Any], *, what: str = "") -> Callable[[F], F]:
    """``--format`` with the registry's formats as choices and their descriptions as help."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(registry.names),
        default=registry.names[0],
        show_default=True,
        help=(what + " " if what else "") + registry.help(),
    )


log = logging.getLogger("scheduler.commands")


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time a stage of a command; -v logs how long it took."""
    start = time.perf_counter()
    yield
    log.info("%s took %.3f s", name, time.perf_counter() - start)


def settings_for(config_path: Path | None) -> Settings:
    with stage("loading the settings"):
        path = find_config(config_path, os.environ)
        settings = load_settings(path)
    if log.isEnabledFor(logging.INFO):
        from scheduler.store import location

        log.info("config: %s", shown(str(path)) if path else "none found, built-in defaults")
        log.info("state store: %s", shown(location(settings.store)))
    return settings


def today_for(settings: Settings, as_of: date | None) -> date:
    """The as-of date: given, or today's date in the configured time zone."""
    if as_of is not None:
        return as_of
    return datetime.now(settings.review.zone).date()


def now() -> datetime:
    return datetime.now(UTC)


COLOR_CHOICES = ("auto", "always", "never")
_COLOR_KEY = "scheduler.color"


def _remember_color(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        ctx.find_root().meta[_COLOR_KEY] = value
    return value


color_option = click.option(
    "--color",
    type=click.Choice(COLOR_CHOICES),
    default=None,
    callback=_remember_color,
    expose_value=False,
    is_eager=True,
    help="Colour in reports: auto (a terminal, unless NO_COLOR is set and not empty, or "
    "FORCE_COLOR is), always, or never.  [default: auto]",
)


def wants_color(choice: str, environ: Mapping[str, str], tty: bool) -> bool:
    """Whether output is coloured: ``--color always``/``never`` decide; on ``auto`` a
    non-empty ``NO_COLOR`` turns colour off (no-color.org: an empty one does not), else a
    non-empty ``FORCE_COLOR`` turns it on, else a terminal has it."""
    if choice != "auto":
        return choice == "always"
    if environ.get("NO_COLOR", ""):
        return False
    if environ.get("FORCE_COLOR", ""):
        return True
    return tty


def output_options() -> RenderOptions:
    tty = sys.stdout.isatty()
    ctx = click.get_current_context(silent=True)
    choice = ctx.find_root().meta.get(_COLOR_KEY, "auto") if ctx is not None else "auto"
    color = wants_color(choice, os.environ, tty)
    width = shutil.get_terminal_size().columns if tty else None
    return RenderOptions(color=color, width=width)


def emit(registry: Registry[Any], fmt: str, result: object) -> None:
    """Write ``result`` in format ``fmt`` to standard output, piece by piece."""
    with stage(f"writing the {fmt} output"):
        options = output_options()
        for piece in registry.stream(fmt, result, options):
            # click strips colour on a pipe unless told: --color always and FORCE_COLOR keep it
            click.echo(piece, nl=False, color=options.color)


# --------------------------------------------------------------------------- rule selection

RULES_HELP = (
    "Errors are always reported and cannot be switched off: they make a document invalid "
    "(no trustworthy due date)."
)


def _selectors(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...] | None:
    """Comma-separated rule codes, names or prefixes, checked; ``None`` when not given."""
    from scheduler.rule_selection import normalise, split

    if not value:
        return None
    try:
        return tuple(dict.fromkeys(normalise(s) for s in split(value)))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def rule_options(func: F) -> F:
    """``--select``, ``--ignore`` and ``--statistics``: which warnings a run reports."""
    for decorator in reversed(
        [
            click.option(
                "--select",
                multiple=True,
                callback=_selectors,
                metavar="RULE,...",
                help="Report only these warnings: rule codes (RS204), names (unknown-key), "
                "prefixes (RS2) or ALL. Replaces [metadata] select. " + RULES_HELP,
            ),
            click.option(
                "--ignore",
                multiple=True,
                callback=_selectors,
                metavar="RULE,...",
                help="Do not report these warnings (codes, names or prefixes); added to "
                "[metadata] ignore.",
            ),
            click.option(
                "--statistics",
                is_flag=True,
                help="Print how many problems each rule found (text or json) instead of the "
                "report; the exit code is the same.",
            ),
        ]
    ):
        func = decorator(func)
    return func


def rule_selection_for(
    settings: Settings, select: tuple[str, ...] | None, ignore: tuple[str, ...] | None
) -> RuleSelection:
    """The warnings a run reports: the config's, with the command line's --select replacing
    [metadata] select and its --ignore added to [metadata] ignore."""
    from scheduler.rule_selection import RuleSelection

    meta = settings.metadata
    return RuleSelection.of(
        meta.select if select is None else select,
        (*meta.ignore, *(ignore or ())),
        meta.per_path_ignores,
    )


def statistics_format(fmt: str) -> str:
    """The format --statistics is printed in: text or json; others are a usage error."""
    from scheduler.render.statistics import STATISTICS_FORMATS

    if fmt not in STATISTICS_FORMATS:
        raise click.UsageError(
            f"--statistics prints {' or '.join(STATISTICS_FORMATS.names)}, not --format {fmt}"
        )
    return fmt
