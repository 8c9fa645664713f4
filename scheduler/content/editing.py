"""Writing a document: one frontmatter value changed in place, every other byte kept.

The YAML is never re-serialised. The value's characters are found from the parser's marks (or,
for a key written on a line of its own with a date, from that line) and replaced in the text, in
the quoting style they were written in, so key order, quoting, comments, line endings, a
byte-order mark and the body stay as they were. A field that is missing is added as the last
line of the frontmatter. Every edit is checked by reading the result again: if it does not read
as the old metadata with only that value changed, the document is left alone.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from scheduler.content.loader import FM_BOUNDARY, Frontmatter, parse_frontmatter, value_at

if TYPE_CHECKING:
    import yaml

BOM = b"\xef\xbb\xbf"
_PLAIN_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


@dataclass(frozen=True, slots=True)
class Edited:
    """A document's bytes with the value set, and the value it had (as text; None if absent)."""

    data: bytes
    old_value: str | None
    next_due: date | None = None  # a next-review date set with it (see mark-reviewed)


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a document cannot be edited safely."""

    reason: str


def _split(data: bytes) -> tuple[bytes, str, int, int] | Refused:
    """The byte-order mark, the text, and where the frontmatter block starts and ends."""
    bom = BOM if data.startswith(BOM) else b""
    text = data[len(bom) :].decode("utf-8", "surrogateescape")  # every byte comes back
    first_break = text.find("\n") + 1
    if not first_break or not FM_BOUNDARY.match(text[:first_break]):
        return Refused("has no frontmatter: the first line must be '---'")
    closing = FM_BOUNDARY.search(text, first_break)
    if closing is None:
        return Refused("its frontmatter is never closed")
    return bom, text, first_break, closing.start()


def read_frontmatter(data: bytes, path: str) -> Frontmatter | None:
    """The frontmatter of a document's bytes, if it can be read without problems."""
    split = _split(data)
    if isinstance(split, Refused):
        return None
    _, text, start, end = split
    frontmatter, problems = parse_frontmatter(text[start:end], path)
    return None if problems else frontmatter


def set_date(data: bytes, key: str, day: date, path: str) -> Edited | Refused:
    """``data`` with the frontmatter value of ``key`` set to ``day``, nothing else changed.
    A ``key`` with dots that is not written as it is names a value in a mapping
    (``last_update.date``): it is changed where it is, never added."""
    split = _split(data)
    if isinstance(split, Refused):
        return split
    bom, text, first_break, closing = split
    block = text[first_break:closing]
    before, problems = parse_frontmatter(block, path)
    if before is None or problems:
        reason = problems[0].message if problems else "its frontmatter cannot be read"
        return Refused(f"its frontmatter cannot be read safely: {reason}")
    iso = day.isoformat()
    nested = key not in before.lines and "." in key
    old_value: str | None
    found = _date_span(block, before, key)
    if found is not None:  # the common case, without composing the YAML a second time
        start, end, quote = found
        new_block = f"{block[:start]}{quote}{iso}{quote}{block[end:]}"
        old_value = block[start + len(quote) : end - len(quote)]
    else:
        edit = _composed_edit(block, text[:first_break], key, iso, nested)
        if isinstance(edit, Refused):
            return edit
        new_block, old_value = edit
    after, _ = parse_frontmatter(new_block, path)
    if (
        after is None
        or str(value_at(after.values, key)) != iso
        or _without(after.values, key, nested) != _without(before.values, key, nested)
    ):
        return Refused(f"setting {key} would change more than its value")
    rewritten = text[:first_break] + new_block + text[closing:]
    return Edited(bom + rewritten.encode("utf-8", "surrogateescape"), old_value)


def _composed_edit(
    block: str, fence: str, key: str, iso: str, nested: bool
) -> tuple[str, str | None] | Refused:
    """:func:`set_date`'s new frontmatter ``block`` and the old value, the value found from the
    marks of PyYAML's composer (or the key added as the last line, when it is missing)."""
    # here, not for every command that imports this module: PyYAML is needed only to edit
    import yaml

    from scheduler.content.yaml_block import SafeLoader

    # libyaml's composer (where PyYAML has it) gives the same character offsets as PyYAML's own,
    # some 20 times faster; an offset that did not point at the value is refused just below.
    node = yaml.compose(block, Loader=SafeLoader)
    assert isinstance(node, yaml.MappingNode)  # parse_frontmatter refuses anything else
    value = _value_node(node, key)
    if value is None:
        if nested:
            return Refused(f"has no {key} value to change; add it by hand")
        if node.flow_style:
            return Refused(f"its frontmatter is one flow mapping; add {key!r} by hand")
        eol = "\r\n" if fence.endswith("\r\n") else "\n"
        shown_key = key if _PLAIN_KEY_RE.fullmatch(key) else f'"{key}"'
        return f"{block}{shown_key}: '{iso}'{eol}", None
    start, end = value.start_mark.index, value.end_mark.index
    quote = {"'": "'", '"': '"'}.get(getattr(value, "style", None) or "", "")
    if not isinstance(value, yaml.ScalarNode) or block[start:end] != (
        f"{quote}{value.value}{quote}"
    ):
        return Refused(f"its {key} value is not written as a plain or quoted date")
    return f"{block[:start]}{quote}{iso}{quote}{block[end:]}", str(value.value)


_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"


@functools.lru_cache(maxsize=16)
def _date_line(key: str) -> re.Pattern[str]:
    """A line of a block mapping that holds nothing but ``key`` and a date, plain or quoted
    (and perhaps a comment)."""
    return re.compile(
        rf"^{re.escape(key)}:[ ]+(?P<value>'{_DATE}'|\"{_DATE}\"|{_DATE})(?:[ ]+#.*|[ ]*)\r?$",
        re.MULTILINE,
    )


def _date_span(block: str, before: Frontmatter, key: str) -> tuple[int, int, str] | None:
    """Where ``key``'s value is in ``block`` (start, end, its quote), when its line is written
    the simplest way: the key at the start of the line the parser read it on, then a date and
    nothing else. These are the very characters PyYAML's marks point at; anything else (None)
    is left to them."""
    line = before.lines.get(key)
    if line is None:
        return None
    found = _date_line(key).search(block)
    if found is None or block.count("\n", 0, found.start()) != line - 2:  # the fence is line 1
        return None
    start, end = found.span("value")
    quote = block[start] if block[start] in "'\"" else ""
    text = block[start + len(quote) : end - len(quote)]
    value = before.values.get(key)
    # What the parser made of it must be that date (plain) or that text (quoted).
    if quote and value != text:
        return None
    if not quote and (type(value) is not date or value.isoformat() != text):
        return None
    return start, end, quote


def _value_node(node: yaml.MappingNode, key: str) -> yaml.Node | None:
    """The node of ``key``'s value: written as it is, else (with dots) a path into mappings."""
    import yaml

    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return v  # type: ignore[no-any-return]
    if "." not in key:
        return None
    found: yaml.Node | None = node
    for part in key.split("."):
        if not isinstance(found, yaml.MappingNode):
            return None
        found = next(
            (v for k, v in found.value if isinstance(k, yaml.ScalarNode) and k.value == part),
            None,
        )
    return found


def _without(values: dict[str, object], key: str, nested: bool) -> dict[str, object]:
    """``values`` less the value of ``key`` (a path into mappings if ``nested``)."""
    if not nested:
        return {k: v for k, v in values.items() if k != key}
    head, _, rest = key.partition(".")
    inner = values.get(head)
    if not isinstance(inner, dict):
        return values
    return {**values, head: _without(inner, rest, "." in rest)}


def write_atomically(path: Path, data: bytes) -> None:
    """Replace the file at ``path`` with ``data``: a temporary file in the same folder, written
    and flushed to disk, with the file's permissions, renamed over it. A crash leaves the old
    file or the new one, never half of either."""
    mode = path.stat().st_mode & 0o7777
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        Path(temporary).chmod(mode)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
