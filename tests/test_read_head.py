"""Reading a file's head with plain descriptor reads must give what reading it through a
buffered file and an incremental UTF-8 decoder gives: the same text and closing fence, wherever
the reads cut the bytes (the first piece is decoded in one step when it ends in ASCII), and the
digest of exactly the bytes the head depends on."""

from __future__ import annotations

import codecs
import hashlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.content import loader
from scheduler.content.loader import _CHUNK, FM_BOUNDARY, _Head, _read_head


def _reference(path: str, max_bytes: int) -> _Head:
    """The head as a buffered file and the incremental utf-8-sig decoder read it, and its
    digest as documented: of the bytes up to the end of the closing fence's line, when that
    line ends in what was read, else of every byte read."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")("surrogateescape")
    data = b""
    text = ""
    search_from = 0
    closing = None
    with Path(path).open("rb") as handle:
        while True:
            chunk = handle.read(_CHUNK if not data else max(_CHUNK, len(data)))
            data += chunk
            eof = not chunk or len(data) >= max_bytes
            text += decoder.decode(chunk, final=eof)
            if len(data) <= len(chunk) and not FM_BOUNDARY.match(text):
                break
            if search_from == 0:
                first_break = text.find("\n")
                if first_break >= 0:
                    search_from = first_break + 1
            if search_from:
                found = FM_BOUNDARY.search(text, search_from)
                if found is not None:
                    closing = found.start()
                    break
                search_from = max(search_from, text.rfind("\n", 0, len(text) - 1) + 1)
            if eof:
                break
    line_end = -1 if closing is None else text.find("\n", closing)
    if line_end < 0:
        return _Head(text, closing, hashlib.sha256(data).digest())
    # The bytes that decode to the text up to the end of that line, found one byte at a time.
    counting = codecs.getincrementaldecoder("utf-8-sig")("surrogateescape")
    decoded = 0
    for end in range(1, len(data) + 1):
        decoded += len(counting.decode(data[end - 1 : end]))
        if decoded == line_end + 1:
            return _Head(text, closing, hashlib.sha256(data[:end]).digest())
    raise AssertionError("the text is not the decoding of the bytes")


_PIECES = st.sampled_from(
    [
        b"---\n",
        b"----  \n",
        b"---",
        b"\n",
        b"\r\n",
        b"title: x\n",
        b"\xef\xbb\xbf",
        "é".encode(),
        "中".encode(),
        "\U0001f600".encode(),
        b"\xe4\xb8",  # a character cut short
        b"\xff",
        b"\x00",
        b"-",
        b" ",
    ]
)
_FILLER = st.integers(0, 9000).map(lambda n: b"a" * n)
_CONTENT = st.lists(_PIECES | _FILLER, max_size=12).map(b"".join)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=_CONTENT, max_bytes=st.sampled_from([1 << 20, 5000, 4096, 100]))
def test_heads_read_as_the_buffered_decoder_reads_them(
    tmp_path: Path, data: bytes, max_bytes: int
) -> None:
    path = tmp_path / "doc.md"
    path.write_bytes(data)
    assert _read_head(str(path), max_bytes) == _reference(str(path), max_bytes)


@pytest.mark.parametrize(
    "data",
    [
        b"\xef\xbb\xbf---\ntitle: x\n---\nbody",
        b"---\ntitle: " + b"a" * 4084 + "é".encode() + b"\n---\n",  # cut inside the character
        b"---\ntitle: " + b"a" * 4082 + b"\n---",  # the fence ends the first piece
        b"---\n" + b"k: v\n" * 2000 + b"---\n",
        b"-",
        b"",
        b"\xef\xbb",
    ],
)
def test_edges_of_the_first_piece(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "doc.md"
    path.write_bytes(data)
    assert _read_head(str(path), 1 << 20) == _reference(str(path), 1 << 20)


def test_short_reads_are_read_on_to_the_full_piece(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read may return fewer bytes than asked for before the end (a network file system):
    the head is the same as when every read is whole."""
    data = b"---\ntitle: " + "é".encode() * 3000 + b"\n---\nbody\n"
    path = tmp_path / "doc.md"
    path.write_bytes(data)
    whole = _read_head(str(path), 1 << 20)
    real_read = loader.os.read

    def short_read(fd: int, size: int) -> bytes:
        return real_read(fd, min(size, 7))

    monkeypatch.setattr(loader.os, "read", short_read)
    assert _read_head(str(path), 1 << 20) == whole == _reference(str(path), 1 << 20)


def test_the_digest_covers_the_head_and_not_the_body(tmp_path: Path) -> None:
    path = tmp_path / "doc.md"
    path.write_bytes("---\ntitle: é\n---\nbody one\n".encode())
    first = _read_head(str(path), 1 << 20).digest
    path.write_bytes("---\ntitle: é\n---\nbody two\n".encode())
    assert _read_head(str(path), 1 << 20).digest == first  # only the body changed
    path.write_bytes("---\ntitle: è\n---\nbody two\n".encode())
    assert _read_head(str(path), 1 << 20).digest != first
    path.write_bytes("---\ntitle: é\n--- \nbody two\n".encode())  # the fence's own line
    assert _read_head(str(path), 1 << 20).digest != first
