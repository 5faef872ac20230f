"""``sysctl``: a kernel parameter under ``/proc/sys`` compared with an expected value.

Passes::

    - id: KRN-001
      kind: sysctl
      spec: {key: kernel.kptr_restrict, op: ge, value: 1}     # host has 2

Fails::

    - id: NET-010
      kind: sysctl
      spec: {key: net.ipv4.conf.*.accept_redirects, value: 0}  # one interface has 1

Keys are dotted, or slashed when a component holds a dot (``net/ipv4/conf/eth0.100/rp_filter``);
``*`` in a component matches every entry and every match must satisfy the condition. A key that
does not exist is ``error`` unless ``missing`` says otherwise.
"""

from __future__ import annotations

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
from agent.host.snapshot import Snapshot, SnapshotRequest
from agent.policy.globs import path_glob_problem
from agent.result import Outcome


@record
class SysctlSpec:
    """Parsed ``sysctl`` spec."""

    key: str
    """Key or glob as written."""
    condition: Condition
    """What every match must satisfy."""
    missing: str
    """Verdict when the key does not exist."""


class SysctlKind(CheckKind[SysctlSpec]):
    """Kernel parameters under /proc/sys."""

    name = "sysctl"
    summary = "A kernel parameter under /proc/sys compared with an expected value."
    spec_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "description": summary,
        "required": ["key", "value"],
        "additionalProperties": False,
        "properties": {
            "key": {
                "type": "string",
                "minLength": 1,
                "description": "sysctl key, dotted or slashed; '*' matches within a component.",
                "examples": ["kernel.kptr_restrict", "net.ipv4.conf.*.rp_filter"],
            },
            **CONDITION_PROPERTIES,
            "missing": MISSING_SCHEMA,
        },
    }

    def parse(self, raw: Mapping[str, Any]) -> SysctlSpec:
        key = str(raw["key"])
        condition, problems = parse_condition(raw)
        problem = path_glob_problem(key, "/" if "/" in key else ".")
        if problem:
            problems.insert(0, SpecProblem(("key",), f"invalid sysctl key {key!r}: {problem}",
                                           "invalid-glob"))
        if problems:
            raise SpecError(problems)
        return SysctlSpec(key, condition, str(raw.get("missing", "error")))

    def request(self, spec: SysctlSpec) -> SnapshotRequest:
        return SnapshotRequest(sysctl=frozenset({spec.key}))

    def evaluate(self, spec: SysctlSpec, snapshot: Snapshot) -> Outcome:
        return judge_values(spec.key, snapshot.sysctl.get(spec.key), spec.condition, spec.missing)
