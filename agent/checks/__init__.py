"""The registry of check kinds: a plain mapping from ``kind:`` name to its implementation.

Adding a kind: write one module with a :class:`~agent.checks.base.CheckKind` subclass (docstring
with a passing and a failing snippet), list it in ``_KINDS`` below, and regenerate the published
schema with ``make schema``.

A kind's module is imported the first time its name is looked up, so an audit whose policies
use three kinds imports three modules (``hostguard audit`` starts faster); listing the names,
iterating or ``len`` need no import.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from agent.core.registry import LazyRegistry

if TYPE_CHECKING:
    from agent.checks.base import CheckKind

_KINDS: dict[str, str] = {
    "sysctl": "agent.checks.sysctl:SysctlKind",
    "sysfs": "agent.checks.sysfs:SysfsKind",
    "kernel_cmdline": "agent.checks.kernel_cmdline:KernelCmdlineKind",
    "process": "agent.checks.process:ProcessKind",
    "cgroup": "agent.checks.cgroup:CgroupKind",
    "ports": "agent.checks.ports:PortsKind",
    "seccomp": "agent.checks.seccomp:SeccompKind",
    "mount": "agent.checks.mount:MountKind",
    "file": "agent.checks.file:FileKind",
    "kmod": "agent.checks.kmod:KmodKind",
    "timesync": "agent.checks.timesync:TimesyncKind",
    "irq": "agent.checks.irq:IrqKind",
    "unit": "agent.checks.unit:UnitKind",
}
"""``kind:`` name -> its class, as ``module:class``."""


def _instance(name: str, cls: type[CheckKind[Any]]) -> CheckKind[Any]:
    kind = cls()
    if kind.name != name:
        raise RuntimeError(f"{_KINDS[name]}.name is {kind.name!r}, registered as {name!r}")
    return kind


KINDS: Mapping[str, CheckKind[Any]] = LazyRegistry(_KINDS, _instance)
"""Name -> one shared instance of the kind, its module imported on first lookup."""


def get(name: str) -> CheckKind[Any]:
    """The kind called ``name``; fails loudly on an unknown name."""
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"unknown check kind {name!r}; known: {', '.join(sorted(KINDS))}") from None
