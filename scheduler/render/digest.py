"""``review-scheduler preview``: an editor's digest, its text part or its HTML part."""

from __future__ import annotations

from scheduler.notify.digest import RenderedDigest
from scheduler.render import Registry, RenderOptions
from scheduler.render.common import shown_lines

PREVIEW_FORMATS: Registry[RenderedDigest] = Registry("the digest preview")


@PREVIEW_FORMATS.register("text", "the subject and the plain-text part")
def render_preview_text(digest: RenderedDigest, options: RenderOptions) -> list[str]:
    return [shown_lines(f"Subject: {digest.subject}\n\n{digest.text}")]


@PREVIEW_FORMATS.register("html", "the HTML part")
def render_preview_html(digest: RenderedDigest, options: RenderOptions) -> list[str]:
    return [shown_lines(digest.html)]
