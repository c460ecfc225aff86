"""Match ``(method, request path)`` to an operation with patterns compiled once.

Literal paths are a dictionary lookup. Templated paths are regular expressions grouped by segment count
and tried most-literal first (at the first segment where two templates differ, the literal one wins), so
``/time-entries/batch`` beats ``/time-entries/{time_entry_id}``. The method decides between paths that
both match: the most specific path that declares the method wins.

Matching is on the raw path, so an encoded slash (``%2F``) stays inside its segment; parameter values are
percent-decoded afterwards. ``HEAD`` falls back to ``GET``. A trailing slash is a different path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import unquote

_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _TemplatedRoute(Generic[T]):
    template: str
    pattern: re.Pattern[str]
    parameter_names: tuple[str, ...]
    operations: Mapping[str, T]


class Router(Generic[T]):
    __slots__ = ("_static", "_templated")

    def __init__(self, routes: Iterable[tuple[str, Mapping[str, T]]]) -> None:
        """``routes``: full path template -> {upper-case method: operation}."""
        self._static: dict[str, Mapping[str, T]] = {}
        templated: dict[int, list[tuple[tuple[int, ...], _TemplatedRoute[T]]]] = {}
        for template, operations in routes:
            names = tuple(_PLACEHOLDER.findall(template))
            if not names:
                self._static[template] = dict(operations)
                continue
            route = _TemplatedRoute(template, _compile_template(template), names, dict(operations))
            specificity = tuple(1 if "{" in segment else 0 for segment in template.split("/"))
            templated.setdefault(template.count("/"), []).append((specificity, route))
        self._templated = {
            count: tuple(route for _, route in sorted(entries, key=lambda item: (item[0], item[1].template)))
            for count, entries in templated.items()
        }

    def match(self, method: str, path: str) -> tuple[T, dict[str, str]] | None:
        """The operation for ``method`` on ``path`` and its decoded path parameters, or None."""
        method = method.upper()
        static = self._static.get(path)
        # The literal path is tried inline: it is the common case and needs no generator.
        if static is not None:
            operation = _operation_for(static, method)
            if operation is not None:
                return operation, {}
        for route in self._templated.get(path.count("/"), ()):
            found = route.pattern.fullmatch(path)
            if found is not None:
                operation = _operation_for(route.operations, method)
                if operation is not None:
                    return operation, _decoded(route.parameter_names, found.groups())
        return None

    def allowed_methods(self, path: str) -> frozenset[str]:
        """Methods some matching path declares (for ``405`` and ``Allow``); empty when no path matches."""
        methods: set[str] = set()
        for operations, _ in self._candidates(path):
            methods.update(operations)
        return frozenset(methods)

    def _candidates(self, path: str) -> Iterator[tuple[Mapping[str, T], dict[str, str]]]:
        static = self._static.get(path)
        if static is not None:
            yield static, {}
        for route in self._templated.get(path.count("/"), ()):
            found = route.pattern.fullmatch(path)
            if found is not None:
                values = found.groups()
                yield (
                    route.operations,
                    {name: unquote(value) for name, value in zip(route.parameter_names, values, strict=True)},
                )


def _operation_for(operations: Mapping[str, T], method: str) -> T | None:
    operation = operations.get(method)
    if operation is None and method == "HEAD":
        return operations.get("GET")
    return operation


def _decoded(names: tuple[str, ...], values: tuple[str | Any, ...]) -> dict[str, str]:
    return {name: unquote(value) if "%" in value else value for name, value in zip(names, values, strict=True)}


def _compile_template(template: str) -> re.Pattern[str]:
    parts: list[str] = []
    position = 0
    for placeholder in _PLACEHOLDER.finditer(template):
        parts.append(re.escape(template[position : placeholder.start()]))
        parts.append("([^/]+)")
        position = placeholder.end()
    parts.append(re.escape(template[position:]))
    return re.compile("".join(parts))
