"""Which warnings a run reports: ``select`` and ``ignore`` (config and command line), per-path
ignores and a document's own ignore key, as ruff does it.

A selector is a rule's code (``RS204``), its name (``unknown-key``), a prefix of codes (``RS2``,
``RS30``) or ``ALL``. Selectors choose among the rules that can give warnings; errors are always
reported, because an error leaves a document without a trustworthy due date (it is ``invalid``),
and a patient-facing page whose review cannot be scheduled must never go unreported. A selector
that names only errors is refused with a message that says so.

A rule is on when the most specific selector that matches it comes from ``select`` rather than
``ignore`` (a code or name is more specific than a prefix, a longer prefix than a shorter one; a
tie goes to ``ignore``); with no ``select``, every rule is selected. Per-path ignores and a
document's own ignore key then switch rules off for those documents only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from wcmatch import glob as wcglob

from scheduler.results import Problem
from scheduler.rules import BAD_FILE_IGNORE, RULES, Rule, find

ALL = "ALL"
# The frontmatter key that switches warnings off in one document: a list of selectors.
FILE_IGNORE_KEY = "review-scheduler-ignore"
_GLOB_FLAGS = wcglob.GLOBSTAR | wcglob.BRACE


def matching(selector: str) -> tuple[Rule, ...]:
    """The rules a selector names: by code, name, prefix of codes or ``ALL``; none if none."""
    wanted = selector.strip()
    if wanted.upper() == ALL:
        return tuple(RULES.values())
    rule = find(wanted)
    if rule is not None:
        return (rule,)
    prefix = wanted.upper()
    if len(prefix) < 2 or not prefix.startswith("RS"):
        return ()
    return tuple(rule for code, rule in RULES.items() if code.startswith(prefix))


def normalise(selector: str) -> str:
    """A selector as stored: a rule's code, a prefix in capitals or ``ALL``.

    Raises ``ValueError`` (with a message for people) for a selector that names no rule, or
    only rules that are always errors.
    """
    rules = matching(selector)
    wanted = selector.strip()
    if not rules:
        raise ValueError(
            f"{wanted!r} is not a rule code or name, nor a prefix of codes (see the README's Rules)"
        )
    if not any(rule.can_warn for rule in rules):
        if len(rules) == 1:
            what = f"{rules[0].code} {rules[0].name} is always an error"
        else:
            what = f"{wanted!r} names only errors ({rules[0].code} to {rules[-1].code})"
        raise ValueError(
            f"{what} and cannot be switched off: errors make a document invalid, and are "
            "always reported"
        )
    rule = find(wanted)
    return rule.code if rule is not None else wanted.upper()


def normalised(selectors: Iterable[str]) -> tuple[str, ...]:
    """Every selector normalised, each once, in order."""
    return tuple(dict.fromkeys(normalise(s) for s in selectors))


def split(values: Iterable[str]) -> list[str]:
    """Command-line values, each a comma-separated list: the selectors they hold."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _specificity(selector: str) -> int:
    return 0 if selector == ALL else len(selector)


def _strongest(code: str, selectors: Sequence[str]) -> int:
    """How specific the most specific selector matching ``code`` is; -1 if none does."""
    return max(
        (
            _specificity(s)
            for s in selectors
            if s == ALL or code.startswith(s)  # codes and prefixes are both prefixes of a code
        ),
        default=-1,
    )


def enabled_codes(select: Sequence[str], ignore: Sequence[str]) -> frozenset[str]:
    """The codes of the warning rules that are on, from normalised selectors."""
    chosen = select or (ALL,)
    return frozenset(
        code
        for code, rule in RULES.items()
        if rule.can_warn and _strongest(code, chosen) > _strongest(code, ignore)
    )


def codes_of(selectors: Iterable[str]) -> frozenset[str]:
    """The codes of the warning rules that normalised selectors name."""
    return frozenset(
        rule.code for selector in selectors for rule in matching(selector) if rule.can_warn
    )


@dataclass(frozen=True)
class RuleSelection:
    """The warnings a run reports. Build it with :meth:`of`; :meth:`apply` filters a document's
    problems."""

    enabled: frozenset[str] = field(default_factory=lambda: enabled_codes((), ()))
    per_path: tuple[tuple[str, frozenset[str]], ...] = ()  # (glob, codes off under it)
    _matchers: tuple[tuple[Callable[[str], bool], frozenset[str]], ...] = field(
        init=False, repr=False, compare=False
    )
    _everything: bool = field(init=False, repr=False, compare=False)  # nothing switched off

    @classmethod
    def of(
        cls,
        select: Sequence[str] = (),
        ignore: Sequence[str] = (),
        per_path: Mapping[str, Sequence[str]] | None = None,
    ) -> RuleSelection:
        """From selectors as settings hold them (normalised); raises ``ValueError`` for others."""
        return cls(
            enabled_codes(normalised(select), normalised(ignore)),
            tuple((glob, codes_of(normalised(codes))) for glob, codes in (per_path or {}).items()),
        )

    def __post_init__(self) -> None:
        matchers = tuple(
            (wcglob.compile(glob, flags=_GLOB_FLAGS).match, codes) for glob, codes in self.per_path
        )
        object.__setattr__(self, "_matchers", matchers)
        everything = self.enabled == enabled_codes((), ()) and not matchers
        object.__setattr__(self, "_everything", everything)

    def off_for(self, rel: str) -> frozenset[str]:
        """The warning codes switched off for the document at ``rel`` (to the content root)."""
        off = [codes for match, codes in self._matchers if match(rel)]
        return frozenset().union(*off) if off else frozenset()

    def keeps(self, problem: Problem, off: frozenset[str] = frozenset()) -> bool:
        return problem.is_error or (problem.code in self.enabled and problem.code not in off)

    def apply(self, problems: tuple[Problem, ...], rel: str) -> tuple[Problem, ...]:
        """``problems`` of the document at ``rel`` less the warnings switched off."""
        if not problems or self._everything:
            return problems
        off = self.off_for(rel) if self._matchers else frozenset()
        kept = tuple(p for p in problems if self.keeps(p, off))
        return kept if len(kept) != len(problems) else problems


def file_ignores(
    value: object, path: str, line: int | None
) -> tuple[frozenset[str], list[Problem]]:
    """What a document's ``review-scheduler-ignore`` value switches off in it (warning codes),
    and a warning for each entry that cannot switch anything off."""
    if value is None:
        empty = BAD_FILE_IGNORE(
            path, line, FILE_IGNORE_KEY, "is empty", "list rule codes or names, or remove the line"
        )
        return frozenset(), [empty]
    if isinstance(value, str):
        entries: list[object] = list(split([value]))
    elif isinstance(value, list):
        entries = list(value)
    else:
        entries = [value]
    codes: set[str] = set()
    problems = []
    for entry in entries:
        if not isinstance(entry, str):
            problems.append(
                BAD_FILE_IGNORE(
                    path,
                    line,
                    FILE_IGNORE_KEY,
                    f"{entry!r} is not a rule code or name",
                    "list rule codes or names, for example [RS204, unknown-owner]",
                )
            )
            continue
        try:
            codes |= codes_of([normalise(entry)])
        except ValueError as exc:
            problems.append(
                BAD_FILE_IGNORE(
                    path,
                    line,
                    FILE_IGNORE_KEY,
                    str(exc),
                    "list the codes or names of warnings; errors cannot be switched off",
                )
            )
    return frozenset(codes), problems
