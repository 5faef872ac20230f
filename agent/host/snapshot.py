"""One read of the host: checks are pure functions of (spec, snapshot).

Each check kind asks for what it needs through a :class:`SnapshotRequest`; the audit merges the
requests of every check and reads the host once with :func:`take`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING

from agent.core.record import record
from agent.host import procfs
from agent.host.facts import HostFacts, ReadError
from agent.host.fdwalk import FdWalk
from agent.host.processes import DEFAULT_FIELDS, Detail, ProcessTable, read_processes

if TYPE_CHECKING:
    from agent.host.cgroups import CgroupTree
    from agent.host.clock import KernelClock
    from agent.host.cmdline import KernelCmdline
    from agent.host.dump_cache import DumpCache
    from agent.host.files import FileRequest, FileSet
    from agent.host.irq import IrqTable
    from agent.host.kmod import Modules
    from agent.host.mounts import MountTable
    from agent.host.processes import Process
    from agent.host.seccomp_dump import FilterDump
    from agent.host.sockets import ListenerTable, Sockets
    from agent.host.systemd_units import UnitSet
    from agent.host.unitfiles import UnitFileError, UnitFiles

Values = Mapping[str, "str | ReadError"]
"""Concrete key -> raw value (or why it could not be read). Empty when nothing matched."""


@record
class DumpRequest:
    """Read the loaded seccomp filters of every process ``select`` picks (it stops them
    briefly: see :mod:`agent.host.loaded_filters`). Hashable, so requests merge."""

    select: Callable[[Process], bool | str]
    """True for a process to read; False, or why it cannot be told (then it is not read)."""
    stop_isolated: bool = False
    """May stop a process that can run on an isolated CPU."""
    threads: bool = False
    """Read every thread's filters, not only the main thread's (filters are per thread)."""


@record
class SnapshotRequest:
    """What a set of checks needs read from the host."""

    sysctl: frozenset[str] = frozenset()
    """sysctl keys or globs (``net.ipv4.conf.*.rp_filter``)."""
    sysfs: frozenset[str] = frozenset()
    """Paths under ``/sys`` or globs (``kernel/mm/transparent_hugepage/enabled``)."""
    cmdline: bool = False
    """Whether the kernel command line is needed."""
    processes: bool = False
    """Whether the process table is needed with every field of every process."""
    process_fields: frozenset[str] = frozenset()
    """Fields (:data:`agent.host.processes.FIELDS`) to read for every process (implies the
    process table; the ``stat`` fields, name among them, always come). A field nobody asked
    for is not read: looking at it raises ``FieldNotRead``, which the audit reports as the
    check's ``error`` (never a pass)."""
    process_details: frozenset[Detail] = frozenset()
    """More fields for the processes a selector picks (implies the process table)."""
    process_sockets: bool = False
    """Whether each process's socket inodes are needed (implies the process table)."""
    threads: bool = False
    """Whether each process's threads are needed (implies the process table)."""
    listeners: bool = False
    """Whether the listening sockets are needed (implies the process fields they need)."""
    cgroups: bool = False
    """Whether the cgroup hierarchies (every cgroup's resource-control files) are needed."""
    seccomp_dumps: frozenset[DumpRequest] = frozenset()
    """Processes whose loaded seccomp filters must be read (implies the process table with
    threads, the kernel command line and the cgroups, to know the isolated CPUs)."""
    mountinfo: frozenset[str] = frozenset()
    """Processes (``self`` or a pid) whose mount namespace's ``mountinfo`` is needed."""
    files: frozenset[FileRequest] = frozenset()
    """Files (paths or globs) to examine, and how deeply."""
    modules: bool = False
    """Whether the kernel modules are needed: ``/proc/modules``, the running release's
    ``modules.builtin`` and the modprobe.d ``install``/``blacklist`` lines
    (:mod:`agent.host.kmod`)."""
    clock: bool = False
    """Whether the kernel clock's discipline is needed (``adjtimex(2)``, live host only:
    :mod:`agent.host.clock`)."""
    irqs: bool = False
    """Whether the hardware IRQs are needed: ``/proc/interrupts``, each ``/proc/irq/N``'s
    affinity lists, every running irqbalance's environment, and the host's isolated CPUs
    (implies the process table, the kernel command line and the cgroups:
    :mod:`agent.host.irq`)."""
    cpu_sets: frozenset[str] = frozenset()
    """Named CPU sets: ``online``, ``all`` (present) or ``isolated`` (implies the kernel
    command line and the cgroups: :func:`agent.host.stop_guard.isolated_cpus`)."""

    units: frozenset[str] = frozenset()
    """systemd unit names or globs whose files (fragment and drop-ins merged) and enablement
    are needed (:mod:`agent.host.systemd_units`)."""

    def __or__(self, other: SnapshotRequest) -> SnapshotRequest:
        return SnapshotRequest(
            sysctl=self.sysctl | other.sysctl,
            sysfs=self.sysfs | other.sysfs,
            cmdline=self.cmdline or other.cmdline,
            processes=self.processes or other.processes,
            process_fields=self.process_fields | other.process_fields,
            process_details=self.process_details | other.process_details,
            process_sockets=self.process_sockets or other.process_sockets,
            threads=self.threads or other.threads,
            listeners=self.listeners or other.listeners,
            cgroups=self.cgroups or other.cgroups,
            seccomp_dumps=self.seccomp_dumps | other.seccomp_dumps,
            mountinfo=self.mountinfo | other.mountinfo,
            files=self.files | other.files,
            modules=self.modules or other.modules,
            clock=self.clock or other.clock,
            irqs=self.irqs or other.irqs,
            cpu_sets=self.cpu_sets | other.cpu_sets,
            units=self.units | other.units,
        )

    def process_plan(self) -> tuple[frozenset[str], frozenset[Detail]] | None:
        """The fields every process is read with and the details; None: no process table."""
        fields = set(DEFAULT_FIELDS if self.processes else self.process_fields)
        details = set(self.process_details)
        if self.process_sockets:
            fields.add("socket_inodes")
        if self.threads or self.seccomp_dumps:
            fields.add("threads")
        if self.irqs:
            fields.add("cmdline")  # a table to find irqbalance in (by name: always read)
        if self.listeners:
            from agent.host.sockets import OWNER_DETAIL, PROCESS_FIELDS  # noqa: PLC0415 - ports checks only

            fields |= PROCESS_FIELDS
            details.add(OWNER_DETAIL)
        if not (fields or details or self.processes):
            return None
        return frozenset(fields), frozenset(details)


@record
class OwnListener:
    """A socket hostguard itself is configured to listen on (the daemon's ``metrics_listen``).

    The ``ports`` kind tolerates the socket only where the audited process holds it (``pid``),
    so another program on the same port is judged as any other; the evidence still shows it.
    """

    pid: int
    """The process that holds it: the auditing daemon itself."""
    host: str
    """Configured host: an IP address must equal the bound one; a name matches any address."""
    port: int
    """Configured TCP port."""
    setting: str
    """Where it is configured, in words (``metrics_listen 127.0.0.1:9420``)."""


@record
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
    seccomp_dumps: Mapping[int, FilterDump | ReadError] | None = None
    """tid -> that thread's loaded filters (or why not read): the main thread (tid = pid) of
    every process a request selects, every thread for requests with ``threads``; ``None``
    when not asked."""
    own_listeners: tuple[OwnListener, ...] = ()
    """Sockets the auditing agent itself listens on, by its configuration (not read from the
    host: told by the caller of the audit)."""
    mounts: Mapping[str, MountTable | ReadError] = field(default_factory=dict)
    """Requested process (``self`` or a pid) -> the mount table of its mount namespace."""
    files: Mapping[FileRequest, FileSet] = field(default_factory=dict)
    """Requested files -> what they matched."""
    modules: Modules | None = None
    """Loaded and built-in modules and the modprobe rules; ``None`` when not asked."""
    clock: KernelClock | ReadError | None = None
    """The kernel clock as ``adjtimex`` reports it; ``None`` when not asked."""
    irqs: IrqTable | None = None
    """The hardware IRQs, the isolated CPUs and irqbalance; ``None`` when not asked."""
    cpu_sets: Mapping[str, frozenset[int] | ReadError] = field(default_factory=dict)
    """Requested CPU set name -> its CPUs (or why they are unknown)."""
    units: Mapping[str, UnitSet] = field(default_factory=dict)
    """Requested unit name or glob -> the units it selects."""


def take(root: Path, request: SnapshotRequest, dump_cache: DumpCache | None = None,
         fd_walk: FdWalk | None = None) -> Snapshot:
    """Read what ``request`` names from the host under ``root`` (``dump_cache``: filter dumps
    already taken, so that an unchanged process is never stopped twice; ``fd_walk``: how the
    process table walks the fd tables, see :class:`agent.host.fdwalk.FdWalk`, by default with
    as many helpers as pay off)."""
    walk = fd_walk if fd_walk is not None else FdWalk()
    sockets: list[Sockets | ReadError] = []
    if request.listeners:
        from agent.host import sockets as socket_tables  # noqa: PLC0415 - ports checks only

        def read_sockets(partial: ProcessTable) -> None:
            # The socket tables are read while the fd walk ends on other CPUs.
            sockets.append(socket_tables.read_socket_table(root, partial))

        walk.meanwhile(read_sockets)
    try:
        table = _process_table(root, request, walk)
    finally:
        walk.cancel()  # a walk started early and not taken over (no process table read)
    listeners: ListenerTable | ReadError | None = None
    if request.listeners:
        early = sockets[0] if sockets else None  # none: the process table was not read
        # The same process table: read once, shared.
        listeners = socket_tables.read_listener_table(root, table, early)
    cgroups: CgroupTree | ReadError | None = None
    isolated = "isolated" in request.cpu_sets
    if request.cgroups or request.seccomp_dumps or request.irqs or isolated:
        from agent.host.cgroups import read_cgroups  # noqa: PLC0415 - cgroup, deep, irq checks only

        cgroups = read_cgroups(root)
    cmdline = (procfs.read_cmdline(root) if request.cmdline or request.seccomp_dumps
               or request.irqs or isolated else None)
    dumps = None
    if request.seccomp_dumps and table is not None:
        from agent.host.loaded_filters import read_loaded  # noqa: PLC0415 - deep seccomp checks only
        from agent.host.stop_guard import isolated_cpus  # noqa: PLC0415 - deep seccomp checks only

        dumps = read_loaded(root, table, request.seccomp_dumps,
                            isolated_cpus(cmdline, cgroups, root=root), dump_cache)
    return Snapshot(
        root=str(root),
        facts=procfs.read_facts(root),
        sysctl={key: procfs.read_sysctl(root, key) for key in sorted(request.sysctl)},
        sysfs={path: procfs.read_sysfs(root, path) for path in sorted(request.sysfs)},
        cmdline=cmdline if request.cmdline else None,
        processes=table,
        listeners=listeners,
        cgroups=cgroups if request.cgroups else None,
        seccomp_dumps=dumps,
        mounts=_mounts(root, request.mountinfo),
        files=_files(root, request.files),
        modules=_modules(root) if request.modules else None,
        clock=_clock(root) if request.clock else None,
        irqs=_irqs(root, table, cmdline, cgroups) if request.irqs else None,
        cpu_sets=_cpu_sets(root, request.cpu_sets, cmdline, cgroups),
        units=_units(root, request.units),
    )


def _mounts(root: Path, pids: frozenset[str]) -> dict[str, MountTable | ReadError]:
    if not pids:
        return {}
    from agent.host.mounts import read_mountinfo  # noqa: PLC0415 - mount checks only

    return {pid: read_mountinfo(root, pid) for pid in sorted(pids)}


def _files(root: Path, requests: frozenset[FileRequest]) -> dict[FileRequest, FileSet]:
    if not requests:
        return {}
    from agent.host.accounts import read_id_names  # noqa: PLC0415 - file checks only
    from agent.host.files import read_files  # noqa: PLC0415 - file checks only

    # The account files once for every request.
    users, groups = read_id_names(root, "passwd"), read_id_names(root, "group")
    return {r: read_files(root, r, users, groups) for r in sorted(requests, key=repr)}


def _process_table(root: Path, request: SnapshotRequest, fd_walk: FdWalk) -> ProcessTable | None:
    plan = request.process_plan()
    if plan is None:
        return None
    fields, details = plan
    # ``processes``: the whole table as it always was, the socket inodes and threads not asked
    # for empty; otherwise exactly the fields asked for (looking at any other raises).
    return read_processes(root, sockets="socket_inodes" in fields, threads="threads" in fields,
                          fields=None if request.processes else fields, details=details,
                          fd_walk=fd_walk)


def _modules(root: Path) -> Modules:
    from agent.host.kmod import read_modules  # noqa: PLC0415 - kmod checks only

    return read_modules(root)


def _clock(root: Path) -> KernelClock | ReadError:
    from agent.host.clock import read_clock  # noqa: PLC0415 - timesync checks only

    return read_clock(root)


def _cpu_sets(root: Path, names: frozenset[str], cmdline: KernelCmdline | ReadError | None,
              cgroups: CgroupTree | ReadError | None) -> dict[str, frozenset[int] | ReadError]:
    if not names:
        return {}
    from agent.host.cpus import read_cpu_set  # noqa: PLC0415 - CPU-list sysfs checks only
    from agent.host.stop_guard import isolated_cpus  # noqa: PLC0415 - CPU-list sysfs checks only

    return {name: isolated_cpus(cmdline, cgroups, root=root) if name == "isolated"
            else read_cpu_set(root, name) for name in sorted(names)}


def _irqs(root: Path, table: ProcessTable | None, cmdline: KernelCmdline | ReadError | None,
          cgroups: CgroupTree | ReadError | None) -> IrqTable:
    from agent.host.irq import read_irqs  # noqa: PLC0415 - irq checks only

    return read_irqs(root, table, cmdline, cgroups)


def _units(root: Path, patterns: frozenset[str]) -> dict[str, UnitSet]:
    if not patterns:
        return {}
    from agent.host.systemd_units import read_units  # noqa: PLC0415 - unit checks only

    # One read of each unit, whichever patterns select it.
    loaded: dict[str, UnitFiles | UnitFileError] = {}
    return {pattern: read_units(root, pattern, loaded) for pattern in sorted(patterns)}
