"""The cgroup hierarchies of the host under ``root``: every cgroup and its resource-control files.

Mounts are found in ``root/proc/self/mountinfo`` (or ``root/proc/mounts`` when that is missing):
a ``cgroup2`` mount is the unified hierarchy (``/sys/fs/cgroup`` on a pure v2 host,
``/sys/fs/cgroup/unified`` on a hybrid one) and each ``cgroup`` mount a v1 hierarchy carrying the
controllers named in its super options (``cpu,cpuacct``, ``memory``, ``name=systemd``). Mount
points are taken under ``root``, so a fixture tree stands in for ``/``.

Each hierarchy's whole tree is walked (hosts have hundreds of cgroups, not millions) and, in every
cgroup, the files of :data:`V2_FILES` / :data:`V1_FILES` that exist are read as raw text. Parsing
is left to the checks, which also know which v1 file stands for which v2 setting; every value can
be traced back to the host file it came from through :meth:`Hierarchy.host_path`.

Nothing here raises for what is found on the host: an unreadable file is a :class:`ReadError`
in :attr:`CgroupNode.files`, an unreadable directory is listed in :attr:`Hierarchy.errors`, and
no mount table at all makes :func:`read_cgroups` return a :class:`ReadError`.
"""

from __future__ import annotations

import errno
import os
import posixpath
from collections.abc import Mapping
from pathlib import Path

from agent.core.record import record
from agent.host.facts import ReadError
from agent.host.processes import CgroupMembership

V2_FILES = frozenset({
    "cgroup.controllers", "cgroup.procs",
    "memory.max", "memory.high", "memory.swap.max", "memory.events",
    "pids.max",
    "cpu.max", "cpu.weight", "cpu.stat",
    "cpuset.cpus", "cpuset.cpus.effective", "cpuset.mems", "cpuset.mems.effective",
    "cpuset.cpus.partition",
    "io.max",
})
"""cgroup2 files read in every cgroup that has them."""

V1_FILES = frozenset({
    "cgroup.procs",
    "memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.oom_control",
    "memory.failcnt",
    "cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares", "cpu.stat",
    "cpuset.cpus", "cpuset.effective_cpus", "cpuset.mems", "cpuset.effective_mems",
    "cpuset.cpu_exclusive",
    "pids.max",
})
"""cgroup v1 files read in every cgroup that has them."""

V1_CONTROLLERS = frozenset({
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "net_prio", "blkio",
    "perf_event", "hugetlb", "pids", "rdma", "misc", "debug",
})
"""Names in a v1 mount's super options that are controllers (the rest are mount options)."""

_MAX_BYTES = 1 << 20
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC | os.O_NOFOLLOW


@record
class CgroupNode:
    """One cgroup (a directory of a hierarchy)."""

    path: str
    """Path inside the hierarchy, as ``/proc/PID/cgroup`` shows it: ``/system.slice/x.service``."""
    files: Mapping[str, str | ReadError]
    """File name -> text (trailing newline removed) for the files present and read."""

    def procs(self) -> frozenset[int] | ReadError | None:
        """Member pids from ``cgroup.procs``; ``None`` when the file is absent."""
        text = self.files.get("cgroup.procs")
        if text is None or isinstance(text, ReadError):
            return text
        return frozenset(int(p) for p in text.split() if p.isdigit())


@record
class Hierarchy:
    """One mounted cgroup hierarchy and every cgroup in it."""

    version: int
    """2 for the unified hierarchy, 1 for a v1 hierarchy."""
    controllers: frozenset[str]
    """v1: controllers (and ``name=...``) of the mount; v2: the root's ``cgroup.controllers``."""
    mount_point: str
    """Where it is mounted on the host, e.g. ``/sys/fs/cgroup/memory``."""
    mount_root: str
    """The cgroup the mount shows at its mount point (``/`` unless only a subtree is mounted)."""
    nodes: Mapping[str, CgroupNode]
    """Cgroup path -> cgroup, sorted by path."""
    errors: tuple[str, ...] = ()
    """Directories that could not be listed: cgroups below them are missing from :attr:`nodes`."""

    @property
    def label(self) -> str:
        """``cgroup2`` or ``cgroup v1 (cpu,cpuacct)``."""
        if self.version == 2:
            return "cgroup2"
        return f"cgroup v1 ({','.join(sorted(self.controllers))})"

    def host_path(self, cgroup: str, file: str = "") -> str:
        """Host path of ``file`` in ``cgroup`` (the file the value was read from)."""
        relative = posixpath.relpath(cgroup, self.mount_root) if cgroup != self.mount_root else ""
        parts = [self.mount_point] + ([relative] if relative and relative != "." else [])
        return posixpath.join(*parts, file) if file else posixpath.join(*parts)

    def matches(self, membership: CgroupMembership) -> bool:
        """Whether a ``/proc/PID/cgroup`` line names this hierarchy."""
        if self.version == 2:
            return membership.hierarchy == 0
        return membership.hierarchy != 0 and frozenset(membership.controllers) == self.controllers


@record
class CgroupTree:
    """Every cgroup hierarchy mounted on the host."""

    hierarchies: tuple[Hierarchy, ...]
    """The unified hierarchy (if mounted) first, then v1 hierarchies by mount point."""
    source: str
    """The mount table the hierarchies were found in (host path)."""

    @property
    def unified(self) -> Hierarchy | None:
        """The cgroup2 hierarchy, if one is mounted."""
        return next((h for h in self.hierarchies if h.version == 2), None)

    def for_controller(self, controller: str) -> Hierarchy | None:
        """The hierarchy where ``controller`` is active: cgroup2 when it lists it, else v1."""
        unified = self.unified
        if unified is not None and controller in unified.controllers:
            return unified
        return next((h for h in self.hierarchies
                     if h.version == 1 and controller in h.controllers), None)

    def membership(self, hierarchy: Hierarchy,
                   memberships: tuple[CgroupMembership, ...]) -> str | None:
        """The cgroup path a process with ``memberships`` has in ``hierarchy``."""
        return next((m.path for m in memberships if hierarchy.matches(m)), None)


@record
class _Mount:
    fstype: str
    device: str
    mount_root: str
    mount_point: str
    options: frozenset[str]


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as ``\\ooo``."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[_Mount]:
    """cgroup and cgroup2 mounts of a ``/proc/PID/mountinfo``."""
    mounts = []
    for line in text.splitlines():
        before, sep, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if not sep or len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        mounts.append(_Mount(tail[0], fields[2], _unescape(fields[3]), _unescape(fields[4]),
                             frozenset(tail[2].split(","))))
    return mounts


def parse_mounts(text: str) -> list[_Mount]:
    """cgroup and cgroup2 mounts of ``/proc/mounts`` (no mount root there: assumed ``/``)."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[2] not in ("cgroup", "cgroup2"):
            continue
        mounts.append(_Mount(fields[2], f"{fields[2]}:{fields[0]}:{fields[3]}", "/",
                             _unescape(fields[1]), frozenset(fields[3].split(","))))
    return mounts


def read_text(path: Path) -> str | ReadError | None:
    """Text of a small kernel file, not through a symlink; ``None`` when it does not exist."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        return ReadError(f"{exc.strerror or exc}: {path}")
    try:
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(_MAX_BYTES)
    except OSError as exc:
        if exc.errno == errno.ENODEV:  # a cgroup removed while it was read
            return None
        return ReadError(f"{exc.strerror or exc}: {path}")
    return data.decode("utf-8", errors="replace").rstrip("\n")


def _on_host(root: Path, mount_point: str) -> Path:
    return root / mount_point.lstrip("/")


def _walk(top: Path, mount_root: str, wanted: frozenset[str]) -> tuple[dict[str, CgroupNode],
                                                                          list[str]]:
    nodes: dict[str, CgroupNode] = {}
    errors: list[str] = []
    if not top.is_dir():
        return nodes, [f"mount point is not a directory: {top}"]

    def failed(exc: OSError) -> None:
        if exc.errno not in (errno.ENOENT, errno.ENODEV):  # removed while walking
            errors.append(f"{exc.strerror or exc}: {exc.filename}")

    for directory, _dirs, names in os.walk(top, onerror=failed, followlinks=False):
        relative = os.path.relpath(directory, top)
        path = mount_root if relative == "." else posixpath.join(mount_root, relative)
        files: dict[str, str | ReadError] = {}
        for name in sorted(wanted.intersection(names)):
            text = read_text(Path(directory) / name)
            if text is not None:
                files[name] = text
        nodes[path] = CgroupNode(path, files)
    return dict(sorted(nodes.items())), errors


def read_cgroups(root: Path) -> CgroupTree | ReadError:
    """Find the cgroup hierarchies mounted on the host under ``root`` and read every cgroup."""
    source = root / "proc" / "self" / "mountinfo"
    text = read_text(source)
    mounts: list[_Mount]
    if isinstance(text, str):
        mounts = parse_mountinfo(text)
    else:
        fallback = root / "proc" / "mounts"
        other = read_text(fallback)
        if not isinstance(other, str):
            why = text.reason if isinstance(text, ReadError) else f"no such file: {source}"
            return ReadError(f"cannot find cgroup mounts: {why}")
        source, mounts = fallback, parse_mounts(other)
    hierarchies: list[Hierarchy] = []
    seen: set[tuple[str, str]] = set()
    for mount in mounts:
        # The same hierarchy may be mounted twice (bind mounts): the first mount point wins.
        identity = (mount.fstype, mount.device)
        if identity in seen:
            continue
        seen.add(identity)
        top = _on_host(root, mount.mount_point)
        if mount.fstype == "cgroup2":
            controllers = read_text(top / "cgroup.controllers")
            active = frozenset(controllers.split()) if isinstance(controllers, str) else frozenset()
            nodes, errors = _walk(top, mount.mount_root, V2_FILES)
            hierarchies.append(Hierarchy(2, active, mount.mount_point, mount.mount_root, nodes,
                                         tuple(errors)))
        else:
            active = frozenset(o for o in mount.options
                               if o in V1_CONTROLLERS or o.startswith("name="))
            nodes, errors = _walk(top, mount.mount_root, V1_FILES)
            hierarchies.append(Hierarchy(1, active, mount.mount_point, mount.mount_root, nodes,
                                         tuple(errors)))
    hierarchies.sort(key=lambda h: (h.version != 2, h.mount_point))
    return CgroupTree(tuple(hierarchies), "/" + str(source.relative_to(root)))


def flat_keyed(text: str) -> dict[str, int]:
    """``key value`` lines (``cpu.stat``, ``memory.events``, ``memory.oom_control``) -> ints."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out
