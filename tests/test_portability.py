"""Platforms without ``fcntl``: the package imports and the one-off commands run; only the
daemon needs a file lock, and without any it says so clearly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import SEED, write_doc

# Run Python as on a platform without the module: importing it fails.
WITHOUT_FCNTL = "import sys; sys.modules['fcntl'] = None\n"


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_FCNTL + code],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_check_reviews_runs_without_fcntl(tmp_path: Path) -> None:
    write_doc(tmp_path / "docs" / "page.txt", SEED.read_text(encoding="utf-8"))
    done = _python(
        "from scheduler.commands.main import check_reviews_main\n"
        "check_reviews_main(['docs', '--as-of', '2026-01-01', '--format', 'json'])",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert '"state": "ok"' in done.stdout
    assert (tmp_path / ".review-scheduler" / "state.sqlite3").is_file()  # the cache was kept
    again = _python(
        "from scheduler.commands.main import main\n"
        "main(['validate', 'docs', '--as-of', '2026-01-01'])",
        tmp_path,
    )
    assert again.returncode == 0, again.stderr
    assert "1 file checked: 1 valid" in again.stdout


def test_the_daemon_lock_without_any_file_locking_is_a_clear_error(tmp_path: Path) -> None:
    done = _python(
        "from pathlib import Path\n"
        "from scheduler.errors import StoreError\n"
        "from scheduler.store.locking import FileLock\n"
        "lock = FileLock(Path('state.lock'), 'state.sqlite3')\n"
        "try:\n"
        "    lock.acquire()\n"
        "except StoreError as exc:\n"
        "    print(exc.exit_code, exc)\n",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("2 this platform offers no file locking"), done.stdout


def test_cycles_are_not_marked_without_flock(tmp_path: Path) -> None:
    done = _python(
        "from pathlib import Path\n"
        "from scheduler.store.locking import CycleMarker\n"
        "mark = CycleMarker(Path('state.cycle.lock'), 'state.sqlite3')\n"
        "mark.acquire()\n"
        "print(mark.held_elsewhere())\n"
        "mark.release()\n",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "False\n"  # cannot tell, and says so in the docs; never an error
    assert not (tmp_path / "state.cycle.lock").exists()


def test_a_cycle_mark_is_seen_from_another_process(tmp_path: Path) -> None:
    from scheduler.store.locking import CycleMarker

    mark = CycleMarker(tmp_path / "state.cycle.lock", "state.sqlite3")
    probe = (
        "import sys\nfrom pathlib import Path\n"
        "from scheduler.store.locking import CycleMarker\n"
        "print(CycleMarker(Path(sys.argv[1]), 's').held_elsewhere())\n"
    )

    def seen() -> str:
        return subprocess.run(
            [sys.executable, "-c", probe, str(tmp_path / "state.cycle.lock")],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout

    mark.acquire()
    try:
        assert seen() == "True\n"
    finally:
        mark.release()
    assert seen() == "False\n"
