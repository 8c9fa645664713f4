"""The code is checked as well as tested: lint, formatting and types, as CI runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

CHECKS = {
    "ruff check": ["-m", "ruff", "check", "scheduler", "tests", "bench"],
    "ruff format": ["-m", "ruff", "format", "--check", "scheduler", "tests", "bench"],
    "mypy": ["-m", "mypy"],  # the files and options are in pyproject.toml
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_code_passes(name: str, tmp_path: Path) -> None:
    args = [*CHECKS[name]]
    if name == "mypy":
        args += ["--cache-dir", str(tmp_path / "mypy")]  # never write into the repository
    done = subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "RUFF_CACHE_DIR": str(tmp_path)},
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, f"{name} found problems:\n{done.stdout}{done.stderr}"
