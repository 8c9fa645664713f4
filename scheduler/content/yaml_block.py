"""Parse a frontmatter block with libyaml, keeping the line of every key.

Imported by :func:`scheduler.content.loader.parse_frontmatter` when a document is read, so
that a run whose documents all come from the parse cache imports no PyYAML.
"""

from __future__ import annotations

import base64
import functools
import re
from typing import Any

import yaml
from frontmatter.default_handlers import SafeLoader

from scheduler import rules
from scheduler.content.loader import Frontmatter, _Lines
from scheduler.results import Problem

_STR_TAG = "tag:yaml.org,2002:str"
_SEQ_TAG = "tag:yaml.org,2002:seq"


def parse_frontmatter(
    block: str, path: str, first_line: int = 1
) -> tuple[Frontmatter | None, list[Problem]]:
    """Parse the YAML between the fences; ``first_line`` is the line of the opening fence.

    Safe YAML only. Anchors and aliases are refused before anything is built, so an alias
    bomb costs a scan, not memory. Duplicate keys, which PyYAML silently collapses, are errors.
    """
    simple = _read_simple(block, path, first_line)
    if simple is not None:
        return simple
    return parse_with_libyaml(block, path, first_line)


def parse_with_libyaml(
    block: str, path: str, first_line: int = 1
) -> tuple[Frontmatter | None, list[Problem]]:
    """:func:`parse_frontmatter` for any text: libyaml's composer, then the safe constructor."""
    lines = _Lines(block, first_line + 1)  # YAML's line 0 is the line after the fence

    if _needs_scan(block) and (refused := _scan_events(block, path, lines)) is not None:
        return None, [refused]
    loader = _Loader(block)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, [
                rules.EMPTY_FRONTMATTER(
                    path, first_line, None, "frontmatter is empty", "add the metadata keys"
                )
            ]
        if not isinstance(node, yaml.MappingNode):
            kind = "a list" if isinstance(node, yaml.SequenceNode) else "a single value"
            return None, [
                rules.NOT_A_MAPPING(
                    path,
                    lines.of(node.start_mark),
                    None,
                    f"frontmatter must be a mapping of keys to values, not {kind}",
                    "write one 'key: value' per line",
                )
            ]
        return _construct_mapping(loader, node, path, lines)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or "is not valid YAML"
        return None, [
            rules.YAML_SYNTAX(
                path,
                lines.of(mark) if mark is not None else first_line,
                None,
                f"YAML syntax error: {message}",
                _yaml_hint(exc, lines),
                column=lines.column(mark) if mark is not None else None,
            )
        ]
    except yaml.YAMLError as exc:  # reader errors (control characters) carry no mark
        position = getattr(exc, "position", None)
        at = lines.at(_character_index(block, position)) if isinstance(position, int) else None
        reason = getattr(exc, "reason", None) or "cannot be read"
        return None, [rules.YAML_SYNTAX(path, at, None, f"YAML error: {reason}")]
    finally:
        loader.dispose()


def _yaml_hint(exc: yaml.MarkedYAMLError, lines: _Lines) -> str:
    if exc.context:
        where = exc.context_mark
        started = f" that starts on line {lines.of(where)}" if where is not None else ""
        return f"{exc.context}{started}; check quoting and indentation"
    return "check quoting and indentation; values containing ': ' need quotes"


# libyaml reports where its reader stopped as an offset in the UTF-8 bytes; PyYAML's own
# reader, as an offset in the text.
_READER_COUNTS_BYTES = any(cls.__name__ == "CParser" for cls in SafeLoader.__mro__)


def _character_index(block: str, position: int) -> int:
    if not _READER_COUNTS_BYTES:
        return position
    return len(block.encode("utf-8", "surrogatepass")[:position].decode("utf-8", "ignore"))


# Deeper than this is refused: no real metadata nests so far, and libyaml's composer recurses
# on the C stack, so tens of thousands of levels would crash the process rather than raise.
MAX_DEPTH = 64
_LIBYAML_TOO_DEEP = "exceeded maximum nesting depth"
_COLLECTION_INDICATORS = "[{-?:"


def _needs_scan(block: str) -> bool:
    """Whether the text may hold anchors or aliases, or nest deeper than :data:`MAX_DEPTH`.

    Anchors and aliases are written with ``&`` and ``*``. Every collection starts at an indicator
    of its own: a list at ``[`` or its first ``-``, a mapping at ``{`` or the ``:`` or ``?`` of
    its first key. Text with no more than MAX_DEPTH of these characters cannot nest deeper, so
    it is not scanned; any other text is, whatever its line breaks, so the limit is the same
    for every text.
    """
    if "&" in block or "*" in block:
        return True
    return sum(block.count(char) for char in _COLLECTION_INDICATORS) > MAX_DEPTH


def _too_deep(path: str, line: int) -> Problem:
    return rules.TOO_DEEP(
        path,
        line,
        None,
        f"frontmatter is nested more than {MAX_DEPTH} levels deep",
        "flatten the metadata",
    )


def _scan_events(block: str, path: str, lines: _Lines) -> Problem | None:
    """Walk the YAML events (no nodes are built) for anchors, aliases and excessive depth."""
    loader = SafeLoader(block)
    depth = 0
    try:
        while loader.check_event():
            event: Any = loader.get_event()
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                kind, sign = (
                    ("alias", "*") if isinstance(event, yaml.AliasEvent) else ("anchor", "&")
                )
                return rules.ANCHOR_OR_ALIAS(
                    path,
                    lines.of(event.start_mark),
                    None,
                    f"YAML {kind} {sign}{event.anchor} is not allowed in frontmatter",
                    "write each value out in full instead of using anchors (&) and aliases (*)",
                    column=lines.column(event.start_mark),
                )
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    return _too_deep(path, lines.of(event.start_mark))
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError as exc:
        if getattr(exc, "problem", None) == _LIBYAML_TOO_DEEP:
            # libyaml (PyYAML 6.0.4 and later) stops scanning deep flow collections itself.
            mark = getattr(exc, "problem_mark", None)
            return _too_deep(path, lines.of(mark) if mark is not None else lines.offset - 1)
        return None  # the syntax error is reported by the full parse
    finally:
        loader.dispose()
    return None


_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class _Loader(SafeLoader):  # type: ignore[misc,valid-type]
    """libyaml's safe loader, remembering which tag each short plain value resolves to.

    libyaml calls back into Python to resolve every scalar (is ``2026-01-15`` a date, ``yes`` a
    boolean?); the same keys and values recur across a library, and the answer depends on
    nothing but the value, as the safe loader has no path-dependent resolvers.
    """

    def resolve(self, kind: Any, value: str, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode and len(value) <= _MEMO_LENGTH:
            return _scalar_tag(value, implicit)
        tag: str = super().resolve(kind, value, implicit)
        return tag

    # Called for every node to track paths for path resolvers, of which the safe loader has
    # none: doing nothing is what the inherited methods do, only slower.
    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass


_MEMO_LENGTH = 40


_RESOLVER = yaml.resolver.Resolver()  # the resolver the safe loaders use
# Plain "=" and "<<" resolve to tags for value and merge keys, which the safe loader cannot
# build (and merging needs aliases, which are refused): here they are text.
_TEXT_ONLY = frozenset(f"tag:yaml.org,2002:{name}" for name in ("value", "merge", "yaml"))


@functools.lru_cache(maxsize=4096)
def _scalar_tag(value: str, implicit: tuple[bool, bool]) -> str:
    tag: str = _RESOLVER.resolve(yaml.ScalarNode, value, implicit)
    return _STR_TAG if tag in _TEXT_ONLY else tag


# --- explicit tags

_STANDARD = "tag:yaml.org,2002:"
_ONE_VALUE, _A_LIST, _A_MAPPING = "a single value", "a list", "a mapping"
_KIND = {yaml.ScalarNode: _ONE_VALUE, yaml.SequenceNode: _A_LIST, yaml.MappingNode: _A_MAPPING}
# How the plain text of each scalar type is written: the resolver's own patterns, matched whole.
_FORMS = {
    tag: re.compile(pattern.pattern, pattern.flags)
    for resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.values()
    for tag, pattern in resolvers
}
# The tags the safe loader builds: what each applies to and, for a scalar type whose text has a
# form of its own, how an editor would name such a value and write one.
_TAGS: dict[str, tuple[str, str, str]] = {
    f"{_STANDARD}{name}": spec
    for name, spec in {
        "str": (_ONE_VALUE, "", ""),
        "null": (_ONE_VALUE, "empty (null)", "leave the value out"),
        "bool": (_ONE_VALUE, "a yes/no value", "write true or false"),
        "int": (_ONE_VALUE, "a whole number", "write digits, such as 12"),
        "float": (_ONE_VALUE, "a number", "write a number, such as 1.5"),
        "timestamp": (_ONE_VALUE, "a date", "write the date as YYYY-MM-DD"),
        "binary": (_ONE_VALUE, "base64 text", "write the data in base64"),
        "seq": (_A_LIST, "", ""),
        "omap": (_A_LIST, "", ""),
        "pairs": (_A_LIST, "", ""),
        "map": (_A_MAPPING, "", ""),
        "set": (_A_MAPPING, "", ""),
    }.items()
}


def _shown_tag(tag: str) -> str:
    """A tag as it is written: ``!!int``, ``!local``, ``!<tag:example.org,2026:x>``."""
    if tag.startswith(_STANDARD):
        return "!!" + tag[len(_STANDARD) :]
    return tag if tag.startswith("!") else f"!<{tag}>"


def _fits(tag: str, text: str) -> bool:
    if tag == f"{_STANDARD}binary":
        try:
            base64.b64decode(text.encode("ascii"), validate=False)
        except ValueError:
            return False
        return True
    form = _FORMS.get(tag)
    return form is None or form.fullmatch(text) is not None


def _explicitly_tagged(node: Any, block: str) -> bool:
    """Whether ``node`` is written with a tag: it starts with ``!``, as no value can untagged
    (anchors, which could come first, are refused before)."""
    return block.startswith("!", node.start_mark.index)


def _tag_problem(
    node: Any, lines: _Lines, path: str, key: str | None, *, inside: bool = True
) -> Problem | None:
    """The problem with the first explicit tag in ``node`` (or, if ``inside``, anything in it)
    that the safe loader cannot build or that does not fit its value."""
    pending = [node]
    while pending:
        node = pending.pop()
        if inside and isinstance(node, yaml.SequenceNode):
            pending.extend(reversed(node.value))
        elif inside and isinstance(node, yaml.MappingNode):
            pending.extend(item for pair in reversed(node.value) for item in reversed(pair))
        if not _explicitly_tagged(node, lines.block):
            continue
        shown = _shown_tag(node.tag)
        spec = _TAGS.get(node.tag)
        kind = _KIND[type(node)]
        if spec is None:
            message, hint = f"YAML tag {shown} is not supported in frontmatter", "remove the tag"
        elif spec[0] != kind:
            message, hint = f"YAML tag {shown} is for {spec[0]}, not {kind}", "remove the tag"
        elif not _fits(node.tag, node.value):
            what, how = spec[1:]
            message = f"{node.value!r} is not {what}, as YAML tag {shown} requires"
            hint = f"{how}, or remove the tag"
        else:
            continue
        return rules.YAML_TAG(
            path,
            lines.of(node.start_mark),
            key,
            message,
            hint,
            column=lines.column(node.start_mark),
        )
    return None


def _construct_mapping(
    loader: Any, node: yaml.MappingNode, path: str, lines: _Lines
) -> tuple[Frontmatter, list[Problem]]:
    values: dict[str, Any] = {}
    key_lines: dict[str, int] = {}
    raw: dict[str, str] = {}
    nested: dict[str, int] = {}
    problems: list[Problem] = []
    tagged = "!" in lines.block  # tags are written with "!": without one, none is explicit
    if tagged and (problem := _tag_problem(node, lines, path, None, inside=False)) is not None:
        problems.append(problem)
    for key_node, value_node in node.value:
        line = lines.of(key_node.start_mark)
        if not isinstance(key_node, yaml.ScalarNode):
            problems.append(
                rules.KEY_NOT_TEXT(
                    path,
                    line,
                    None,
                    "keys must be plain text",
                    "write 'key: value'",
                    column=lines.column(key_node.start_mark),
                )
            )
            continue
        key = key_node.value  # as written, whatever YAML would make of it
        if tagged and (problem := _tag_problem(key_node, lines, path, key)) is not None:
            problems.append(problem)
        if key in key_lines:
            column = lines.column(key_node.start_mark)
            problems.append(_duplicate_key(path, line, key, key_lines[key], column))
        key_lines[key] = line
        # The common shapes, built as SafeConstructor would: text, and a list of text.
        if value_node.tag == _STR_TAG and isinstance(value_node, yaml.ScalarNode):
            values[key] = value_node.value
            continue
        if isinstance(value_node, yaml.SequenceNode) and value_node.tag == _SEQ_TAG:
            items = value_node.value
            if all(item.tag == _STR_TAG and isinstance(item, yaml.ScalarNode) for item in items):
                values[key] = [item.value for item in items]
                continue
        if tagged and (problem := _tag_problem(value_node, lines, path, key)) is not None:
            problems.append(problem)
            continue
        if isinstance(value_node, yaml.MappingNode):
            _nested_lines(value_node, key, lines, nested)
        try:
            value = loader.construct_object(value_node, deep=True)
        except (ValueError, OverflowError) as exc:
            if value_node.tag == _TIMESTAMP_TAG:
                value = value_node.value  # an impossible date: validation explains it
            else:
                problems.append(rules.VALUE_UNREADABLE(path, line, key, f"cannot be read: {exc}"))
                continue
        except yaml.YAMLError as exc:
            reason = getattr(exc, "problem", None) or str(exc)
            problems.append(rules.VALUE_UNREADABLE(path, line, key, f"cannot be read: {reason}"))
            continue
        values[key] = value
        plain = isinstance(value_node, yaml.ScalarNode) and not value_node.style
        if plain and not isinstance(value, str) and not _explicitly_tagged(value_node, lines.block):
            raw[key] = value_node.value  # quoting it would make it text
    return Frontmatter(values, key_lines, lines.offset - 1, raw, nested), problems


def _duplicate_key(path: str, line: int, key: str, first: int, column: int | None) -> Problem:
    return rules.DUPLICATE_KEY(
        path,
        line,
        key,
        f"duplicate key (first on line {first}); YAML would keep only this one",
        "remove one of the two lines",
        column=column,
    )


def _nested_lines(node: yaml.MappingNode, prefix: str, lines: _Lines, out: dict[str, int]) -> None:
    """The line of each text key in ``node`` and the mappings in it, by dotted path."""
    pending = [(node, prefix)]
    while pending:
        mapping, at = pending.pop()
        for key_node, value_node in mapping.value:
            if isinstance(key_node, yaml.ScalarNode):
                path = f"{at}.{key_node.value}"
                out[path] = lines.of(key_node.start_mark)
                if isinstance(value_node, yaml.MappingNode):
                    pending.append((value_node, path))


# --- the common shape, read without libyaml

# Most frontmatter is one key per line: plain or quoted text on one line, or a list of such
# items under a key with no value. Text that is wholly in that shape, written in the characters
# below, is read here with one regular expression, giving what libyaml and the safe constructor
# give (tests/test_yaml_simple.py compares the two on every corpus and on generated text);
# anything else (comments, tabs, nesting, flow collections, anchors, tags, escapes, text over
# several lines, other line breaks, a value that cannot be built) goes to libyaml. Keeping to
# a shape where YAML has no choices to make is what makes the two agree, so the shape is narrow
# on purpose: a character it leaves out only costs the libyaml path's time.

# Printable characters as libyaml's reader accepts them beyond ASCII, less the line breaks only
# YAML knows (U+2028, U+2029) and the byte-order mark (skipped at the start of a line).
_WIDE = "\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff"
_SAFE = "!-9;-~" + _WIDE  # printable, less space and colon
_SAFE_NOT_HASH = '!"$-9;-~' + _WIDE  # after a space, "#" starts a comment
# A plain value: not starting with an indicator; a colon only before a character of its own
# (": " would start a mapping); spaces only between characters (trailing ones are not part of
# it, and " #" starts a comment).
_PLAIN = (
    rf"(?![-?,\[\]{{}}#&*!|>'\"%@`])[{_SAFE}]"
    rf"(?:[{_SAFE}]++|:(?=[{_SAFE}])| ++(?=[{_SAFE_NOT_HASH}]))*+"
)
# Quoted on one line: with '' for a quote in single quotes, and no escapes in double quotes.
_QUOTED_SINGLE = rf"'(?:[ -&(-~{_WIDE}]++|'')*+'"
_QUOTED_DOUBLE = rf'"[ !#-\[\]-~{_WIDE}]*+"'
_VALUE = f"(?:{_PLAIN}|{_QUOTED_SINGLE}|{_QUOTED_DOUBLE})"
_END = f"(?: ++#[ :{_SAFE}]*+| *+)"  # of a line: spaces, or a comment after one at least
# One line: "key: value", "key:" (a list follows, or the value is empty), "- item", a comment,
# or empty.
_SIMPLE_LINE = re.compile(
    rf"^(?:([A-Za-z_][A-Za-z0-9_.\-]{{0,200}}):(?: ++({_VALUE}))?{_END}"
    rf"|( *+)- ++({_VALUE}){_END}| *+#[ :{_SAFE}]*+|)$\n?",
    re.MULTILINE,
)
# The first characters of the plain values the safe resolver may read as something other than
# text (numbers, dates, yes/no, null, "=" and "<<"): any other plain value is text.
_RESOLVABLE = frozenset(yaml.resolver.Resolver.yaml_implicit_resolvers) - {""}
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_BUILT: dict[tuple[str, str], Any] = {}  # (tag, text) -> value: every one is immutable
_BUILT_MAX = 4096


class _NotSimple(Exception):
    """The text is in the common shape, but holds what the libyaml path must judge."""


def _read_simple(
    block: str, path: str, first_line: int
) -> tuple[Frontmatter, list[Problem]] | None:
    """:func:`parse_frontmatter` for text wholly in the common shape; ``None`` for any other."""
    rows = _SIMPLE_LINE.findall(block)
    if len(rows) != block.count("\n") + 1:  # a line is not in the shape
        return None
    values: dict[str, Any] = {}
    key_lines: dict[str, int] = {}
    raw: dict[str, str] = {}
    problems: list[Problem] = []
    line = first_line  # of the row before the first
    open_key: str | None = None  # a key with no value, which a list may follow
    items: list[str] = []
    indent = ""
    try:
        for key, value, dash, item in rows:
            line += 1
            if key:
                if open_key is not None:
                    _close(open_key, items, values, raw)
                    open_key = None
                if key in key_lines:
                    problems.append(_duplicate_key(path, line, key, key_lines[key], 1))
                key_lines[key] = line
                if not value:
                    open_key, items = key, []
                    continue
                first = value[0]
                if first == "'":
                    values[key] = value[1:-1].replace("''", "'")
                elif first == '"':
                    values[key] = value[1:-1]
                elif first not in _RESOLVABLE:
                    values[key] = value
                else:
                    built = _plain(value)
                    values[key] = built
                    if not isinstance(built, str):
                        raw[key] = value  # quoting it would make it text
            elif item:
                if open_key is None or (items and dash != indent):
                    return None
                indent = dash
                first = item[0]
                if first == "'":
                    items.append(item[1:-1].replace("''", "'"))
                elif first == '"':
                    items.append(item[1:-1])
                elif first not in _RESOLVABLE or isinstance(_plain(item), str):
                    items.append(item)
                else:
                    return None  # a list holding other values than text
        if open_key is not None:
            _close(open_key, items, values, raw)
    except _NotSimple:
        return None
    if not key_lines:
        return None
    return Frontmatter(values, key_lines, first_line, raw, {}), problems


def _close(key: str, items: list[str], values: dict[str, Any], raw: dict[str, str]) -> None:
    """A key with no value on its line: a list of the items after it, or empty (null)."""
    if items:
        values[key] = items
    else:
        values[key] = None
        raw[key] = ""


def _plain(text: str) -> Any:
    """A plain scalar as the safe loader builds it: text, or what its resolved tag makes of it.
    Raises :class:`_NotSimple` when it cannot be built (the libyaml path reports that)."""
    tag = _scalar_tag(text, (True, False)) if len(text) <= _MEMO_LENGTH else _long_tag(text)
    if tag == _STR_TAG:
        return text
    built = _BUILT.get((tag, text), _BUILT)
    if built is not _BUILT:
        return built
    try:
        built = _CONSTRUCTOR.yaml_constructors[tag](_CONSTRUCTOR, yaml.ScalarNode(tag, text))
    except (ValueError, OverflowError):
        if tag != _TIMESTAMP_TAG:
            raise _NotSimple from None
        built = text  # an impossible date: validation explains it
    if len(_BUILT) >= _BUILT_MAX:
        _BUILT.clear()
    _BUILT[(tag, text)] = built
    return built


def _long_tag(text: str) -> str:
    tag: str = _RESOLVER.resolve(yaml.ScalarNode, text, (True, False))
    return tag
