"""CPU lists as the kernel writes them, and which CPUs the boot line isolates."""

from __future__ import annotations

from collections.abc import Iterable

from agent.host.cmdline import KernelCmdline
from agent.host.processes import parse_cpu_list

ISOLCPUS_FLAGS = frozenset({"nohz", "domain", "managed_irq"})
"""Flags ``isolcpus=`` may start with (Documentation/admin-guide/kernel-parameters.txt)."""


def format_cpus(cpus: Iterable[int]) -> str:
    """``{0,1,2,5}`` -> ``0-2,5`` (``(none)`` for no CPU)."""
    runs: list[list[int]] = []
    for cpu in sorted(cpus):
        if runs and cpu == runs[-1][1] + 1:
            runs[-1][1] = cpu
        else:
            runs.append([cpu, cpu])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs) or "(none)"


def isolcpus(cmdline: KernelCmdline) -> frozenset[int]:
    """CPUs removed from scheduler domains by ``isolcpus=[flags,]list``.

    With no flags the kernel assumes ``domain``; with flags, only ``domain`` removes CPUs from
    load balancing (``managed_irq`` alone only steers managed interrupts away).
    """
    param = cmdline.last("isolcpus")
    if param is None or not param.value:
        return frozenset()
    tokens = param.value.split(",")
    flags = []
    while tokens and tokens[0] in ISOLCPUS_FLAGS:
        flags.append(tokens.pop(0))
    if flags and "domain" not in flags:
        return frozenset()
    try:
        return parse_cpu_list(",".join(tokens))
    except ValueError:
        return frozenset()
