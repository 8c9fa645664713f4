"""Start-up: ``check-reviews`` imports only what a check needs (figures: bench/bench_startup.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import SEED, write_doc

# What a check never needs: scheduling, mail, templates, worker pools (for a few documents),
# the notification code, and rich's console when the output is not a terminal.
HEAVY = (
    "apscheduler",
    "aiosmtplib",
    "jinja2",
    "icalendar",
    "multiprocessing",
    "concurrent.futures.process",
    "scheduler.runtime.daemon",
    "scheduler.runtime.schedule",
    "scheduler.notify.channel",
    "scheduler.notify.email",
    "scheduler.notify.digest",
    "scheduler.usecases.reminders",
    "rich.console",
    "rich.table",
    # pydantic-settings (with argparse and dotenv) when no SCHEDULER_ variable is set
    "pydantic_settings",
    "dotenv",
    # git's ignore rules when no .gitignore is met
    "pathspec",
)

PROBE = """
import json, sys
from scheduler.commands.main import run, check_reviews
code = run(check_reviews, sys.argv[1:], "check-reviews")
sys.stdout.flush()
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def _modules_after(cwd: Path, *args: str, **env: str) -> tuple[int, str, set[str]]:
    environ = {k: v for k, v in os.environ.items() if not k.upper().startswith("SCHEDULER_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=cwd,
        env={**environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    probe = json.loads(done.stderr.splitlines()[-1])
    return probe["code"], done.stdout, set(probe["modules"])


def test_check_reviews_imports_nothing_heavy(tmp_path: Path) -> None:
    write_doc(tmp_path / "config" / "scheduler.toml", '[content]\nroot = "docs"\n')
    for n in range(3):
        write_doc(tmp_path / "docs" / f"page-{n}.txt", SEED.read_text(encoding="utf-8"))
    for args in (["--as-of", "2026-01-01"], ["--as-of", "2026-01-01", "--format", "json"]):
        code, out, modules = _modules_after(tmp_path, *args)
        assert code == 0 and "Metastatic Cancer Research" in out
        assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
        assert "scheduler.content.reading" in modules  # the probe did see the check's imports


def test_an_environment_variable_still_overrides_the_file(tmp_path: Path) -> None:
    # pydantic-settings is imported only when a SCHEDULER_ variable is set; then it applies.
    write_doc(tmp_path / "config" / "scheduler.toml", '[content]\nroot = "docs"\n')
    write_doc(tmp_path / "docs" / "page.txt", SEED.read_text(encoding="utf-8"))
    (tmp_path / "elsewhere").mkdir()
    write_doc(tmp_path / "elsewhere" / "other.txt", SEED.read_text(encoding="utf-8"))
    args = ("--as-of", "2026-01-01", "--format", "json")
    code, out, modules = _modules_after(tmp_path, *args, SCHEDULER_CONTENT__ROOT="elsewhere")
    assert code == 0 and "other.txt" in out and "page.txt" not in out
    assert "pydantic_settings" in modules


# What a warm check (settings from the settings cache, documents from the parse cache) never
# needs: the validation and YAML libraries, and the TOML parser.
WARM_ONLY = ("pydantic", "pydantic_core", "yaml", "frontmatter", "tomllib", "annotated_types")


def test_a_warm_check_imports_no_validation_or_yaml(tmp_path: Path) -> None:
    write_doc(tmp_path / "config" / "scheduler.toml", '[content]\nroot = "docs"\n')
    for n in range(3):
        write_doc(tmp_path / "docs" / f"page-{n}.txt", SEED.read_text(encoding="utf-8"))
    args = ("--as-of", "2026-01-01", "--format", "json")
    # the first run reads the documents (and makes the state folder), the second keeps the
    # validated settings, the third takes both from their caches
    seen = [_modules_after(tmp_path, *args) for _ in range(3)]
    assert len({(code, out) for code, out, _ in seen}) == 1  # the same report every time
    code, out, cold = seen[0]
    assert code == 0 and "Metastatic Cancer Research" in out
    assert {"pydantic", "yaml"} <= cold  # the probe sees these imports when they happen
    assert (tmp_path / ".review-scheduler" / "settings-cache.json").is_file()
    warm = seen[2]
    loaded = {m for m in warm[2] if m.split(".")[0] in WARM_ONLY}
    assert not loaded, sorted(loaded)
    assert "scheduler.content.reading" in warm[2]


SEND_PROBE = PROBE.replace("run(check_reviews,", "run(cli,").replace(
    "import run, check_reviews", "import run, cli"
)
# What a reminder cycle run by ``send`` never needs: the daemon's scheduler, and the calendar
# feeds the daemon publishes (``status`` imports them when it is asked).
NOT_FOR_SEND = ("scheduler.runtime.daemon", "apscheduler.schedulers", "icalendar")


def test_send_imports_neither_the_daemon_nor_the_calendar_feeds(tmp_path: Path) -> None:
    write_doc(tmp_path / "config" / "scheduler.toml", '[content]\nroot = "docs"\n')
    write_doc(tmp_path / "docs" / "page.txt", SEED.read_text(encoding="utf-8"))
    probe = [sys.executable, "-c", SEND_PROBE, "send", "--as-of", "2026-11-27"]
    environ = {k: v for k, v in os.environ.items() if not k.upper().startswith("SCHEDULER_")}
    done = subprocess.run(
        probe, cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=120
    )
    result = json.loads(done.stderr.splitlines()[-1])
    assert result["code"] == 0 and "Reminder cycle for 2026-11-27" in done.stdout
    modules = set(result["modules"])
    assert "scheduler.runtime.cycle" in modules  # the probe saw the cycle's imports
    assert not {m for m in modules if m.startswith(NOT_FOR_SEND)}
