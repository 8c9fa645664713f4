"""What every command shares: options, loading the settings, today's date, output settings."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic_core import PydanticCustomError

from scheduler.config import Settings, find_config, load_settings
from scheduler.content.fields import iso_date
from scheduler.render import Registry, RenderOptions
from scheduler.text import shown

F = TypeVar("F", bound=Callable[..., Any])


def _parse_date(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return iso_date(value)  # the form frontmatter dates are read in, and no other
    except PydanticCustomError as exc:
        hint = (exc.context or {}).get("hint")
        raise click.BadParameter(exc.message() + (f" ({hint})" if hint else "")) from None


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Config file (TOML). Default: $SCHEDULER_CONFIG, else config/scheduler.toml if "
    "present, else built-in defaults.",
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
