"""Renderers: results in, text out. The command line decides where the text goes.

Each kind of result has a :class:`Registry` of named formats; ``--format`` choices and their help
come from it. A renderer yields the output in pieces whose concatenation is the whole output, so
a large report is written as it is produced and never held whole in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class RenderOptions:
    color: bool = False
    width: int | None = None  # terminal width; None renders without wrapping


Render = Callable[[R, RenderOptions], Iterable[str]]


@dataclass(frozen=True, slots=True)
class Format(Generic[R]):
    name: str
    help: str
    render: Render[R]


class Registry(Generic[R]):
    """The output formats of one kind of result, in the order they were registered."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._formats: dict[str, Format[R]] = {}

    def register(self, name: str, help: str) -> Callable[[Render[R]], Render[R]]:
        """Decorator: ``@REGISTRY.register("json", "machine-readable")`` on a renderer."""

        def add(render: Render[R]) -> Render[R]:
            if name in self._formats:
                raise ValueError(f"{self.what}: the format {name!r} is registered twice")
            self._formats[name] = Format(name, help, render)
            return render

        return add

    @property
    def names(self) -> list[str]:
        return list(self._formats)

    def __contains__(self, name: object) -> bool:
        return name in self._formats

    def help(self) -> str:
        """``text: ...; json: ...``, for ``--format``'s help."""
        return "; ".join(f"{f.name}: {f.help}" for f in self._formats.values()) + "."

    def stream(self, name: str, result: R, options: RenderOptions) -> Iterator[str]:
        yield from self._formats[name].render(result, options)

    def render(self, name: str, result: R, options: RenderOptions) -> str:
        return "".join(self.stream(name, result, options))
