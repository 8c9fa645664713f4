"""The example configs for other site generators, each run by the real command, in a process of
its own, over the small site in its style under tests/corpora/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
AS_OF = "2026-11-27"

# name: {path below the content root: (state, due, last_reviewed)}
EXPECTED: dict[str, dict[str, tuple[str, str | None, str | None]]] = {
    "docusaurus": {
        "docs/reference/errors.md": ("invalid", None, None),
        "docs/guides/install.md": ("overdue", "2026-07-10", "2026-01-10"),  # guides: 6 months
        # 16:45 in Los Angeles on the 15th is past midnight on the 16th in London
        "docs/reference/api.md": ("due_soon", "2026-12-16", "2026-09-16"),
        "docs/guides/upgrade.mdx": ("ok", "2027-04-20", "2026-10-20"),
        "docs/intro.md": ("ok", "2027-06-01", "2026-06-01"),  # the default: 1 year
    },
    "hugo": {
        "content/docs/vaccines.md": ("invalid", None, None),
        "content/posts/flu-season.md": ("overdue", "2026-06-01", "2025-06-01"),
        "content/docs/prescriptions.md": ("overdue", "2026-08-02", "2026-05-02"),
        "content/docs/parking.md": ("due_soon", "2026-12-10", None),  # review_by only
        # 23:30 in Los Angeles on the 26th is the morning of the 27th in London
        "content/docs/opening-hours.md": ("ok", "2027-05-27", "2026-11-27"),
    },
    "jekyll": {
        "_docs/interpreters.md": ("invalid", None, None),
        "about.markdown": ("overdue", "2026-10-15", "2025-10-15"),
        "_docs/blood-tests.md": ("overdue", "2026-11-20", None),  # review_by only
        # 23:30 at UTC-4 is 22:30 in New York, where summer time ended that morning
        "_docs/walk-in.md": ("due_soon", "2026-12-01", "2026-11-01"),
        # review_by is earlier than 2026-08-01 plus 6 months, so it counts
        "_docs/home-visits.md": ("due_soon", "2026-12-15", "2026-08-01"),
        "index.md": ("ok", "2027-10-01", "2026-10-01"),
    },
}

PROBLEMS = {
    "docusaurus": {("docs/reference/errors.md", 5, "last_update.date", "error")},
    "hugo": {("content/docs/vaccines.md", 3, "lastmod", "error")},
    "jekyll": {
        ("_docs/interpreters.md", 4, "last_modified_at", "error"),
        ("_docs/home-visits.md", 6, "review_by", "warning"),  # the two schedules disagree
    },
}


SUMMARY = {
    "docusaurus": "5 files checked: 4 valid, 1 with errors; 1 error, 0 warnings\n",
    "hugo": "5 files checked: 4 valid, 1 with errors; 1 error, 0 warnings\n",
    "jekyll": "6 files checked: 5 valid, 1 with errors; 1 error, 1 warning\n",
}


def cli(corpus: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command, run from the corpus's folder, with its state store in ``tmp_path``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SCHEDULER_") and key != "NO_COLOR"
    }
    env["SCHEDULER_STORE__PATH"] = str(tmp_path / "state.sqlite3")
    return subprocess.run(
        [sys.executable, "-m", "scheduler", *args],
        cwd=corpus,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_config_on_its_corpus(name: str, tmp_path: Path) -> None:
    # The corpus's review-scheduler.toml is a link to the example, found as a user's would be.
    corpus = REPO / "tests" / "corpora" / name
    config = corpus / "review-scheduler.toml"
    assert config.resolve() == REPO / "config" / "examples" / f"{name}.toml"
    result = cli(corpus, tmp_path, "check", "--as-of", AS_OF, "--format", "json")
    assert result.returncode == 1, result.stderr  # overdue and invalid pages are findings
    documents: list[dict[str, Any]] = json.loads(result.stdout)["documents"]
    got = {d["path"]: (d["state"], d["due"], d["last_reviewed"]) for d in documents}
    assert got == EXPECTED[name]  # and nothing else: partials, build output, readmes left out
    problems = {
        (d["path"], p["line"], p["field"], p["severity"]) for d in documents for p in d["problems"]
    }
    assert problems == PROBLEMS[name]

    # validate agrees, and its exit code says there are errors
    checked = cli(corpus, tmp_path, "validate", "--config", str(config), "--as-of", AS_OF)
    assert checked.returncode == 1
    assert checked.stdout.endswith(SUMMARY[name]), checked.stdout
