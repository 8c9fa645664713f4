"""Where an editor edits and reads a document: ``[links]`` URL templates filled in."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

from scheduler.config import LinksSettings


def document_links(
    templates: LinksSettings, path: str, cwd: Path | None = None
) -> tuple[tuple[str, str], ...]:
    """``(("edit_url", ...), ("view_url", ...))`` for the templates set, with ``path`` (as
    reports show it: relative to ``cwd``) taken relative to ``[links] base`` and
    percent-encoded. None for a path outside the base, which has no place in a repository's
    URLs."""
    if templates.edit_url is None and templates.view_url is None:
        return ()
    if templates.base != Path() and cwd is not None:
        folder = os.path.normpath(cwd / templates.base)
        path = os.path.relpath(os.path.normpath(cwd / path), folder)
        path = path.replace(os.sep, "/")
    if path.startswith(("/", "../")) or path == "..":
        return ()
    encoded = quote(path, safe="/", errors="surrogateescape")  # a name's very bytes
    return tuple(
        (name, template.format(path=encoded))
        for name, template in (("edit_url", templates.edit_url), ("view_url", templates.view_url))
        if template is not None
    )
