"""A mapping from names to values that live in modules imported on the first lookup.

The registries (check kinds, document linters, report formats, commands) name each entry's home
as ``"package.module:attribute"``: listing the names, iterating, ``in`` or ``len`` import
nothing, so ``hostguard audit`` loads only the modules of what it uses. A lookup imports the
entry's module once and keeps the value; an unknown name raises ``KeyError``, as a dict does.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar, overload

V = TypeVar("V")


class LazyRegistry(Mapping[str, V], Generic[V]):
    """Name -> value: the attribute an entry names, passed through ``make(name, attribute)``
    when given (to build an instance, say), built on first lookup and kept."""

    @overload
    def __init__(self: LazyRegistry[Any], entries: Mapping[str, str]) -> None: ...

    @overload
    def __init__(self, entries: Mapping[str, str], make: Callable[[str, Any], V]) -> None: ...

    def __init__(self, entries: Mapping[str, str],
                 make: Callable[[str, Any], V] | None = None) -> None:
        for name, target in entries.items():
            module, colon, attribute = target.partition(":")
            if not (module and colon and attribute):
                raise ValueError(f"entry {name!r}: {target!r} is not 'package.module:attribute'")
        self._entries = dict(entries)
        self._make = make
        self._loaded: dict[str, V] = {}

    def __getitem__(self, name: str) -> V:
        try:
            return self._loaded[name]
        except KeyError:
            pass
        module, _, attribute = self._entries[name].partition(":")  # KeyError: unknown name
        found = getattr(importlib.import_module(module), attribute)
        value: V = found if self._make is None else self._make(name, found)
        self._loaded[name] = value
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self._entries)})"

    def module(self, name: str) -> str:
        """The module an entry lives in (not imported)."""
        return self._entries[name].partition(":")[0]
