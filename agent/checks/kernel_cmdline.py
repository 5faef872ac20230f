"""``kernel_cmdline``: parameters the running kernel was booted with (``/proc/cmdline``).

Passes::

    - id: BOOT-001
      kind: kernel_cmdline
      spec:
        present: [nohz_full]
        absent: [nokaslr, mitigations=off]
        values: {mitigations: {op: ne, value: "off"}}
      # host booted with "... nohz_full=2-7 mitigations=auto"

Fails::

    - id: BOOT-001
      kind: kernel_cmdline
      spec: {values: {mitigations: {op: ne, value: "off"}}}
      # host booted with "... mitigations=off"

Names compare with ``-`` and ``_`` equivalent, as the kernel does. Only parameters before ``--``
count (the rest go to init). The last occurrence of a parameter is the effective one. A parameter
missing from the command line fails every ``values`` condition except ``op: ne``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from agent.checks.base import CheckKind, SpecError, SpecProblem
from agent.checks.compare import CONDITION_PROPERTIES, Condition, parse_condition
from agent.core.record import record
from agent.host.cmdline import KernelCmdline
from agent.host.snapshot import Snapshot, SnapshotRequest
from agent.result import Evidence, Outcome, Status

_NAME = {"type": "string", "pattern": r"^[A-Za-z0-9_.-]+$"}


@record
class CmdlineSpec:
    """Parsed ``kernel_cmdline`` spec."""

    present: tuple[str, ...]
    """Parameters that must appear (any value)."""
    absent: tuple[tuple[str, str | None], ...]
    """Parameters that must not appear, or must not have the given effective value."""
    values: tuple[tuple[str, Condition], ...]
    """Conditions on the effective value of parameters."""


class KernelCmdlineKind(CheckKind[CmdlineSpec]):
    """Boot parameters of the running kernel."""

    name = "kernel_cmdline"
    summary = "Parameters that must be present, absent, or have a value on the kernel command line."
    spec_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "description": summary,
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {
            "present": {
                "type": "array", "items": _NAME, "minItems": 1,
                "description": "Parameters that must appear, with any value.",
            },
            "absent": {
                "type": "array", "minItems": 1,
                "items": {"type": "string", "pattern": r"^[A-Za-z0-9_.-]+(=.*)?$"},
                "description": "'name' must not appear; 'name=value' must not be its value.",
            },
            "values": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": _NAME,
                "additionalProperties": {
                    "type": "object",
                    "required": ["value"],
                    "additionalProperties": False,
                    "properties": CONDITION_PROPERTIES,
                },
                "description": "Conditions on parameter values, e.g. {mitigations: {op: ne, "
                "value: 'off'}}.",
            },
        },
    }

    def parse(self, raw: Mapping[str, Any]) -> CmdlineSpec:
        problems: list[SpecProblem] = []
        conditions: list[tuple[str, Condition]] = []
        for name, cond in dict(raw.get("values", {})).items():
            condition, found = parse_condition(cond, ("values", name))
            problems.extend(found)
            conditions.append((name, condition))
        absent: list[tuple[str, str | None]] = []
        for entry in raw.get("absent", []):
            name, sep, value = str(entry).partition("=")
            absent.append((name, value if sep else None))
        if problems:
            raise SpecError(problems)
        present = tuple(map(str, raw.get("present", [])))
        return CmdlineSpec(present, tuple(absent), tuple(conditions))

    def request(self, spec: CmdlineSpec) -> SnapshotRequest:
        return SnapshotRequest(cmdline=True)

    def evaluate(self, spec: CmdlineSpec, snapshot: Snapshot) -> Outcome:
        cmdline = snapshot.cmdline
        expected = _describe(spec)
        if not isinstance(cmdline, KernelCmdline):
            reason = cmdline.reason if cmdline is not None else "kernel command line not read"
            return Outcome(Status.ERROR, f"cannot evaluate: {reason}", Evidence(expected, reason))
        rows = [*_present_rows(spec, cmdline), *_absent_rows(spec, cmdline),
                *_value_rows(spec, cmdline)]
        failed = [r for r in rows if r["verdict"] == "fail"]
        errors = [r for r in rows if r["verdict"] == "error"]
        # Rows that passed need no finding; a "... is not set" on a passing row misleads.
        shown = tuple({k: v for k, v in r.items() if k != "finding" or r["verdict"] != "pass"}
                      for r in rows)
        evidence = Evidence(expected, cmdline.raw, shown)
        if failed:
            return Outcome(Status.FAIL, "; ".join(r["finding"] for r in failed), evidence)
        if errors:
            reasons = "; ".join(r["finding"] for r in errors)
            return Outcome(Status.ERROR, f"cannot evaluate: {reasons}", evidence)
        return Outcome(Status.PASS, "kernel command line satisfies " + expected, evidence)


def _shown(cmdline: KernelCmdline, name: str) -> str | None:
    param = cmdline.last(name)
    if param is None:
        return None
    return param.name if param.value is None else f"{param.name}={param.value}"


def _present_rows(spec: CmdlineSpec, cmdline: KernelCmdline) -> list[dict[str, Any]]:
    return [
        {"param": name, "expected": "present", "actual": _shown(cmdline, name),
         "verdict": "pass" if cmdline.has(name) else "fail", "finding": f"{name} is not set"}
        for name in spec.present
    ]


def _absent_rows(spec: CmdlineSpec, cmdline: KernelCmdline) -> list[dict[str, Any]]:
    rows = []
    for name, value in spec.absent:
        param = cmdline.last(name)
        if value is None:
            bad = param is not None
        else:
            bad = param is not None and (param.value or "") == value
        shown = name if value is None else f"{name}={value}"
        rows.append({"param": name, "expected": f"not {shown}", "actual": _shown(cmdline, name),
                     "verdict": "fail" if bad else "pass",
                     "finding": f"{_shown(cmdline, name)} is set"})
    return rows


def _value_rows(spec: CmdlineSpec, cmdline: KernelCmdline) -> list[dict[str, Any]]:
    rows = []
    for name, condition in spec.values:
        param = cmdline.last(name)
        if param is None:
            ok: bool | str = condition.op == "ne"
        else:
            ok = condition.test(param.value or "")
        # A value the operator cannot compare (ge on "2-15") is an error, as for sysctl.
        if isinstance(ok, str):
            verdict, finding = "error", f"{name}: {ok}"
        else:
            verdict = "pass" if ok else "fail"
            finding = (f"expected {condition.describe(name)}, found "
                       f"{_shown(cmdline, name) or 'no ' + name}")
        rows.append({"param": name, "expected": condition.describe(name),
                     "actual": _shown(cmdline, name), "verdict": verdict, "finding": finding})
    return rows


def _describe(spec: CmdlineSpec) -> str:
    parts = [f"{n} present" for n in spec.present]
    parts += [f"{n} absent" if v is None else f"{n}!={v}" for n, v in spec.absent]
    parts += [c.describe(n) for n, c in spec.values]
    return ", ".join(parts)
