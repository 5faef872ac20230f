"""The ``unit`` selector shared by the ``cgroup`` and ``seccomp`` kinds.

A unit glob names *system* units: a cgroup inside a user's service manager
(``/user.slice/user-1000.slice/user@1000.service/app.slice/fixgw.service``, what ``systemd-run
--user --unit fixgw`` makes) is not the system's ``fixgw.service``, whoever runs it.
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


USER_MANAGER = "user@*.service"
"""A user's service manager: the units under it are that user's, not the system's."""


def in_unit(path: str, unit: str) -> bool:
    """Whether cgroup ``path`` lies in (or is) a system unit matching ``unit``: a component
    matches it with no user's service manager above."""
    for part in path.split("/"):
        if part and fnmatch.fnmatchcase(part, unit):
            return True
        if fnmatch.fnmatchcase(part, USER_MANAGER):
            return False
    return False


def is_unit(path: str, unit: str) -> bool:
    """Whether cgroup ``path`` is the cgroup of a system unit matching ``unit``: its last
    component matches, and no user's service manager lies above it."""
    *above, last = path.split("/")
    return (bool(last) and fnmatch.fnmatchcase(last, unit)
            and not any(fnmatch.fnmatchcase(part, USER_MANAGER) for part in above))
