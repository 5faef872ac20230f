"""The registry of check kinds: a plain dict from ``kind:`` name to its implementation.

Adding a kind: write one module with a :class:`~agent.checks.base.CheckKind` subclass (docstring
with a passing and a failing snippet), list it in ``_KINDS`` below, and regenerate the published
schema with ``make schema``.
"""

from __future__ import annotations

from typing import Any

from agent.checks.base import CheckKind
from agent.checks.cgroup import CgroupKind
from agent.checks.kernel_cmdline import KernelCmdlineKind
from agent.checks.ports import PortsKind
from agent.checks.process import ProcessKind
from agent.checks.sysctl import SysctlKind
from agent.checks.sysfs import SysfsKind

_KINDS: tuple[CheckKind[Any], ...] = (SysctlKind(), SysfsKind(), KernelCmdlineKind(),
                                        ProcessKind(), CgroupKind(), PortsKind())

KINDS: dict[str, CheckKind[Any]] = {kind.name: kind for kind in _KINDS}


def get(name: str) -> CheckKind[Any]:
    """The kind called ``name``; fails loudly on an unknown name."""
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"unknown check kind {name!r}; known: {', '.join(sorted(KINDS))}") from None
