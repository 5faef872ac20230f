"""The ``unit`` selector shared by the ``cgroup`` and ``seccomp`` kinds."""

from __future__ import annotations

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
