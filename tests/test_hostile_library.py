"""One library holding every hazard at once, as a team's worst day produces it.

Whatever it holds, a run exits 0 or 1 (never 3), its JSON is strict UTF-8 and the same with and
without the parse cache (also after a cache entry was damaged), no text format carries a control
character to the terminal, and every regular document is in the report, also while another
process creates and deletes files beside them.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from .conftest import frontmatter
from .test_discovery import CHURNER

CHECK = Path(sys.executable).parent / "check-reviews"
AS_OF = "2026-05-01"
# What must never reach a terminal raw (a line break ends each line and is allowed).
CONTROL = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
HOSTILE_TITLE = "Clear\x1b[2J\x1b]0;owned\x07 \x1b]8;;http://x\x1b\\link \u202eevil \x85next"


def build(root: Path) -> set[str]:
    """The hostile library under ``root/docs``; the paths of its regular documents."""
    docs = root / "docs"
    docs.mkdir(parents=True)
    (root / "config").mkdir()
    (root / "config" / "scheduler.toml").write_text(
        '[content]\nroot = "docs"\n[routing]\ndefault = ["team@example.org"]\n'
    )
    regular = {
        "good.md": frontmatter(),
        "escapes.md": frontmatter(title=json.dumps(HOSTILE_TITLE)),
        "forge|row <b>.md": frontmatter(title=json.dumps("a | b <script>x</script>\n| c |")),
        "tags.md": "---\ntitle: !!seq abc\nx: !!timestamp ''\ny: !!bool maybe\n---\n",
        "cr.md": frontmatter().replace("\n", "\r"),
        "separators.md": frontmatter().replace("\nstatus", "\u2028status").replace("\n", "\n", 1),
        "far.md": frontmatter(lastReviewed="9999-06-01", reviewFrequency="annually"),
        "digits.md": frontmatter(reviewFrequency="６ months"),
        "deep.md": "---\nx: " + "[" * 70 + "]" * 70 + "\n---\n",
        "empty.md": "",
    }
    for name, text in regular.items():
        (docs / name).write_text(text, encoding="utf-8")
    Path(os.fsdecode(os.fsencode(docs) + b"/caf\xe9.md")).write_bytes(frontmatter().encode())
    os.mkfifo(docs / "pipe.md")  # never opened: opening it would wait for ever
    (docs / "up").symlink_to(docs, target_is_directory=True)  # its documents are found once
    (docs / "ping").symlink_to(docs / "pong")  # a loop, whatever the names
    (docs / "pong").symlink_to(docs / "ping")
    (docs / "self.md").symlink_to(docs / "self.md")
    (docs / ".hidden.md").write_text(frontmatter(), encoding="utf-8")
    (docs / "visible.md").symlink_to(docs / ".hidden.md")  # found under the link's name
    (docs / "churn").mkdir()
    return {f"docs/{name}" for name in regular} | {r"docs/caf\xe9.md", "docs/visible.md"}


def check(root: Path, *args: str) -> tuple[int, str, str]:
    """check-reviews with a strict UTF-8 standard output: exit code, output, errors."""
    done = subprocess.run(
        [str(CHECK), "--as-of", AS_OF, "--fail-on", "never", *args],
        cwd=root,
        env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr.decode("utf-8", "replace")
    return done.returncode, done.stdout.decode("utf-8"), done.stderr.decode("utf-8")


def test_a_hostile_library(tmp_path: Path) -> None:
    regular = build(tmp_path)
    _, fresh, _ = check(tmp_path, "--format", "json", "--no-cache")
    paths = {d["path"] for d in json.loads(fresh)["documents"]}
    assert regular <= paths, regular - paths
    assert {"docs/pipe.md", "docs/self.md", "docs/ping", "docs/pong"} <= paths  # reported
    assert not any(path.startswith("docs/up/") for path in paths)
    assert "docs/.hidden.md" not in paths  # read once, through the link
    for _ in range(2):  # a cold run fills the cache, a warm one reads it back
        assert check(tmp_path, "--format", "json")[1] == fresh
    state = sqlite3.connect(tmp_path / ".review-scheduler" / "state.sqlite3")
    with state:
        state.execute("UPDATE parse_cache SET facts = '[1, 2' WHERE rowid = 1")
    state.close()
    assert check(tmp_path, "--format", "json")[1] == fresh  # a damaged entry is a miss
    for fmt in ("text", "markdown", "github", "csv"):
        # GitHub shows 10 annotations of a kind: the overdue ones only, to reach the file
        selected = ("--state", "overdue") if fmt == "github" else ()
        _, out, _ = check(tmp_path, "--format", fmt, *selected)
        found = CONTROL.search(out)
        assert found is None, f"{fmt}: {found.group()!r} printed raw"
        assert ("caf\\\\xe9.md" if fmt == "markdown" else "caf\\xe9.md") in out  # escaped
    churner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHURNER,
            *map(str, (tmp_path / "docs/churn", tmp_path / "stop")),
            "5000",
            frontmatter(),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        racing = [check(tmp_path, "--format", "json")[1] for _ in range(3)]
    finally:
        (tmp_path / "stop").touch()
        churned, _ = churner.communicate(timeout=60)
    assert int(churned) > 0
    for out in racing:
        documents = {d["path"]: d for d in json.loads(out)["documents"]}
        assert regular <= set(documents)
        steady = [d for p, d in documents.items() if not p.startswith("docs/churn/")]
        assert steady == [d for d in json.loads(fresh)["documents"] if d["path"] in documents]
