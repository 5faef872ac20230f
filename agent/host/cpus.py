"""CPU lists as the kernel writes them, which CPUs the boot line isolates, and the named CPU
sets a check may range over."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from agent.host.cmdline import KernelCmdline
from agent.host.facts import ReadError
from agent.host.processes import parse_cpu_list
from agent.host.procfs import read_file

CPU_SETS = {"online": "online", "all": "present"}
"""Named CPU sets read from a file of ``/sys/devices/system/cpu`` (name -> file); the third
name, ``isolated``, is :func:`agent.host.stop_guard.isolated_cpus`."""

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


def read_cpu_set(root: Path, name: str) -> frozenset[int] | ReadError:
    """The CPUs of :data:`CPU_SETS` ``name`` under ``root``; a file missing, unreadable, empty
    or not a CPU list is a :class:`ReadError` (every host has CPU 0 in both)."""
    relative = f"sys/devices/system/cpu/{CPU_SETS[name]}"
    text = read_file(root, relative)
    if text is None:
        return ReadError(f"no such file: {root / relative}")
    if isinstance(text, ReadError):
        return text
    try:
        cpus = parse_cpu_list(text)
    except ValueError:
        return ReadError(f"{root / relative}: not a CPU list: {text.strip()[:80]!r}")
    if not cpus:
        return ReadError(f"{root / relative} is empty")
    return cpus
