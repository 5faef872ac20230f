"""The process table, read once from ``root/proc``: identity, credentials and posture.

One pass over ``/proc/[0-9]*`` yields everything the process-, cgroup- and port-related checks
need, so no check walks ``/proc`` on its own: name, exe, cmdline, user, capabilities, seccomp,
no_new_privs, CPU affinity, scheduling policy, cgroup membership, network namespace and (when
asked) the socket inodes among its open files and its threads.

Only what the checks ask for is read (``fields``; by default every field but the socket inodes
and threads), each process's files once: ``stat`` always (identity: name, parent, start time,
kernel thread, scheduling), then ``status``, ``cmdline``, ``exe``, ``cgroup``, ``ns/net``,
``fd/`` and ``task/`` as the fields asked for need them (:data:`SOURCES`). A :class:`Detail`
adds fields for the processes its selector picks, decided on what was read so far in the same
pass (e.g. the command line only of the processes a ``process`` check selects by name). A field
that was not read is absent, not defaulted: reading it raises :class:`FieldNotRead`, so a check
that forgot to ask for it gets an error, never a silent pass.

A process that exits while it is read is left out (it no longer exists, so nothing can be said
of it); a field that cannot be read for another reason (permission) is recorded in
:attr:`Process.unreadable`, so that checks needing it return ``error`` rather than ``pass``.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import re
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from agent.core.record import record
from agent.host import fdwalk
from agent.host.accounts import read_id_names
from agent.host.facts import ReadError
from agent.host.fdwalk import FdTable, FdWalk, socket_inodes

PF_KTHREAD = 0x00200000
"""``flags`` bit of kernel threads (include/linux/sched.h)."""

SCHED_POLICIES = {0: "SCHED_OTHER", 1: "SCHED_FIFO", 2: "SCHED_RR", 3: "SCHED_BATCH",
                  5: "SCHED_IDLE", 6: "SCHED_DEADLINE"}

_GONE = (errno.ENOENT, errno.ESRCH)
_MAX_READ = 1 << 20
"""Cap on one /proc file (a cmdline can be long; nothing here is legitimately bigger)."""
_CHUNK = 65536


class Vanished(Exception):
    """The process exited while it was being read."""


class FieldNotRead(Exception):
    """A process field was looked at that the reader was not asked for.

    A bug in whatever looked (a check must request every field it reads); deliberately not an
    ``AttributeError``, so that neither ``getattr(p, name, default)`` nor ``hasattr`` turns it
    into a default value. The audit reports the check as ``error``.
    """


@record
class CgroupMembership:
    """One line of ``/proc/PID/cgroup``."""

    hierarchy: int
    """0 for the cgroup2 unified hierarchy."""
    controllers: tuple[str, ...]
    """v1 controllers of that hierarchy (``cpu``, ``cpuacct``); empty for cgroup2."""
    path: str
    """Path inside the hierarchy, e.g. ``/system.slice/gateway.service``."""


@record
class Thread:
    """Per-thread posture (``task/TID/status``): seccomp and affinity are per thread."""

    tid: int
    name: str
    seccomp: int | None
    """0 disabled, 1 strict, 2 filter."""
    seccomp_filters: int | None
    no_new_privs: bool | None
    cpus_allowed: frozenset[int] | None
    speculation_store_bypass: str | None = None
    """The ``Speculation_Store_Bypass`` line (``thread force mitigated``, ``globally
    mitigated``, ``vulnerable`` ...); None when absent (older kernels) or unreadable."""


@dataclass(slots=True, eq=False, repr=False)
class Process:
    """One process; ``None`` fields could not be read (see :attr:`unreadable`).

    Built by :func:`read_processes` with the fields asked for only (always ``pid``, the ``stat``
    fields and ``unreadable``); any other field raises :class:`FieldNotRead`. Built by hand,
    every field is given.

    Mutable, not frozen: the reader fills each process in place, source by source, and its fd
    table and details after the whole table is read (work given to
    :meth:`agent.host.fdwalk.FdWalk.meanwhile` and the details' selectors see it part-filled).
    Once :func:`read_processes` has returned it, nothing in hostguard changes it; building it
    complete at each step instead would copy every process once per step.
    """

    pid: int
    ppid: int
    name: str
    """``comm`` (attacker-controlled: up to 15 bytes of anything)."""
    kernel_thread: bool
    start_time: int
    """Clock ticks after boot: with the pid, identifies the process across pid reuse."""
    exe: str | None
    cmdline: tuple[str, ...]
    uid: int | None
    """Effective uid."""
    ruid: int | None
    """Real uid."""
    user: str | None
    """Name of the effective uid from the root's ``etc/passwd``; None when unknown."""
    cap_eff: int | None
    cap_prm: int | None
    cap_bnd: int | None
    cap_amb: int | None
    no_new_privs: bool | None
    seccomp: int | None
    seccomp_filters: int | None
    cpus_allowed: frozenset[int] | None
    sched_policy: int | None
    rt_priority: int | None
    nice: int | None
    cgroups: tuple[CgroupMembership, ...]
    netns: int | None
    """Inode of ``/proc/PID/ns/net``."""
    speculation_store_bypass: str | None = None
    """The ``Speculation_Store_Bypass`` line of ``status`` (``thread force mitigated`` ...);
    None when the kernel does not report it or status could not be read."""
    socket_inodes: frozenset[int] = frozenset()
    """Inodes of sockets among the open files (only when asked for)."""
    threads: tuple[Thread, ...] = ()
    """Threads (only when asked for)."""
    unreadable: Mapping[str, str] = field(default_factory=dict)
    """Field -> why it could not be read."""

    @property
    def sched_policy_name(self) -> str | None:
        return None if self.sched_policy is None else SCHED_POLICIES.get(
            self.sched_policy, str(self.sched_policy))

    def has(self, name: str) -> bool:
        """Whether field ``name`` was read (always true for a process built by hand)."""
        try:
            object.__getattribute__(self, name)
        except AttributeError:
            return False
        return True

    def _known(self) -> tuple[tuple[str, Any], ...]:
        return tuple((name, object.__getattribute__(self, name)) for name in _SLOTS
                     if self.has(name))

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Process)
        return self._known() == other._known()

    __hash__ = None  # type: ignore[assignment]  # unhashable, as its dict always made it

    def __repr__(self) -> str:
        return f"Process({', '.join(f'{k}={v!r}' for k, v in self._known())})"

    if not TYPE_CHECKING:  # mypy must still flag misspelt attributes

        def __getattr__(self, name: str) -> Any:  # only called for a field never set
            if name in FIELDS:
                raise FieldNotRead(f"process field {name!r} of pid {self.pid} was not read "
                                   "(not requested)")
            raise AttributeError(name)


_SLOTS = tuple(f.name for f in dataclasses.fields(Process))

_STAT_FIELDS = ("name", "ppid", "kernel_thread", "start_time", "sched_policy", "rt_priority",
                "nice")
_STATUS_FIELDS = ("uid", "ruid", "user", "cap_eff", "cap_prm", "cap_bnd", "cap_amb",
                  "no_new_privs", "seccomp", "seccomp_filters", "cpus_allowed",
                  "speculation_store_bypass")

SOURCES: dict[str, str] = {
    **{name: "stat" for name in _STAT_FIELDS},
    **{name: "status" for name in _STATUS_FIELDS},
    "cmdline": "cmdline", "exe": "exe", "cgroups": "cgroup", "netns": "ns/net",
    "socket_inodes": "fd", "threads": "task",
}
"""Process field -> what under ``/proc/PID`` it is read from."""

FIELDS = frozenset(SOURCES)
"""Every field that can be asked for (``pid`` and ``unreadable`` are always there)."""
ALWAYS = frozenset(_STAT_FIELDS)
"""Fields read for every process whatever was asked (``stat``: identity and scheduling)."""
DEFAULT_FIELDS = FIELDS - {"socket_inodes", "threads"}
"""What :func:`read_processes` reads when not told which fields."""
_ORDER = ("stat", "status", "cmdline", "exe", "cgroup", "ns/net", "fd", "task")
"""Sources in the order they are read."""


@record
class Detail:
    """Read ``fields`` too for each process ``select`` does not rule out.

    ``select`` sees the process as read so far (the fields every process is read with) and
    returns False when the process does not need the extra fields; anything else (True, or a
    reason why it cannot tell) has them read. It must be hashable (requests are merged) and
    look only at fields read for every process; should it raise, the fields are read.
    """

    select: Callable[[Process], object]
    fields: frozenset[str]


@record
class ProcessTable:
    """Every process found, by pid."""

    processes: Mapping[int, Process]
    own_netns: int | None
    """Network namespace of the process reading the table (the ``host`` namespace for ports)."""
    users: Mapping[int, str]
    """uid -> name from the root's ``etc/passwd``."""
    fields: frozenset[str] = FIELDS
    """Fields read for every process (more for some, see :class:`Detail`)."""


def parse_cpu_list(text: str) -> frozenset[int]:
    """``0-3,8,10-11`` -> {0,1,2,3,8,10,11}; raises ValueError on junk."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        low, sep, high = part.partition("-")
        if sep:
            first, last = int(low), int(high)
            if last < first or last - first > 65536:
                raise ValueError(f"bad CPU range {part!r}")
            cpus.update(range(first, last + 1))
        else:
            cpus.add(int(low))
    return frozenset(cpus)


def read_passwd(root: Path) -> dict[int, str]:
    """uid -> user name from ``root/etc/passwd`` (empty when unreadable)."""
    users = read_id_names(root, "passwd")
    return {} if isinstance(users, ReadError) else dict(users.by_id)


def read_processes(
    root: Path,
    sockets: bool = False,
    threads: bool = False,
    fields: Iterable[str] | None = None,
    details: Iterable[Detail] = (),
    *,
    fd_walk: FdWalk | None = None,
) -> ProcessTable:
    """Read every process under ``root/proc``.

    ``fields`` (default :data:`DEFAULT_FIELDS`) are read for every process, plus the socket
    inodes with ``sockets`` and the threads with ``threads``; each :class:`Detail` adds its
    fields for the processes it selects. Without ``fields``, the fields not read (socket
    inodes, threads) are empty, as they always were; with ``fields``, they are absent.
    ``fd_walk`` says how the fd tables are walked (by default: shared with as many helper
    processes as pay off) and what to do meanwhile, see :class:`agent.host.fdwalk.FdWalk`.
    """
    wanted = set(DEFAULT_FIELDS if fields is None else fields) | ALWAYS
    unknown = wanted - FIELDS
    if unknown:
        raise ValueError(f"unknown process field(s): {', '.join(sorted(unknown))}")
    if sockets:
        wanted.add("socket_inodes")
    if threads:
        wanted.add("threads")
    extra = tuple(d for d in dict.fromkeys(details) if not d.fields <= wanted)
    for detail in extra:
        if not detail.fields <= FIELDS:
            raise ValueError(f"unknown process field(s): "
                             f"{', '.join(sorted(detail.fields - FIELDS))}")
    reader = _Reader(root, frozenset(wanted), extra, defaults=fields is None)
    plan = fd_walk if fd_walk is not None else FdWalk()
    proc = root / "proc"
    found: dict[int, Process] = {}
    try:
        names = os.listdir(proc)
    except OSError:
        names = []
    pids = [int(name) for name in names if name.isascii() and name.isdigit()]
    # The fd tables (most of the time on a busy host) are walked by helper processes meanwhile.
    shared: fdwalk.Walk | None = None
    if reader.walks_fds:
        pids, shared = plan.share(str(proc), pids)
    else:
        plan.cancel()  # a walk started early that nobody needs
    read = reader.read
    own_netns = _netns(f"{proc}/self")
    try:
        for pid in pids:
            try:
                found[pid] = read(f"{proc}/{pid}", pid, fds=shared is None)
            except Vanished:
                continue
        if plan.work:  # the fd tables and details are yet to come, when walked
            read_so_far = frozenset(wanted) - ({"socket_inodes"} if shared else set())
            partial = ProcessTable(dict(sorted(found.items())), own_netns, reader.users,
                                   read_so_far)
            for work in plan.work:
                work(partial)
        if shared is not None:
            _join(found, shared, reader, str(proc))
    except BaseException:
        if shared is not None:
            shared.cancel()  # no helper outlives a failed read
        raise
    return ProcessTable(dict(sorted(found.items())), own_netns, reader.users, frozenset(wanted))


def _join(found: dict[int, Process], fd_walk: fdwalk.Walk, reader: _Reader, proc: str) -> None:
    """Give the processes read their walked fd tables, then their details: what the helpers
    have walked so far while they walk on, until they have nothing new; then the rest, the
    caller walking with them."""
    merged: set[int] = set()
    while early := fd_walk.ready():
        _add_fd_tables(found, early, reader, proc, [pid for pid in early if pid in found])
        merged.update(early)
    rest = [pid for pid in found if pid not in merged]
    _add_fd_tables(found, fd_walk.finish(), reader, proc, rest)


# Paths are plain strings below: with thousands of processes and tens of thousands of fd
# links, pathlib's object overhead was most of the audit's time (benchmarks/audit_bench.py).


def _read(path: str) -> str:
    """Text of a /proc file; Vanished when the process is gone."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in _GONE:
            raise Vanished(path) from None
        raise
    try:
        data = os.read(fd, _CHUNK)
        if len(data) == _CHUNK:  # a short read is the end (seq_file, cmdline, plain files)
            chunks, size = [data], len(data)
            while size < _MAX_READ and (chunk := os.read(fd, _CHUNK)):
                chunks.append(chunk)
                size += len(chunk)
            data = b"".join(chunks)[:_MAX_READ]
    except OSError as exc:
        if exc.errno in _GONE:
            raise Vanished(path) from None
        raise
    finally:
        os.close(fd)
    return data.decode("utf-8", errors="surrogateescape")


_STATUS_LINE = re.compile(r"\n(Uid|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp|Seccomp_filters|"
                          r"Speculation_Store_Bypass|Cpus_allowed_list):([^\n]*)")
"""The status lines read (the kernel escapes "\n" in Name: "\nKey:" starts a real line)."""
_UID_LINE = re.compile(r"\n(Uid):([^\n]*)")
"""The one status line read when only the uids are wanted (a socket owner's)."""
_UID_FIELDS = frozenset({"uid", "ruid", "user"})


def _status_lines(text: str, line: re.Pattern[str] = _STATUS_LINE) -> dict[str, str]:
    """Key -> value (stripped) of the status lines read; the last one of a key wins."""
    return {key: value.strip() for key, value in line.findall("\n" + text)}


def _status_name(text: str) -> str | None:
    """The ``Name:`` line unescaped (the kernel writes ``\\n`` and ``\\\\``), spaces kept."""
    for line in text.split("\n"):
        if line.startswith("Name:\t"):
            raw = line[6:]
            out: list[str] = []
            i = 0
            while i < len(raw):
                if raw[i] == "\\" and i + 1 < len(raw) and raw[i + 1] in "n\\":
                    out.append("\n" if raw[i + 1] == "n" else "\\")
                    i += 2
                else:
                    out.append(raw[i])
                    i += 1
            return "".join(out)
    return None


def _int(value: str | None, base: int = 10) -> int | None:
    if value is None:
        return None
    try:
        return int(value.split()[0], base)
    except (IndexError, ValueError):
        return None


def _cpus(value: str | None) -> frozenset[int] | None:
    if value is None:
        return None
    try:
        return parse_cpu_list(value)
    except ValueError:
        return None


def _netns(path: str) -> int | None:
    try:
        link = os.readlink(f"{path}/ns/net")
    except OSError:
        return None
    inode = link.partition("[")[2].rstrip("]")
    return int(inode) if inode.isdigit() else None


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


class _Reader:
    """Reads one process at a time: the sources the wanted fields need, then the details."""

    def __init__(self, root: Path, wanted: frozenset[str], details: tuple[Detail, ...],
                 defaults: bool) -> None:
        self.users = read_passwd(root)
        sources = frozenset(SOURCES[f] for f in wanted)
        self.walks_fds = "fd" in sources
        """Every process's fd table is read: by :mod:`agent.host.fdwalk` for a whole table."""
        self.steps = self._steps(sources - {"fd"})
        status = (wanted.union(*(d.fields for d in details))) & frozenset(_STATUS_FIELDS)
        self.posture = not status <= _UID_FIELDS
        """Whether status is read for more than the uids: for the owners of sockets alone,
        its Uid line is all that is parsed (quicker, on hundreds of owners)."""
        self.details = tuple((d.select, more) for d in details
                             if (more := frozenset(SOURCES[f] for f in d.fields) - sources))
        """(selector, the sources its fields need beyond what every process is read with)."""
        self.empty = tuple(name for name, source in (("socket_inodes", "fd"), ("threads", "task"))
                           if defaults and source not in sources)
        """Legacy reads: socket inodes and threads not asked for are empty, not absent."""

    def _steps(self, sources: Iterable[str]) -> tuple[Callable[[Process, str, dict[str, str]],
                                                                None], ...]:
        wanted = set(sources)
        return tuple(getattr(self, _READERS[source]) for source in _ORDER if source in wanted)

    def read(self, base: str, pid: int, fds: bool = True) -> Process:
        """Every field of process ``pid`` (``base`` is ``/proc/PID``); without ``fds``, all
        but the fd table and the details: :meth:`finish` adds them."""
        proc = object.__new__(Process)  # no __init__: a field not read stays unset
        unreadable: dict[str, str] = {}
        proc.pid = pid
        proc.unreadable = unreadable
        for step in self.steps:
            step(proc, base, unreadable)
        if fds:
            if self.walks_fds:
                self._fd(proc, base, unreadable)
            self.finish(proc, base)
        return proc

    def finish(self, proc: Process, base: str) -> None:
        """The details the selectors pick ``proc`` for, then the legacy empty fields."""
        unreadable = _unreadable(proc)
        if self.details:
            more: set[str] = set()
            for select, sources in self.details:
                if sources <= more:
                    continue
                try:
                    chosen = select(proc) is not False
                except Exception:  # a broken selector reads more, never less
                    chosen = True
                if chosen:
                    more |= sources
            for step in self._steps(more) if more else ():
                step(proc, base, unreadable)
        for name in self.empty:
            setattr(proc, name, frozenset() if name == "socket_inodes" else ())

    def _stat(self, proc: Process, base: str, unreadable: dict[str, str]) -> None:
        # stat first: it exists for every live process, so a missing one means it is gone.
        rest: list[str] = []
        try:
            text = _read(f"{base}/stat")
        except OSError as exc:
            name = ""
            unreadable["stat"] = _why(exc)
            # comm comes from stat (raw bytes); status carries it escaped.
            try:
                name = _status_name(_read(f"{base}/status")) or ""
            except OSError as status_exc:  # neither: the name is unknown, not ""
                unreadable["status"] = _why(status_exc)
        else:
            name, rest = _split_stat(text)
            try:  # the usual case in one go: fields 4, 9, 19, 22, 40 and 41 (proc(5))
                proc.name = name
                proc.ppid = int(rest[1])
                proc.kernel_thread = bool(int(rest[6]) & PF_KTHREAD)
                proc.start_time = int(rest[19])
                proc.sched_policy = int(rest[38])
                proc.rt_priority = int(rest[37])
                proc.nice = int(rest[16])
                return
            except (IndexError, ValueError):
                pass
        flags = _field(rest, 9)
        proc.name = name
        proc.ppid = _field(rest, 4) or 0
        proc.kernel_thread = flags is not None and bool(flags & PF_KTHREAD)
        proc.start_time = _field(rest, 22) or 0
        proc.sched_policy = _field(rest, 41)
        proc.rt_priority = _field(rest, 40)
        proc.nice = _field(rest, 19)

    def _status(self, proc: Process, base: str, unreadable: dict[str, str]) -> None:
        try:
            lines = _status_lines(_read(f"{base}/status"),
                                  _STATUS_LINE if self.posture else _UID_LINE)
        except OSError as exc:
            lines = {}
            unreadable["status"] = _why(exc)
        get = lines.get
        uids = get("Uid", "").split()
        uid = int(uids[1]) if len(uids) > 1 and uids[1].isdigit() else None
        proc.uid = uid
        proc.ruid = int(uids[0]) if uids and uids[0].isdigit() else None
        proc.user = self.users.get(uid) if uid is not None else None
        if not self.posture:
            return
        nnp = _int(get("NoNewPrivs"))
        proc.cap_eff = _int(get("CapEff"), 16)
        proc.cap_prm = _int(get("CapPrm"), 16)
        proc.cap_bnd = _int(get("CapBnd"), 16)
        proc.cap_amb = _int(get("CapAmb"), 16)
        proc.no_new_privs = None if nnp is None else bool(nnp)
        proc.seccomp = _int(get("Seccomp"))
        proc.seccomp_filters = _int(get("Seccomp_filters"))
        proc.cpus_allowed = _cpus(get("Cpus_allowed_list"))
        proc.speculation_store_bypass = get("Speculation_Store_Bypass")

    def _cmdline(self, proc: Process, base: str, unreadable: dict[str, str]) -> None:
        try:
            cmdline = tuple(a for a in _read(f"{base}/cmdline").split("\0") if a)
        except OSError as exc:
            cmdline = ()
            unreadable["cmdline"] = _why(exc)
        proc.cmdline = cmdline

    def _exe(self, proc: Process, base: str, unreadable: dict[str, str]) -> None:
        exe: str | None = None
        try:
            exe = os.readlink(f"{base}/exe")
        except OSError as exc:
            if not proc.kernel_thread and exc.errno != errno.ENOENT:
                unreadable["exe"] = _why(exc)
        proc.exe = exe

    def _cgroup(self, proc: Process, base: str, unreadable: dict[str, str]) -> None:
        try:
            cgroups = _parse_cgroups(_read(f"{base}/cgroup"))
        except OSError as exc:
            cgroups = ()
            unreadable["cgroup"] = _why(exc)
        proc.cgroups = cgroups

    def _netns(self, proc: Process, base: str, unreadable: dict[str, str]) -> None:
        proc.netns = _netns(base)

    def _fd(self, proc: Process, base: str, unreadable: dict[str, str]) -> None:
        _fd_table(proc, socket_inodes(base), unreadable)

    def _task(self, proc: Process, base: str, unreadable: dict[str, str]) -> None:
        proc.threads = _threads(base, unreadable)


_READERS = {"stat": "_stat", "status": "_status", "cmdline": "_cmdline", "exe": "_exe",
            "cgroup": "_cgroup", "ns/net": "_netns", "fd": "_fd", "task": "_task"}
"""Source -> the :class:`_Reader` method reading it."""


def _add_fd_tables(found: dict[int, Process], tables: Mapping[int, FdTable], reader: _Reader,
                   proc: str, pids: Iterable[int]) -> None:
    """Give each process ``pids`` names its walked fd table, then its details (which may
    depend on it); a process whose table is not its own is read again, and left out if it has
    gone."""
    for pid in pids:
        process = found[pid]
        table = tables.get(pid)
        if not _same(table, process):  # started since it was walked, or a reused pid
            table = fdwalk.read_one(proc, pid)
        if table is None or not _same(table, process):
            del found[pid]  # the process read has gone (its pid may be another's now)
            continue
        _fd_table(process, table, _unreadable(process))
        try:
            reader.finish(process, f"{proc}/{pid}")
        except Vanished:
            del found[pid]


def _same(table: FdTable | None, proc: Process) -> bool:
    """Whether ``table`` is the fd table of ``proc`` (the same start time; one unknown, as in
    a fixture whose ``stat`` is short, is taken to be)."""
    return table is not None and table.start_time in (None, proc.start_time)


def _unreadable(proc: Process) -> dict[str, str]:
    return cast("dict[str, str]", proc.unreadable)  # the reader's own dict, still being filled


def _fd_table(proc: Process, table: FdTable, unreadable: MutableMapping[str, str]) -> None:
    proc.socket_inodes = table.inodes
    if table.error is not None:
        unreadable["fd"] = table.error


def _split_stat(text: str) -> tuple[str, list[str]]:
    # comm may contain spaces and parentheses: it runs to the LAST ')'.
    open_at, close_at = text.find("("), text.rfind(")")
    if open_at < 0 or close_at < open_at:
        return "", []
    return text[open_at + 1 : close_at], text[close_at + 1 :].split()


def _field(rest: list[str], number: int) -> int | None:
    """Field ``number`` (1-based, as in proc(5)) of /proc/PID/stat; fields 1-2 are pid, comm."""
    index = number - 3
    try:
        return int(rest[index])
    except (IndexError, ValueError):
        return None


@lru_cache(maxsize=4096)
def _parse_cgroups(text: str) -> tuple[CgroupMembership, ...]:
    # Cached: most processes share a handful of distinct cgroup files, and the result is frozen.
    out = []
    for line in text.split("\n"):  # not splitlines(): cgroup names may hold \x1c, \x0b
        hierarchy, _, remainder = line.partition(":")
        controllers, _, path = remainder.partition(":")
        if hierarchy.isdigit():
            out.append(CgroupMembership(int(hierarchy),
                                        tuple(c for c in controllers.split(",") if c), path))
    return tuple(out)


def _threads(base: str, unreadable: dict[str, str]) -> tuple[Thread, ...]:
    # Fail closed: a task list or a thread that cannot be read is recorded in ``unreadable``
    # (and the thread kept with None fields), never silently dropped. Only a thread that exited
    # is left out.
    out = []
    try:
        tids = sorted(int(t) for t in os.listdir(f"{base}/task") if t.isdigit())
    except OSError as exc:
        if exc.errno in _GONE:
            raise Vanished(base) from None
        unreadable["threads"] = f"task: {exc.strerror or exc}"
        return ()
    for tid in tids:
        try:
            raw = _read(f"{base}/task/{tid}/status")
        except Vanished:
            continue
        except OSError as exc:
            unreadable.setdefault("threads", f"task/{tid}/status: {exc.strerror or exc}")
            out.append(Thread(tid, "", None, None, None, None))
            continue
        lines = _status_lines(raw)
        nnp = _int(lines.get("NoNewPrivs"))
        out.append(Thread(tid, _status_name(raw) or "", _int(lines.get("Seccomp")),
                          _int(lines.get("Seccomp_filters")), None if nnp is None else bool(nnp),
                          _cpus(lines.get("Cpus_allowed_list")),
                          lines.get("Speculation_Store_Bypass")))
    return tuple(out)
