"""Reading in worker processes: the command line run as a real process, as the pool is one."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from scheduler.config import Settings
from scheduler.content import reading
from scheduler.content.facts import FactsDecoder
from scheduler.content.loader import LoadedDocument, SourceFile
from scheduler.content.reading import Reader, ReadingSettings

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


# --------------------------------------------------------------------------- dying processes

KILLED = """
import sys, threading
from datetime import date
from pathlib import Path
from scheduler.config import load_settings
from scheduler.render import RenderOptions
from scheduler.render.check import CHECK_FORMATS
from scheduler.usecases.check import check

if sys.argv[1] == "threaded":  # as in the daemon: workers start from a fork server
    threading.Thread(target=threading.Event().wait, daemon=True).start()
settings = load_settings(Path("config/scheduler.toml"))
result = check(settings, [], Path.cwd(), date(2026, 5, 1))
sys.stdout.write(CHECK_FORMATS.render("json", result, RenderOptions()))
"""


def _descendants(pid: int) -> set[int]:
    """Every process started by ``pid``, and by those, as /proc lists them now."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = [task.name for task in Path(f"/proc/{parent}/task").iterdir()]
        except FileNotFoundError:
            continue
        for task in tasks:
            try:
                children = Path(f"/proc/{parent}/task/{task}/children").read_text().split()
            except FileNotFoundError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited, whoever is to reap it


def _until(condition: Callable[[], bool], seconds: float) -> bool:
    """Poll ``condition`` (a state of other processes, observed) until it holds or time is up."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


@pytest.mark.parametrize(("how", "processes"), [("forked", 2), ("threaded", 4)])
def test_workers_exit_when_the_main_process_is_killed(
    library: Path, how: str, processes: int
) -> None:
    """kill -9 of the main process: its workers end too, releasing stdout (so a pipe reading
    the report ends) and the state store. Forked workers are its children; with a fork server
    they are the server's, next to the server and the resource tracker."""
    for i in range(3000):
        write_doc(library / "docs" / "many" / f"page-{i}.md", frontmatter(title=f"Page {i}"))
    env = {
        **os.environ,
        "SCHEDULER_PERFORMANCE__PARALLEL_THRESHOLD": "5",
        "SCHEDULER_PERFORMANCE__WORKERS": "2",
    }
    main = subprocess.Popen(
        [sys.executable, "-c", KILLED, how], cwd=library, env=env, stdout=subprocess.PIPE
    )
    assert main.stdout is not None
    started: set[int] = set()
    try:

        def working() -> bool:
            started.update(_descendants(main.pid))
            return len(started) >= processes or main.poll() is not None

        assert _until(working, 60) and main.poll() is None, "the workers never started"
        main.kill()
        main.wait(timeout=60)
        ready, _, _ = select.select([main.stdout], [], [], 60)
        assert ready and main.stdout.read() == b"", "something still holds stdout open"
        assert _until(lambda: not any(map(_alive, started)), 60), "a worker lives on"
    finally:
        main.stdout.close()
        for pid in started | _descendants(main.pid):  # if the test failed: leave none behind
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def test_a_dying_worker_has_its_documents_read_again_or_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real worker process dies (as if killed) while reading a file: once for one file, which
    is then read again, and every time for another, which is then reported."""
    names = ["a-dies-once.md", *(f"page-{i}.md" for i in range(10)), "z-dies-always.md"]
    files = []
    for name in names:
        path = tmp_path / "docs" / name
        write_doc(path, frontmatter(title=name))
        stat = path.stat()
        files.append(SourceFile(str(path), f"docs/{name}", name, stat.st_size, stat.st_mtime_ns))
    marker = tmp_path / "die-once"
    marker.touch()
    main = os.getpid()
    real_load = reading.load_document

    def load_or_die(file: SourceFile, max_bytes: int) -> LoadedDocument:
        if os.getpid() != main:  # only ever a worker
            if file.rel == "z-dies-always.md":
                os._exit(9)
            if file.rel == "a-dies-once.md" and marker.exists():
                marker.unlink()
                os._exit(9)
        return real_load(file, max_bytes)

    monkeypatch.setattr(reading, "load_document", load_or_die)
    monkeypatch.setattr(reading, "start_method", lambda: "fork")  # workers inherit the patch
    with Reader[str](ReadingSettings.of(Settings()), workers=2, threshold=1) as reader:
        for file in files:
            reader.add(file.rel, file, None)
        outcomes = list(reader.finish())
    decoder = FactsDecoder()
    problems = {
        name: [p.code for p in decoder.facts(outcome.facts, name).problems]
        for name, outcome in outcomes
        if outcome.facts is not None
    }
    assert not marker.exists()  # the first file did kill a worker
    assert [name for name, _ in outcomes] == names  # in order, none lost
    assert problems == {name: ["RS122"] if name.startswith("z-") else [] for name in names}
    assert [outcome.digest is None for _, outcome in outcomes] == [
        name.startswith("z-")
        for name in names  # what could not be read is never cached
    ]
