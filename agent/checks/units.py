"""The ``unit`` selector shared by the ``cgroup`` and ``seccomp`` kinds.

A unit glob names *system* units, whose cgroups lie in slices only: a cgroup inside another
unit (a user's service manager, ``/user.slice/user-1000.slice/user@1000.service/app.slice/
fixgw.service``, what ``systemd-run --user --unit fixgw`` makes; a container's own systemd) is
not the system's ``fixgw.service``, whoever runs it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

from agent.checks.base import SpecProblem
from agent.policy.globs import bracket_problem


def unit_glob(raw: Mapping[str, Any], problems: list[SpecProblem]) -> str | None:
    """The ``unit`` selector (``cgroup`` and ``seccomp`` kinds): a glob on a unit name,
    ``.service`` added when it has no ``.``."""
    unit = raw.get("unit")
    if unit is None:
        return None
    unit = str(unit)
    why = "a unit name has no '/'" if "/" in unit else bracket_problem(unit)
    if why:
        problems.append(SpecProblem(("unit",), f"invalid unit glob {unit!r}: {why}",
                                    "invalid-glob"))
    elif "." not in unit:
        unit += ".service"
    return unit


def in_unit(path: str, unit: str) -> bool:
    """Whether cgroup ``path`` lies in (or is) a system unit matching ``unit``: systemd puts a
    unit's cgroup in slices only (``/trading.slice/md.slice/fixgw.service``), so the first
    component that is not a slice decides. Under any other unit the rest is that unit's own
    tree: a user's service manager (``user@1000.service/app.slice/fixgw.service``), a
    container's systemd (``docker-1f.scope/system.slice/fixgw.service``), a delegated
    service's sub-cgroups."""
    for part in path.split("/"):
        if part and not part.endswith(".slice"):
            return fnmatch.fnmatchcase(part, unit)
    return False


def is_unit(path: str, unit: str) -> bool:
    """Whether cgroup ``path`` is the cgroup of a system unit matching ``unit``: slices above
    it, then its own name (see :func:`in_unit`)."""
    *above, last = path.split("/")
    return (bool(last) and fnmatch.fnmatchcase(last, unit)
            and all(not part or part.endswith(".slice") for part in above))
