"""The cgroup hierarchies of the host under ``root``: every cgroup and its resource-control files.

Mounts are found in ``root/proc/self/mountinfo`` (or ``root/proc/mounts`` when that is missing):
a ``cgroup2`` mount is the unified hierarchy (``/sys/fs/cgroup`` on a pure v2 host,
``/sys/fs/cgroup/unified`` on a hybrid one) and each ``cgroup`` mount a v1 hierarchy carrying the
controllers named in its super options (``cpu,cpuacct``, ``memory``, ``name=systemd``). Mount
points are taken under ``root``, so a fixture tree stands in for ``/``.

Each hierarchy's whole tree is walked (hosts have hundreds of cgroups, not millions) and, in every
cgroup, the files of :data:`V2_FILES` / :data:`V1_FILES` that exist are read as raw text; every
value can be traced back to the host file it came from through :meth:`Hierarchy.host_path`.

The values are interpreted here too, so that checks only judge them: :func:`read_setting` gives a
cgroup2 setting (:data:`SETTINGS`) of a cgroup as a value, from its cgroup2 file or from the v1
files that stand for it (``memory.max`` from ``memory.limit_in_bytes``, ``cpu.max`` from
``cpu.cfs_quota_us``/``cpu.cfs_period_us``, ``cpu.weight`` from ``cpu.shares``), with the
unit conversions and ``max`` handling each needs; :func:`read_counter` the throttling and OOM
counters; :func:`own_cpuset` the CPUs a cgroup configures for itself.

Nothing here raises for what is found on the host: an unreadable file is a :class:`ReadError`
in :attr:`CgroupNode.files`, an unreadable directory is listed in :attr:`Hierarchy.errors`, and
no mount table at all makes :func:`read_cgroups` return a :class:`ReadError`.
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent.core.record import record
from agent.host.cpus import format_cpus
from agent.host.facts import ReadError
from agent.host.processes import CgroupMembership, parse_cpu_list

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


# --- values: each setting read from its cgroup2 file or its v1 counterpart --------------------

BYTES, COUNT, QUOTA, WEIGHT, CPULIST, PARTITION, IO = (
    "bytes", "count", "quota", "weight", "cpulist", "partition", "io")

SETTINGS: dict[str, tuple[str, str]] = {
    "memory.max": (BYTES, "memory"),
    "memory.high": (BYTES, "memory"),
    "memory.swap.max": (BYTES, "memory"),
    "pids.max": (COUNT, "pids"),
    "cpu.max": (QUOTA, "cpu"),
    "cpu.weight": (WEIGHT, "cpu"),
    "cpuset.cpus": (CPULIST, "cpuset"),
    "cpuset.mems": (CPULIST, "cpuset"),
    "cpuset.cpus.partition": (PARTITION, "cpuset"),
    "io.max": (IO, "io"),
}
"""cgroup2 setting -> (value type, controller)."""

NO_V1 = {
    "memory.high": "cgroup v1 has no memory.high (memory.soft_limit_in_bytes is a reclaim hint, "
                   "not a throttling limit)",
    "cpuset.cpus.partition": "cgroup v1 has no cpuset partitions (cpuset.cpu_exclusive does not "
                             "take CPUs out of the scheduler's load balancing)",
    "io.max": "cgroup v1 blkio.throttle.* files have no single io.max equivalent",
}
"""Settings a v1 host cannot show: expecting them there is ``error`` with this reason."""

V1_UNLIMITED = (1 << 63) - (1 << 20)
"""v1 memory limits at or above this are "unlimited": the kernel shows PAGE_COUNTER_MAX pages in
bytes (9223372036854771712 with 4 KiB pages, slightly less with 16/64 KiB pages)."""

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50,
          "E": 1 << 60}
_SIZE = re.compile(r"([0-9]+)([KMGTPE]?)")
DEFAULT_PERIOD = 100000


def cpu_weight_to_shares(weight: int) -> int:
    """systemd's ``cgroup_cpu_weight_to_shares()``: weight 100 is shares 1024."""
    return min(max(weight * 1024 // 100, 2), 262144)


def cpu_shares_to_weight(shares: int) -> int:
    """systemd's ``cgroup_cpu_shares_to_weight()``: shares 1024 is weight 100."""
    return min(max(shares * 100 // 1024, 1), 10000)


def parse_size(text: str) -> int | None:
    """``512M`` -> 536870912 (1024-based, as systemd's ``MemoryMax=``); ``max`` -> None."""
    if text == "max":
        return None
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a size (digits with an optional K, M, G, T, P or E)")
    return int(match.group(1)) * _UNITS[match.group(2)]


def show_size(value: int | None) -> str:
    """``536870912`` -> ``536870912 (512M)``."""
    if value is None:
        return "max"
    for suffix in "EPTGMK":
        if value >= _UNITS[suffix] and value % _UNITS[suffix] == 0:
            return f"{value} ({value // _UNITS[suffix]}{suffix})"
    return str(value)


def parse_quota(text: str) -> tuple[int | None, int]:
    """``max 100000`` / ``50000 100000`` / ``50000`` / ``150%`` -> (quota µs or None, period)."""
    parts = text.split()
    if len(parts) == 1 and parts[0].endswith("%"):
        percent = parts[0][:-1]
        if not percent.isdigit():
            raise ValueError(f"{text!r} is not a percentage")
        return int(percent) * DEFAULT_PERIOD // 100, DEFAULT_PERIOD
    if not 1 <= len(parts) <= 2 or not (parts[0] == "max" or parts[0].isdigit()):
        raise ValueError(f"{text!r} is not 'max', 'QUOTA PERIOD' or 'N%'")
    period = DEFAULT_PERIOD
    if len(parts) == 2:
        if not parts[1].isdigit() or int(parts[1]) == 0:
            raise ValueError(f"{text!r}: the period must be a positive number of microseconds")
        period = int(parts[1])
    return (None if parts[0] == "max" else int(parts[0])), period


def show_quota(value: tuple[int | None, int]) -> str:
    quota, period = value
    if quota is None:
        return f"max {period}"
    return f"{quota} {period} ({quota * 100 / period:g}% of one CPU)"


def parse_io(text: str) -> dict[str, dict[str, str]]:
    """``8:16 rbps=2097152 wbps=max`` lines -> device -> limits (``max`` entries dropped)."""
    out: dict[str, dict[str, str]] = {}
    if text.strip() == "max":
        return out
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if not re.fullmatch(r"[0-9]+:[0-9]+", parts[0]):
            raise ValueError(f"{line!r} does not start with a MAJOR:MINOR device")
        limits: dict[str, str] = {}
        for item in parts[1:]:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"{item!r} is not KEY=VALUE")
            if value != "max":
                limits[key] = value
        if limits:
            out[parts[0]] = limits
    return out

COUNTERS = {"throttled": "cpu", "oom_kill": "memory"}
"""Event counters -> the controller whose hierarchy has them."""


@record
class Reading:
    """A setting as read from the host."""

    value: Any
    """By value type: bytes and count an int, None for ``max``; quota (quota µs or None,
    period µs); weight an int, on v1 (``"shares"``, cpu.shares); cpulist a frozenset of
    numbers; partition the state (``"isolated invalid"`` when the kernel refused it); io
    device -> limits."""
    shown: str
    """The value as the evidence shows it."""
    files: tuple[str, ...]
    """Host paths the value came from."""
    version: int
    note: str = ""


def setting_hierarchy(tree: CgroupTree, setting: str) -> Hierarchy | str:
    """The hierarchy ``setting`` is read from (its controller's), or why there is none."""
    controller = SETTINGS[setting][1]
    hierarchy = tree.for_controller(controller)
    if hierarchy is None and controller == "io":
        hierarchy = tree.for_controller("blkio")
    if hierarchy is None:
        return f"the {controller} controller is not mounted on this host"
    if hierarchy.version == 1 and setting in NO_V1:
        return f"{setting}: {NO_V1[setting]}"
    return hierarchy


def read_setting(h: Hierarchy, node: CgroupNode, setting: str) -> Reading | str:
    """``setting`` of ``node`` as its value type (see :data:`SETTINGS`), or why it cannot be
    read: from the cgroup2 file, or on v1 from the files that stand for it."""
    return _read_v2(h, node, setting) if h.version == 2 else _read_v1(h, node, setting)


def _read_v2(h: Hierarchy, node: CgroupNode, setting: str) -> Reading | str:
    kind, controller = SETTINGS[setting]
    if kind == CPULIST:
        return _v2_cpulist(h, node, setting)
    raw = node.files.get(setting)
    if isinstance(raw, ReadError):
        return raw.reason
    path = h.host_path(node.path, setting)
    if raw is None:
        enabled = node.files.get("cgroup.controllers")
        if kind in (BYTES, COUNT, QUOTA, IO) and (
                node.path == h.mount_root
                or (isinstance(enabled, str) and controller not in enabled.split())):
            why = ("the root cgroup has no limit" if node.path == h.mount_root else
                   f"the {controller} controller is not enabled for this cgroup")
            value: Any = {BYTES: None, COUNT: None, QUOTA: (None, DEFAULT_PERIOD),
                          IO: {}}[kind]
            return Reading(value, "max", (h.host_path(node.path),), 2, why)
        return f"{path} does not exist"
    try:
        if kind in (BYTES, COUNT):
            value = parse_size(raw.strip()) if kind == BYTES else (
                None if raw.strip() == "max" else int(raw.strip()))
            return Reading(value, show_size(value) if kind == BYTES else raw.strip(),
                           (path,), 2)
        if kind == QUOTA:
            quota = parse_quota(raw)
            return Reading(quota, show_quota(quota), (path,), 2)
        if kind == WEIGHT:
            return Reading(int(raw.strip()), raw.strip(), (path,), 2)
        if kind == PARTITION:
            words = raw.split()
            state = words[0] if words else ""
            return Reading(state + (" invalid" if "invalid" in words[1:2] else ""),
                           raw.strip(), (path,), 2)
        return Reading(parse_io(raw), raw.strip() or "max", (path,), 2)
    except ValueError as exc:
        return f"{path}: unexpected content {raw!r} ({exc})"


def _v2_cpulist(h: Hierarchy, node: CgroupNode, setting: str) -> Reading | str:
    # Judged on the effective list (what the kernel enforces); a cgroup without the cpuset
    # controller uses its nearest ancestor's.
    effective = setting + ".effective"
    current: CgroupNode | None = node
    while current is not None:
        raw = current.files.get(effective)
        if isinstance(raw, ReadError):
            return raw.reason
        if raw is not None:
            path = h.host_path(current.path, effective)
            try:
                cpus = parse_cpu_list(raw)
            except ValueError as exc:
                return f"{path}: unexpected content {raw!r} ({exc})"
            configured = current.files.get(setting)
            note = (f"configured {setting} = {configured or '(empty: inherited)'}"
                    if isinstance(configured, str) else "")
            if current is not node:
                note = f"inherited from {current.path}"
            return Reading(cpus, format_cpus(cpus), (path,), 2, note)
        if current.path == h.mount_root:
            break
        current = h.nodes.get(posixpath.dirname(current.path))
    return f"no {effective} in {h.host_path(node.path)} or its ancestors"


def _file(h: Hierarchy, node: CgroupNode, name: str) -> tuple[str, str] | str:
    """The text of ``node``'s file ``name`` and its host path, or why it cannot be read."""
    raw = node.files.get(name)
    path = h.host_path(node.path, name)
    if isinstance(raw, ReadError):
        return raw.reason
    if raw is None:
        return f"{path} does not exist"
    return raw, path


def _read_v1(h: Hierarchy, node: CgroupNode, setting: str) -> Reading | str:
    def get(name: str) -> tuple[str, str] | str:
        got = _file(h, node, name)
        return got if isinstance(got, str) else (got[0].strip(), got[1])

    def number(name: str) -> tuple[int, str] | str:
        got = get(name)
        if isinstance(got, str):
            return got
        text, path = got
        if not text.lstrip("-").isdigit():
            return f"{path}: unexpected content {text!r}"
        return int(text), path

    if setting in ("memory.max", "memory.swap.max"):
        limit = number("memory.limit_in_bytes")
        if isinstance(limit, str):
            return limit
        memory = None if limit[0] >= V1_UNLIMITED else limit[0]
        if setting == "memory.max":
            return Reading(memory, show_size(memory), (limit[1],), 1)
        both = number("memory.memsw.limit_in_bytes")
        if isinstance(both, str):
            return both + " (kernel without swap accounting: boot with swapaccount=1)"
        if both[0] >= V1_UNLIMITED:
            return Reading(None, "max", (limit[1], both[1]), 1,
                           "memory+swap is unlimited")
        swap = both[0] - (memory if memory is not None else 0)
        note = "memory.memsw.limit_in_bytes - memory.limit_in_bytes"
        return Reading(swap, show_size(swap), (limit[1], both[1]), 1, note)
    if setting == "pids.max":
        got = get("pids.max")
        if isinstance(got, str):
            return got
        if got[0] != "max" and not got[0].isdigit():
            return f"{got[1]}: unexpected content {got[0]!r}"
        return Reading(None if got[0] == "max" else int(got[0]), got[0], (got[1],), 1)
    if setting == "cpu.max":
        quota, period = number("cpu.cfs_quota_us"), number("cpu.cfs_period_us")
        if isinstance(quota, str):
            return quota
        if isinstance(period, str):
            return period
        value = (None if quota[0] < 0 else quota[0], period[0])
        return Reading(value, show_quota(value), (quota[1], period[1]), 1,
                       "cfs_quota_us -1 is max")
    if setting == "cpu.weight":
        shares = number("cpu.shares")
        if isinstance(shares, str):
            return shares
        # Compared in shares: the value systemd writes for CPUWeight=N.
        return Reading(("shares", shares[0]), f"cpu.shares {shares[0]} (cpu.weight "
                       f"{cpu_shares_to_weight(shares[0])})", (shares[1],), 1,
                       "compared as cpu.shares = CPUWeight * 1024 / 100 (systemd)")
    # cpuset.cpus / cpuset.mems: judged on the effective list, as on v2.
    effective = {"cpuset.cpus": "cpuset.effective_cpus",
                 "cpuset.mems": "cpuset.effective_mems"}[setting]
    got = get(effective)
    if isinstance(got, str):
        got = get(setting)
        if isinstance(got, str):
            return got
    try:
        cpus = parse_cpu_list(got[0])
    except ValueError:
        return f"{got[1]}: unexpected content {got[0]!r}"
    return Reading(cpus, format_cpus(cpus), (got[1],), 1)


def read_counter(h: Hierarchy, node: CgroupNode, what: str) -> tuple[int, str, str] | str:
    """Counter ``what`` (``throttled`` or ``oom_kill``) of ``node``: (count, the counter's
    lines as shown, the host file), or why it cannot be read."""
    keys: tuple[str, ...]
    if what == "throttled":
        name = "cpu.stat"
        keys = ("nr_throttled", "throttled_usec" if h.version == 2 else "throttled_time")
    else:
        name = "memory.events" if h.version == 2 else "memory.oom_control"
        keys = ("oom_kill",)
    got = _file(h, node, name)
    if isinstance(got, str):
        return got
    raw, path = got
    values = flat_keyed(raw)
    if keys[0] not in values:
        extra = ""
        if h.version == 1 and what == "oom_kill":
            failcnt = node.files.get("memory.failcnt")
            extra = (f" (kernel before 4.13; memory.failcnt = {failcnt})"
                     if isinstance(failcnt, str) else " (kernel before 4.13)")
        return f"{path} has no {keys[0]}{extra}"
    shown = " ".join(f"{k} {values[k]}" for k in keys if k in values)
    return values[keys[0]], shown, path


def own_cpuset(h: Hierarchy, node: CgroupNode) -> tuple[str, frozenset[int]] | str | None:
    """The CPUs ``node`` configures for itself: (its ``cpuset.cpus`` as written, the CPUs the
    kernel grants it); None when it configures none (it inherits its parent's); why, when the
    lists cannot be read."""
    configured = node.files.get("cpuset.cpus")
    if not isinstance(configured, str) or not configured.strip():
        return None
    # What the kernel grants (a sibling of an isolated partition cannot get its CPUs).
    effective = node.files.get("cpuset.cpus.effective" if h.version == 2
                               else "cpuset.effective_cpus")
    try:
        granted = parse_cpu_list(effective if isinstance(effective, str) else configured)
    except ValueError:
        return f"{h.host_path(node.path)}: unreadable cpuset"
    return configured.strip(), granted
