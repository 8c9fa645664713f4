"""Log lines on stderr: one line per event, as text or JSON."""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from types import TracebackType
from typing import TextIO

_HANDLER_NAME = "review-scheduler"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the error, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


class OneLineFormatter(logging.Formatter):
    """``LEVEL logger: message``, one line per event; an error is named on the same line, and
    its traceback follows only when asked for (-v)."""

    def __init__(self, traceback: bool = False, timestamps: bool = False) -> None:
        super().__init__()
        self.traceback = traceback
        self.timestamps = timestamps

    def format(self, record: logging.LogRecord) -> str:
        line = f"{record.levelname} {record.name}: {record.getMessage()}"
        if self.timestamps:
            when = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            line = f"{when} {line}"
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line += f": {type(error).__name__}: " + " ".join(str(error).split())
            if self.traceback:
                line += "\n" + self.formatException(record.exc_info)
        return line


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a line is logged, not when the handler was
    made: a stream replaced or closed since (a test's capture, a redirect) never breaks it."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # always the current sys.stderr


def setup_logging(
    verbose: int, fmt: str = "plain", base: int = logging.WARNING, *, service: bool = False
) -> None:
    """Log lines go to stderr through one handler on the package logger.

    For a ``service`` (the daemon), the handler takes every line the process writes to stderr:
    it sits on the root logger, so that libraries' lines (APScheduler's, asyncio's) share the
    format, and uncaught exceptions, warnings and errors ignored at exit are logged through it
    too; plain lines then start with a timestamp. APScheduler says what it runs, and the command
    which config and store it uses, only with -v.
    """
    logger = logging.getLogger("scheduler")
    root = logging.getLogger()
    for owner in (logger, root):
        for handler in list(owner.handlers):
            if handler.get_name() == _HANDLER_NAME:
                owner.removeHandler(handler)
    handler = StderrHandler()
    handler.set_name(_HANDLER_NAME)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(OneLineFormatter(traceback=verbose > 0, timestamps=service))
    (root if service else logger).addHandler(handler)
    logger.setLevel(max(logging.DEBUG, base - 10 * verbose))
    logging.getLogger("scheduler.commands").setLevel(logging.NOTSET)  # as the line above says
    if service:
        root.setLevel(logging.INFO)
        logging.getLogger("apscheduler").setLevel(logging.INFO if verbose else logging.WARNING)
        # which config and store, and how long each stage took: with -v, as for every command
        logging.getLogger("scheduler.commands").setLevel(
            logging.INFO if verbose else logging.WARNING
        )
        logging.captureWarnings(True)
        _log_uncaught()


def _log_uncaught() -> None:
    """Uncaught exceptions (in any thread) and unraisable ones are logged, not printed."""
    crash = logging.getLogger("scheduler.crash")

    def excepthook(
        kind: type[BaseException], error: BaseException, tb: TracebackType | None
    ) -> None:
        crash.critical("uncaught %s: %s", kind.__name__, error, exc_info=(kind, error, tb))

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None:
            return
        crash.critical(
            "uncaught %s in thread %s: %s",
            args.exc_type.__name__,
            args.thread.name if args.thread else "?",
            args.exc_value,
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        )

    def unraisable(args: sys.UnraisableHookArgs) -> None:
        error = args.exc_value
        crash.error(
            "%s: %r",
            args.err_msg or "exception ignored",
            args.object,
            exc_info=(args.exc_type, error, args.exc_traceback) if error is not None else None,
        )

    sys.excepthook = excepthook
    threading.excepthook = thread_hook
    sys.unraisablehook = unraisable
