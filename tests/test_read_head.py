"""Reading a file's head with plain descriptor reads must give what reading it through a
buffered file and an incremental UTF-8 decoder gives: the same text, closing fence and digest,
wherever the reads cut the bytes (the first piece is decoded in one step when it ends in ASCII).
"""

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
    """The head as read before: a buffered file and the incremental utf-8-sig decoder."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")("surrogateescape")
    hasher = hashlib.sha256()
    text = ""
    read = 0
    search_from = 0
    with Path(path).open("rb") as handle:
        while True:
            chunk = handle.read(_CHUNK if read == 0 else max(_CHUNK, read))
            hasher.update(chunk)
            read += len(chunk)
            eof = not chunk or read >= max_bytes
            text += decoder.decode(chunk, final=eof)
            if read <= len(chunk) and not FM_BOUNDARY.match(text):
                return _Head(text, None, hasher.digest())
            if search_from == 0:
                first_break = text.find("\n")
                if first_break >= 0:
                    search_from = first_break + 1
            if search_from:
                found = FM_BOUNDARY.search(text, search_from)
                if found is not None:
                    return _Head(text, found.start(), hasher.digest())
                search_from = max(search_from, text.rfind("\n", 0, len(text) - 1) + 1)
            if eof:
                return _Head(text, None, hasher.digest())


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
