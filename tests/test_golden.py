"""The JSON freshness report, byte for byte, against golden files.

The golden files were written by ``check-reviews --format json`` before the code was reorganised
into its stages; any change to them is a change of output that users' scripts would see. To
accept a deliberate change, run ``python tests/test_golden.py`` and review the diff.
"""

from __future__ import annotations

import difflib
import gzip
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "golden"
AS_OF = "2026-11-27"


def corpus_gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("corpus_gen", REPO / "bench" / "corpus_gen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generated_library(folder: Path) -> Path:
    """The benchmark's library at 5,000 documents, with a one-line body."""
    return corpus_gen().generate(folder, 5000, body="Body text.\n")  # type: ignore[no-any-return]


CASES: dict[str, tuple[str, ...]] = {
    # name: (folder relative to the repository or "generated", config)
    # the corpus's review-scheduler.toml links to config/examples/govuk-tech-docs.toml, which
    # schedules only the pages that declare a review date ([content] scope = "declared")
    "govuk": ("tests/corpora/govuk", "tests/corpora/govuk/review-scheduler.toml"),
    "generated-5000": ("generated", "config/scheduler.toml"),
}


def arguments(config: Path, *extra: str) -> list[str]:
    fixed = ["--as-of", AS_OF, "--format", "json", "--fail-on", "never"]
    return ["--config", str(config), *fixed, *extra]


def report(run: Any, folder: Path, config: Path, *extra: str) -> str:
    result = run(*arguments(config, *extra), prog="check-reviews")
    assert result.code == 0, result.err
    return str(result.out)


def _where(name: str, tmp_path: Path) -> tuple[Path, Path]:
    place, config = CASES[name]
    if place == "generated":
        folder = generated_library(tmp_path / "library")
        return folder, folder / config
    return REPO / place, REPO / config


def _diff(want: str, got: str) -> str:
    lines = difflib.unified_diff(
        want.splitlines(), got.splitlines(), "golden", "now", n=1, lineterm=""
    )
    return "\n".join(list(lines)[:40])


@pytest.mark.parametrize("cached", [False, True], ids=["no-cache", "cache-warm"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_json_report_is_byte_identical(
    name: str,
    cached: bool,
    run: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    store_in_tmp: Path,
) -> None:
    folder, config = _where(name, tmp_path)
    monkeypatch.chdir(folder)
    want = gzip.decompress((GOLDEN / f"{name}.json.gz").read_bytes()).decode()
    if cached:
        report(run, folder, config)  # fills the parse cache
        got = report(run, folder, config)
    else:
        got = report(run, folder, config, "--no-cache")
    assert got == want, _diff(want, got)


def _write_golden() -> None:  # pragma: no cover - run by hand
    import contextlib
    import io
    import os
    import tempfile

    from scheduler.commands.main import check_reviews, run

    for name in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            folder, config = _where(name, Path(tmp))
            os.environ["SCHEDULER_STORE__PATH"] = str(Path(tmp) / "state.sqlite3")
            cwd = Path.cwd()
            os.chdir(folder)
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                code = run(check_reviews, arguments(config, "--no-cache"), "check-reviews")
            os.chdir(cwd)
            assert code == 0
            (GOLDEN / f"{name}.json.gz").write_bytes(
                gzip.compress(buffer.getvalue().encode(), mtime=0)
            )
            print(f"wrote {name}: {len(buffer.getvalue())} characters")


if __name__ == "__main__":  # pragma: no cover
    _write_golden()
