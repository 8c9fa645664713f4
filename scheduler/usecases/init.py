"""``init``: a commented starter config, inferred from the documents found in a folder.

The frontmatter of every page below the folder is read (never a body), and the keys each
convention uses are counted: the seed's ``lastReviewed``, GOV.UK tech-docs' ``last_reviewed_on``,
Docusaurus's ``last_update.date``, Hugo's ``lastmod``, Jekyll's ``last_modified_at``, and a
next-review date (``review_by``). The most used last-reviewed key decides the convention; the
counts behind every choice come back with the config, so the command can show them. The config
is checked by loading it as any run would before it is written. Nothing here prints.
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scheduler.config import Settings, validated
from scheduler.content.editing import write_atomically
from scheduler.content.fields import FIELDS
from scheduler.content.loader import Discovery, SourceFile, load_document
from scheduler.errors import UsageError

CONFIG_NAME = "review-scheduler.toml"
_MAX_BYTES = 1024 * 1024
# Pages of every convention, and folders that hold built or installed files rather than pages.
_INCLUDE = ("**/*.md", "**/*.mdx", "**/*.markdown", "**/*.txt", "**/*.html.md.erb")
_NOT_PAGES = ("node_modules", "_site", "public", "build", "dist", "vendor", "site", "resources")
_EXCLUDE = tuple(f"{folder}/**" for folder in _NOT_PAGES) + tuple(
    f"**/{folder}/**" for folder in _NOT_PAGES
)


@dataclass(frozen=True, slots=True)
class Convention:
    """How one family of sites writes its review metadata."""

    name: str
    last_reviewed: str
    review_frequency: str
    review_by: str
    exclude: tuple[str, ...] = ()  # pages of the convention that are not reviewed
    owner: str = "owner"


CONVENTIONS = (
    Convention("the seed convention", "lastReviewed", "reviewFrequency", "reviewBy"),
    Convention(
        "GOV.UK tech-docs", "last_reviewed_on", "review_in", "review_by", owner="owner_slack"
    ),
    Convention("Docusaurus", "last_update.date", "review_frequency", "review_by", ("**/_*",)),
    Convention("Hugo", "lastmod", "review_frequency", "review_by", ("**/_index.md",)),
    Convention(
        "Jekyll",
        "last_modified_at",
        "review_frequency",
        "review_by",
        ("_includes/**", "_layouts/**", "_sass/**", "_data/**", "README.md", "CHANGELOG.md"),
    ),
)
_FREQUENCY_KEYS = ("reviewFrequency", "review_in", "review_frequency")
_DUE_KEYS = ("reviewBy", "review_by")
DEFAULT_FREQUENCY = "1 year"


@dataclass(frozen=True, slots=True)
class Starter:
    """The inferred config and what it was inferred from."""

    text: str  # the config file, commented
    convention: str  # its name, or a sentence when nothing was recognised
    pages: int  # documents with frontmatter
    without_frontmatter: int
    counts: list[tuple[str, int]]  # key -> pages carrying it, for the keys chosen
    root: str
    default_frequency: str | None
    unscheduled: int  # pages below the root with none of the review keys
    notes: list[str] = field(default_factory=list)


def infer(cwd: Path) -> Starter:
    """The starter config for the documents below ``cwd``."""
    discovery = Discovery(_INCLUDE, _EXCLUDE, Path(), cwd)
    pages: list[tuple[str, frozenset[str]]] = []  # rel path, keys (nested ones dotted)
    without = 0
    for item in discovery.iter_files([Path()]):
        if not isinstance(item, SourceFile):
            continue
        loaded = load_document(item, _MAX_BYTES)
        if loaded.frontmatter is None:
            without += 1
            continue
        keys = frozenset(loaded.frontmatter.lines) | frozenset(loaded.frontmatter.nested)
        pages.append((item.rel, keys))
    counts: Counter[str] = Counter(key for _, keys in pages for key in keys)

    def best(candidates: Sequence[str]) -> str | None:
        found = [key for key in candidates if counts[key]]
        return max(found, key=lambda key: counts[key]) if found else None  # ties: list order

    last_key = best([c.last_reviewed for c in CONVENTIONS])
    due_key = best(_DUE_KEYS)
    if last_key is not None:
        convention = next(c for c in CONVENTIONS if c.last_reviewed == last_key)
        name = convention.name
    elif due_key is not None:
        name = f"next-review dates ({due_key})"
        convention = (
            CONVENTIONS[0]
            if due_key == "reviewBy"
            else Convention(name, "last_reviewed", "review_frequency", due_key)
        )
    else:
        convention = CONVENTIONS[0]
        name = "no review dates found; starting from the seed convention"
    frequency_key = best(_FREQUENCY_KEYS) or convention.review_frequency
    due_key = due_key or convention.review_by
    last = last_key or convention.last_reviewed
    schedule_keys = {last, frequency_key, due_key}
    scheduled = [(rel, keys) for rel, keys in pages if keys & {last, due_key}]
    root = _common_folder([rel for rel, _ in scheduled]) if scheduled else "."
    include = _includes([rel for rel, _ in scheduled] or [rel for rel, _ in pages])
    exclude = [
        *(f"{folder}/**" for folder in _NOT_PAGES if (cwd / root / folder).is_dir()),
        *(convention.exclude if last_key is not None else ()),
    ]
    # The pages the written config takes in: below the root, matching its globs.
    taken = Discovery(include, exclude, Path(root), cwd)
    prefix = "" if root == "." else root + "/"
    unscheduled = sum(
        1
        for rel, keys in pages
        if rel.startswith(prefix)
        and taken.matches(rel[len(prefix) :])
        and not keys & {last, due_key}
    )
    # Pages dated by their last review that name no frequency need a default.
    dated = [keys for _, keys in scheduled if last in keys and due_key not in keys]
    default = DEFAULT_FREQUENCY if any(frequency_key not in keys for keys in dated) else None
    notes = []
    if unscheduled:
        notes.append(
            f"{unscheduled} page{'s' if unscheduled != 1 else ''} under {root} carry none of "
            f"{last}, {due_key}: they are counted as unscheduled ([content] scope = "
            '"declared"); set scope = "all" to have every page declare a review date'
        )
    fields = {
        "last_reviewed": last,
        "review_frequency": frequency_key,
        "review_by": due_key,
        "owner": convention.owner if counts[convention.owner] else "owner",
    }
    text = _render(
        name=name,
        root=root,
        include=include,
        exclude=exclude,
        declared=unscheduled > 0,
        fields=fields,
        title_everywhere=bool(scheduled) and all("title" in keys for _, keys in scheduled),
        seed=convention is CONVENTIONS[0]
        and bool(scheduled)
        and all({"status", "license"} <= keys for _, keys in scheduled),
        extra_keys=_extra_keys(counts, fields, schedule_keys),
        default=default,
        counts=[(key, counts[key]) for key in (last, frequency_key, due_key)],
        pages=len(pages),
    )
    _check(text)
    return Starter(
        text=text,
        convention=name,
        pages=len(pages),
        without_frontmatter=without,
        counts=[(key, counts[key]) for key in (last, frequency_key, due_key)],
        root=root,
        default_frequency=default,
        unscheduled=unscheduled,
        notes=notes,
    )


def write(folder: Path, text: str, force: bool) -> Path:
    """Write the config into ``folder``; an existing one is replaced only with ``force``."""
    path = folder / CONFIG_NAME
    if path.exists() and not force:
        raise UsageError(f"{CONFIG_NAME} already exists; use --force to replace it")
    if path.exists():
        if not path.is_file():
            raise UsageError(f"{path} is not a file; it is left alone")
        try:
            write_atomically(path, text.encode("utf-8"))
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror}") from None
        return path
    try:
        with path.open("x", encoding="utf-8") as out:  # never over a file made meanwhile
            out.write(text)
    except FileExistsError:
        raise UsageError(f"{CONFIG_NAME} already exists; use --force to replace it") from None
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    return path


def _common_folder(rels: list[str]) -> str:
    folders = [rel.rpartition("/")[0] for rel in rels]
    common = os.path.commonpath(folders) if all(folders) else ""
    return common.replace(os.sep, "/") or "."


def _includes(rels: list[str]) -> list[str]:
    suffixes = set()
    for rel in rels:
        name = rel.rsplit("/", 1)[-1]
        if name.endswith((".html.md.erb", ".html.md")):
            suffixes.add(".html.md.erb" if name.endswith(".erb") else ".html.md")
        else:
            suffixes.add(Path(name).suffix or name)
    return [f"**/*{suffix}" for suffix in sorted(suffixes)] or list(_INCLUDE[:3])


def _extra_keys(counts: Counter[str], fields: dict[str, str], schedule: set[str]) -> list[str]:
    """Top-level keys the pages use that no field reads: listed so that they are not reported
    as unknown, except those that look like a misspelling of a field's key."""
    keys = {f.name: f.key for f in FIELDS} | fields
    read = set(keys.values()) | {key.split(".", 1)[0] for key in keys.values()}
    extra = []
    for key in sorted(counts):
        if "." in key or key in read or key in schedule:
            continue
        if difflib.get_close_matches(key.casefold(), [k.casefold() for k in read], 1, 0.75):
            continue  # a near miss: let the run point it out
        extra.append(key)
    return extra


def _toml(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    # A TOML basic string: JSON's escapes are TOML's, but TOML wants DEL escaped too.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _render(
    *,
    name: str,
    root: str,
    include: list[str],
    exclude: list[str],
    declared: bool,
    fields: dict[str, str],
    title_everywhere: bool,
    seed: bool,
    extra_keys: list[str],
    default: str | None,
    counts: list[tuple[str, int]],
    pages: int,
) -> str:
    seen = "; ".join(f"{key} in {n} of {pages} pages" for key, n in counts)
    required = ["last_reviewed", "review_frequency"]
    recommended: list[str] = []
    if seed:
        required = ["title", "last_reviewed", "review_frequency", "status", "license"]
        recommended = ["url", "source", "language"]
    elif title_everywhere:
        required.insert(0, "title")
    else:
        recommended.append("title")
    lines = [
        "# review-scheduler configuration, written by `review-scheduler init`.",
        f"# Inferred: {name} ({seen}).",
        "# Every key is described in the README (Configuration); unknown keys are errors.",
        "# Check it with:  review-scheduler validate",
        "",
        "[content]",
        "# The folder searched when no files are named on the command line, relative to this file.",
        f"root = {_toml(root)}",
        "# Which files are pages (globs relative to root; hidden files are never searched).",
        f"include = {_toml(include)}",
        f"exclude = {_toml(exclude)}",
        *(
            (
                "# Some pages declare no review date (index pages, partials): only the pages",
                "# that declare one are scheduled; the rest are counted as unscheduled.",
                'scope = "declared"',
            )
            if declared
            else ()
        ),
        "",
        "[fields]",
        "# The frontmatter key of each piece of metadata; dots reach into mappings.",
        f"last_reviewed = {_toml(fields['last_reviewed'])}",
        f"review_frequency = {_toml(fields['review_frequency'])}",
        "# A page may give the date of its next review instead of the two above.",
        f"review_by = {_toml(fields['review_by'])}",
        "# Who is responsible for a page: email addresses or [routing.aliases], one or a list.",
        f"owner = {_toml(fields['owner'])}",
        "",
        "[metadata]",
        "# Fields every page must have (a page with review_by needs no last_reviewed or",
        "# review_frequency), and fields whose absence is a warning.",
        f"required = {_toml(required)}",
        f"recommended = {_toml(recommended)}",
        "# Other keys your pages use, so that they are not reported as unknown.",
        f"extra_keys = {_toml(extra_keys)}",
        "",
        "[review]",
        "# The team's time zone (IANA name): today's date, and the date of a timestamp, are",
        "# taken in it.",
        'timezone = "UTC"',
        "# Pages due within this many days are due_soon.",
        "due_soon_days = 30",
    ]
    if default is not None:
        lines += [
            "# Pages that name no review frequency are reviewed this often.",
            f"default_frequency = {_toml(default)}",
            "# Or per folder (the first match wins), for example:",
            "# [[review.frequencies]]",
            '# paths = ["guides/**"]',
            '# frequency = "6 months"',
        ]
    else:
        lines += [
            "# For pages that name no review frequency, for example:",
            '# default_frequency = "1 year"',
        ]
    lines += [
        "",
        "[routing]",
        "# Who hears about pages that name no owner, for example:",
        '# default = ["editors@example.org"]',
        "",
    ]
    return "\n".join(lines)


def _check(text: str) -> None:
    """The config must load as any run would load it: a failure here is a bug."""
    validated(Settings, tomllib.loads(text))
