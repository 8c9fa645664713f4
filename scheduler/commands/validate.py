"""``review-scheduler validate``: every problem in the documents' metadata."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click

from scheduler.commands.options import (
    as_of_option,
    config_option,
    emit,
    format_option,
    no_cache_option,
    paths_argument,
    settings_for,
    stage,
    today_for,
)
from scheduler.commands.progress import terminal_progress
from scheduler.render.validate import VALIDATE_FORMATS
from scheduler.usecases.check import validate_files


@click.command(
    "validate",
    epilog="Exit codes: 0 no errors (warnings allowed); 1 errors found, or warnings "
    "with --strict; 2 usage or configuration error; 3 unexpected failure.",
)
@paths_argument
@config_option
@as_of_option
@format_option(VALIDATE_FORMATS)
@click.option("--strict", is_flag=True, help="Treat warnings as errors for the exit code.")
@no_cache_option
def command(
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
    settings = settings_for(config_path)
    today = today_for(settings, as_of)
    threshold = settings.performance.parallel_threshold
    with (
        stage("finding and reading documents"),
        terminal_progress(sys.stderr.isatty(), threshold) as progress,
    ):
        result = validate_files(
            settings, paths, Path.cwd(), today, use_cache=not no_cache, progress=progress
        )
    emit(VALIDATE_FORMATS, fmt, result)
    totals = result.totals()
    return 1 if totals["errors"] or (strict and totals["warnings"]) else 0
