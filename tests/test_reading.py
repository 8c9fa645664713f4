"""Reading in worker processes: the command line run as a real process, as the pool is one."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import frontmatter, write_doc

CHECK = Path(sys.executable).parent / "check-reviews"
FREQUENCIES = ["quarterly", "6 months", "P90D", "annually", "biannually", "every 2 years"]


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """Sixty documents in nested folders, a few of them broken."""
    write_doc(
        tmp_path / "config" / "scheduler.toml",
        '[content]\nroot = "docs"\n[routing]\ndefault = ["team@example.org"]\n'
        '[[routing.rules]]\nmatch = { source = "NCI" }\npaths = ["a/**"]\n'
        'editors = ["nci@example.org"]\n',
    )
    for i in range(60):
        folder = tmp_path / "docs" / "abc"[i % 3] / f"s{i % 4}"
        text = frontmatter(
            title=f"Page {i}",
            lastReviewed=f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}",
            reviewFrequency=FREQUENCIES[i % len(FREQUENCIES)],
            status=["active", "active", "draft"][i % 3],
            source=["NCI", "Other"][i % 2],
        )
        write_doc(folder / f"page-{i:02d}.md", text if i % 17 else "---\ntitle: [unclosed\n")
    return tmp_path


def check_reviews(
    cwd: Path, *args: str, stderr: int | None = subprocess.PIPE, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    result = subprocess.run(
        [CHECK, "--as-of", "2026-05-01", "--format", "json", "--fail-on", "never", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        timeout=120,
    )
    return result.returncode, result.stdout, result.stderr or ""


def test_worker_processes_and_one_process_give_identical_reports(library: Path) -> None:
    pool = {"SCHEDULER_PERFORMANCE__PARALLEL_THRESHOLD": "5", "SCHEDULER_PERFORMANCE__WORKERS": "2"}
    one = {"SCHEDULER_PERFORMANCE__WORKERS": "1"}
    in_pool = check_reviews(library, "--no-cache", env=pool)
    alone = check_reviews(library, "--no-cache", env=one)
    assert in_pool == alone
    assert in_pool[1].count('"path"') == 60 and in_pool[2] == ""
    # through the cache too: filled by workers, read back in one process, and the reverse
    assert check_reviews(library, env=pool) == alone  # cold, workers
    assert check_reviews(library, env=one) == alone  # warm
    (library / ".review-scheduler" / "state.sqlite3").unlink()
    assert check_reviews(library, env=one) == alone  # cold, one process
    assert check_reviews(library, env=pool) == alone  # warm


def test_workers_are_used_from_the_threshold_on(library: Path) -> None:
    def log(threshold: str) -> str:
        result = subprocess.run(
            [
                CHECK.parent / "review-scheduler",
                "-v",
                "check",
                "--as-of",
                "2026-05-01",
                "--no-cache",
                "--fail-on",
                "never",
            ],
            cwd=library,
            env={
                **os.environ,
                "SCHEDULER_PERFORMANCE__PARALLEL_THRESHOLD": threshold,
                "SCHEDULER_PERFORMANCE__WORKERS": "2",
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0
        return result.stderr

    assert "reading documents in 2 worker processes" in log("60")
    assert "worker processes" not in log("61")


def test_a_progress_bar_on_a_terminal_only(library: Path) -> None:
    env = {"SCHEDULER_PERFORMANCE__PARALLEL_THRESHOLD": "10", "TERM": "xterm"}
    controller, terminal = pty.openpty()
    try:
        code, out, _ = check_reviews(library, "--no-cache", stderr=terminal, env=env)
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal side is closed: everything has been read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(controller)
    assert code == 0 and out.count('"path"') == 60
    assert b"Reading documents" in shown
    # Not a terminal: nothing at all on stderr, and the same report.
    assert check_reviews(library, "--no-cache", env=env) == (code, out, "")


THREADED = """
import sys, threading
from datetime import date
from pathlib import Path
from scheduler.content import reading
from scheduler.config import load_settings
from scheduler.render import RenderOptions
from scheduler.render.check import CHECK_FORMATS
from scheduler.usecases.check import check

stop = threading.Event()
threading.Thread(target=stop.wait, daemon=True).start()  # as in the daemon: another thread
print(reading.start_method(), file=sys.stderr)
settings = load_settings(Path("config/scheduler.toml"))
result = check(settings, [], Path.cwd(), date(2026, 5, 1))
sys.stdout.write(CHECK_FORMATS.render("json", result, RenderOptions()))
stop.set()
"""


def test_a_process_with_other_threads_starts_workers_afresh(library: Path) -> None:
    env = {**os.environ, "SCHEDULER_PERFORMANCE__PARALLEL_THRESHOLD": "5"}
    threaded = subprocess.run(
        [sys.executable, "-c", THREADED],
        cwd=library,
        env={**env, "SCHEDULER_PERFORMANCE__WORKERS": "2"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert threaded.returncode == 0, threaded.stderr
    assert threaded.stderr == "forkserver\n"
    assert (
        threaded.stdout
        == check_reviews(library, "--no-cache", env={"SCHEDULER_PERFORMANCE__WORKERS": "1"})[1]
    )
