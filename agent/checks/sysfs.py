"""``sysfs``: a kernel setting under ``/sys`` compared with an expected value.

Passes (the active choice is the bracketed one)::

    - id: LAT-010
      kind: sysfs
      spec: {path: kernel/mm/transparent_hugepage/enabled, op: in, value: [never, madvise]}
      # host file reads "always [madvise] never"

Fails::

    - id: LAT-010
      kind: sysfs
      spec: {path: kernel/mm/transparent_hugepage/enabled, value: never}
      # host file reads "[always] madvise never"
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from agent.checks.base import CheckKind, SpecError, SpecProblem
from agent.checks.compare import (
    CONDITION_PROPERTIES,
    MISSING_SCHEMA,
    Condition,
    judge_values,
    parse_condition,
)
from agent.core.record import record
from agent.host.facts import ReadError
from agent.host.snapshot import Snapshot, SnapshotRequest
from agent.policy.globs import path_glob_problem
from agent.result import Outcome

_SELECTED = re.compile(r"\[([^\]\s]+)\]")


def selected(text: str) -> str:
    """``always [madvise] never`` -> ``madvise``; text without a bracketed choice unchanged."""
    match = _SELECTED.search(text)
    return match.group(1) if match else text


@record
class SysfsSpec:
    """Parsed ``sysfs`` spec."""

    path: str
    """Path or glob relative to /sys."""
    condition: Condition
    """What every match must satisfy."""
    missing: str
    """Verdict when the file does not exist."""


class SysfsKind(CheckKind[SysfsSpec]):
    """Kernel settings under /sys."""

    name = "sysfs"
    summary = "A kernel setting under /sys; for choice lists the bracketed entry is compared."
    spec_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "description": summary,
        "required": ["path", "value"],
        "additionalProperties": False,
        "properties": {
            "path": {
                "type": "string",
                "minLength": 1,
                "description": "Path relative to /sys; '*' matches within a component.",
                "examples": ["kernel/mm/transparent_hugepage/enabled"],
            },
            **CONDITION_PROPERTIES,
            "missing": MISSING_SCHEMA,
        },
    }

    def parse(self, raw: Mapping[str, Any]) -> SysfsSpec:
        path = str(raw["path"])
        condition, problems = parse_condition(raw)
        problem = path_glob_problem(path, "/")
        if problem:
            problems.insert(0, SpecProblem(("path",), f"invalid sysfs path {path!r}: {problem}",
                                           "invalid-glob"))
        if problems:
            raise SpecError(problems)
        return SysfsSpec(path, condition, str(raw.get("missing", "error")))

    def request(self, spec: SysfsSpec) -> SnapshotRequest:
        return SnapshotRequest(sysfs=frozenset({spec.path}))

    def evaluate(self, spec: SysfsSpec, snapshot: Snapshot) -> Outcome:
        values = snapshot.sysfs.get(spec.path)
        if values is not None:
            values = {k: v if isinstance(v, ReadError) else selected(v) for k, v in values.items()}
        return judge_values(spec.path, values, spec.condition, spec.missing)
