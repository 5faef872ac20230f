"""Hardware interrupts and where the kernel may deliver them; irqbalance's banned CPUs.

Every IRQ is a folder ``/proc/irq/N`` with ``smp_affinity_list`` (the CPUs it may be delivered
to) and, on kernels that have it, ``effective_affinity_list`` (where the interrupt controller
actually delivers it). Its handlers' names ("actions") come from ``/proc/interrupts``, the text
after the per-CPU counters, chip, hardware IRQ number and trigger: the kernel separates the
actions from those by two spaces and from each other by ``", "`` (kernel/irq/proc.c,
``show_interrupts``). The kernel also makes a folder per action under ``/proc/irq/N``: an IRQ
neither source gives a handler is unused and delivers nothing.

irqbalance (1.8 and later) keeps off the CPUs of ``IRQBALANCE_BANNED_CPULIST`` in its
environment, else of the hex mask ``IRQBALANCE_BANNED_CPUS``, else those of
``/sys/devices/system/cpu/isolated`` and ``nohz_full`` (irqbalance's ``setup_banned_cpus``):
the environment is read from ``/proc/PID/environ`` of each running irqbalance, which is what
its unit's ``EnvironmentFile=`` (``/etc/default/irqbalance``) really gave it.
"""

from __future__ import annotations

import re
from pathlib import Path

from agent.core.record import record
from agent.host import procfs
from agent.host.cgroups import CgroupTree
from agent.host.cmdline import KernelCmdline
from agent.host.cpus import format_cpus
from agent.host.facts import ReadError
from agent.host.processes import ProcessTable, parse_cpu_list
from agent.host.stop_guard import isolated_cpus

_ROW = re.compile(r"^\s*(\d+):(.*)$")
_AFFINITY_FILES = ("smp_affinity_list", "effective_affinity_list")
_NOT_ACTIONS = frozenset({"affinity_hint", "effective_affinity", "effective_affinity_list",
                          "node", "smp_affinity", "smp_affinity_list", "spurious"})
"""The files of ``/proc/irq/N``; any other entry is an action's folder."""


@record
class Irq:
    """One hardware interrupt."""

    number: int
    actions: tuple[str, ...]
    """Handler names from ``/proc/interrupts`` (host data: hostile)."""
    affinity: frozenset[int] | ReadError
    """``smp_affinity_list``."""
    effective: frozenset[int] | ReadError | None
    """``effective_affinity_list``; ``None`` on a kernel without it."""
    counts: tuple[int, ...]
    """Interrupts delivered per CPU column of ``/proc/interrupts`` (empty when not listed)."""
    in_use: bool
    """A handler is registered (an action in ``/proc/interrupts`` or a folder for one)."""


@record
class Irqbalance:
    """One running irqbalance and the CPUs it keeps off."""

    pid: int
    banned: frozenset[int] | ReadError
    source: str
    """Where ``banned`` comes from, in words."""


@record
class IrqTable:
    """The IRQs, the CPUs they must avoid by default, and irqbalance."""

    irqs: tuple[Irq, ...] | ReadError
    cpus: tuple[int, ...]
    """The CPU of each counter column of ``/proc/interrupts``."""
    isolated: frozenset[int] | ReadError
    """The host's isolated CPUs (:func:`agent.host.stop_guard.isolated_cpus`)."""
    irqbalance: tuple[Irqbalance, ...] | ReadError
    """Each running irqbalance; empty when none runs."""


Rows = dict[int, tuple[tuple[int, ...], tuple[str, ...]]]


def parse_interrupts(text: str) -> tuple[tuple[int, ...], Rows]:
    """``/proc/interrupts`` -> the CPU columns and, per numbered IRQ, its counters and
    actions (the rows of per-CPU vectors, ``NMI:``, ``LOC:``, ... have no IRQ number)."""
    lines = text.splitlines()
    header = lines[0].split() if lines else []
    cpus = tuple(int(word[3:]) for word in header if word.startswith("CPU") and word[3:].isdigit())
    rows: Rows = {}
    for line in lines[1:]:
        match = _ROW.match(line)
        if match is None:
            continue
        rest = match.group(2)
        counts: list[int] = []
        while len(counts) < len(cpus):
            word = rest.split(None, 1)
            if not word or not word[0].isdigit():
                break
            counts.append(int(word[0]))
            rest = word[1] if len(word) > 1 else ""
        # chip, hwirq and trigger, then two spaces and the actions; a "-name" chunk is the
        # handler's flow name, not an action
        chunks = re.split(r" {2,}", rest.strip())
        actions: tuple[str, ...] = ()
        if len(chunks) >= 3 and not chunks[-1].startswith("-"):
            actions = tuple(chunks[-1].split(", "))
        rows[int(match.group(1))] = (tuple(counts), actions)
    return cpus, rows


def read_irqs(root: Path, table: ProcessTable | None, cmdline: KernelCmdline | ReadError | None,
              cgroups: CgroupTree | ReadError | None) -> IrqTable:
    """Read the IRQs under ``root``; ``table`` finds irqbalance, ``cmdline`` and ``cgroups``
    the isolated CPUs."""
    isolated = isolated_cpus(cmdline, cgroups, root=root)
    balancers = _irqbalance(root, table)
    text = procfs.read_file(root, "proc/interrupts")
    if not isinstance(text, str):
        reason = text.reason if text is not None else f"no such file: {root / 'proc/interrupts'}"
        return IrqTable(ReadError(reason), (), isolated, balancers)
    cpus, rows = parse_interrupts(text)
    names = procfs.list_dir(root, "proc/irq")
    if not isinstance(names, list):
        reason = names.reason if names is not None else f"no such folder: {root / 'proc/irq'}"
        return IrqTable(ReadError(reason), cpus, isolated, balancers)
    irqs: list[Irq] = []
    for number in sorted(int(name) for name in names if name.isdigit()):
        folder = f"proc/irq/{number}"
        entries = procfs.list_dir(root, folder)
        if entries is None:
            continue  # freed while it was read
        affinity = _cpus(root, f"{folder}/smp_affinity_list")
        if affinity is None:
            affinity = ReadError(f"no such file: {root / folder / 'smp_affinity_list'}")
        effective = _cpus(root, f"{folder}/effective_affinity_list")
        counts, actions = rows.get(number, ((), ()))
        handlers = (isinstance(entries, ReadError)
                    or any(entry not in _NOT_ACTIONS for entry in entries))
        irqs.append(Irq(number, actions, affinity, effective, counts,
                        bool(actions) or handlers))
    return IrqTable(tuple(irqs), cpus, isolated, balancers)


def _cpus(root: Path, relative: str) -> frozenset[int] | ReadError | None:
    text = procfs.read_file(root, relative)
    if not isinstance(text, str):
        return text
    try:
        return parse_cpu_list(text)
    except ValueError:
        return ReadError(f"cannot parse {root / relative}: {text!r}")


def _irqbalance(root: Path, table: ProcessTable | None) -> tuple[Irqbalance, ...] | ReadError:
    if table is None:
        return ReadError("the process table was not read")
    found: list[Irqbalance] = []
    for process in table.processes.values():
        if process.kernel_thread or process.name != "irqbalance":
            continue
        environ = procfs.read_file(root, f"proc/{process.pid}/environ")
        if environ is None:
            continue  # it ended
        if isinstance(environ, ReadError):
            found.append(Irqbalance(process.pid, environ, "its environment"))
            continue
        banned, source = banned_cpus(root, environ)
        found.append(Irqbalance(process.pid, banned, source))
    return tuple(found)


def banned_cpus(root: Path, environ: str) -> tuple[frozenset[int] | ReadError, str]:
    """The CPUs irqbalance keeps off, given its NUL-separated environment, and the source."""
    env: dict[str, str] = {}
    for entry in environ.split("\0"):
        name, sep, value = entry.partition("=")
        if sep:
            env[name] = value
    for name in ("IRQBALANCE_BANNED_CPULIST", "IRQBALANCE_BANNED_CPUS"):
        value = env.get(name, "")
        if value:
            source = f"{name}={value}"
            try:
                return (parse_cpu_list(value) if name.endswith("LIST") else _mask(value)), source
            except ValueError:
                return ReadError(f"cannot parse {source}"), source
    banned: set[int] = set()
    for name in ("isolated", "nohz_full"):
        text = procfs.read_file(root, f"sys/devices/system/cpu/{name}")
        if isinstance(text, ReadError):
            return text, "sysfs isolated and nohz_full"
        if text and text.strip() not in ("", "(null)"):
            try:
                banned |= parse_cpu_list(text)
            except ValueError:
                return ReadError(f"cannot parse /sys/devices/system/cpu/{name}: {text!r}"), name
    return frozenset(banned), f"sysfs isolated and nohz_full CPUs {format_cpus(banned)}"


def _mask(text: str) -> frozenset[int]:
    """A cpumask as the kernel writes it: hex words, most significant first, comma-separated."""
    value = int(text.replace(",", "").strip(), 16)
    return frozenset(bit for bit in range(value.bit_length()) if value >> bit & 1)
