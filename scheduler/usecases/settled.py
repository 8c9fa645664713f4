"""Telling that a reminder cycle would find nothing to do, without checking the library again.

A cycle decides from the documents (their files), the day, the settings, the code, and the
store's reminder ledger, review log, dates seen and snoozes. When a cycle finds nothing to do (no
digest to queue, nothing to remember or forget, no date changed by hand), it writes nothing to
those tables, and the store keeps it as :class:`~scheduler.store.Settled`: a key over all the
rest, and the generation the tables stood at before it read them (the store counts every change
to them, by any process). The next cycle walks the library, as every run does, and when the
key, the generation and every file's times say that nothing changed, it finds nothing to do in
turn, without reading a document or the ledger. What is pending in the outbox is delivered
either way.

Files whose times fall within :data:`~scheduler.content.cache.RACY_NS` of the settled cycle's
walk may have changed again since without their times showing it: then the cycle checks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import NamedTuple

from scheduler.config import Settings
from scheduler.content.cache import RACY_NS
from scheduler.content.cache import fingerprint as reading_fingerprint
from scheduler.content.loader import SourceFile
from scheduler.content.snapshot import key_of
from scheduler.notify.reminders import Plan
from scheduler.results import Problem
from scheduler.settings_cache import code_fingerprint
from scheduler.store import Settled
from scheduler.usecases.check import CheckStopped, discovery_for, resolve_targets


class Walked(NamedTuple):
    """The content root as a cycle found it, before reading anything."""

    files: list[SourceFile | Problem]  # see handed_over()
    stamp_ns: int  # when the walk began
    key: str | None  # None: the walk met a problem (a folder or file it could not list)
    newest_ns: int  # the latest modification or status change of any file

    def answered_by(self, last: Settled | None, generation: int) -> bool:
        """Whether ``last`` settled this very cycle: same key, the store's tables unchanged
        since (``generation``), and every file's times older than its walk by a safe margin."""
        return (
            last is not None
            and self.key is not None
            and last.key == self.key
            and last.generation == generation
            and self.newest_ns < last.stamp_ns - RACY_NS
        )

    def handed_over(self) -> Iterator[SourceFile | Problem]:
        """The files, each let go of once given (a cycle that checks the library keeps
        enough per document without them)."""
        files = self.files
        for index, file in enumerate(files):
            files[index] = None  # type: ignore[call-overload]
            yield file

    def settles(self, documents: int, outstanding: int, generation: int) -> Settled | None:
        """What to keep of a cycle over this walk that found nothing to do, the store's tables
        at ``generation`` before it read them; None when its files are too fresh to trust."""
        if self.key is None or self.newest_ns >= self.stamp_ns - RACY_NS:
            return None
        return Settled(self.key, generation, documents, outstanding, self.stamp_ns)


def walk(
    settings: Settings,
    cwd: Path,
    today: date,
    stamp_ns: int,
    stop: threading.Event | None = None,
) -> Walked:
    """Walk the content root for a cycle on ``today`` that began at ``stamp_ns`` (nanoseconds
    since the epoch), and key what it found."""
    discovery = discovery_for(settings, cwd)
    files: list[SourceFile | Problem] = []
    add = files.append
    for item in discovery.iter_files(resolve_targets(settings, [], cwd)):
        if stop is not None and stop.is_set():
            raise CheckStopped("the cycle was stopped before it ended")
        add(item)
    return Walked(files, stamp_ns, cycle_key(settings, cwd, today, files), _newest(files))


def cycle_key(
    settings: Settings, cwd: Path, today: date, files: list[SourceFile | Problem]
) -> str | None:
    """A key over what a cycle decides from, the store apart: the day, the settings that shape
    its decisions, the code, where it runs from, and each file found with its size and times.
    None when the walk met a problem."""
    if any(type(item) is not SourceFile for item in files):
        return None
    shaping = {
        "day": today.isoformat(),
        "reading": reading_fingerprint(settings, cwd),
        "sections": {
            name: dataclasses.asdict(getattr(settings, name))
            for name in ("content", "review", "reminders", "links")
        },
        "cwd": os.path.abspath(cwd),  # noqa: PTH100 (not resolved: as the walk names files)
        "code": code_fingerprint(),
    }
    digest = hashlib.sha256(json.dumps(shaping, sort_keys=True, default=str).encode())
    for start in range(0, len(files), _CHUNK):  # no name holds "\0"
        chunk = files[start : start + _CHUNK]
        listed = "".join(f"{key_of(file)}\0\0" for file in chunk)  # type: ignore[arg-type]
        digest.update(listed.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


_CHUNK = 4096


def _newest(files: list[SourceFile | Problem]) -> int:
    newest = 0
    for file in files:
        if type(file) is SourceFile:
            newest = max(newest, file.mtime_ns, file.ctime_ns)
    return newest


def found_nothing(plan: Plan, observed: int) -> bool:
    """Whether a cycle with ``plan``, which noticed ``observed`` dates, had nothing to do."""
    return not (plan.digests or plan.remember or plan.forget or observed)
