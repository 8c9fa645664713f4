"""What the settings' annotations tell pydantic, written so that importing them imports no pydantic.

The settings (:mod:`scheduler.config`) are plain frozen dataclasses, which pydantic validates when
a config is loaded. Their per-field limits and checks are ``Annotated`` metadata: :class:`Limits`
(pydantic's ``Field(gt=..., ...)``), :class:`Check` (an ``AfterValidator``) and :class:`Before`
(a ``BeforeValidator``). Each hands pydantic its own counterpart when pydantic builds the schema,
so pydantic is imported only then: a command whose settings come from the validated-settings
cache never imports it. :class:`Secret` is a string that is never shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

MASK = "**********"


@dataclass(frozen=True)
class Limits:
    """Bounds of a number setting, or the least length of a list, as pydantic's ``Field``."""

    gt: float | None = None
    ge: float | None = None
    le: float | None = None
    min_length: int | None = None

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from pydantic import Field

        given = {k: v for k, v in vars(self).items() if v is not None}
        return handler(Annotated[source, Field(**given)])


@dataclass(frozen=True)
class Check:
    """A check (or normalisation) of a value once its type is right; it raises ValueError with
    the message to show."""

    function: Callable[[Any], Any]

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.no_info_after_validator_function(self.function, handler(source))


@dataclass(frozen=True)
class Before:
    """A rewrite of the raw value before its type is checked (an older form of a setting)."""

    function: Callable[[Any], Any]

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.no_info_before_validator_function(self.function, handler(source))


class Secret:
    """A password: ``repr`` and ``str`` show only a mask, so it never reaches a log or a
    message; :meth:`get_secret_value` gives it to the one place that sends it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})" if self._value else "Secret('')"

    def __str__(self) -> str:
        return MASK if self._value else ""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    @classmethod
    def _of(cls, value: object) -> Secret:
        if isinstance(value, Secret):
            return value
        if isinstance(value, str):
            return cls(value)
        raise ValueError("must be a string")

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.no_info_plain_validator_function(
            cls._of, serialization=core_schema.plain_serializer_function_ser_schema(str)
        )
