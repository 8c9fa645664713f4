"""The report snapshot: the JSON report's entry of every document a run listed, written out but
for its state and day count, with the file each came from and what stat said of it, in report
order, in one file read in one go.

A warm run of ``check-reviews --format json`` that finds a file as the snapshot recorded it
(the same path, size, modification and status-change times) takes the document's entry from
here, without a query to the parse cache: one read and a few splits, done in C, in place of a
query, a row object and a checksum per document. As the entries are kept in report order, and
as templates for ``%`` joined as the report joins entries, a run that finds nothing changed
fills them all in one ``%`` and sorts nothing. The parse cache stays the record of every
document's facts; the snapshot is derived from it, for one way of running (the same settings,
code, current folder, files and folders named, and report format, all in its key), and is
rewritten by a run that found anything changed.

An entry is written only for a file whose times were more than :data:`~scheduler.content.cache.
RACY_NS` old when the run began (older files do not change without their times changing; newer
ones are looked up in the parse cache, which checks their digest). The file is replaced
atomically, so a reader sees a whole snapshot, an older one, or none; one that is damaged (its
CRC-32 does not match) or was written for another key is not used.

Layout: the sections, one after another, then a line break and a last line of JSON (format,
key, number of entries, the length of each section, the CRC-32 of the sections). The sections,
in UTF-8 with undecodable bytes of file names escaped as Python escapes them: the files' keys
(see :func:`key_of`) separated by two NULs (no path holds a NUL); the paths shown, separated by
NUL; the kinds, one letter each; the due dates' and last reviews' ordinals, the ranks and the
lengths of the templates, as numbers separated by spaces; and the templates, joined by what the
report writes between entries.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import zlib
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from functools import cached_property
from itertools import accumulate, chain, islice
from pathlib import Path
from typing import Any, NamedTuple

from scheduler.content.loader import SourceFile

log = logging.getLogger(__name__)

FORMAT = 1
SUFFIX = "-reports"  # beside the parse cache's SQLite file, as SQLite's own -wal and -shm
NEEDS_FACTS = "N"  # the kind of a document whose entry cannot be kept (see Kept)
_ENCODING, _ERRORS = "utf-8", "surrogateescape"


def key_of(file: SourceFile) -> str:
    """What identifies ``file`` as it is now: its path, size, modification and status-change
    times, and whether it was reached through a link."""
    return f"{file.path}\0{file.size}\0{file.mtime_ns}\0{file.ctime_ns}\0{file.followed:d}"


def snapshot_key(*parts: object) -> str:
    """The key of a snapshot for a run shaped by ``parts`` (JSON-encodable)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class Kept(NamedTuple):
    """What the snapshot keeps of one document: its file's key, its path as shown, its kind
    (see :func:`scheduler.usecases.check._Encoding.parts`, or :data:`NEEDS_FACTS`: its entry
    depends on the day beyond its state and day count, so a run builds it from its facts), its
    due date's and last review's ordinals (0 for none), its rank in the report before its path
    (``DocumentReport.urgency``), and its entry, as a template for ``%`` with two fields (its
    state, then its day count)."""

    key: str
    path: str
    kind: str
    due: int
    last: int
    rank: int
    template: str


# The sections: keys, paths, kinds, due dates, last reviews, ranks, template lengths, templates
# (joined by the report's separator between entries, written in its place).
_SEPARATORS = ("\0\0", "\0", "", " ", " ", " ", " ")
_PATHS, _KINDS, _DUES, _LASTS, _RANKS, _LENGTHS = range(1, 7)
_NUMBERS = (_DUES, _LASTS, _RANKS, _LENGTHS)
_CHUNK_CHARACTERS = 1 << 20  # of templates, encoded and written at a time


class Snapshot:
    """One run's view of the snapshot file at ``path``: its entries as columns, in report
    order; which the run met unchanged (:attr:`listed`, :attr:`needed`); and what it adds
    (:meth:`keep`). An unusable file is an empty snapshot.

    ``separator`` is what the report writes between entries: the templates are kept joined by
    it, so that a run that lists every entry as kept fills them all in one ``%``
    (:attr:`text`)."""

    def __init__(self, path: Path, key: str, stamp_ns: int, racy_ns: int, separator: str) -> None:
        self.path = path
        self.key = key
        self.separator = separator
        self._newer_than = stamp_ns - racy_ns  # files changed since may change unseen
        self.keys: list[str] = []
        self.kinds = ""
        self.dues: list[int] = []
        self.text = ""  # the templates, joined by the separator
        self._unread: dict[int, str] = {}  # sections read when first needed, by number
        self.index: dict[str, int] = {}  # by file key; a run takes out the files it meets
        self.latest_review = 0  # the latest last review's ordinal
        self.listed: list[int] = []  # met unchanged, their entries used as kept
        self.needed: list[int] = []  # met unchanged, their entries built from their facts
        self.added: dict[str, Kept] = {}  # by file key
        self.changed = False  # whether the run met a file the snapshot did not answer for

    @property
    def loaded(self) -> int:
        return len(self.keys)

    @cached_property
    def paths(self) -> list[str]:
        text = self._unread.pop(_PATHS, "")
        return text.split(_SEPARATORS[_PATHS]) if text else []

    @cached_property
    def lasts(self) -> list[int]:
        return self._numbers(_LASTS)

    @cached_property
    def ranks(self) -> list[int]:
        return self._numbers(_RANKS)

    @cached_property
    def lengths(self) -> list[int]:
        return self._numbers(_LENGTHS)

    @cached_property
    def starts(self) -> list[int]:
        """Where each template starts in :attr:`text`."""
        step = len(self.separator)
        return list(accumulate((n + step for n in self.lengths), initial=0))

    def _numbers(self, section: int) -> list[int]:
        text = self._unread.pop(section, "")
        return list(map(int, text.split(" "))) if text else []

    def template(self, i: int) -> str:
        start = self.starts[i]
        return self.text[start : start + self.lengths[i]]

    @classmethod
    def open(cls, path: Path, key: str, stamp_ns: int, racy_ns: int, separator: str) -> Snapshot:
        snapshot = cls(path, key, stamp_ns, racy_ns, separator)
        read = _read(path, key)
        if read is not None:
            texts, snapshot.latest_review = read
            snapshot.keys = keys = texts[0].split(_SEPARATORS[0])
            snapshot.kinds, snapshot.text = texts[_KINDS], texts[-1]
            snapshot.dues = list(map(int, texts[_DUES].split(" ")))
            snapshot._unread = {i: texts[i] for i in (_PATHS, _LASTS, _RANKS, _LENGTHS)}
            snapshot.index = dict(zip(keys, range(len(keys)), strict=True))
        return snapshot

    def keep(self, file: SourceFile, kept: Kept) -> bool:
        """Add ``kept`` to the next snapshot, if ``file``'s times are old enough to be
        trusted; whether it was."""
        if max(file.mtime_ns, file.ctime_ns) < self._newer_than:
            self.added[kept.key] = kept
            return True
        return False

    def gone(self) -> list[str]:
        """The paths of files the snapshot held that this run did not meet (after the walk):
        changed, or removed."""
        return [key[: key.index("\0")] for key in self.index]

    def save(self) -> None:
        """Write the snapshot for the next run, unless nothing changed; a failure is not an
        error (the next run looks its documents up in the parse cache)."""
        if not self.changed and not self.index:
            return
        # The entries kept from this snapshot, in its order, and where each new one goes
        # among them: whole columns are taken in C, not entry by entry.
        retained = sorted(self.listed + self.needed)
        added = sorted(self.added.values(), key=lambda entry: (entry.rank, entry.path))
        ranks, paths = self.ranks, self.paths
        cuts = [
            bisect_left(retained, (entry.rank, entry.path), key=lambda i: (ranks[i], paths[i]))
            for entry in added
        ]
        olds = [list(map(column.__getitem__, retained)) for column in self._columns()]
        news: list[Sequence[Any]] = (
            list(zip(*added, strict=True)) if added else [()] * len(Kept._fields)
        )
        templates = news[-1]
        news[-1] = [len(template) for template in templates]
        columns = [_merged(old, new, cuts) for old, new in zip(olds, news, strict=True)]
        sections = [
            _joined(map(str, column) if i in _NUMBERS else column, separator)
            for i, (separator, column) in enumerate(zip(_SEPARATORS, columns, strict=True))
        ]
        sections.append(self._templates(retained, cuts, templates))
        self._write(len(columns[0]), max(columns[_LASTS], default=0), sections)

    def _templates(
        self, retained: list[int], cuts: list[int], added: Sequence[str]
    ) -> Iterator[str]:
        """The templates of the next snapshot, joined by the separator, in pieces: runs of
        consecutive ones kept from this snapshot as parts of its text, each added one where its
        cut says."""
        text, starts, lengths = self.text, self.starts, self.lengths
        bounds = [0, *cuts, len(retained)]
        between = [*added, None]
        written = False
        for low, high, template in zip(bounds[:-1], bounds[1:], between, strict=True):
            first = low
            for position in range(low, high + 1):
                if position == high or (
                    position > first and retained[position] != retained[position - 1] + 1
                ):
                    if first < position:
                        if written:
                            yield self.separator
                        begin = starts[retained[first]]
                        end = starts[retained[position - 1]] + lengths[retained[position - 1]]
                        for offset in range(begin, end, _CHUNK_CHARACTERS):
                            yield text[offset : min(end, offset + _CHUNK_CHARACTERS)]
                        written = True
                    first = position
            if template is not None:
                yield self.separator + template if written else template
                written = True

    def _columns(self) -> tuple[Sequence[Any], ...]:
        """The columns written as sections, but the templates."""
        return (self.keys, self.paths, self.kinds, self.dues, self.lasts, self.ranks, self.lengths)

    def _write(self, count: int, latest_review: int, sections: list[Iterator[str]]) -> None:
        """Write each section from its pieces (a megabyte at a time, to hold little in memory),
        then the line that describes them, to a new file that then replaces the snapshot."""
        path = self.path
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        lengths: list[int] = []
        crc = 0
        try:
            with temporary.open("xb") as handle:
                for section in sections:
                    written = 0
                    pending: list[str] = []
                    size = 0
                    for piece in chain(section, [""]):
                        pending.append(piece)
                        size += len(piece)
                        if size >= _CHUNK_CHARACTERS or not piece:
                            data = "".join(pending).encode(_ENCODING, _ERRORS)
                            handle.write(data)
                            crc = zlib.crc32(data, crc)
                            written += len(data)
                            pending, size = [], 0
                    lengths.append(written)
                described = {
                    "format": FORMAT,
                    "key": self.key,
                    "entries": count,
                    "latest_review": latest_review,
                    "sections": lengths,
                    "crc": crc,
                }
                handle.write(b"\n" + json.dumps(described).encode())
            temporary.replace(path)
        except OSError as exc:
            log.debug("the report snapshot was not written: %s", exc)
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)


def _joined(items: Iterable[str], separator: str) -> Iterator[str]:
    """``separator.join(items)``, in pieces."""
    iterator = iter(items)
    first = True
    while batch := list(islice(iterator, 1_000)):
        yield separator.join(batch) if first else separator + separator.join(batch)
        first = False


def _merged(old: list[Any], new: Sequence[Any], cuts: list[int]) -> list[Any]:
    """``old`` with each item of ``new`` inserted before the item of ``old`` its cut names."""
    if not new:
        return old
    merged: list[Any] = []
    previous = 0
    for cut, item in zip(cuts, new, strict=True):
        merged.extend(old[previous:cut])
        merged.append(item)
        previous = cut
    merged.extend(old[previous:])
    return merged


def _read(path: Path, key: str) -> tuple[list[str], int] | None:
    """The sections of the snapshot at ``path`` and the latest review's ordinal, if it was
    written for ``key`` and is whole (its CRC-32 matches, and every section holds one item
    per entry)."""
    try:
        data = path.read_bytes()
        end = data.rfind(b"\n")
        head = json.loads(data[end + 1 :])
        if not isinstance(head, dict) or head.get("format") != FORMAT:
            return None
        if head.get("key") != key:
            return None
        lengths = head["sections"]
        count = head["entries"]
        latest_review = head["latest_review"]
        body = memoryview(data)[: max(end, 0)]
        if (
            not isinstance(count, int)
            or not isinstance(latest_review, int)
            or count <= 0
            or len(lengths) != len(_SEPARATORS) + 1
            or sum(lengths) != len(body)
            or zlib.crc32(body) != head["crc"]
        ):
            return None
        texts: list[str] = []
        start = 0
        for length in lengths:
            texts.append(str(body[start : start + length], _ENCODING, _ERRORS))
            start += length
        body.release()
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None  # missing, unreadable, damaged, or not written by this version
    if len(texts[_KINDS]) != count or any(
        texts[i].count(separator) != count - 1
        for i, separator in enumerate(_SEPARATORS)
        if separator and i != 0
    ):
        return None
    if texts[0].count(_SEPARATORS[0]) != count - 1:
        return None
    return texts, latest_review


def remove(cache_file: Path) -> bool:
    """Remove the snapshot kept beside ``cache_file``; whether there was one."""
    try:
        snapshot_file(cache_file).unlink()
    except FileNotFoundError:
        return False
    return True


def snapshot_file(cache_file: Path) -> Path:
    """Where the snapshot of the parse cache in the SQLite file ``cache_file`` is kept."""
    return cache_file.with_name(cache_file.name + SUFFIX)
