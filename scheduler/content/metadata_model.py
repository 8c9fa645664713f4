"""The pydantic model of a document's metadata, built from the field registry.

Imported by :func:`scheduler.content.metadata.validate` when a document is actually read, so
that a run whose documents all come from the parse cache imports no pydantic.

Each field is checked by its registry parser, called by pydantic as the field's validator.
:data:`Metadata` takes the ``[metadata]`` lists from the validation context (or the defaults);
:func:`model_for` gives a model bound to one set of parsing rules, whose validators remember
what they made of the values that recur across a library (statuses, licences, frequencies,
dates, lists of tags), so that reading many documents parses each such value once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationInfo, create_model
from pydantic import field_validator as _field_validator

from scheduler.config import MetadataRules
from scheduler.content.fields import FIELDS, Field, Rules

_DEFAULT_RULES = MetadataRules()


class MetadataBase(BaseModel):
    """A document's metadata under canonical names. Every field is optional here: which ones
    are required is a setting, checked by :func:`validate`. The fields themselves come from the
    registry; read them with :meth:`value`."""

    # Built when the first document is validated: a run whose documents all come from the
    # parse cache never needs it.
    model_config = ConfigDict(
        frozen=True, extra="forbid", arbitrary_types_allowed=True, defer_build=True
    )

    if TYPE_CHECKING:  # the fields come from the registry: type checkers accept any of them

        def __init__(self, **data: Any) -> None: ...

        def __getattr__(self, name: str) -> Any: ...

    def value(self, name: str) -> Any:
        return getattr(self, name)


def _validator(field: Field) -> Any:
    def check(cls: type[BaseModel], value: object, info: ValidationInfo) -> Any:
        return field.parse(value, (info.context or {}).get("rules", _DEFAULT_RULES))

    check.__name__ = f"_check_{field.name}"
    return _field_validator(field.name, mode="before")(classmethod(check))


_FIELDS: dict[str, Any] = {f.name: (f.type | None, None) for f in FIELDS}
Metadata: type[MetadataBase] = create_model(
    "Metadata",
    __base__=MetadataBase,
    __validators__={f"_check_{f.name}": _validator(f) for f in FIELDS},
    **_FIELDS,
)


# --- models bound to one set of parsing rules

_MEMO_MAX = 4096  # values remembered per field; then it starts again
_MISS: Any = object()


def _remembering(field: Field, rules: Rules) -> Callable[[object], Any]:
    """``field``'s parser under ``rules``, remembering what it made of each value it accepted.

    Values are told apart by their class as well as their value (``True`` is not ``1``); a list
    by its items, which are text whenever the parser accepted it (and text equals only text).
    Every parser returns immutable values (text, dates, cadences, tuples of text), so one result
    can serve every document. Refused values are parsed again each time: they are few, and the
    error is raised afresh.
    """
    parse = field.parse
    memo: dict[Any, Any] = {}
    by_text: dict[str, Any] = {}  # the same for text, the common case, keyed by the text alone

    def check(value: object) -> Any:
        kind = value.__class__
        if kind is str:
            known = by_text.get(value)  # type: ignore[call-overload]
            if known is None:  # no parser returns None
                known = parse(value, rules)
                if len(by_text) >= _MEMO_MAX:
                    by_text.clear()
                by_text[value] = known  # type: ignore[index]
            return known
        try:
            key = (kind, tuple(value)) if isinstance(value, list) else (kind, value)
            known = memo.get(key, _MISS)
        except TypeError:  # unhashable: a mapping, or a list holding one
            return parse(value, rules)
        if known is not _MISS:
            return known
        made = parse(value, rules)
        if len(memo) >= _MEMO_MAX:
            memo.clear()
        memo[key] = made
        return made

    check.__name__ = f"_check_{field.name}"
    return check


_MODELS: dict[int, tuple[Rules, type[MetadataBase]]] = {}


def model_for(rules: Rules) -> type[MetadataBase]:
    """The metadata model whose fields are checked under ``rules`` (built once per rules).

    Each field's parser is the field's whole validator (pydantic's plain validator): the
    parsers return values of the field's type or raise, so a second check of the type after
    them could never fail."""
    held = _MODELS.get(id(rules))
    if held is not None and held[0] is rules:
        return held[1]
    fields: dict[str, Any] = {
        f.name: (Annotated[f.type | None, PlainValidator(_remembering(f, rules))], None)
        for f in FIELDS
    }
    model: type[MetadataBase] = create_model("Metadata", __base__=MetadataBase, **fields)
    _MODELS[id(rules)] = (rules, model)
    return model
