"""Linters for document kinds other than ``Policy``, by ``kind``.

Each takes a loaded document and the day to judge dates by, and returns every diagnostic for
that document, located in it. A linter's module is imported when the linter is first looked
up: the audit only needs the kinds' names (to skip those documents), not their linters.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable, Iterator, Mapping

from agent.core.diagnostic import Diagnostic
from agent.core.yamlload import Document

Linter = Callable[[Document, dt.date], list[Diagnostic]]

_LINTERS: dict[str, tuple[str, str]] = {
    "SeccompProfile": ("agent.seccomp.lint", "lint_profile"),
    "AgentConfig": ("agent.daemon.config", "lint_config"),
}
"""``kind`` -> (module, function)."""


class _Linters(Mapping[str, Linter]):
    def __iter__(self) -> Iterator[str]:
        return iter(_LINTERS)

    def __len__(self) -> int:
        return len(_LINTERS)

    def __contains__(self, kind: object) -> bool:
        return kind in _LINTERS

    def __getitem__(self, kind: str) -> Linter:
        module, name = _LINTERS[kind]
        linter: Linter = getattr(importlib.import_module(module), name)
        return linter


LINTERS: Mapping[str, Linter] = _Linters()
"""``kind`` -> linter."""
