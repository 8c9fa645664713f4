"""Command line: parse arguments, build collaborators, call the service, print, return a code.

Exit codes: 0 clean, 1 findings (errors, overdue documents, failed deliveries), 2 usage or
configuration error, 3 unexpected failure (the traceback is written to a log file whose path is
printed).
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from scheduler import __version__
from scheduler.config import Settings, find_config, load_settings
from scheduler.errors import SchedulerError
from scheduler.report import CHECK_RENDERERS, VALIDATE_RENDERERS, RenderOptions, stream_check
from scheduler.review import STATES, State

if TYPE_CHECKING:
    from scheduler.cache import ParseCache
    from scheduler.reading import Progress

EXIT_CODES_HELP = (
    "Exit codes: 0 clean; 1 findings; 2 usage or configuration error; 3 unexpected failure."
)


# --------------------------------------------------------------------------- shared plumbing


def _parse_date(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date in the form YYYY-MM-DD") from None


def config_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Config file (TOML). Default: $SCHEDULER_CONFIG, else config/scheduler.toml if "
        "present, else built-in defaults.",
    )(func)


def as_of_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--as-of",
        "as_of",
        callback=_parse_date,
        metavar="YYYY-MM-DD",
        help="Evaluate as if today were this date. Default: today in the configured time zone.",
    )(func)


def paths_argument(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument("paths", nargs=-1, type=click.Path(path_type=Path), metavar="[PATHS]...")(
        func
    )


def no_cache_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--no-cache",
        is_flag=True,
        help="Read every document anew; the parse cache is neither used nor updated.",
    )(func)


@contextmanager
def reading(
    settings: Settings, no_cache: bool
) -> Iterator[tuple[ParseCache | None, Progress | None]]:
    """The parse cache (unless ``no_cache``) and, on a terminal, a progress bar for long runs."""
    from scheduler.progress import terminal_progress
    from scheduler.service import parse_cache

    with ExitStack() as stack:
        cache = (
            None
            if no_cache
            else stack.enter_context(parse_cache(settings, Path.cwd(), time.time_ns()))
        )
        progress = stack.enter_context(
            terminal_progress(sys.stderr.isatty(), settings.performance.parallel_threshold)
        )
        yield cache, progress


def settings_for(config_path: Path | None) -> Settings:
    return load_settings(find_config(config_path, os.environ))


def today_for(settings: Settings, as_of: date | None) -> date:
    """The as-of date: given, or today's date in the configured time zone."""
    if as_of is not None:
        return as_of
    return datetime.now(settings.review.zone).date()


def output_options() -> RenderOptions:
    stream = sys.stdout
    tty = stream.isatty()
    color = tty and "NO_COLOR" not in os.environ
    width = shutil.get_terminal_size().columns if tty else None
    return RenderOptions(color=color, width=width)


_LOG_HANDLER_NAME = "review-scheduler"


def _setup_logging(verbose: int) -> None:
    """Log lines go to stderr through one handler on the package logger."""
    logger = logging.getLogger("scheduler")
    for handler in list(logger.handlers):
        if handler.get_name() == _LOG_HANDLER_NAME:
            logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_LOG_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING - 10 * min(verbose, 2))


# --------------------------------------------------------------------------- commands


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EXIT_CODES_HELP,
)
@click.version_option(__version__, prog_name="review-scheduler")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (repeatable).")
def cli(verbose: int) -> None:
    """Keep patient-facing health information reviewed on time.

    Validates document metadata, reports which documents are overdue or due soon, and reminds
    the responsible editors.
    """
    _setup_logging(verbose)


@cli.command(
    epilog="Exit codes: 0 no errors (warnings allowed); 1 errors found, or warnings "
    "with --strict; 2 usage or configuration error; 3 unexpected failure."
)
@paths_argument
@config_option
@as_of_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(VALIDATE_RENDERERS)),
    default="text",
    show_default=True,
    help="text: one line per problem; json: every file and its problems; github: annotations.",
)
@click.option("--strict", is_flag=True, help="Treat warnings as errors for the exit code.")
@no_cache_option
def validate(
    paths: tuple[Path, ...],
    config_path: Path | None,
    as_of: date | None,
    fmt: str,
    strict: bool,
    no_cache: bool,
) -> int:
    """Check the metadata of every document and report each problem with file and line.

    PATHS are files and folders to check; by default the content root from the config.
    """
    from scheduler.service import validate_files

    settings = settings_for(config_path)
    today = today_for(settings, as_of)
    with reading(settings, no_cache) as (cache, progress):
        result = validate_files(settings, paths, Path.cwd(), today, cache=cache, progress=progress)
    click.echo(VALIDATE_RENDERERS[fmt](result, output_options()), nl=False)
    totals = result.totals()
    return 1 if totals["errors"] or (strict and totals["warnings"]) else 0


def _parse_states(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> frozenset[State]:
    if not value:
        return frozenset()
    states = set()
    for part in value.split(","):
        name = part.strip().lower().replace("-", "_").replace(" ", "_")
        try:
            states.add(State(name))
        except ValueError:
            choices = ", ".join(s.value for s in STATES)
            raise click.BadParameter(f"{part.strip()!r} is not one of {choices}") from None
    return frozenset(states)


_CHECK_HELP = """Report which documents are overdue, due soon, ok, exempt or invalid.

PATHS are files and folders to check; by default the content root from the config.
Filters (--state, --editor) select the documents that are listed, counted in the summary and
considered for the exit code."""

_CHECK_EPILOG = (
    "Exit codes: 0 nothing matched --fail-on; 1 something did (default: any overdue or invalid "
    "document); 2 usage or configuration error; 3 unexpected failure."
)


def _check_options(func: Callable[..., Any]) -> Callable[..., Any]:
    decorators: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
        paths_argument,
        config_option,
        as_of_option,
        click.option(
            "--format",
            "fmt",
            type=click.Choice(list(CHECK_RENDERERS)),
            default="text",
            show_default=True,
            help="text: summary and table; json: machine-readable (schema_version 1); "
            "markdown: a table for pull requests or wikis; csv: one row per document; "
            "github: annotations for overdue and invalid documents.",
        ),
        click.option(
            "--state",
            "states",
            callback=_parse_states,
            metavar="STATE,...",
            help="Only these states: overdue, due_soon, ok, exempt, invalid.",
        ),
        click.option(
            "--editor",
            "editors",
            multiple=True,
            metavar="EMAIL",
            help="Only documents this editor is responsible for (repeatable).",
        ),
        click.option(
            "--fail-on",
            type=click.Choice(["overdue", "invalid", "never"]),
            default="overdue",
            show_default=True,
            help="Exit 1 when a selected document is overdue or invalid (overdue), "
            "invalid (invalid), or never.",
        ),
        no_cache_option,
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def _run_check(
    paths: tuple[Path, ...],
    config_path: Path | None,
    as_of: date | None,
    fmt: str,
    states: frozenset[State],
    editors: tuple[str, ...],
    fail_on: str,
    no_cache: bool,
) -> int:
    from scheduler.service import Selection, check

    settings = settings_for(config_path)
    selection = Selection(states, frozenset(e.casefold() for e in editors))
    today = today_for(settings, as_of)
    with reading(settings, no_cache) as (cache, progress):
        result = check(
            settings, paths, Path.cwd(), today, selection, cache=cache, progress=progress
        )
    for chunk in stream_check(fmt, result, output_options()):  # large reports: piece by piece
        click.echo(chunk, nl=False)
    failing = {"overdue": {State.OVERDUE, State.INVALID}, "invalid": {State.INVALID}}.get(
        fail_on, set()
    )
    return 1 if any(doc.state in failing for doc in result.documents) else 0


@cli.command("check", help=_CHECK_HELP, epilog=_CHECK_EPILOG)
@_check_options
def check_command(**kwargs: Any) -> int:
    return _run_check(**kwargs)


@click.command(
    "check-reviews",
    help=_CHECK_HELP,
    epilog=_CHECK_EPILOG,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="check-reviews")
@_check_options
def check_reviews(**kwargs: Any) -> int:
    _setup_logging(0)
    return _run_check(**kwargs)


@cli.group("cache")
def cache_group() -> None:
    """The parse cache: what was read from each document, kept in the state store so that a
    run reads only the documents that changed."""


@cache_group.command("clear")
@config_option
def cache_clear(config_path: Path | None) -> int:
    """Forget everything the parse cache holds: the next run reads every document."""
    from scheduler.service import clear_cache

    settings = settings_for(config_path)
    removed = clear_cache(settings, Path.cwd())
    if removed is None:
        click.echo(f"No state store at {settings.store.path}: nothing to clear.")
    else:
        what = "1 document" if removed == 1 else f"{removed} documents"
        click.echo(f"Cleared the parse cache in {settings.store.path} ({what}).")
    return 0


# --------------------------------------------------------------------------- entry points


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


def _write_crash_log(prog_name: str) -> str:
    handle, name = tempfile.mkstemp(prefix=f"{prog_name}-crash-", suffix=".log")
    with os.fdopen(handle, "w") as out:
        out.write(traceback.format_exc())
    return name


def _tune_garbage_collection() -> None:
    """A run keeps one small tree of objects per document, and they form no cycles. With
    Python's defaults, collecting cycles every 700 allocations would re-examine them all again
    and again and cost more than building them; the objects of the modules loaded so far are
    never garbage and are set aside for good."""
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


def main(argv: Sequence[str] | None = None) -> None:
    _tune_garbage_collection()
    sys.exit(run(cli, argv, "review-scheduler"))


def check_reviews_main(argv: Sequence[str] | None = None) -> None:
    _tune_garbage_collection()
    sys.exit(run(check_reviews, argv, "check-reviews"))
