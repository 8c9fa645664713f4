"""The pydantic model of a document's metadata, built from the field registry.

Imported by :func:`scheduler.content.metadata.validate` when a document is actually read, so
that a run whose documents all come from the parse cache imports no pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, create_model
from pydantic import field_validator as _field_validator

from scheduler.config import MetadataRules
from scheduler.content.fields import FIELDS, Field

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
