"""Where an editor edits and reads a document: ``[links]`` URL templates filled in."""

from __future__ import annotations

from urllib.parse import quote

from scheduler.config import LinksSettings


def document_links(templates: LinksSettings, path: str) -> tuple[tuple[str, str], ...]:
    """``(("edit_url", ...), ("view_url", ...))`` for the templates set, with ``path`` (as
    reports show it) percent-encoded. None for a path outside the current folder, which has
    no place in a repository's URLs."""
    if path.startswith(("/", "../")) or path == "..":
        return ()
    encoded = quote(path, safe="/", errors="surrogateescape")  # a name's very bytes
    return tuple(
        (name, template.format(path=encoded))
        for name, template in (("edit_url", templates.edit_url), ("view_url", templates.view_url))
        if template is not None
    )
