"""Find documents and read their frontmatter, keeping the line of every key.

Only the head of each file is read: the opening ``---`` line, the metadata and the closing
``---``. Bodies are never loaded, so memory does not grow with them. Whatever is wrong with a
file becomes a :class:`~scheduler.problems.Problem`; nothing here raises for bad input.
"""

from __future__ import annotations

import codecs
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from frontmatter.default_handlers import SafeLoader, YAMLHandler
from wcmatch import glob as wcglob

from scheduler.problems import Problem, error

_HANDLER = YAMLHandler()  # python-frontmatter's YAML fences: a line of three or more dashes
_CHUNK = 8192
_NOT_UTF8_RE = re.compile("[\udc80-\udcff\x00]")
_GLOB_FLAGS = wcglob.GLOBSTAR | wcglob.BRACE | wcglob.NEGATE


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file to read: where it is, how to name it in reports, and what stat said."""

    path: Path
    display: str
    rel: str
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class Frontmatter:
    """The metadata of one document, with the 1-based line of every key."""

    values: dict[str, Any]
    lines: dict[str, int]
    start_line: int = 1
    raw: dict[str, str] = field(default_factory=dict)  # plain scalars YAML read as non-text


@dataclass(frozen=True, slots=True)
class LoadedDocument:
    file: SourceFile
    frontmatter: Frontmatter | None
    problems: tuple[Problem, ...] = ()


# --------------------------------------------------------------------------- discovery


def display_path(path: Path, cwd: Path) -> str:
    """``path`` relative to ``cwd`` when it lies below it, with ``/`` separators."""
    absolute = path if path.is_absolute() else cwd / path
    absolute = Path(os.path.normpath(absolute))
    if absolute.is_relative_to(cwd):
        return absolute.relative_to(cwd).as_posix()
    return absolute.as_posix()


class Discovery:
    """Walks folders for documents, applying include/exclude globs relative to each folder.

    Hidden files and folders (names starting with ``.``) never match and are not entered.
    A symbolic link that resolves outside the folder being searched is refused with a problem;
    one that resolves inside it is skipped, since its target is found under its own name.
    """

    def __init__(
        self, include: Sequence[str], exclude: Sequence[str], content_root: Path, cwd: Path
    ) -> None:
        self._matcher = wcglob.compile(list(include), flags=_GLOB_FLAGS, exclude=list(exclude))
        self._cwd = cwd
        self._content_root = Path(os.path.realpath(cwd / content_root))

    def iter_files(self, targets: Sequence[Path]) -> Iterator[SourceFile | Problem]:
        """Yield every document under ``targets`` (files are taken as named): each folder's
        files in name order, then its subfolders."""
        seen: set[str] = set()
        for target in targets:
            absolute = Path(os.path.normpath(self._cwd / target))
            shown = display_path(absolute, self._cwd)
            if absolute.is_dir():
                for item in self._walk(absolute):
                    key = item.path.as_posix() if isinstance(item, SourceFile) else item.path
                    if key not in seen:
                        seen.add(key)
                        yield item
            elif absolute.is_file():
                if absolute.as_posix() in seen:
                    continue
                seen.add(absolute.as_posix())
                stat = absolute.stat()
                yield SourceFile(
                    absolute, shown, self._rel(absolute), stat.st_size, stat.st_mtime_ns
                )
            elif absolute.is_symlink():
                yield error(
                    shown, None, None, "is a broken symbolic link", "fix or remove the link"
                )
            else:
                yield error(shown, None, None, "no such file or folder")

    def _rel(self, absolute: Path) -> str:
        """Path relative to the content root (for routing globs), else the file name path."""
        real = Path(os.path.realpath(absolute))
        if real.is_relative_to(self._content_root):
            return real.relative_to(self._content_root).as_posix()
        return display_path(absolute, self._cwd)

    def _walk(self, top: Path) -> Iterator[SourceFile | Problem]:
        real_top = Path(os.path.realpath(top))
        boundary = self._content_root if real_top.is_relative_to(self._content_root) else real_top
        base_rel = self._rel(top) if boundary == self._content_root else ""
        stack: list[tuple[str, str]] = [(os.fspath(top), "" if base_rel in ("", ".") else base_rel)]
        match = self._matcher.match
        while stack:
            folder, rel_folder = stack.pop()
            try:
                with os.scandir(folder) as scan:
                    entries = sorted(scan, key=lambda e: e.name)
            except OSError as exc:
                shown = display_path(Path(folder), self._cwd)
                yield error(shown, None, None, f"cannot read folder: {exc.strerror}")
                continue
            subfolders: list[tuple[str, str]] = []
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                rel = f"{rel_folder}/{entry.name}" if rel_folder else entry.name
                if entry.is_symlink():
                    problem = self._check_link(entry, rel, boundary, match)
                    if problem is not None:
                        yield problem
                    continue
                if entry.is_dir():
                    subfolders.append((entry.path, rel))
                elif entry.is_file() and match(rel):
                    stat = entry.stat()
                    yield SourceFile(
                        Path(entry.path),
                        display_path(Path(entry.path), self._cwd),
                        rel,
                        stat.st_size,
                        stat.st_mtime_ns,
                    )
            stack.extend(reversed(subfolders))

    def _check_link(
        self, entry: os.DirEntry[str], rel: str, boundary: Path, match: Any
    ) -> Problem | None:
        is_dir = entry.is_dir()  # follows the link
        if not is_dir and not match(rel):
            return None
        shown = display_path(Path(entry.path), self._cwd)
        target = Path(os.path.realpath(entry.path))
        if not target.exists():
            return error(shown, None, None, "is a broken symbolic link", "fix or remove the link")
        if not target.is_relative_to(boundary):
            return error(
                shown,
                None,
                None,
                f"is a symbolic link to {target.as_posix()}, outside the content root; "
                "it was not followed",
                "move the document into the content root or list its folder on the command line",
            )
        return None


# --------------------------------------------------------------------------- reading


def load_document(file: SourceFile, max_bytes: int) -> LoadedDocument:
    """Read the frontmatter of ``file``. Every failure is a problem on the result."""
    path = file.display

    def fail(line: int | None, message: str, hint: str | None = None) -> LoadedDocument:
        return LoadedDocument(file, None, (error(path, line, None, message, hint),))

    if file.size > max_bytes:
        return fail(
            None,
            f"is {_size(file.size)}, over the limit of {_size(max_bytes)}",
            "split the document or raise [content] max_file_bytes",
        )
    try:
        head = _read_head(file.path, max_bytes)
    except OSError as exc:
        return fail(None, f"cannot be read: {exc.strerror}")
    if head.text.strip() == "":
        return fail(None, "is empty", "start the file with a '---' frontmatter block")
    if not _HANDLER.detect(head.text):
        if _NOT_UTF8_RE.search(head.text[:_CHUNK]):
            return fail(None, "is not UTF-8 text", "save the file as UTF-8")
        return fail(
            1,
            "has no frontmatter: the first line must be '---'",
            "start the file with a '---' line, the metadata, then another '---' line",
        )
    if head.closing is None:
        return fail(
            1,
            "frontmatter opened on line 1 is never closed",
            "add a line '---' after the last metadata line",
        )
    first_break = head.text.find("\n") + 1
    block = head.text[first_break : head.closing]
    bad = _NOT_UTF8_RE.search(block)
    if bad is not None:
        line = 2 + block.count("\n", 0, bad.start())
        what = "a NUL byte" if bad.group() == "\x00" else "bytes that are not UTF-8"
        return fail(line, f"frontmatter contains {what}", "save the file as UTF-8 text")
    frontmatter, problems = parse_frontmatter(block, path, first_line=1)
    return LoadedDocument(file, frontmatter, tuple(problems))


@dataclass(frozen=True, slots=True)
class _Head:
    text: str
    closing: int | None  # offset of the closing fence in ``text``


def _read_head(path: Path, max_bytes: int) -> _Head:
    """Read until the closing fence (or the end, or ``max_bytes``), decoding as UTF-8.

    Undecodable bytes are kept as lone surrogates so they can be reported with their line.
    A UTF-8 byte-order mark is dropped.
    """
    decoder = codecs.getincrementaldecoder("utf-8-sig")("surrogateescape")
    text = ""
    read = 0
    search_from = 0
    with path.open("rb") as handle:
        while True:
            chunk = handle.read(_CHUNK if read == 0 else max(_CHUNK, read))
            read += len(chunk)
            eof = not chunk or read >= max_bytes
            text += decoder.decode(chunk, final=eof)
            if read <= len(chunk) and not _HANDLER.detect(text):
                return _Head(text, None)
            if search_from == 0:
                first_break = text.find("\n")
                if first_break >= 0:
                    search_from = first_break + 1
            if search_from:
                found = _HANDLER.FM_BOUNDARY.search(text, search_from)
                if found is not None:
                    return _Head(text, found.start())
                search_from = max(search_from, text.rfind("\n", 0, len(text) - 1) + 1)
            if eof:
                return _Head(text, None)


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n = n / 1024  # type: ignore[assignment]
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- YAML


def parse_frontmatter(
    block: str, path: str, first_line: int = 1
) -> tuple[Frontmatter | None, list[Problem]]:
    """Parse the YAML between the fences; ``first_line`` is the line of the opening fence.

    Safe YAML only. Anchors and aliases are refused before anything is built, so an alias
    bomb costs a scan, not memory. Duplicate keys, which PyYAML silently collapses, are errors.
    """
    offset = first_line + 1  # YAML's line 0 is the line after the fence

    if _needs_scan(block) and (refused := _scan_events(block, path, offset)) is not None:
        return None, [refused]
    loader = SafeLoader(block)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, [
                error(path, first_line, None, "frontmatter is empty", "add the metadata keys")
            ]
        if not isinstance(node, yaml.MappingNode):
            kind = "a list" if isinstance(node, yaml.SequenceNode) else "a single value"
            return None, [
                error(
                    path,
                    node.start_mark.line + offset,
                    None,
                    f"frontmatter must be a mapping of keys to values, not {kind}",
                    "write one 'key: value' per line",
                )
            ]
        return _construct_mapping(loader, node, path, offset)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + offset if mark is not None else first_line
        message = exc.problem or "is not valid YAML"
        return None, [
            error(path, line, None, f"YAML syntax error: {message}", _yaml_hint(exc, offset))
        ]
    except yaml.YAMLError as exc:  # reader errors (control characters) carry no mark
        position = getattr(exc, "position", None)
        at = block.count("\n", 0, position) + offset if isinstance(position, int) else None
        reason = getattr(exc, "reason", None) or "cannot be read"
        return None, [error(path, at, None, f"YAML error: {reason}")]
    except RecursionError:
        return None, [error(path, first_line, None, "frontmatter is nested too deeply to read")]
    finally:
        loader.dispose()


def _yaml_hint(exc: yaml.MarkedYAMLError, offset: int) -> str:
    if exc.context:
        where = exc.context_mark
        started = f" that starts on line {where.line + offset}" if where is not None else ""
        return f"{exc.context}{started}; check quoting and indentation"
    return "check quoting and indentation; values containing ': ' need quotes"


# Deeper than this is refused: no real metadata nests so far, and libyaml's composer recurses
# on the C stack, so tens of thousands of levels would crash the process rather than raise.
MAX_DEPTH = 64
_INDENTED_DEEP = "\n" + " " * MAX_DEPTH
_LIBYAML_TOO_DEEP = "exceeded maximum nesting depth"


def _needs_scan(block: str) -> bool:
    """Cheap test for text that might hold anchors, aliases or deep nesting."""
    if "&" in block or "*" in block or _INDENTED_DEEP in block:
        return True
    openers = block.count("[") + block.count("{") + block.count("- ") + block.count("? ")
    return openers > MAX_DEPTH


def _scan_events(block: str, path: str, offset: int) -> Problem | None:
    """Walk the YAML events (no nodes are built) for anchors, aliases and excessive depth."""
    loader = SafeLoader(block)
    depth = 0
    try:
        while loader.check_event():
            event: Any = loader.get_event()
            line = event.start_mark.line + offset
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                kind, sign = (
                    ("alias", "*") if isinstance(event, yaml.AliasEvent) else ("anchor", "&")
                )
                return error(
                    path,
                    line,
                    None,
                    f"YAML {kind} {sign}{event.anchor} is not allowed in frontmatter",
                    "write each value out in full instead of using anchors (&) and aliases (*)",
                )
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    return error(
                        path,
                        line,
                        None,
                        f"frontmatter is nested more than {MAX_DEPTH} levels deep",
                        "flatten the metadata",
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError as exc:
        if getattr(exc, "problem", None) == _LIBYAML_TOO_DEEP:
            # libyaml (PyYAML 6.0.4 and later) stops scanning deep flow collections itself.
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + offset if mark is not None else offset - 1
            return error(
                path,
                line,
                None,
                f"frontmatter is nested more than {MAX_DEPTH} levels deep",
                "flatten the metadata",
            )
        return None  # the syntax error is reported by the full parse
    finally:
        loader.dispose()
    return None


_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


def _construct_mapping(
    loader: Any, node: yaml.MappingNode, path: str, offset: int
) -> tuple[Frontmatter, list[Problem]]:
    values: dict[str, Any] = {}
    lines: dict[str, int] = {}
    raw: dict[str, str] = {}
    problems: list[Problem] = []
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + offset
        if not isinstance(key_node, yaml.ScalarNode):
            problems.append(
                error(path, line, None, "keys must be plain text", "write 'key: value'")
            )
            continue
        key = key_node.value
        if key in lines:
            problems.append(
                error(
                    path,
                    line,
                    key,
                    f"duplicate key (first on line {lines[key]}); YAML would keep only this one",
                    "remove one of the two lines",
                )
            )
        lines[key] = line
        try:
            value = loader.construct_object(value_node, deep=True)
        except (ValueError, OverflowError) as exc:
            if value_node.tag == _TIMESTAMP_TAG:
                value = value_node.value  # an impossible date: validation explains it
            else:
                problems.append(error(path, line, key, f"cannot be read: {exc}"))
                continue
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            problems.append(error(path, line, key, f"cannot be read: {problem}"))
            continue
        values[key] = value
        plain = isinstance(value_node, yaml.ScalarNode) and not value_node.style
        if plain and not isinstance(value, str):
            raw[key] = value_node.value
    return Frontmatter(values, lines, offset - 1, raw), problems
