"""The hooks of .pre-commit-hooks.yaml, run by the real pre-commit (``try-repo``) on a git
repository of pages: it installs this checkout with pip into a hook environment, as users'
pre-commit does (from the checkout alone, with no package index: the hook environment sees the
dependencies this interpreter has)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from .conftest import REPO, frontmatter, write_doc

CONFIG = """\
[content]
root = "content"
[routing]
default = ["team@example.org"]
"""


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, timeout=60)  # noqa: S607


def test_hook_definitions() -> None:
    hooks = {h["id"]: h for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"review-metadata", "check-reviews"}
    assert hooks["check-reviews"]["entry"] == "check-reviews --fail-on invalid"
    assert hooks["check-reviews"]["verbose"] is True  # the report shows when nothing fails
    assert all(h["language"] == "python" and h["require_serial"] for h in hooks.values())


def test_the_hooks_with_the_real_pre_commit(tmp_path: Path) -> None:
    pre_commit = shutil.which("pre-commit", path=str(Path(sys.executable).parent))
    assert pre_commit is not None, "pre-commit comes with the [test] extra"
    pages = tmp_path / "pages"
    write_doc(pages / "config" / "scheduler.toml", CONFIG)
    write_doc(pages / "content" / "overdue.md", frontmatter(title="Old page"))  # 2026-01-15
    write_doc(pages / "content" / "broken.md", frontmatter(lastReviewed="2026-02-30"))
    write_doc(pages / "content" / "notes.py", "not a page\n")
    _git(pages, "init", "-q")
    _git(pages, "add", "-A")
    env = {  # HOME is tmp_path/home already (conftest)
        k: v for k, v in os.environ.items() if not k.startswith(("SCHEDULER_", "PRE_COMMIT"))
    }
    env |= {
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "NO_COLOR": "1",
        # No network: the hook environment sees this interpreter's packages (the dependencies,
        # installed with the [test] extra), and pip installs this checkout from the folder alone.
        "VIRTUALENV_SYSTEM_SITE_PACKAGES": "1",
        "PIP_NO_INDEX": "1",
        "PIP_NO_BUILD_ISOLATION": "0",
    }

    def try_repo(*files: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [pre_commit, "try-repo", str(REPO), "--color", "never", "--files", *files],
            cwd=pages,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
        )

    # An invalid page fails both hooks, and each says which page and why.
    failed = try_repo("content/broken.md", "content/overdue.md", "content/notes.py")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    out = failed.stdout
    assert "review metadata" in out and "review dates" in out
    assert out.count("Failed") == 2
    assert "content/broken.md:3: error: lastReviewed: '2026-02-30' is not a real date" in out
    assert "notes.py" not in out.split("review metadata", 1)[1]  # not a page: not passed

    # An overdue page fails nothing, but the check-reviews hook shows it.
    passed = try_repo("content/overdue.md")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    out = passed.stdout
    assert out.count("Passed") == 2
    assert "overdue" in out and "Old page" in out and "content/overdue.md" in out
