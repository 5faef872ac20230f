"""The process table, read once from ``root/proc``: identity, credentials and posture.

One pass over ``/proc/[0-9]*`` yields everything the process-, cgroup- and port-related checks
need, so no check walks ``/proc`` on its own: name, exe, cmdline, user, capabilities, seccomp,
no_new_privs, CPU affinity, scheduling policy, cgroup membership, network namespace and (when
asked) the socket inodes among its open files and its threads.

A process that exits while it is read is left out (it no longer exists, so nothing can be said
of it); a field that cannot be read for another reason (permission) is recorded in
:attr:`Process.unreadable`, so that checks needing it return ``error`` rather than ``pass``.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

PF_KTHREAD = 0x00200000
"""``flags`` bit of kernel threads (include/linux/sched.h)."""

SCHED_POLICIES = {0: "SCHED_OTHER", 1: "SCHED_FIFO", 2: "SCHED_RR", 3: "SCHED_BATCH",
                  5: "SCHED_IDLE", 6: "SCHED_DEADLINE"}

_GONE = (errno.ENOENT, errno.ESRCH)
_MAX_READ = 1 << 20
"""Cap on one /proc file (a cmdline can be long; nothing here is legitimately bigger)."""


class Vanished(Exception):
    """The process exited while it was being read."""


@dataclass(frozen=True)
class CgroupMembership:
    """One line of ``/proc/PID/cgroup``."""

    hierarchy: int
    """0 for the cgroup2 unified hierarchy."""
    controllers: tuple[str, ...]
    """v1 controllers of that hierarchy (``cpu``, ``cpuacct``); empty for cgroup2."""
    path: str
    """Path inside the hierarchy, e.g. ``/system.slice/gateway.service``."""


@dataclass(frozen=True)
class Thread:
    """Per-thread posture (``task/TID/status``): seccomp and affinity are per thread."""

    tid: int
    name: str
    seccomp: int | None
    """0 disabled, 1 strict, 2 filter."""
    seccomp_filters: int | None
    no_new_privs: bool | None
    cpus_allowed: frozenset[int] | None


@dataclass(frozen=True)
class Process:
    """One process; ``None`` fields could not be read (see :attr:`unreadable`)."""

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


@dataclass(frozen=True)
class ProcessTable:
    """Every process found, by pid."""

    processes: Mapping[int, Process]
    own_netns: int | None
    """Network namespace of the process reading the table (the ``host`` namespace for ports)."""
    users: Mapping[int, str]
    """uid -> name from the root's ``etc/passwd``."""


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
    users: dict[int, str] = {}
    try:
        text = (root / "etc" / "passwd").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return users
    for line in text.split("\n"):  # not splitlines(): GECOS may hold \x1c, \x85 (chfn)
        parts = line.split(":")
        if len(parts) >= 3 and parts[2].isascii() and parts[2].isdigit():
            users.setdefault(int(parts[2]), parts[0])
    return users


def read_processes(root: Path, sockets: bool = False, threads: bool = False) -> ProcessTable:
    """Read every process under ``root/proc``."""
    proc = root / "proc"
    users = read_passwd(root)
    found: dict[int, Process] = {}
    try:
        names = os.listdir(proc)
    except OSError:
        names = []
    for name in names:
        if not name.isdigit():
            continue
        try:
            found[int(name)] = _read_process(f"{proc}/{name}", int(name), users, sockets,
                                             threads)
        except Vanished:
            continue
    return ProcessTable(dict(sorted(found.items())), _netns(f"{proc}/self"), users)


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
        chunks, size = [], 0
        while size < _MAX_READ and (chunk := os.read(fd, 65536)):
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        if exc.errno in _GONE:
            raise Vanished(path) from None
        raise
    finally:
        os.close(fd)
    return b"".join(chunks)[:_MAX_READ].decode("utf-8", errors="surrogateescape")


def _status_fields(text: str) -> dict[str, str]:
    # split("\n"), not splitlines(): the Name line holds the raw comm, which may contain \x1c,
    # \x0c or U+0085 (splitlines would cut the line there); the kernel escapes only \n and \\.
    fields: dict[str, str] = {}
    for line in text.split("\n"):
        key, sep, value = line.partition(":")
        if sep:
            fields[key] = value.strip()
    return fields


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


def _int(fields: Mapping[str, str], key: str, base: int = 10) -> int | None:
    try:
        return int(fields[key].split()[0], base)
    except (KeyError, IndexError, ValueError):
        return None


def _cpus(fields: Mapping[str, str]) -> frozenset[int] | None:
    try:
        return parse_cpu_list(fields["Cpus_allowed_list"])
    except (KeyError, ValueError):
        return None


def _netns(path: str) -> int | None:
    try:
        link = os.readlink(f"{path}/ns/net")
    except OSError:
        return None
    inode = link.partition("[")[2].rstrip("]")
    return int(inode) if inode.isdigit() else None


def _read_process(
    base: str, pid: int, users: Mapping[int, str], sockets: bool, threads: bool
) -> Process:
    unreadable: dict[str, str] = {}
    # stat first: it exists for every live process, so a missing one means the process is gone.
    try:
        name, rest = _split_stat(_read(f"{base}/stat"))
    except OSError as exc:
        name, rest = "", []
        unreadable["stat"] = exc.strerror or str(exc)
    try:
        status_text = _read(f"{base}/status")
    except OSError as exc:
        status_text = ""
        unreadable["status"] = exc.strerror or str(exc)
    status = _status_fields(status_text)
    if "stat" in unreadable:
        # comm comes from stat (raw bytes); status carries it escaped.
        name = _status_name(status_text) or ""
    try:
        cmdline = tuple(a for a in _read(f"{base}/cmdline").split("\0") if a)
    except OSError as exc:
        cmdline = ()
        unreadable["cmdline"] = exc.strerror or str(exc)
    flags = _field(rest, 9)
    kernel_thread = flags is not None and bool(flags & PF_KTHREAD)
    exe: str | None = None
    try:
        exe = os.readlink(f"{base}/exe")
    except OSError as exc:
        if not kernel_thread and exc.errno != errno.ENOENT:
            unreadable["exe"] = exc.strerror or str(exc)
    try:
        cgroups = _parse_cgroups(_read(f"{base}/cgroup"))
    except OSError as exc:
        cgroups = ()
        unreadable["cgroup"] = exc.strerror or str(exc)
    uids = status.get("Uid", "").split()
    uid = int(uids[1]) if len(uids) > 1 and uids[1].isdigit() else None
    ruid = int(uids[0]) if uids and uids[0].isdigit() else None
    nnp = _int(status, "NoNewPrivs")
    return Process(
        pid=pid,
        ppid=_field(rest, 4) or 0,
        name=name,
        kernel_thread=kernel_thread,
        start_time=_field(rest, 22) or 0,
        exe=exe,
        cmdline=cmdline,
        uid=uid,
        ruid=ruid,
        user=users.get(uid) if uid is not None else None,
        cap_eff=_int(status, "CapEff", 16),
        cap_prm=_int(status, "CapPrm", 16),
        cap_bnd=_int(status, "CapBnd", 16),
        cap_amb=_int(status, "CapAmb", 16),
        no_new_privs=None if nnp is None else bool(nnp),
        seccomp=_int(status, "Seccomp"),
        seccomp_filters=_int(status, "Seccomp_filters"),
        cpus_allowed=_cpus(status),
        sched_policy=_field(rest, 41),
        rt_priority=_field(rest, 40),
        nice=_field(rest, 19),
        cgroups=cgroups,
        netns=_netns(base),
        socket_inodes=_socket_inodes(base, unreadable) if sockets else frozenset(),
        threads=_threads(base, unreadable) if threads else (),
        unreadable=unreadable,
    )


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


def _socket_inodes(base: str, unreadable: dict[str, str]) -> frozenset[int]:
    try:
        dir_fd = os.open(f"{base}/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno not in _GONE:
            unreadable["fd"] = exc.strerror or str(exc)
        return frozenset()
    try:
        return _fd_sockets(dir_fd, unreadable)
    finally:
        os.close(dir_fd)


def _fd_sockets(dir_fd: int, unreadable: dict[str, str]) -> frozenset[int]:
    # readlink relative to the open fd folder: no path walk per descriptor.
    inodes: set[int] = set()
    try:
        fds = os.listdir(dir_fd)
    except OSError as exc:
        if exc.errno not in _GONE:
            unreadable["fd"] = exc.strerror or str(exc)
        return frozenset()
    for fd in fds:
        try:
            link = os.readlink(fd, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno not in _GONE:  # e.g. EACCES: an owner we cannot see, not "no socket"
                unreadable["fd"] = exc.strerror or str(exc)
            continue  # ENOENT: closed between listing and reading
        if link.startswith("socket:["):
            inode = link[8:-1]
            if inode.isdigit():
                inodes.add(int(inode))
    return frozenset(inodes)


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
            text = _read(f"{base}/task/{tid}/status")
        except Vanished:
            continue
        except OSError as exc:
            unreadable.setdefault("threads", f"task/{tid}/status: {exc.strerror or exc}")
            out.append(Thread(tid, "", None, None, None, None))
            continue
        status = _status_fields(text)
        nnp = _int(status, "NoNewPrivs")
        out.append(Thread(tid, _status_name(text) or "", _int(status, "Seccomp"),
                          _int(status, "Seccomp_filters"), None if nnp is None else bool(nnp),
                          _cpus(status)))
    return tuple(out)
