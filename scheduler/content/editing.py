"""Writing a document: one frontmatter value changed in place, every other byte kept.

The YAML is never re-serialised. The value's characters are found from the parser's marks and
replaced in the text, in the quoting style they were written in, so key order, quoting, comments,
line endings, a byte-order mark and the body stay as they were. A field that is missing is added
as the last line of the frontmatter. Every edit is checked by reading the result again: if it
does not read as the old metadata with only that value changed, the document is left alone.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from scheduler.content.loader import FM_BOUNDARY, parse_frontmatter

BOM = b"\xef\xbb\xbf"
_PLAIN_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


@dataclass(frozen=True, slots=True)
class Edited:
    """A document's bytes with the value set, and the value it had (as text; None if absent)."""

    data: bytes
    old_value: str | None


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a document cannot be edited safely."""

    reason: str


def set_date(data: bytes, key: str, day: date, path: str) -> Edited | Refused:
    """``data`` with the frontmatter value of ``key`` set to ``day``, nothing else changed."""
    bom = BOM if data.startswith(BOM) else b""
    text = data[len(bom) :].decode("utf-8", "surrogateescape")  # every byte comes back
    first_break = text.find("\n") + 1
    if not first_break or not FM_BOUNDARY.match(text[:first_break]):
        return Refused("has no frontmatter: the first line must be '---'")
    closing = FM_BOUNDARY.search(text, first_break)
    if closing is None:
        return Refused("its frontmatter is never closed")
    block = text[first_break : closing.start()]
    before, problems = parse_frontmatter(block, path)
    if before is None or problems:
        reason = problems[0].message if problems else "its frontmatter cannot be read"
        return Refused(f"its frontmatter cannot be read safely: {reason}")
    node = yaml.compose(block, Loader=yaml.SafeLoader)
    assert isinstance(node, yaml.MappingNode)  # parse_frontmatter refuses anything else
    iso = day.isoformat()
    value = next(
        (v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None
    )
    if value is None:
        if node.flow_style:
            return Refused(f"its frontmatter is one flow mapping; add {key!r} by hand")
        eol = "\r\n" if text[:first_break].endswith("\r\n") else "\n"
        shown_key = key if _PLAIN_KEY_RE.fullmatch(key) else f'"{key}"'
        new_block = f"{block}{shown_key}: '{iso}'{eol}"
        old_value = None
    else:
        start, end = value.start_mark.index, value.end_mark.index
        quote = {"'": "'", '"': '"'}.get(getattr(value, "style", None) or "", "")
        if not isinstance(value, yaml.ScalarNode) or block[start:end] != (
            f"{quote}{value.value}{quote}"
        ):
            return Refused(f"its {key} value is not written as a plain or quoted date")
        new_block = f"{block[:start]}{quote}{iso}{quote}{block[end:]}"
        old_value = str(value.value)
    after, _ = parse_frontmatter(new_block, path)
    if (
        after is None
        or str(after.values.get(key)) != iso
        or {k: v for k, v in after.values.items() if k != key}
        != {k: v for k, v in before.values.items() if k != key}
    ):
        return Refused(f"setting {key} would change more than its value")
    rewritten = text[:first_break] + new_block + text[closing.start() :]
    return Edited(bom + rewritten.encode("utf-8", "surrogateescape"), old_value)


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
