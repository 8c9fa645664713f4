"""What ``.gitignore`` files say discovery should pass over.

Only the repository that holds the folder being searched counts: its ``.gitignore`` files (from
its top down to the folder, and those met on the way down from there) and its
``.git/info/exclude``, read with pathspec's implementation of git's rules. A pattern is matched
against the path relative to the folder of its ``.gitignore``; a deeper file's patterns win over
a shallower one's, and a later pattern over an earlier one. An ignored folder is not entered, so
nothing below it can be taken back (as in git). The folder being searched is never itself tested:
naming it is asking for it, and when it lies in an ignored folder, only the ignore files from that
folder down apply.

Checking costs a regular-expression match per file and per ``.gitignore`` that holds patterns
for files; patterns for folders only (``node_modules/``, ``build/``) are tried on folders only,
as files below an ignored folder are never met.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec


class Layer(NamedTuple):
    """One ignore file's patterns, as seen from a folder below (or at) its own."""

    files: GitIgnoreSpec | None  # the patterns that can match a file; None: there are none
    folders: GitIgnoreSpec  # every pattern, tried on folders (as "name/")
    prefix: str  # the folder's path relative to the ignore file's folder: "" or "a/b/"
    # Whether any pattern for files matches a path at all: one regular expression for them all,
    # so that the usual answer (none does) costs one match instead of one per pattern.
    any_file: Callable[[str], re.Match[str] | None] = lambda path: None


Layers = tuple[Layer, ...]


_GROUP_NAME = re.compile(r"\(\?P<\w+>")


def _any_of(spec: GitIgnoreSpec) -> Callable[[str], re.Match[str] | None]:
    """One match for every pattern of ``spec`` (its named groups made plain, so that they can
    share one expression)."""
    sources = []
    for pattern in spec.patterns:
        regex = getattr(pattern, "regex", None)
        if pattern.include is not None and regex is not None:
            sources.append(_GROUP_NAME.sub("(?:", regex.pattern))
    if not sources:
        return lambda path: None
    return re.compile("|".join(f"(?:{source})" for source in sources)).match


def _spec(lines: list[str]) -> tuple[GitIgnoreSpec | None, GitIgnoreSpec] | None:
    patterns = [
        line.rstrip("\r")
        for line in lines
        if line.strip() and not line.startswith("#")  # blank lines and comments
    ]
    if not patterns:
        return None
    from pathspec import GitIgnoreSpec  # imported once a .gitignore holds patterns (start-up)

    for_files = [p for p in patterns if not p.rstrip().endswith("/")]
    return (GitIgnoreSpec.from_lines(for_files) if for_files else None), GitIgnoreSpec.from_lines(
        patterns
    )


def _read(path: str) -> Layer | None:
    """The layer of the ignore file at ``path``; None when there is none or it holds nothing.
    An unreadable ignore file ignores nothing (git does the same)."""
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8", "surrogateescape")
    except OSError:
        return None
    spec = _spec(text.split("\n"))
    if spec is None:
        return None
    files, folders = spec
    return Layer(files, folders, "", _any_of(files) if files is not None else lambda path: None)


def enter(layers: Layers, folder: str, name: str) -> Layers:
    """The layers for the subfolder ``name`` of the folder they are for; ``folder`` is its
    absolute path (where its own ``.gitignore`` may be)."""
    below = tuple(layer._replace(prefix=f"{layer.prefix}{name}/") for layer in layers)
    own = _read(os.path.join(folder, ".gitignore"))
    return below if own is None else (*below, own)


def file_ignored(layers: Layers, name: str) -> bool:
    """Whether the file ``name`` in the folder ``layers`` are for is ignored."""
    for layer in reversed(layers):
        if layer.files is not None:
            path = layer.prefix + name
            if layer.any_file(path) is None:
                continue
            verdict = layer.files.check_file(path).include
            if verdict is not None:
                return verdict
    return False


def folder_ignored(layers: Layers, name: str) -> bool:
    """Whether the subfolder ``name`` of the folder ``layers`` are for is ignored."""
    for layer in reversed(layers):
        verdict = layer.folders.check_file(f"{layer.prefix}{name}/").include
        if verdict is not None:
            return verdict
    return False


def repository_of(folder: str) -> str | None:
    """The top folder of the git repository holding ``folder`` (absolute), if any: the nearest
    folder with a ``.git`` folder or file (a worktree's or submodule's) at or above it."""
    current = folder
    while True:
        if os.path.lexists(os.path.join(current, ".git")):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def layers_for(folder: str) -> Layers | None:
    """The layers that apply in ``folder`` (absolute, normalised): None outside a repository.

    Folders between the repository's top and ``folder`` are not tested. When one of them (or
    ``folder``) is one the repository ignores, as a generated or downloaded library often is,
    the files above would hide everything below it: searching it anyway is asking for it, so
    the ignore files from the outermost such folder down apply, as if it were a repository's
    top."""
    top = repository_of(folder)
    if top is None:
        return None
    layers: Layers = ()
    exclude = _read(os.path.join(top, ".git", "info", "exclude"))
    if exclude is not None:
        layers = (exclude,)
    own = _read(os.path.join(top, ".gitignore"))
    if own is not None:
        layers = (*layers, own)
    if folder != top:
        current = top
        for name in os.path.relpath(folder, top).split(os.sep):
            ignored = folder_ignored(layers, name)
            current = os.path.join(current, name)
            if ignored:  # start again from here, as from a repository's top
                mine = _read(os.path.join(current, ".gitignore"))
                layers = () if mine is None else (mine,)
            else:
                layers = enter(layers, current, name)
    return layers


def path_ignored(path: str) -> bool:
    """Whether the file at ``path`` (absolute, normalised) is ignored by its repository,
    itself or through a folder on its way."""
    folder, name = os.path.split(path)
    top = repository_of(folder)
    if top is None:
        return False
    layers = layers_for(top) or ()
    current = top
    if folder != top:
        for part in os.path.relpath(folder, top).split(os.sep):
            if folder_ignored(layers, part):
                return True
            current = os.path.join(current, part)
            layers = enter(layers, current, part)
    return file_ignored(layers, name)
