"""CI: GitHub annotations within GitHub's limits, and the composite action's check step run as
written in action.yml, with its job summary in a file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from scheduler.render.common import ANNOTATIONS_SHOWN, capped_annotations

from .conftest import REPO, frontmatter, write_doc

CONFIG = """\
[content]
root = "content"
[routing]
default = ["team@example.org"]
"""
AS_OF_LAST_REVIEW = "2026-01-15"  # quarterly: due 2026-04-15


def test_annotations_are_capped_per_level_with_a_closing_count() -> None:
    errors = [f"::error file=e{i}.md::e{i}" for i in range(35)]
    notices = [f"::notice file=n{i}.md::n{i}" for i in range(10)]
    warnings = [f"::warning file=w{i}.md::w{i}" for i in range(11)]
    lines = capped_annotations([*errors[:20], *notices, *warnings, *errors[20:]])
    levels = [line[2:].split(" ", 1)[0] for line in lines]
    assert levels.count("error") == levels.count("warning") == ANNOTATIONS_SHOWN
    assert levels.count("notice") == 10  # exactly at the limit: all shown, no closing line
    assert lines[:9] == errors[:9]
    assert lines[-2] == (
        "::error title=More errors::… and 26 more errors not shown (GitHub shows 10 of each "
        "kind per step); see the job summary or the report"
    )
    assert lines[-1].startswith("::warning title=More warnings::… and 2 more warnings")
    assert capped_annotations(errors[:10]) == errors[:10]


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_doc(tmp_path / "config" / "scheduler.toml", CONFIG)
    for n in range(14):  # overdue on 2026-05-01: more than GitHub shows
        write_doc(tmp_path / "content" / f"old-{n:02}.md", frontmatter(title=f"Old {n}"))
    for n in range(3):  # due soon
        write_doc(
            tmp_path / "content" / f"soon-{n}.md",
            frontmatter(title=f"Soon {n}", lastReviewed="2026-02-10"),
        )
    write_doc(tmp_path / "content" / "ok.md", frontmatter(lastReviewed="2026-04-20"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_check_github_annotations(library: Path, run: Any) -> None:
    result = run("--as-of", "2026-05-01", "--format", "github", prog="check-reviews")
    assert result.code == 1
    lines = result.out.splitlines()
    errors = [line for line in lines if line.startswith("::error ")]
    notices = [line for line in lines if line.startswith("::notice ")]
    assert len(errors) == ANNOTATIONS_SHOWN
    assert errors[-1].startswith("::error title=More errors::… and 5 more errors not shown")
    assert notices == [
        f"::notice file=content/soon-{n}.md,line=3,title=Review due soon::Soon {n} is due for "
        f"review on 2026-05-10 (in 9 days); editors: team@example.org"
        for n in range(3)
    ]
    assert lines[-1].startswith("Review status on 2026-05-01 (UTC): 18 documents: 14 overdue")


def _check_step() -> dict[str, Any]:
    action = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
    assert action["runs"]["using"] == "composite"
    steps = [s for s in action["runs"]["steps"] if s.get("name") == "Check review dates"]
    assert len(steps) == 1
    step: dict[str, Any] = steps[0]
    assert step["shell"] == "bash"
    return step


def _run_step(cwd: Path, summary: Path, **inputs: str) -> subprocess.CompletedProcess[str]:
    """The action's check step as GitHub runs it: its script with bash -e, its inputs in the
    environment (the action passes every input through ``env``), check-reviews on PATH."""
    step = _check_step()
    for name, value in step["env"].items():  # every input reaches the script through env
        assert re.fullmatch(r"\$\{\{ inputs\.[a-z-]+ \}\}", value), (name, value)
    action = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
    defaults = {name: spec.get("default", "") for name, spec in action["inputs"].items()}
    values = defaults | inputs
    env = {
        name: values[re.sub(r"\$\{\{ inputs\.([a-z-]+) \}\}", r"\1", value)]
        for name, value in step["env"].items()
    }
    bin_dir = str(Path(sys.executable).parent)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
    environ |= env | {
        "GITHUB_STEP_SUMMARY": str(summary),
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
    }
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", step["run"]],  # noqa: S607
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_action_check_step_as_written(library: Path) -> None:
    # Far in the future every page is overdue; the step fails by default...
    summary = library / "summary.md"
    summary.write_text("Earlier steps' summary\n", encoding="utf-8")
    done = _run_step(library, summary)
    assert done.returncode == 1, done.stderr
    assert done.stdout.count("::error ") == ANNOTATIONS_SHOWN
    assert "… and 9 more errors not shown" in done.stdout
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("Earlier steps' summary\n**Review status on ")  # appended
    assert "| State | Due | Days | Title | Path | Editors |" in text
    assert text.count("| overdue |") == 18

    # ...but not with fail-on invalid (pull requests), and the summary lists pages by paths
    summary.write_text("", encoding="utf-8")
    done = _run_step(library, summary, **{"fail-on": "invalid", "paths": "content/ok.md"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("::error ") == 1
    assert summary.read_text(encoding="utf-8").count("| overdue |") == 1

    # a usage error fails the step at once, before any annotation
    done = _run_step(library, summary, paths="content/missing.md")
    assert done.returncode == 2
    assert "no such file or folder: content/missing.md" in done.stderr
    assert "::" not in done.stdout


def test_the_readme_workflows_use_the_action_as_it_is(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Use it in CI", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    action = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
    used = []
    for block in blocks:
        document = yaml.safe_load(block)
        if "jobs" not in document:
            continue
        for job in document["jobs"].values():
            for step in job["steps"]:
                if "review-scheduler" in step.get("uses", ""):
                    assert set(step.get("with", {})) <= set(action["inputs"])
                    used.append(step.get("with", {}).get("fail-on", "overdue"))
    assert sorted(used) == ["invalid", "overdue"]  # pull requests; the scheduled run
    hooks = {h["id"] for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
    configs = [yaml.safe_load(b) for b in blocks if b.startswith("repos:")]
    assert len(configs) == 1
    named = {hook["id"] for repo in configs[0]["repos"] for hook in repo["hooks"]}
    assert named == hooks
