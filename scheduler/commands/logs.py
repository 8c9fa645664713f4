"""Log lines on stderr: one line per event, as text or JSON."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
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
        return json.dumps(entry, ensure_ascii=False)


class OneLineFormatter(logging.Formatter):
    """``LEVEL logger: message``, one line per event; an error is named on the same line, and
    its traceback follows only when asked for (-v)."""

    def __init__(self, traceback: bool = False) -> None:
        super().__init__()
        self.traceback = traceback

    def format(self, record: logging.LogRecord) -> str:
        line = f"{record.levelname} {record.name}: {record.getMessage()}"
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


def setup_logging(verbose: int, fmt: str = "plain", base: int = logging.WARNING) -> None:
    """Log lines go to stderr through one handler on the package logger."""
    logger = logging.getLogger("scheduler")
    for handler in list(logger.handlers):
        if handler.get_name() == _HANDLER_NAME:
            logger.removeHandler(handler)
    handler = StderrHandler()
    handler.set_name(_HANDLER_NAME)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(OneLineFormatter(traceback=verbose > 0))
    logger.addHandler(handler)
    logger.setLevel(max(logging.DEBUG, base - 10 * verbose))
