"""One read of the host: checks are pure functions of (spec, snapshot).

Each check kind asks for what it needs through a :class:`SnapshotRequest`; the audit merges the
requests of every check and reads the host once with :func:`take`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from agent.host import procfs
from agent.host.cgroups import CgroupTree, read_cgroups
from agent.host.cmdline import KernelCmdline
from agent.host.facts import HostFacts, ReadError
from agent.host.processes import ProcessTable, read_processes
from agent.host.sockets import ListenerTable, read_listener_table

Values = Mapping[str, "str | ReadError"]
"""Concrete key -> raw value (or why it could not be read). Empty when nothing matched."""


@dataclass(frozen=True)
class SnapshotRequest:
    """What a set of checks needs read from the host."""

    sysctl: frozenset[str] = frozenset()
    """sysctl keys or globs (``net.ipv4.conf.*.rp_filter``)."""
    sysfs: frozenset[str] = frozenset()
    """Paths under ``/sys`` or globs (``kernel/mm/transparent_hugepage/enabled``)."""
    cmdline: bool = False
    """Whether the kernel command line is needed."""
    processes: bool = False
    """Whether the process table is needed."""
    process_sockets: bool = False
    """Whether each process's socket inodes are needed (implies ``processes``)."""
    threads: bool = False
    """Whether each process's threads are needed (implies ``processes``)."""
    listeners: bool = False
    """Whether the listening sockets are needed (implies ``process_sockets``)."""
    cgroups: bool = False
    """Whether the cgroup hierarchies (every cgroup's resource-control files) are needed."""

    def __or__(self, other: SnapshotRequest) -> SnapshotRequest:
        return SnapshotRequest(
            sysctl=self.sysctl | other.sysctl,
            sysfs=self.sysfs | other.sysfs,
            cmdline=self.cmdline or other.cmdline,
            processes=self.processes or other.processes,
            process_sockets=self.process_sockets or other.process_sockets,
            threads=self.threads or other.threads,
            listeners=self.listeners or other.listeners,
            cgroups=self.cgroups or other.cgroups,
        )


@dataclass(frozen=True)
class Snapshot:
    """Everything the checks may look at, read once."""

    root: str
    """The root the host was read from (``/`` on a live host)."""
    facts: HostFacts
    """Host identity."""
    sysctl: Mapping[str, Values] = field(default_factory=dict)
    """Requested sysctl pattern -> matches."""
    sysfs: Mapping[str, Values] = field(default_factory=dict)
    """Requested sysfs pattern -> matches."""
    cmdline: KernelCmdline | ReadError | None = None
    """Parsed ``/proc/cmdline``; ``None`` when no check asked for it."""
    processes: ProcessTable | None = None
    """Every process; ``None`` when no check asked for it."""
    listeners: ListenerTable | ReadError | None = None
    """Every listening socket; ``None`` when no check asked for it."""
    cgroups: CgroupTree | ReadError | None = None
    """Every cgroup hierarchy; ``None`` when no check asked for it."""


def take(root: Path, request: SnapshotRequest) -> Snapshot:
    """Read what ``request`` names from the host under ``root``."""
    sockets = request.process_sockets or request.listeners
    table = read_processes(root, sockets, request.threads) if (
        request.processes or sockets or request.threads) else None  # read once, shared
    return Snapshot(
        root=str(root),
        facts=procfs.read_facts(root),
        sysctl={key: procfs.read_sysctl(root, key) for key in sorted(request.sysctl)},
        sysfs={path: procfs.read_sysfs(root, path) for path in sorted(request.sysfs)},
        cmdline=procfs.read_cmdline(root) if request.cmdline else None,
        processes=table,
        listeners=read_listener_table(root, table) if request.listeners else None,
        cgroups=read_cgroups(root) if request.cgroups else None,
    )
