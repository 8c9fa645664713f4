"""Discovery and reading on a hostile file system: link loops, folders that cannot be entered or
searched, files that vanish or change between listing and reading, FIFOs and devices, links to
documents not found under their own names, file names that are not UTF-8. Each is a problem on
its path, and the run goes on."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.content.loader import (
    Discovery,
    SourceFile,
    head_digest,
    load_document,
    missing,
)
from scheduler.results import Problem

from .conftest import frontmatter, write_doc

CHECK = Path(sys.executable).parent / "check-reviews"
INCLUDE = ("**/*.md", "**/*.markdown", "**/*.txt")
DOC = frontmatter(title="A page")


def _discovery(cwd: Path, exclude: tuple[str, ...] = ()) -> Discovery:
    return Discovery(INCLUDE, exclude, Path("content"), cwd)


def _shown(items: Iterator[SourceFile | Problem] | list[SourceFile | Problem]) -> list[str]:
    out = []
    for item in items:
        if isinstance(item, Problem):
            out.append(f"{item.code} {item.path}: {item.message}")
        else:
            out.append(f"{item.display} [{item.rel}]")
    return out


def _discover(cwd: Path, *targets: str, exclude: tuple[str, ...] = ()) -> list[str]:
    found = [Path(t) for t in targets] or [Path("content")]
    return _shown(_discovery(cwd, exclude).iter_files(found))


def _check(
    cwd: Path, *args: str, unprivileged: bool = False, env: dict[str, str] | None = None
) -> tuple[int, dict[str, list[str]], str]:
    """check-reviews as a real process: exit code, each document's problem messages, stderr.
    ``unprivileged``: without the capabilities that let root ignore permission bits."""
    command = [str(CHECK), "--as-of", "2026-05-01", "--format", "json", "--fail-on", "never"]
    if unprivileged and os.geteuid() == 0:
        setpriv = shutil.which("setpriv")  # util-linux: on every Debian system
        assert setpriv is not None, "setpriv is needed to drop root's capabilities"
        command = [setpriv, "--inh-caps=-all", "--bounding-set=-all", *command]
    result = subprocess.run(
        [*command, *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(result.stdout) if result.stdout else {"documents": []}
    documents = {
        doc["path"]: [p["message"] for p in doc["problems"] if "editor" not in p["message"]]
        for doc in report["documents"]
    }
    return result.returncode, documents, result.stderr


# --------------------------------------------------------------------------- links


def test_link_loops_are_problems_whatever_their_names(tmp_path: Path) -> None:
    content = tmp_path / "content"
    write_doc(content / "real.md", DOC)
    (content / "a.md").symlink_to("b.md")
    (content / "b.md").symlink_to("a.md")
    (content / "self").symlink_to("self")  # no document name: could have been a folder
    (content / "picture.png").symlink_to("picture.png")
    (content / "broken.png").symlink_to("missing.png")  # points nowhere: hides nothing
    loop = "is a symbolic link that leads round in a loop; it was not followed"
    assert _discover(tmp_path) == [
        f"RS118 content/a.md: {loop}",
        f"RS118 content/b.md: {loop}",
        f"RS118 content/picture.png: {loop}",
        "content/real.md [real.md]",
        f"RS118 content/self: {loop}",
    ]
    assert _discover(tmp_path, "content/a.md", "content/real.md") == [
        f"RS118 content/a.md: {loop}",
        "content/real.md [real.md]",
    ]
    code, documents, stderr = _check(tmp_path, "content")
    assert (code, stderr) == (0, "")
    assert documents["content/self"] == [loop]


def test_links_to_documents_not_found_under_their_own_names_are_read_under_the_links(
    tmp_path: Path,
) -> None:
    content = tmp_path / "content"
    for name in ["real.md", ".drafts/guide.md", "drafts/plan.md", "notes.txt.bak", "sub/s.md"]:
        write_doc(content / name, DOC)
    (content / "guide.md").symlink_to(".drafts/guide.md")  # hidden
    (content / "plan.md").symlink_to("drafts/plan.md")  # excluded
    (content / "notes.md").symlink_to("notes.txt.bak")  # not matched
    (content / "alias.md").symlink_to("real.md")  # found as real.md: read once, there
    (content / "guide.png").symlink_to(".drafts/guide.md")  # the link's name is no document's
    (content / "sub" / "up.md").symlink_to("../real.md")  # outside the folder searched
    (content / "fifo.md").symlink_to("drafts/pipe")
    os.mkfifo(content / "drafts" / "pipe")
    assert _discover(tmp_path, exclude=("drafts/**",)) == [
        "RS119 content/fifo.md: is a named pipe (FIFO), not a regular file; it was not opened",
        "content/guide.md [guide.md]",
        "content/notes.md [notes.md]",
        "content/plan.md [plan.md]",
        "content/real.md [real.md]",
        "content/sub/s.md [sub/s.md]",
    ]
    assert _discover(tmp_path, "content/sub") == [
        "content/sub/s.md [sub/s.md]",
        "content/sub/up.md [sub/up.md]",
    ]
    linked = _discovery(tmp_path).iter_files([Path("content/sub")])
    up = [item for item in linked if isinstance(item, SourceFile) and item.rel == "sub/up.md"]
    assert load_document(up[0], 10_000).frontmatter is not None  # read through the link


def test_links_to_folders_not_searched_under_their_own_names_are_searched_under_the_links(
    tmp_path: Path,
) -> None:
    content = tmp_path / "content"
    for name in ["real.md", ".archive/guides/g.md", "other/o.md", "sub/s.md"]:
        write_doc(content / name, DOC)
    (content / "guides").symlink_to(".archive/guides")  # hidden: searched as guides/
    (content / "more-guides").symlink_to(".archive/guides")  # entered already
    (content / ".archive" / "guides" / "loop").symlink_to("..")  # holds what was entered
    (content / "sub" / "up").symlink_to("..")  # holds the folder searched
    (content / "sub" / "side").symlink_to("../other")  # found as other/, unless sub is searched
    assert _discover(tmp_path) == [
        "content/real.md [real.md]",
        "content/guides/g.md [guides/g.md]",
        "content/other/o.md [other/o.md]",
        "content/sub/s.md [sub/s.md]",
    ]
    assert _discover(tmp_path, "content/sub") == [
        "content/sub/s.md [sub/s.md]",
        "content/sub/side/o.md [sub/side/o.md]",
    ]


# --------------------------------------------------------------------------- permissions


@pytest.fixture
def locked_library(tmp_path: Path) -> Iterator[Path]:
    """A library with a folder that cannot be entered (000), one that can be listed but not
    searched (644), and links into the first; modes are restored afterwards."""
    content = tmp_path / "content"
    write_doc(content / "open.md", DOC)
    write_doc(content / "locked" / "b.md", DOC)
    write_doc(content / "locked" / "inner" / "c.md", DOC)
    write_doc(content / "listed" / "d.md", DOC)
    write_doc(content / "listed" / "deeper" / "e.md", DOC)
    (content / "link.md").symlink_to("locked/b.md")
    (content / "link-folder").symlink_to("locked/inner")
    (content / "locked").chmod(0)
    (content / "listed").chmod(0o644)
    yield tmp_path
    (content / "locked").chmod(0o755)
    (content / "listed").chmod(0o755)


def test_folders_that_cannot_be_entered_or_searched(locked_library: Path) -> None:
    """Run without root's capabilities (setpriv), so the permission bits apply."""
    denied = "cannot be read: Permission denied"
    code, documents, stderr = _check(locked_library, unprivileged=True, env=_root("content"))
    assert (code, stderr) == (0, "")
    assert documents == {
        "content/link-folder": [
            "is a symbolic link that cannot be followed: Permission denied"  # may hide documents
        ],
        "content/link.md": ["is a symbolic link that cannot be followed: Permission denied"],
        "content/listed/d.md": [  # listed, so named, but its folder cannot be searched
            "cannot be read: its folder can be listed but not searched (Permission denied)"
        ],
        "content/listed/deeper": ["cannot read folder: Permission denied"],
        "content/locked": ["cannot read folder: Permission denied"],
        "content/open.md": documents["content/open.md"],
    }
    named = _check(
        locked_library, "content/locked/b.md", "content/open.md", unprivileged=True
    )  # not "no such file": it is there, behind a folder that cannot be entered
    assert (named[0], named[1]["content/locked/b.md"], named[2]) == (0, [denied], "")


def _root(root: str) -> dict[str, str]:
    return {"SCHEDULER_CONTENT__ROOT": root}


def test_only_paths_with_nothing_there_are_missing(tmp_path: Path) -> None:
    (tmp_path / "loop").symlink_to("loop")
    (tmp_path / "broken").symlink_to("nowhere")
    assert missing(tmp_path / "nothing") and missing(tmp_path / "broken" / "x")
    assert not missing(tmp_path / "loop") and not missing(tmp_path / "broken")


# --------------------------------------------------------------------------- not regular files


def test_fifos_sockets_and_devices_are_never_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = tmp_path / "content"
    write_doc(content / "real.md", DOC)
    os.mkfifo(content / "pipe.md")
    os.mkfifo(content / "pipe.png")  # not a document's name: not our business
    monkeypatch.chdir(content)  # a socket's path must be short
    with socket.socket(socket.AF_UNIX) as server:
        server.bind("socket.md")
        assert _discover(tmp_path) == [
            "RS119 content/pipe.md: is a named pipe (FIFO), not a regular file; it was not opened",
            "content/real.md [real.md]",
            "RS119 content/socket.md: is a socket, not a regular file; it was not opened",
        ]
    # opening a FIFO would block for ever: the timeout would fail the test
    code, documents, stderr = _check(tmp_path, "content/pipe.md", os.devnull)
    assert (code, stderr) == (0, "")
    assert documents == {
        "/dev/null": ["is a device, not a regular file; it was not opened"],
        "content/pipe.md": ["is a named pipe (FIFO), not a regular file; it was not opened"],
    }


# --------------------------------------------------------------------------- races


def _library(tmp_path: Path, names: list[str]) -> list[SourceFile]:
    for name in names:
        write_doc(tmp_path / "content" / name, DOC)
    found = list(_discovery(tmp_path).iter_files([Path("content")]))
    assert all(isinstance(item, SourceFile) for item in found)
    return [item for item in found if isinstance(item, SourceFile)]


def test_files_deleted_or_replaced_between_listing_and_reading(tmp_path: Path) -> None:
    found = _library(tmp_path, ["deleted.md", "fifo.md", "folder.md", "replaced.md"])
    deleted, fifo, folder, replaced = (Path(f.path) for f in found)
    deleted.unlink()
    fifo.unlink()
    os.mkfifo(fifo)
    folder.unlink()
    folder.mkdir()
    write_doc(tmp_path / "new.md", frontmatter(title="The new page"))
    (tmp_path / "new.md").replace(replaced)  # how editors save files

    loaded = [load_document(file, 10_000) for file in found]
    assert [(p.code, p.message) for doc in loaded[:3] for p in doc.problems] == [
        ("RS120", "the file was deleted while it was being checked"),
        ("RS119", "is a named pipe (FIFO), not a regular file; it was not opened"),
        ("RS119", "is a folder, not a regular file; it was not opened"),
    ]
    assert all(doc.digest is None for doc in loaded[:3])  # never cached
    assert loaded[3].frontmatter is not None
    assert loaded[3].frontmatter.values["title"] == "The new page"
    assert [head_digest(file, 10_000) for file in found[:3]] == [None, None, None]
    assert head_digest(found[3], 10_000) == loaded[3].digest


def test_a_link_put_in_a_files_place_is_not_followed(tmp_path: Path) -> None:
    """A document swapped for a link between listing and reading could lead out of the content
    root, past the check discovery made on links: it is reported, never followed. A link that
    discovery itself found is still read through."""
    write_doc(tmp_path / "secret.md", frontmatter(title="Outside the root"))
    write_doc(tmp_path / "content" / ".target.md", DOC)  # hidden: found through the link only
    (tmp_path / "content" / "linked.md").symlink_to(tmp_path / "content" / ".target.md")
    found = _library(tmp_path, ["swapped.md"])
    swapped = next(f for f in found if f.display.endswith("swapped.md"))
    linked = next(f for f in found if f.display.endswith("linked.md"))
    Path(swapped.path).unlink()
    Path(swapped.path).symlink_to(tmp_path / "secret.md")

    loaded = load_document(swapped, 10_000)
    assert loaded.frontmatter is None and loaded.digest is None
    assert [(p.code, p.message) for p in loaded.problems] == [
        (
            "RS120",
            "was replaced by a symbolic link while it was being checked; the link was not followed",
        )
    ]
    assert head_digest(swapped, 10_000) is None
    through = load_document(linked, 10_000)
    assert through.frontmatter is not None and through.frontmatter.values["title"] == "A page"


def test_files_and_folders_deleted_while_a_folder_is_walked(tmp_path: Path) -> None:
    """The walk lists a folder, then looks at each entry: what goes in between is reported."""
    _library(tmp_path, ["a.md", "b.md", "sub/c.md"])
    walk = _discovery(tmp_path).iter_files([Path("content")])
    first = next(walk)  # content/ is listed now
    (tmp_path / "content" / "b.md").unlink()
    shutil.rmtree(tmp_path / "content" / "sub")
    assert _shown([first, *walk]) == [
        "content/a.md [a.md]",
        "RS120 content/b.md: the file was deleted while it was being checked",
        "RS120 content/sub: the folder was deleted while it was being checked",
    ]


CHURNER = """
import os, sys
folder, stop, limit, text = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
done = 0
while done < limit and not os.path.exists(stop):
    for i in range(50):
        path = os.path.join(folder, f"churn-{i}.md")
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
    for i in range(50):
        os.unlink(os.path.join(folder, f"churn-{i}.md"))
    os.makedirs(os.path.join(folder, "sub", "deeper"), exist_ok=True)
    with open(os.path.join(folder, "sub", "deeper", "x.md"), "w") as f:
        f.write(text)
    os.unlink(os.path.join(folder, "sub", "deeper", "x.md"))
    os.rmdir(os.path.join(folder, "sub", "deeper"))
    os.rmdir(os.path.join(folder, "sub"))
    done += 1
print(done)
"""


def test_runs_survive_another_process_creating_and_deleting_files(tmp_path: Path) -> None:
    for i in range(1500):
        write_doc(tmp_path / "content" / f"s{i % 5}" / f"page-{i}.md", DOC)
    churned = tmp_path / "content" / "s0"
    stop = tmp_path / "stop"
    churner = subprocess.Popen(
        [sys.executable, "-c", CHURNER, str(churned), str(stop), "20000", DOC],
        stdout=subprocess.PIPE,
        text=True,
    )
    pool = {
        "SCHEDULER_PERFORMANCE__PARALLEL_THRESHOLD": "100",
        "SCHEDULER_PERFORMANCE__WORKERS": "2",
    }
    try:
        runs = [_check(tmp_path, env={**pool, **_root("content")}) for _ in range(3)]
        runs.append(_check(tmp_path, "--no-cache", env={**pool, **_root("content")}))
    finally:
        stop.touch()
        out, _ = churner.communicate(timeout=60)
    assert int(out) > 0  # it churned while the runs went on
    for code, documents, stderr in runs:
        assert (code, stderr) == (0, "")
        assert sum(path.startswith("content/s1/") for path in documents) == 300
        churn = [path for path in documents if "churn" in path or "/sub" in path]
        assert all(
            documents[path] in ([], ["the file was deleted while it was being checked"])
            or documents[path] == ["the folder was deleted while it was being checked"]
            for path in churn
        ), {path: documents[path] for path in churn}


# --------------------------------------------------------------------------- names


def test_a_file_name_that_is_not_utf8_gets_a_warning(tmp_path: Path) -> None:
    name = os.fsdecode(b"caf\xe9.md")  # Latin-1: Python keeps the byte as a lone surrogate
    write_doc(tmp_path / "content" / name, DOC)
    write_doc(tmp_path / "content" / "plain-é.md", DOC)  # UTF-8: nothing to say
    found = list(_discovery(tmp_path).iter_files([Path("content")]))
    assert [f.display for f in found if isinstance(f, SourceFile)] == [
        "content/caf\udce9.md",
        "content/plain-é.md",
    ]
    named, plain = (load_document(f, 10_000) for f in found if isinstance(f, SourceFile))
    assert [(p.code, p.severity.value, p.message) for p in named.problems] == [
        (
            "RS121",
            "warning",
            "the name of the file (or of a folder above it) is not UTF-8; reports show it with "
            "those bytes escaped",
        )
    ]
    assert named.frontmatter == plain.frontmatter and plain.problems == ()


# --------------------------------------------------------------------------- shares of a walk


def test_the_shares_of_a_walk_find_what_one_walk_finds(tmp_path: Path) -> None:
    """Split between processes, each share walks every n-th top-level folder, share 0 the top
    folder's own files too: together they find each document once, as one walk does."""
    content = tmp_path / "content"
    for name in ["top.md", "a/1.md", "a/deep/2.md", "b/3.md", "c/4.md", "d/.hidden/5.md", "e/6.md"]:
        write_doc(content / name, DOC)
    (content / "c" / "skip.md").write_text("", encoding="utf-8")
    (content / ".gitignore").write_text("skip.md\n", encoding="utf-8")
    (tmp_path / ".git").mkdir()
    one = _discover(tmp_path)
    for shares in (1, 2, 3):
        discovery = _discovery(tmp_path)
        parts = [
            _shown(discovery.walk_share(Path("content"), share, shares)) for share in range(shares)
        ]
        assert sorted(path for part in parts for path in part) == sorted(one)
        assert all("content/top.md [top.md]" not in part for part in parts[1:])
        assert not discovery.followed_links
    assert "content/c/skip.md [c/skip.md]" not in one


def test_a_walk_says_when_it_followed_a_link_to_a_folder(tmp_path: Path) -> None:
    content = tmp_path / "content"
    write_doc(content / ".archive" / "g.md", DOC)
    write_doc(content / "a" / "1.md", DOC)
    discovery = _discovery(tmp_path)
    list(discovery.iter_files([Path("content")]))
    assert not discovery.followed_links
    (content / "a" / "guides").symlink_to("../.archive")
    list(discovery.iter_files([Path("content")]))
    assert discovery.followed_links
