"""Latency-safe self-placement: keep the agent off the trading cores and out of their way.

At start the daemon pins itself to the housekeeping CPUs (online CPUs minus ``isolcpus`` domain
CPUs, ``nohz_full`` CPUs and the CPUs of isolated cpuset partitions), switches to ``SCHED_IDLE``,
nice 19 and the idle I/O class. Each step that fails is reported, none is fatal: a placement the
unit already imposed (``CPUSchedulingPolicy=idle``, ``AllowedCPUs=``) stays in force anyway.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
from pathlib import Path

from agent.core.record import record
from agent.host.cgroups import read_cgroups
from agent.host.cpus import format_cpus
from agent.host.isolation import host_isolation
from agent.host.processes import parse_cpu_list
from agent.host.procfs import read_cmdline

IOPRIO_CLASS_IDLE = 3
IOPRIO_CLASS_SHIFT = 13
IOPRIO_WHO_PROCESS = 1
_IOPRIO_SET = {"x86_64": 251, "aarch64": 30, "riscv64": 30, "i686": 289, "i386": 289,
               "ppc64le": 273, "s390x": 282, "armv7l": 314}
"""ioprio_set syscall numbers by machine (``uname -m``)."""


@record
class Housekeeping:
    """The CPUs the agent may use, and why the others are excluded."""

    cpus: frozenset[int]
    """Online CPUs that are neither isolated nor nohz_full."""
    online: frozenset[int]
    """Online CPUs."""
    excluded: tuple[str, ...]
    """One entry per source of exclusion (``isolcpus 2-15``)."""
    problems: tuple[str, ...]
    """What could not be read."""


def housekeeping_cpus(root: Path) -> Housekeeping:
    """Housekeeping CPUs of the host under ``root``."""
    problems: list[str] = []
    online: frozenset[int]
    try:
        online = parse_cpu_list((root / "sys/devices/system/cpu/online").read_text())
    except (OSError, ValueError) as exc:
        problems.append(f"cannot read online CPUs: {exc}")
        online = frozenset(os.sched_getaffinity(0))
    found = host_isolation(read_cmdline(root), read_cgroups(root))
    problems.extend(found.problems)
    nohz = found.nohz_full or frozenset()
    isolated = found.isolated | nohz
    excluded = found.sources()
    if nohz:  # after isolcpus, before the partitions: the order the boot line gives them
        excluded.insert(1 if found.isolcpus else 0, f"nohz_full {format_cpus(nohz)}")
    return Housekeeping(online - isolated, online, tuple(excluded), tuple(problems))


def set_idle_io_priority() -> None:
    """ioprio_set(IOPRIO_WHO_PROCESS, 0, IOPRIO_CLASS_IDLE): raises OSError on failure."""
    number = _IOPRIO_SET.get(platform.machine())
    if number is None:
        raise OSError(errno.ENOSYS, f"ioprio_set number unknown on {platform.machine()}")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(number, IOPRIO_WHO_PROCESS, 0, IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def place_self(root: Path = Path("/")) -> list[tuple[str, str, dict[str, str]]]:
    """Apply the placement to this process; one ``(step, outcome, details)`` per step.

    Call before starting threads: they inherit the affinity and scheduling of their creator.
    """
    steps: list[tuple[str, str, dict[str, str]]] = []
    house = housekeeping_cpus(root)
    details = {"housekeeping": format_cpus(house.cpus), "online": format_cpus(house.online),
               "excluded": "; ".join(house.excluded) or "none"}
    if house.problems:
        details["problems"] = "; ".join(house.problems)
    try:
        allowed = frozenset(os.sched_getaffinity(0))
        target = house.cpus & allowed
        if not target:
            steps.append(("affinity", "skipped", {**details, "allowed": format_cpus(allowed),
                                                  "reason": "no housekeeping CPU is allowed"}))
        else:
            os.sched_setaffinity(0, target)
            steps.append(("affinity", "ok", {**details, "cpus": format_cpus(target)}))
    except OSError as exc:
        steps.append(("affinity", "failed", {**details, "error": str(exc)}))
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        steps.append(("scheduler", "ok", {"policy": "SCHED_IDLE"}))
    except OSError as exc:
        steps.append(("scheduler", "failed", {"policy": "SCHED_IDLE", "error": str(exc)}))
    try:
        os.setpriority(os.PRIO_PROCESS, 0, 19)
        steps.append(("nice", "ok", {"nice": "19"}))
    except OSError as exc:
        steps.append(("nice", "failed", {"nice": "19", "error": str(exc)}))
    try:
        set_idle_io_priority()
        steps.append(("ioprio", "ok", {"class": "idle"}))
    except OSError as exc:
        steps.append(("ioprio", "failed", {"class": "idle", "error": str(exc)}))
    return steps
