"""Find documents and read their frontmatter, keeping the line of every key.

Only the head of each file is read: the opening ``---`` line, the metadata and the closing
``---``. Bodies are never loaded, so memory does not grow with them. Whatever is wrong with a
file becomes a :class:`~scheduler.problems.Problem`; nothing here raises for bad input.

Discovery runs once per file on every check, cached or not, so it works on plain strings rather
than :class:`~pathlib.Path` objects and stats each file once.
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from stat import S_ISBLK, S_ISCHR, S_ISDIR, S_ISFIFO, S_ISREG, S_ISSOCK
from typing import Any, NamedTuple

from wcmatch import glob as wcglob

from scheduler import rules
from scheduler.content import ignore
from scheduler.results import Problem

# python-frontmatter's YAML fence (YAMLHandler.FM_BOUNDARY): a line of three or more dashes.
# Written out here, as importing python-frontmatter imports PyYAML, which a run whose documents
# all come from the parse cache does not need (tests/test_loader.py checks they agree).
FM_BOUNDARY = re.compile(r"^-{3,}\s*$", re.MULTILINE)
_CHUNK = 4096  # a page: frontmatter rarely needs more; longer heads are read in growing steps
_NOT_UTF8_RE = re.compile("[\udc80-\udcff\x00]")
_GLOB_FLAGS = wcglob.GLOBSTAR | wcglob.BRACE | wcglob.NEGATE


class SourceFile(NamedTuple):
    """A file to read: where it is (absolute), how to name it in reports, its path relative to
    the content root (for routing globs), and what stat said. (A named tuple: one is made for
    every file on every run, and tuples are the cheapest immutable records Python has.)"""

    path: str
    display: str
    rel: str
    size: int
    mtime_ns: int
    ctime_ns: int = 0
    followed: bool = False  # reached through a symbolic link; otherwise no link is followed


@dataclass(frozen=True, slots=True)
class Frontmatter:
    """The metadata of one document, with the 1-based line of every key."""

    values: dict[str, Any]
    lines: dict[str, int]
    start_line: int = 1
    raw: dict[str, str] = field(default_factory=dict)  # plain scalars YAML read as non-text
    # The line of every key inside a mapping value, by dotted path: "last_update.date".
    nested: dict[str, int] = field(default_factory=dict)

    def find(self, key: str) -> tuple[bool, Any, int | None]:
        """Whether ``key`` is written, its value (:data:`UNREAD` when it could not be read)
        and its line. A key that is not written as it is, but holds dots, is a path into
        mappings: ``last_update.date`` is ``date`` in the mapping ``last_update``."""
        if key in self.lines:
            return True, self.values.get(key, UNREAD), self.lines[key]
        line = self.nested.get(key) if "." in key else None
        if line is None:
            return False, None, None
        value: Any = self.values
        for part in key.split("."):
            if not isinstance(value, dict) or part not in value:
                return True, UNREAD, line
            value = value[part]
        return True, value, line


UNREAD: Any = object()  # a value whose key is written but which could not be read


def value_at(values: dict[str, Any], key: str) -> Any:
    """The value of ``key`` in frontmatter ``values``, where a key with dots that is not written
    as it is stands for a path into mappings; ``None`` when there is none."""
    if key in values or "." not in key:
        return values.get(key)
    value: Any = values
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


@dataclass(frozen=True, slots=True)
class LoadedDocument:
    file: SourceFile
    frontmatter: Frontmatter | None
    problems: tuple[Problem, ...] = ()
    digest: bytes | None = None  # of the bytes read; None when the file could not be read


# --------------------------------------------------------------------------- discovery


def display_path(path: Path, cwd: Path) -> str:
    """``path`` relative to ``cwd`` when it lies below it, with ``/`` separators."""
    return _relative_or_absolute(os.path.normpath(cwd / path), os.path.normpath(cwd))


_NAME = attrgetter("name")


def _any_of(patterns: list[str]) -> Callable[[str], re.Match[str] | None]:
    """One matcher for several of wcmatch's regular expressions: faster than trying each."""
    if not patterns:
        return lambda text: None
    return re.compile("|".join(f"(?:{p})" for p in patterns)).fullmatch


def _within(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or lies below it (both absolute and normalised)."""
    return path == folder or path.startswith(folder if folder.endswith(os.sep) else folder + os.sep)


def _relative_or_absolute(path: str, folder: str) -> str:
    """``path`` relative to ``folder`` if it lies below it, else ``path``; ``/`` separators."""
    if path == folder:
        shown = "."
    elif _within(path, folder):
        shown = path[len(folder) + (not folder.endswith(os.sep)) :]
    else:
        shown = path
    return shown if os.sep == "/" else shown.replace(os.sep, "/")


class Discovery:
    """Walks folders for documents, applying include/exclude globs relative to each folder.

    Hidden files and folders (names starting with ``.``) never match and are not entered.
    A symbolic link that resolves outside the folder being searched is refused with a problem.
    One inside it stands for its target under the link's own name (a file when that name
    matches the globs, a folder searched like any other), unless the walk also finds the target
    under its own name: then it is skipped, and the target is read once, there. A link to a
    folder that holds the one being searched is skipped, and so is one to a folder that holds,
    or lies in, one already entered through a link: following them would go round in circles.

    Nothing the file system does stops the walk: a link loop, a folder that cannot be entered
    or searched, a FIFO or device with a document's name and a file deleted while it is being
    listed are each a problem on that path. FIFOs and devices are never opened.

    With ``gitignore``, what the ``.gitignore`` files of the repository holding a searched
    folder ignore is passed over (see :mod:`scheduler.content.ignore`). With ``force_exclude``,
    a file named on the command line is skipped when ``exclude`` (or, with ``gitignore``, a
    ``.gitignore``) leaves it out, as a walk would.
    """

    def __init__(
        self,
        include: Sequence[str],
        exclude: Sequence[str],
        content_root: Path,
        cwd: Path,
        *,
        gitignore: bool = True,
        force_exclude: bool = True,
    ) -> None:
        # wcmatch translates the globs; matching its regular expressions directly skips a
        # per-call wrapper that costs more than the match itself on large libraries.
        included, excluded = wcglob.translate(
            list(include), flags=_GLOB_FLAGS, exclude=list(exclude)
        )
        self._include = _any_of(included)
        self._exclude = _any_of(excluded)
        self._cwd = os.path.normpath(cwd)
        self._content_root = os.path.realpath(cwd / content_root)
        self._gitignore = gitignore
        self._force_exclude = force_exclude
        self.followed_links = False  # whether a walk met a link to a folder it searched

    def matches(self, rel: str) -> bool:
        """Whether a file at ``rel`` (relative to the folder searched) is a document."""
        return self._include(rel) is not None and self._exclude(rel) is None

    def iter_files(self, targets: Sequence[Path]) -> Iterator[SourceFile | Problem]:
        """Yield every document under ``targets`` (files are taken as named): each folder's
        files in name order, then its subfolders."""
        seen: set[str] = set()
        for target in targets:
            absolute = os.path.normpath(os.path.join(self._cwd, target))
            named = self._named(absolute)
            if named is _SKIPPED:
                continue
            if named is not None:
                if isinstance(named, Problem) or named.path not in seen:
                    seen.add(named.path)
                    yield named
            elif len(targets) == 1:
                yield from self._walk(absolute)  # one walk never meets a file twice
            else:
                for item in self._walk(absolute):
                    key = item.path
                    if key not in seen:
                        seen.add(key)
                        yield item

    def _named(self, absolute: str) -> SourceFile | Problem | None:
        """A file named on the command line, or the problem with it; ``None`` for a folder."""
        shown = self._display(absolute)
        try:
            stat = os.stat(absolute)
        except OSError as exc:
            link = os.path.islink(absolute)
            if exc.errno in _MISSING and not link:
                return rules.NO_SUCH_PATH(shown, None, None, "no such file or folder")
            return _unreachable(shown, exc, link)
        if S_ISDIR(stat.st_mode):
            return None
        rel = self._rel(absolute)
        if self._force_exclude and (
            self._exclude(rel) is not None or (self._gitignore and ignore.path_ignored(absolute))
        ):
            return _SKIPPED
        return _source_file(absolute, shown, rel, stat, os.path.islink(absolute))

    def _display(self, absolute: str) -> str:
        return _relative_or_absolute(absolute, self._cwd)

    def _rel(self, absolute: str) -> str:
        """Path relative to the content root (for routing globs), else the file name path."""
        real = os.path.realpath(absolute)
        if _within(real, self._content_root):
            return _relative_or_absolute(real, self._content_root)
        return self._display(absolute)

    def walk_share(self, target: Path, share: int, shares: int) -> Iterator[SourceFile | Problem]:
        """One of ``shares`` parts of the walk of the folder ``target`` (see :meth:`iter_files`):
        share 0 has the folder's own files, and each share every ``shares``-th of its
        subfolders, with all below them. Together, the shares find what one walk finds,
        provided that no share follows a link to a folder (:attr:`followed_links`): which
        link a folder is entered through depends on the order of the walk."""
        return self._walk(self.absolute(target), (share, shares))

    def absolute(self, target: Path) -> str:
        """Where ``target`` (as named on the command line) is."""
        return os.path.normpath(os.path.join(self._cwd, target))

    def _walk(self, top: str, share: tuple[int, int] = (0, 1)) -> Iterator[SourceFile | Problem]:
        real_top = os.path.realpath(top)
        inside = _within(real_top, self._content_root)
        boundary = self._content_root if inside else real_top
        base_rel = self._rel(top) if inside else ""
        # What .gitignore files say in each folder: None outside a repository (or when they
        # are not respected), () in one whose ignore files hold nothing for the folder.
        top_layers = ignore.layers_for(top) if self._gitignore else None
        stack: list[tuple[str, str, ignore.Layers | None]] = [
            (top, "" if base_rel in ("", ".") else base_rel, top_layers)
        ]
        followed: set[str] = set()  # the folders entered through links
        include, exclude = self._include, self._exclude
        file_ignored, folder_ignored = ignore.file_ignored, ignore.folder_ignored
        enter = ignore.enter
        mine, shares = share
        while stack:
            folder, rel_folder, layers = stack.pop()
            quiet = mine and folder is top  # the top folder's own files are share 0's
            shown_folder = self._display(folder)
            try:
                with os.scandir(folder) as scan:
                    entries = sorted(scan, key=_NAME)
            except OSError as exc:
                if quiet:
                    pass
                elif exc.errno in _MISSING and folder != top:
                    yield _vanished(shown_folder, "folder")
                else:
                    yield rules.UNREADABLE(
                        shown_folder, None, None, f"cannot read folder: {exc.strerror}"
                    )
                continue
            rel_prefix = f"{rel_folder}/" if rel_folder else ""
            shown_prefix = "" if shown_folder == "." else f"{shown_folder}/"
            subfolders: list[tuple[str, str, ignore.Layers | None]] = []
            for entry in entries:  # the hot loop of every run: keep it lean
                name = entry.name
                if name[0] == ".":
                    continue
                try:
                    if entry.is_file(follow_symlinks=False):
                        rel = rel_prefix + name
                        if (
                            include(rel) is not None
                            and exclude(rel) is None
                            and not (layers and file_ignored(layers, name))
                            and not quiet
                        ):
                            stat = entry.stat()
                            yield SourceFile(
                                entry.path,
                                shown_prefix + name,
                                rel,
                                stat.st_size,
                                stat.st_mtime_ns,
                                stat.st_ctime_ns,
                            )
                    elif entry.is_symlink():
                        if layers and file_ignored(layers, name):
                            continue  # git keeps a link as a file, whatever it points to
                        found = self._check_link(entry, rel_prefix + name, boundary, real_top)
                        if isinstance(found, str):  # a folder, searched under the link's name
                            self.followed_links = True
                            if not any(_overlap(found, other) for other in followed):
                                followed.add(found)
                                inner = None if layers is None else enter(layers, found, name)
                                subfolders.append((entry.path, rel_prefix + name, inner))
                        elif found is not None and not quiet:
                            yield found
                    elif entry.is_dir():
                        if layers is None:
                            subfolders.append((entry.path, rel_prefix + name, None))
                        elif not folder_ignored(layers, name):
                            inner = enter(layers, entry.path, name)
                            subfolders.append((entry.path, rel_prefix + name, inner))
                    elif (
                        self.matches(rel_prefix + name)
                        and not (layers and file_ignored(layers, name))
                        and not quiet
                    ):  # a FIFO, device or socket
                        stat = entry.stat(follow_symlinks=False)
                        yield _source_file(entry.path, shown_prefix + name, rel_prefix + name, stat)
                except OSError as exc:  # deleted since the folder was listed, or unsearchable
                    if not quiet:
                        yield _unlisted(shown_prefix + name, exc)
            if folder is top and shares > 1:
                subfolders = subfolders[mine::shares]
            stack.extend(reversed(subfolders))

    def _check_link(
        self, entry: os.DirEntry[str], rel: str, boundary: str, real_top: str
    ) -> SourceFile | Problem | str | None:
        """What a symbolic link met in a walk of ``real_top`` gives: a document under the
        link's name, the real path of a folder to search under the link's name, a problem, or
        nothing (its target is searched or read under its own name)."""
        shown = self._display(entry.path)
        try:
            stat = os.stat(entry.path)  # follows the link
        except OSError as exc:
            if exc.errno in _MISSING and not self.matches(rel):
                return None  # points nowhere, so hides no document, and is not named as one
            if not os.path.lexists(entry.path):
                return _vanished(shown, "link")
            # A loop or a link into a folder that cannot be entered may hide a folder of
            # documents: reported whatever its name.
            return _unreachable(shown, exc, link=True)
        is_dir = S_ISDIR(stat.st_mode)
        if not is_dir and not self.matches(rel):
            return None
        target = os.path.realpath(entry.path)
        if not _within(target, boundary):
            shown_target = target if os.sep == "/" else target.replace(os.sep, "/")
            return rules.LINK_OUTSIDE_ROOT(
                shown,
                None,
                None,
                f"is a symbolic link to {shown_target}, outside the content root; "
                "it was not followed",
                "move the document into the content root or list its folder on the command line",
            )
        if self._found_as_itself(target, real_top, is_dir) or _within(real_top, target):
            return None
        return target if is_dir else _source_file(entry.path, shown, rel, stat, followed=True)

    def _found_as_itself(self, target: str, real_top: str, is_dir: bool) -> bool:
        """Whether a walk of ``real_top`` finds ``target`` (a real path) under its own name:
        below ``real_top``, in no hidden folder, and (a file) matching the globs."""
        if not _within(target, real_top) or target == real_top:
            return False
        below = _relative_or_absolute(target, real_top)
        if any(part.startswith(".") for part in below.split("/")):
            return False
        if is_dir:
            return True
        inside = _within(real_top, self._content_root)
        return self.matches(_relative_or_absolute(target, self._content_root) if inside else below)


# What _named gives for a file named on the command line that is excluded or ignored.
_SKIPPED = rules.NO_SUCH_PATH("", None, None, "skipped")


def _overlap(one: str, other: str) -> bool:
    return _within(one, other) or _within(other, one)


_MISSING = (errno.ENOENT, errno.ENOTDIR)


def missing(path: Path) -> bool:
    """Whether nothing at all is at ``path``, not even a broken link. A path that cannot be
    reached (a folder above it cannot be entered, a link loop) is not missing: discovery
    reports what is wrong with it."""
    try:
        os.lstat(path)
    except OSError as exc:
        return exc.errno in _MISSING
    return False


def _source_file(
    path: str, shown: str, rel: str, stat: os.stat_result, followed: bool = False
) -> SourceFile | Problem:
    """The document at ``path`` if ``stat`` says it is a regular file, else the problem.
    ``followed``: found through a symbolic link, which reading may follow too."""
    if S_ISREG(stat.st_mode):
        return SourceFile(
            path, shown, rel, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, followed
        )
    return _not_regular(shown, stat.st_mode)


def _not_regular(shown: str, mode: int) -> Problem:
    if S_ISFIFO(mode):
        kind = "a named pipe (FIFO)"
    elif S_ISCHR(mode) or S_ISBLK(mode):
        kind = "a device"
    elif S_ISSOCK(mode):
        kind = "a socket"
    else:
        kind = "a folder" if S_ISDIR(mode) else "something else"
    return rules.NOT_REGULAR(
        shown,
        None,
        None,
        f"is {kind}, not a regular file; it was not opened",
        "remove it, or leave it out with [content] exclude",
    )


def _vanished(shown: str, kind: str = "file") -> Problem:
    return rules.VANISHED(
        shown,
        None,
        None,
        f"the {kind} was deleted while it was being checked",
        "check again once the files stop changing",
    )


def _unlisted(shown: str, exc: OSError) -> Problem:
    """The problem with an entry of a folder that was listed, when it cannot be looked at."""
    if exc.errno in _MISSING:
        return _vanished(shown)
    if exc.errno in (errno.EACCES, errno.EPERM):
        return rules.UNREADABLE(
            shown,
            None,
            None,
            f"cannot be read: its folder can be listed but not searched ({exc.strerror})",
            "give the folder search permission as well as read permission (chmod +x)",
        )
    return _unreachable(shown, exc)


def _unreachable(shown: str, exc: OSError, link: bool = False) -> Problem:
    """The problem with a path that cannot be reached (``exc`` from stat or open)."""
    if exc.errno == errno.ELOOP:
        return rules.LINK_LOOP(
            shown,
            None,
            None,
            "is a symbolic link that leads round in a loop; it was not followed",
            "point the link at a file or folder, or remove it",
        )
    if link and exc.errno in _MISSING:
        return rules.BROKEN_LINK(
            shown, None, None, "is a broken symbolic link", "fix or remove the link"
        )
    if link:
        return rules.UNREADABLE(
            shown,
            None,
            None,
            f"is a symbolic link that cannot be followed: {exc.strerror}",
            "check the permissions of the folders it leads to",
        )
    return rules.UNREADABLE(
        shown,
        None,
        None,
        f"cannot be read: {exc.strerror}",
        "check the permissions of the file and of the folders above it",
    )


# --------------------------------------------------------------------------- reading


def load_document(file: SourceFile, max_bytes: int) -> LoadedDocument:
    """Read the frontmatter of ``file``. Every failure is a problem on the result."""
    path = file.display
    named = _name_problems(path)
    if file.size > max_bytes:
        problem = rules.TOO_LARGE(
            path,
            None,
            None,
            f"is {_size(file.size)}, over the limit of {_size(max_bytes)}",
            "split the document or raise [content] max_file_bytes",
        )
        return LoadedDocument(file, None, (*named, problem), _OVERSIZED)
    try:
        head = _read_head(file.path, max_bytes, file.followed)
    except _NotRegular as exc:
        return LoadedDocument(file, None, (*named, _not_regular(path, exc.mode)))
    except OSError as exc:  # deleted or replaced since it was found, or unreadable
        if exc.errno == errno.ELOOP and not file.followed:  # a link put in its place
            problem = rules.VANISHED(
                path,
                None,
                None,
                "was replaced by a symbolic link while it was being checked; "
                "the link was not followed",
                "check the file and run again",
            )
        else:
            problem = _vanished(path) if exc.errno in _MISSING else _unreachable(path, exc)
        return LoadedDocument(file, None, (*named, problem))
    digest = head.digest

    def fail(
        rule: rules.Rule, line: int | None, message: str, hint: str | None = None
    ) -> LoadedDocument:
        return LoadedDocument(file, None, (*named, rule(path, line, None, message, hint)), digest)

    if not head.text or head.text.isspace():  # what strip() would leave empty, without a copy
        return fail(
            rules.EMPTY_FILE, None, "is empty", "start the file with a '---' frontmatter block"
        )
    if not FM_BOUNDARY.match(head.text):
        if _NOT_UTF8_RE.search(head.text[:_CHUNK]):
            return fail(rules.NOT_UTF8, None, "is not UTF-8 text", "save the file as UTF-8")
        return fail(
            rules.NO_FRONTMATTER,
            1,
            "has no frontmatter: the first line must be '---'",
            "start the file with a '---' line, the metadata, then another '---' line",
        )
    if head.closing is None:
        return fail(
            rules.UNCLOSED_FRONTMATTER,
            1,
            "frontmatter opened on line 1 is never closed",
            "add a line '---' after the last metadata line",
        )
    first_break = head.text.find("\n") + 1
    block = head.text[first_break : head.closing]
    bad = _NOT_UTF8_RE.search(block)
    if bad is not None:
        line = _Lines(block, 2).at(bad.start())
        what = "a NUL byte" if bad.group() == "\x00" else "bytes that are not UTF-8"
        return fail(
            rules.NOT_UTF8, line, f"frontmatter contains {what}", "save the file as UTF-8 text"
        )
    frontmatter, problems = parse_frontmatter(block, path, first_line=1)
    return LoadedDocument(file, frontmatter, (*named, *problems), digest)


_NAME_NOT_UTF8_RE = re.compile("[\udc80-\udcff]")  # how Python keeps bytes that are not UTF-8


def _name_problems(shown: str) -> tuple[Problem, ...]:
    """A warning when the name of a file found in discovery is not UTF-8: Python keeps the bytes
    that are not as lone surrogates, and so does the path in every report."""
    if shown.isascii() or _NAME_NOT_UTF8_RE.search(shown) is None:
        return ()
    return (
        rules.NAME_NOT_UTF8(
            shown,
            None,
            None,
            "the name of the file (or of a folder above it) is not UTF-8; reports show it "
            "with those bytes escaped",
            "rename it with a UTF-8 name",
        ),
    )


def head_digest(file: SourceFile, max_bytes: int) -> bytes | None:
    """The digest :func:`load_document` would record for ``file`` now, without parsing it;
    ``None`` when it cannot be read."""
    if file.size > max_bytes:
        return _OVERSIZED
    try:
        return _read_head(file.path, max_bytes, file.followed).digest
    except OSError:
        return None


_OVERSIZED = b"oversized"  # the digest of a file too large to read: its size decides


@dataclass(frozen=True, slots=True)
class _Head:
    text: str
    closing: int | None  # offset of the closing fence in ``text``
    # SHA-256 of every byte the result can depend on: those read, or (when the first read holds
    # the whole head) those up to the end of the closing fence's line.
    digest: bytes


def _read_head(path: str, max_bytes: int, follow: bool = False) -> _Head:
    """Read until the closing fence (or the end, or ``max_bytes``), decoding as UTF-8.

    Undecodable bytes are kept as lone surrogates so they can be reported with their line.
    A UTF-8 byte-order mark is dropped.
    """
    decoder: codecs.IncrementalDecoder | None = None
    pieces: list[bytes] = []
    text = ""
    read = 0
    search_from = 0
    fd = _open_regular(path, follow)
    try:
        while True:
            chunk = _read_up_to(fd, _CHUNK if read == 0 else max(_CHUNK, read))
            pieces.append(chunk)
            read += len(chunk)
            eof = not chunk or read >= max_bytes
            if decoder is None and read == len(chunk) >= 3 and chunk[-1] < 0x80:
                # The first piece, ending in ASCII, so no character is cut in two: decoded in
                # one step as the incremental decoder would, which then goes on as plain UTF-8.
                text = chunk.decode("utf-8", "surrogateescape")
                if text.startswith("\ufeff"):
                    text = text[1:]
                decoder = _UTF8("surrogateescape")
            else:
                if decoder is None:
                    decoder = _UTF8_SIG("surrogateescape")
                text += decoder.decode(chunk, final=eof)
            if read <= len(chunk) and not FM_BOUNDARY.match(text):
                return _Head(text, None, _digest(pieces, text, None))
            if search_from == 0:
                first_break = text.find("\n")
                if first_break >= 0:
                    search_from = first_break + 1
            if search_from:
                found = FM_BOUNDARY.search(text, search_from)
                if found is not None:
                    return _Head(text, found.start(), _digest(pieces, text, found.start()))
                search_from = max(search_from, text.rfind("\n", 0, len(text) - 1) + 1)
            if eof:
                return _Head(text, None, _digest(pieces, text, None))
    finally:
        os.close(fd)


def _digest(pieces: list[bytes], text: str, closing: int | None) -> bytes:
    """The SHA-256 of the bytes read (``pieces``, decoded so far as ``text``) that reading the
    head depends on: up to the end of the line of the closing fence at ``closing``, when that
    line ends in them (the body after it never counts), else all of them."""
    data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
    line_end = -1 if closing is None else text.find("\n", closing)
    if line_end < 0:
        return hashlib.sha256(data).digest()
    end = line_end + 1  # in characters of ``text``; in bytes:
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    if len(data) - bom == len(text):  # one byte per character (undecodable bytes too)
        end += bom
    else:  # surrogateescape gives back the very bytes decoded
        end = bom + len(text[:end].encode("utf-8", "surrogateescape"))
    return hashlib.sha256(data[:end]).digest()


_UTF8 = codecs.getincrementaldecoder("utf-8")
_UTF8_SIG = codecs.getincrementaldecoder("utf-8-sig")


def _read_up_to(fd: int, size: int) -> bytes:
    """``size`` bytes from ``fd``, fewer only at the end of the file (as a buffered read)."""
    chunk = os.read(fd, size)
    if len(chunk) == size or not chunk:
        return chunk
    pieces = [chunk]
    got = len(chunk)
    while got < size:
        more = os.read(fd, size - got)
        if not more:
            break
        pieces.append(more)
        got += len(more)
    return b"".join(pieces)


# Never wait on open: a FIFO put where a document was would block for ever. (A regular file
# ignores O_NONBLOCK; O_NOCTTY keeps a terminal device from becoming this process's own.)
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
_OPEN_FLAGS |= getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)


class _NotRegular(OSError):
    """What was found as a document is now a FIFO, a device, a socket or a folder."""

    def __init__(self, mode: int) -> None:
        super().__init__("not a regular file")
        self.mode = mode


def _open_regular(path: str, follow: bool) -> int:
    """Open ``path`` for reading if it is a regular file (checked on the opened file, so a
    file replaced after it was found is judged as it is now), else raise :class:`_NotRegular`.
    Unless ``follow``, a symbolic link put in the file's place is not followed (ELOOP): it could
    lead out of the content root, past the check discovery made. Returns the descriptor."""
    fd = os.open(path, _OPEN_FLAGS if follow else _OPEN_FLAGS | _NO_FOLLOW)
    try:
        mode = os.fstat(fd).st_mode
        if not S_ISREG(mode):
            raise _NotRegular(mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n = n / 1024  # type: ignore[assignment]
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- YAML


class _Lines:
    """The line (and column) a text editor shows for a position in the frontmatter.

    Lines end at LF, CRLF or a lone CR, as editors show them; libyaml ends lines there too, so
    its line numbers are used as they are. libyaml also ends lines at NEL (U+0085), LINE
    SEPARATOR (U+2028) and PARAGRAPH SEPARATOR (U+2029), which editors show within a line: where
    the text holds one, positions are worked out from the character offset libyaml gives.
    ``offset`` is the editor's line for YAML's line 0 (the line after the opening fence).
    """

    __slots__ = ("_yaml_lines_are_lines", "block", "offset")

    def __init__(self, block: str, offset: int) -> None:
        self.block = block
        self.offset = offset
        self._yaml_lines_are_lines = not _YAML_ONLY_BREAKS_RE.search(block)

    def at(self, index: int) -> int:
        """The line of the character at ``index``."""
        if 0 < index < len(self.block) and self.block[index - 1 : index + 1] == "\r\n":
            index -= 1  # between the two characters of one line break
        return self.offset + len(_EDITOR_BREAK_RE.findall(self.block, 0, index))

    def of(self, mark: Any) -> int:
        """The line of a libyaml mark."""
        return mark.line + self.offset if self._yaml_lines_are_lines else self.at(mark.index)

    def column(self, mark: Any) -> int:
        """The 1-based column of a libyaml mark, in characters."""
        if self._yaml_lines_are_lines:
            return int(mark.column) + 1
        start = max(self.block.rfind("\n", 0, mark.index), self.block.rfind("\r", 0, mark.index))
        return int(mark.index) - start


_EDITOR_BREAK_RE = re.compile(r"\r\n?|\n")
_YAML_ONLY_BREAKS_RE = re.compile("[\x85\u2028\u2029]")


def parse_frontmatter(
    block: str, path: str, first_line: int = 1
) -> tuple[Frontmatter | None, list[Problem]]:
    """Parse the YAML between the fences; ``first_line`` is the line of the opening fence
    (see :func:`scheduler.content.yaml_block.parse_frontmatter`). PyYAML is imported here, when
    a document is read, not by a run whose documents all come from the parse cache."""
    global _PARSE
    if _PARSE is None:
        from scheduler.content.yaml_block import parse_frontmatter as parse

        _PARSE = parse
    return _PARSE(block, path, first_line)


_PARSE: Callable[[str, str, int], tuple[Frontmatter | None, list[Problem]]] | None = None
