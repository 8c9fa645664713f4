"""Test isolation: no $HOME, no SCHEDULER_* from the developer's shell, no network but loopback."""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scheduler import settings_cache
from scheduler.commands import main as cli

from .pg_server import PgCluster

REPO = Path(__file__).resolve().parent.parent
SEED = REPO / "seeds" / "000_6b193bba7092f18d.txt"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SCHEDULER_") or name in ("NO_COLOR", "FORCE_COLOR"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    # A test that loads a config of this repository leaves no settings cache in it.
    write = settings_cache.write

    def write_under_tmp(path: Path, key: str, settings: object) -> None:
        if path.is_relative_to(tmp_path):
            write(path, key, settings)

    monkeypatch.setattr(settings_cache, "write", write_under_tmp)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A real PostgreSQL server for the whole session (started once, removed at the end). Where
    it cannot run, the tests that need it fail and say why."""
    try:
        cluster = PgCluster()
    except (RuntimeError, OSError) as exc:
        pytest.fail(f"cannot start a PostgreSQL server for the tests: {exc}")
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def store_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """For runs inside the repository: keep the state store (and its parse cache) out of it."""
    path = tmp_path / "state" / "state.sqlite3"
    monkeypatch.setenv("SCHEDULER_STORE__PATH", str(path))
    return path


def _is_loopback(address: Any) -> bool:
    if isinstance(address, str | bytes):  # AF_UNIX
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guard(address: Any) -> None:
        if not _is_loopback(address):
            raise AssertionError(f"test tried to reach {address!r}: only loopback is allowed")

    def connect(self: socket.socket, address: Any) -> None:
        guard(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        guard(address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """Run a command in-process: ``run("validate", "seeds")`` -> Result(code, out, err)."""

    def invoke(*args: str, prog: str = "review-scheduler") -> Result:
        capsys.readouterr()
        command = cli.check_reviews if prog == "check-reviews" else cli.cli
        code = cli.run(command, list(args), prog)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    yield invoke


def write_doc(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


GOOD_FRONTMATTER = """---
title: Example page
lastReviewed: 2026-01-15
reviewFrequency: quarterly
status: active
license: CC-BY-4.0
url: https://example.org/page
source: Example
language: en
---
Body text.
"""


def frontmatter(**fields: Any) -> str:
    """A document whose frontmatter is GOOD_FRONTMATTER with ``fields`` replaced or removed
    (value None removes the key). Values are written verbatim after ``key: ``."""
    base = {
        "title": "Example page",
        "lastReviewed": "2026-01-15",
        "reviewFrequency": "quarterly",
        "status": "active",
        "license": "CC-BY-4.0",
        "url": "https://example.org/page",
        "source": "Example",
        "language": "en",
    }
    for key, value in fields.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    lines = "".join(f"{key}: {value}\n" for key, value in base.items())
    return f"---\n{lines}---\nBody text.\n"
