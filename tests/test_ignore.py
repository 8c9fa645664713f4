""".gitignore files and force-exclude: which files discovery reads, checked against real git."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from scheduler.content.loader import Discovery, SourceFile

from .conftest import frontmatter, write_doc

AS_OF = ("--as-of", "2026-05-01")


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args],  # noqa: S607 (git from PATH, as a user runs it)
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def files(folder: Path) -> None:
    for rel in (
        "docs/a.md",
        "docs/README.md",
        "docs/node_modules/pkg/readme.md",
        "docs/guide/b.md",
        "docs/guide/draft-1.md",
        "docs/guide/keep/draft-2.md",
        "docs/guide/build/out.md",
        "docs/guide/build.md",
        "docs/deep/er/notes.md",
        "docs/deep/er/local.md",
        "docs/site/index.md",
        "docs/top.md",
        "docs/sub/top.md",
    ):
        write_doc(folder / rel, frontmatter())


IGNORES = {
    ".gitignore": "node_modules/\n/docs/site/\n# a comment\n\n*.log\n",
    "docs/.gitignore": "/top.md\n",
    "docs/guide/.gitignore": "build/\ndraft-*\n!keep/draft-*\n",
    "docs/deep/.gitignore": "er/notes.md\n",
    ".git/info/exclude": "local.md\n",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    folder = tmp_path / "repo"
    folder.mkdir()
    git(folder, "init", "-q")
    files(folder)
    for rel, text in IGNORES.items():
        write_doc(folder / rel, text)
    return folder


def discovered(folder: Path, target: str, cwd: Path, **options: bool) -> list[str]:
    discovery = Discovery(["**/*.md"], [], Path(target), cwd, **options)
    found = list(discovery.iter_files([Path(target)]))
    assert all(isinstance(item, SourceFile) for item in found), found
    return sorted(item.display for item in found if isinstance(item, SourceFile))


def test_the_walk_passes_over_what_git_ignores(repo: Path) -> None:
    """What is read is what git itself lists as untracked and not ignored."""
    by_git = sorted(
        line
        for line in git(repo, "ls-files", "--others", "--exclude-standard", "docs").splitlines()
        if line.endswith(".md")
    )
    assert discovered(repo, "docs", repo) == by_git
    assert by_git == [
        "docs/README.md",
        "docs/a.md",
        "docs/guide/b.md",
        "docs/guide/build.md",
        "docs/guide/keep/draft-2.md",
        "docs/sub/top.md",
    ]


def test_a_subfolder_searched_sees_the_ignore_files_above_it(repo: Path) -> None:
    assert discovered(repo, "docs/guide", repo) == [
        "docs/guide/b.md",
        "docs/guide/build.md",
        "docs/guide/keep/draft-2.md",
    ]
    # From inside the folder too: the patterns are relative to each .gitignore's folder.
    assert discovered(repo, ".", repo / "docs" / "guide") == [
        "b.md",
        "build.md",
        "keep/draft-2.md",
    ]


def test_a_folder_searched_is_never_itself_ignored(repo: Path) -> None:
    """Naming an ignored folder is asking for it; what its own parents' files say of the
    folder itself does not hide its documents."""
    assert discovered(repo, "docs/site", repo) == ["docs/site/index.md"]


def test_a_folder_searched_inside_an_ignored_one_is_read_with_its_own_ignore_files(
    repo: Path,
) -> None:
    """A library kept in a folder the repository ignores (generated, or downloaded) used to
    lose every subfolder to the pattern that ignores its parent: 0 documents, silently."""
    for rel in ("docs/site/sub/page.md", "docs/site/sub/tmp/scratch.md", "docs/site/x/y/z.md"):
        write_doc(repo / rel, frontmatter())
    write_doc(repo / "docs" / "site" / ".gitignore", "tmp/\n")
    expected = ["docs/site/index.md", "docs/site/sub/page.md", "docs/site/x/y/z.md"]
    assert discovered(repo, "docs/site", repo) == expected
    assert discovered(repo, "docs/site/sub", repo) == ["docs/site/sub/page.md"]
    # Searched from above, the ignored folder stays ignored.
    assert "docs/site/index.md" not in discovered(repo, "docs", repo)


def test_opting_out_reads_everything(repo: Path) -> None:
    every = discovered(repo, "docs", repo, gitignore=False)
    assert "docs/node_modules/pkg/readme.md" in every and "docs/top.md" in every
    assert len(every) == 13


def test_outside_a_repository_nothing_is_ignored(tmp_path: Path) -> None:
    files(tmp_path)
    write_doc(tmp_path / "docs" / ".gitignore", "*.md\n")
    assert len(discovered(tmp_path, "docs", tmp_path)) == 13


def test_a_nested_repository_uses_its_own_ignore_files(repo: Path) -> None:
    """Only the repository that holds the folder searched counts."""
    (repo / ".gitignore").write_text(IGNORES[".gitignore"] + "b.md\n")
    assert "docs/guide/b.md" not in discovered(repo, "docs", repo)
    inner = repo / "docs" / "guide"
    git(inner, "init", "-q")
    # The outer repository's .gitignore no longer applies inside; the inner one's own does.
    assert discovered(inner, ".", inner) == ["b.md", "build.md", "keep/draft-2.md"]
    (inner / ".gitignore").unlink()
    assert len(discovered(inner, ".", inner)) == 5


@pytest.fixture
def project(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_doc(
        repo / "review-scheduler.toml",
        '[content]\nroot = "docs"\nexclude = ["**/README.md", "README.md"]\n'
        '[routing]\ndefault = ["team@example.org"]\n',
    )
    write_doc(repo / "docs" / "README.md", "# Read me\n")  # would be invalid: no frontmatter
    monkeypatch.chdir(repo)
    return repo


def _paths(out: str) -> list[str]:
    return sorted(d["path"] for d in json.loads(out)["documents"])


def test_check_reviews_respects_gitignore_and_the_flag_turns_it_off(
    project: Path, run: Any
) -> None:
    args = (*AS_OF, "--format", "json", "--fail-on", "never")
    shown = _paths(run(*args, prog="check-reviews").out)
    assert "docs/node_modules/pkg/readme.md" not in shown and "docs/guide/b.md" in shown
    every = _paths(run(*args, "--no-gitignore", prog="check-reviews").out)
    assert "docs/node_modules/pkg/readme.md" in every and "docs/top.md" in every
    config = project / "review-scheduler.toml"
    config.write_text(
        config.read_text().replace("[routing]", "respect_gitignore = false\n[routing]")
    )
    assert _paths(run(*args, prog="check-reviews").out) == every


def test_named_files_that_are_excluded_or_ignored_are_skipped(project: Path, run: Any) -> None:
    """As a pre-commit hook passes every changed file: an excluded README and an ignored file
    are skipped (ruff's force-exclude), the others are read."""
    named = ("docs/README.md", "docs/node_modules/pkg/readme.md", "docs/top.md", "docs/a.md")
    result = run("validate", *AS_OF, "--format", "json", *named)
    assert result.code == 0, result.out
    assert [f["path"] for f in json.loads(result.out)["files"]] == ["docs/a.md"]
    checked = run(*AS_OF, "--format", "json", "--fail-on", "invalid", *named, prog="check-reviews")
    assert (checked.code, _paths(checked.out)) == (0, ["docs/a.md"])
    only_excluded = run("validate", *AS_OF, "docs/README.md")
    assert only_excluded.code == 0
    assert only_excluded.out.startswith("0 files checked")
    # --no-force-exclude reads them as named; the README has no frontmatter.
    forced = run("validate", *AS_OF, "--format", "json", "--no-force-exclude", *named)
    assert forced.code == 1
    assert sorted(f["path"] for f in json.loads(forced.out)["files"]) == sorted(named)
    # A missing file is still an error, excluded name or not.
    missing = run("validate", *AS_OF, "docs/gone/README.md")
    assert missing.code == 2


def test_more_of_gits_pattern_rules_agree_with_git(tmp_path: Path) -> None:
    folder = tmp_path / "repo"
    folder.mkdir()
    git(folder, "init", "-q")
    for rel in (
        "docs/generated/a.md",
        "docs/sub/generated/b.md",
        "docs/Release-1.md",
        "docs/release2.md",
        "docs/releases.md",
        "docs/x1.md",
        "docs/x12.md",
        "docs/#hash.md",
        "docs/sp ace.md",
        "docs/keep/one.md",
        "docs/keep/two.md",
        "docs/a/b/c/deep.md",
    ):
        write_doc(folder / rel, frontmatter())
    write_doc(
        folder / ".gitignore",
        "**/generated/**\n[Rr]elease*.md\n!releases.md\ndocs/x?.md\n\\#hash.md\nsp\\ ace.md\n"
        "keep/*\n!keep/two.md\na/**/deep.md\n",
    )
    by_git = sorted(
        line
        for line in git(folder, "ls-files", "--others", "--exclude-standard", "docs").splitlines()
        if line.endswith(".md")
    )
    assert discovered(folder, "docs", folder) == by_git
    assert "docs/keep/two.md" in by_git and "docs/x12.md" in by_git  # not everything is ignored
