"""Text that came from documents, made safe to show: one rule for every output.

Titles, keys and file names are the documents' authors' (or a file system's) text, and may hold
what must never reach a terminal, a parser or a mail client raw. Reports (:mod:`scheduler.render`)
and digests (:mod:`scheduler.notify.digest`) pass such text through :func:`shown`.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# What must never reach a terminal or a parser raw: C0 and C1 control characters and DEL (escape
# sequences, BEL, carriage returns, newlines that would forge lines), the bidirectional marks,
# embeddings, overrides and isolates (text that reads in another order than it is stored), the
# line and paragraph separators, and lone surrogates: the bytes of a file name that are not
# UTF-8, as Python's surrogateescape hands them over, which no UTF-8 output can hold.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in _SHORT:
        return _SHORT[char]
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte of a file name: the byte itself
        return f"\\x{code - 0xDC00:02x}"
    # ASCII controls as \x00-\x7f, every other character as \u0080-: \x80-\xff are only bytes
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}"


def shown(text: str) -> str:
    """``text`` safe for a terminal and valid UTF-8: every control character, bidirectional
    control and undecodable byte is written as its escape, visibly and without dropping
    anything: ``\\n``, ``\\r``, ``\\t``, other ASCII controls as ``\\x1b``, other characters as
    ``\\u009b`` or ``\\u202e``, and a byte of a file name that is not UTF-8 as ``\\xff``.
    Every renderer of text, Markdown, CSV and GitHub annotations passes what it did not write
    itself through this; JSON escapes controls itself and passes its text through
    :func:`json_safe`."""
    return _UNSAFE.sub(_escape, text)


_BREAKS = re.compile(r"\s+")  # Unicode whitespace: CR, LF, tab, VT, FF, U+0085, U+2028...


def one_line(text: str) -> str:
    """``text`` for a one-line field (a title, a name): every run of line breaks, tabs and
    other white space collapsed into one space, then :func:`shown`, so that the other control
    characters (terminal escapes, bidirectional controls, undecodable bytes) stay visible as
    escapes. No part of a message can hold a line forged by a title."""
    return shown(_BREAKS.sub(" ", text).strip())


_LINE_BREAK = re.compile("(\r?\n)")


def shown_lines(text: str) -> str:
    """:func:`shown` for a text of several lines: the line breaks (``\\n``, ``\\r\\n``) stay."""
    parts = _LINE_BREAK.split(text)
    return "".join(part if i % 2 else shown(part) for i, part in enumerate(parts))


def json_safe(encoded: str) -> str:
    """JSON text as strict UTF-8: an undecodable byte of a file name, which the encoder leaves
    as a lone surrogate, becomes the same escape :func:`shown` writes (the string ``\\xff``).
    JSON syntax is ASCII, so the surrogates can only stand inside strings."""
    return _SURROGATE.sub(lambda m: _escape(m).replace("\\", "\\\\"), encoded)


def without_surrogates(text: str) -> str:
    """``text`` with only the undecodable bytes of a file name escaped (``\\xff``), so that it
    can be stored as UTF-8 text: the reminder ledger keys documents by this form of their path."""
    if text.isascii():  # most paths: no surrogates, and cheaper to tell than by searching
        return text
    return _SURROGATE.sub(_escape, text) if _SURROGATE.search(text) else text


def http_url(url: str | None) -> str | None:
    """``url`` when it is an http(s) address, else ``None``: only such links are ever emitted."""
    if url and urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc:
        return url
    return None
