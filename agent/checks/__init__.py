"""The registry of check kinds: a plain mapping from ``kind:`` name to its implementation.

Adding a kind: write one module with a :class:`~agent.checks.base.CheckKind` subclass (docstring
with a passing and a failing snippet), list it in ``_KINDS`` below, and regenerate the published
schema with ``make schema``.

A kind's module is imported the first time its name is looked up, so an audit whose policies
use three kinds imports three modules (``hostguard audit`` starts faster); listing the names,
iterating or ``len`` need no import.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.checks.base import CheckKind

_KINDS: dict[str, tuple[str, str]] = {
    "sysctl": ("agent.checks.sysctl", "SysctlKind"),
    "sysfs": ("agent.checks.sysfs", "SysfsKind"),
    "kernel_cmdline": ("agent.checks.kernel_cmdline", "KernelCmdlineKind"),
    "process": ("agent.checks.process", "ProcessKind"),
    "cgroup": ("agent.checks.cgroup", "CgroupKind"),
    "ports": ("agent.checks.ports", "PortsKind"),
    "seccomp": ("agent.checks.seccomp", "SeccompKind"),
}
"""``kind:`` name -> (module, class)."""


class _Registry(Mapping[str, "CheckKind[Any]"]):
    """Name -> one shared instance of the kind, its module imported on first lookup."""

    def __init__(self, kinds: Mapping[str, tuple[str, str]]) -> None:
        self._where = dict(kinds)
        self._loaded: dict[str, CheckKind[Any]] = {}

    def __getitem__(self, name: str) -> CheckKind[Any]:
        kind = self._loaded.get(name)
        if kind is None:
            module, cls = self._where[name]  # KeyError for an unknown name, as a dict
            kind = getattr(importlib.import_module(module), cls)()
            if kind.name != name:
                raise RuntimeError(f"{module}.{cls}.name is {kind.name!r}, registered as {name!r}")
            self._loaded[name] = kind
        return kind

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, name: object) -> bool:
        return name in self._where

    def __repr__(self) -> str:
        return f"KINDS({', '.join(self._where)})"


KINDS: Mapping[str, CheckKind[Any]] = _Registry(_KINDS)


def get(name: str) -> CheckKind[Any]:
    """The kind called ``name``; fails loudly on an unknown name."""
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"unknown check kind {name!r}; known: {', '.join(sorted(KINDS))}") from None
