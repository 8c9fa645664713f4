"""Who is responsible for a document: owner field, routing rules, aliases and the default."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from wcmatch import glob as wcglob

from scheduler import rules
from scheduler.config import RoutingSettings, is_email_address
from scheduler.content.metadata import ValidatedDocument
from scheduler.results import Problem

_GLOB_FLAGS = wcglob.GLOBSTAR | wcglob.BRACE


def as_texts(value: Any) -> list[str]:
    """Frontmatter values as the strings a rule compares against."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [text for item in value for text in as_texts(item)]
    if isinstance(value, bool):
        return [str(value).lower()]
    if isinstance(value, date):
        return [value.isoformat()]
    if isinstance(value, str | int | float):
        return [str(value)]
    return []


def expand(handles: Iterable[str], aliases: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """Addresses for ``handles``: aliases replaced by their addresses, each address once."""
    out: dict[str, str] = {}
    for handle in handles:
        for address in aliases.get(handle, (handle,)):
            out.setdefault(address.casefold(), address)
    return tuple(out.values())


class _Rule:
    def __init__(
        self,
        match: Mapping[str, str | tuple[str, ...]],
        paths: tuple[str, ...],
        editors: tuple[str, ...],
    ) -> None:
        # Each key's patterns as one regular expression (what fnmatchcase would try one by one),
        # and the path globs as wcmatch translates them: rules are tried for every document.
        self.match = {
            key: re.compile(
                "|".join(
                    fnmatch.translate(p.casefold())
                    for p in ((pats,) if isinstance(pats, str) else pats)
                )
            ).match
            for key, pats in match.items()
        }
        self.paths = (
            re.compile(
                "|".join(f"(?:{p})" for p in wcglob.translate(list(paths), flags=_GLOB_FLAGS)[0])
            ).fullmatch
            if paths
            else None
        )
        self.editors = editors
        # Whether the frontmatter matches, by the values of the keys matched: they recur.
        self._matched: dict[tuple[Any, ...], bool] = {}

    def applies(self, rel: str, fields: Mapping[str, Any]) -> bool:
        values = tuple(_hashable(fields.get(key)) for key in self.match)
        matched = self._matched.get(values)
        if matched is None:
            matched = all(
                any(matches(v.casefold()) for v in as_texts(fields.get(key)))
                for key, matches in self.match.items()
            )
            if _MEMO not in values:
                if len(self._matched) >= _MATCHES_KEPT:
                    self._matched.clear()
                self._matched[values] = matched
        return matched and (self.paths is None or self.paths(rel) is not None)


_MATCHES_KEPT = 4096
_MEMO: Any = object()  # stands for a value not worth remembering matches for


def _hashable(value: Any) -> Any:
    """``value`` as a key of what a rule made of it (its type included: as_texts writes a
    yes/no value as true or false, 1 as 1): text, or a list of text, or None; else a marker."""
    if value is None or value.__class__ is str:
        return value
    if value.__class__ is list and all(item.__class__ is str for item in value):
        return (list, *value)
    return _MEMO


class Router:
    """Routes documents to editors' email addresses.

    A document's editors are those named in its owner field plus those of every matching rule,
    with aliases expanded; when there are none, the default list applies.
    """

    def __init__(
        self, settings: RoutingSettings, owner_key: str, allowed_domains: Iterable[str] = ()
    ) -> None:
        self._aliases = settings.aliases
        self._owner_key = owner_key
        self._max_owners = settings.max_owners
        self._domains = frozenset(d.casefold() for d in allowed_domains)
        self._rules = [_Rule(r.match, r.paths, r.editors) for r in settings.rules]
        self._default_handles = settings.default
        self._default = self._expand(settings.default)

    def _expand(self, handles: Iterable[str]) -> tuple[str, ...]:
        return expand(handles, self._aliases)

    def route(self, doc: ValidatedDocument) -> tuple[tuple[str, ...], tuple[Problem, ...]]:
        """The editors of ``doc`` and any problems with its owner field."""
        return self.route_owners(
            doc.path,
            doc.rel,
            doc.metadata.value("owner") if doc.metadata is not None else None,
            doc.lines.get("owner"),
            doc.fields,
        )

    def route_owners(
        self,
        path: str,
        rel: str,
        owners: tuple[str, ...] | None,
        owner_line: int | None,
        fields: Mapping[str, Any],
    ) -> tuple[tuple[str, ...], tuple[Problem, ...]]:
        """The editors of the document at ``path`` (``rel`` to the content root) with these
        owners and frontmatter ``fields``, and any problems with its owner field."""
        problems: list[Problem] = []
        handles: list[str] = []
        owners = owners or ()
        if len(owners) > self._max_owners:
            problems.append(
                rules.TOO_MANY_OWNERS(
                    path,
                    owner_line,
                    self._owner_key,
                    f"names {len(owners)} owners; only the first {self._max_owners} are used",
                    "name a few owners, or an alias defined in [routing] aliases, or raise "
                    "[routing] max_owners",
                )
            )
            owners = owners[: self._max_owners]
        outside: list[str] = []
        for owner in owners:
            if owner in self._aliases:
                handles.append(owner)
            elif is_email_address(owner):
                if self._domains and owner.rsplit("@", 1)[1].casefold() not in self._domains:
                    outside.append(owner)
                else:
                    handles.append(owner)
            else:
                problems.append(
                    rules.UNKNOWN_OWNER(
                        path,
                        owner_line,
                        self._owner_key,
                        f"{owner!r} is neither an email address nor a known alias",
                        "use an email address, or define the alias in [routing] aliases",
                    )
                )
        if outside:
            shown = ", ".join(outside[:3]) + (
                f" and {len(outside) - 3} more" if len(outside) > 3 else ""
            )
            problems.append(
                rules.OWNER_OUTSIDE_DOMAINS(
                    path,
                    owner_line,
                    self._owner_key,
                    f"{shown}: outside [mail] allowed_domains, so never mailed; its reminders "
                    "go to [routing] default",
                    "use an address in " + ", ".join(sorted(self._domains)) + ", or an alias",
                )
            )
        for rule in self._rules:
            if rule.applies(rel, fields):
                handles.extend(rule.editors)
        if outside:  # someone responsible hears of the document
            handles.extend(self._default_handles)
        editors = self._expand(handles)
        return (editors or self._default), tuple(problems)


def unowned_problem(path: str, owner_key: str) -> Problem:
    return rules.NOBODY_RESPONSIBLE(
        path,
        None,
        None,
        "no editor is responsible for this document",
        f"add an '{owner_key}' field, a [[routing.rules]] entry, or [routing] default",
    )


def responsibility_problems(
    path: str,
    editors: tuple[str, ...],
    status: str | None,
    review_statuses: tuple[str, ...] | frozenset[str],
    owner_key: str,
) -> tuple[Problem, ...]:
    """The warning for a document that needs review (no status, or one that needs review) and
    that no editor is responsible for: date-independent, so worked out with the routing."""
    if editors or (status is not None and status not in review_statuses):
        return ()
    return (unowned_problem(path, owner_key),)
