"""Value conditions shared by the kinds that compare a text value (sysctl, sysfs, cmdline)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from agent.checks.base import SpecPath, SpecProblem
from agent.core.record import record
from agent.host.facts import ReadError
from agent.host.snapshot import Values
from agent.result import Evidence, Outcome, Status

OPS = ("eq", "ne", "ge", "le", "in", "regex")
_SYMBOL = {"eq": "==", "ne": "!=", "ge": ">=", "le": "<=", "in": "in", "regex": "matches"}

SCALAR_SCHEMA: dict[str, Any] = {"type": ["string", "integer"]}
CONDITION_PROPERTIES: dict[str, Any] = {
    "op": {"enum": list(OPS), "default": "eq", "description": "Comparison operator."},
    "value": {
        "description": "Expected value; a list for op 'in', a pattern for op 'regex'.",
        "anyOf": [SCALAR_SCHEMA, {"type": "array", "items": SCALAR_SCHEMA, "minItems": 1}],
    },
}
MISSING_SCHEMA: dict[str, Any] = {
    "enum": ["error", "not_applicable", "fail"],
    "default": "error",
    "description": "Verdict when nothing matches on the host (default: error, fail closed).",
}


def normalise(text: str) -> str:
    """Collapse whitespace runs: ``4\\t4\\t1\\t7`` reads as ``4 4 1 7``."""
    return " ".join(text.split())


_INTEGER = re.compile(r"[+-]?[0-9]+")


def _as_int(text: str) -> int | None:
    # Only ASCII decimal text: int() alone would also take "1_000" and non-ASCII digits.
    if not _INTEGER.fullmatch(text):
        return None
    try:
        return int(text, 10)
    except ValueError:  # more digits than Python converts
        return None


@record
class Condition:
    """``<actual> <op> <value>``."""

    op: str
    """One of :data:`OPS`."""
    value: str | int | tuple[str | int, ...]
    """Expected value."""
    pattern: re.Pattern[str] | None = None
    """Compiled pattern for ``regex``."""

    def describe(self, subject: str) -> str:
        """``kernel.kptr_restrict >= 1``."""
        shown = list(self.value) if isinstance(self.value, tuple) else self.value
        return f"{subject} {_SYMBOL[self.op]} {shown}"

    def test(self, actual: str) -> bool | str:
        """True/False, or a reason the comparison cannot be made."""
        text = normalise(actual)
        if self.op == "regex":
            assert self.pattern is not None
            return self.pattern.fullmatch(text) is not None
        if self.op in ("ge", "le"):
            number = _as_int(text)
            if number is None:
                return f"value {text!r} is not an integer"
            assert isinstance(self.value, int)
            return number >= self.value if self.op == "ge" else number <= self.value
        if self.op == "in":
            assert isinstance(self.value, tuple)
            return any(_equal(text, v) for v in self.value)
        assert not isinstance(self.value, tuple)
        return _equal(text, self.value) == (self.op == "eq")


def _equal(text: str, expected: str | int) -> bool:
    if isinstance(expected, int):
        return _as_int(text) == expected
    expected_norm = normalise(expected)
    left, right = _as_int(text), _as_int(expected_norm)
    if left is not None and right is not None:
        return left == right
    return text == expected_norm


def parse_condition(
    raw: Mapping[str, Any], at: SpecPath = ()
) -> tuple[Condition, list[SpecProblem]]:
    """Build a condition from ``{op, value}``; problems are located under ``at``."""
    op = str(raw.get("op", "eq"))
    value = raw.get("value")
    problems: list[SpecProblem] = []
    where = (*at, "value")
    if value is None:
        return Condition(op, ""), [SpecProblem(at, f"op '{op}' needs a value")]
    if op == "in":
        if not isinstance(value, list):
            problems.append(SpecProblem(where, "op 'in' takes a list of values"))
            value = [value]
        return Condition(op, tuple(value)), problems
    if isinstance(value, list):
        return Condition(op, ""), [SpecProblem(where, f"op '{op}' takes one value, not a list")]
    if op in ("ge", "le") and not isinstance(value, int):
        if _as_int(str(value)) is None:
            return Condition(op, 0), [SpecProblem(where, f"op '{op}' needs an integer value")]
        value = int(str(value))
    if op == "regex":
        try:
            return Condition(op, str(value), re.compile(str(value))), problems
        except re.error as exc:
            problems.append(SpecProblem(where, f"invalid regex {value!r}: {exc}", "invalid-regex"))
            return Condition(op, str(value), re.compile("(?!)")), problems
    return Condition(op, value), problems


def judge_values(
    subject: str, values: Values | None, condition: Condition, missing: str
) -> Outcome:
    """Verdict over every value matched by ``subject``; all must satisfy ``condition``."""
    expected = condition.describe(subject)
    if values is None:
        return Outcome(Status.ERROR, f"{subject} was not read", Evidence(expected, "not read"))
    if not values:
        status = {"not_applicable": Status.NOT_APPLICABLE, "fail": Status.FAIL}.get(
            missing, Status.ERROR
        )
        message = f"{subject} does not exist on this host"
        return Outcome(status, message, Evidence(expected, "absent"))
    rows: list[dict[str, Any]] = []
    failed: list[str] = []
    errors: list[str] = []
    for key, value in values.items():
        if isinstance(value, ReadError):
            rows.append({"key": key, "value": None, "verdict": "error", "reason": value.reason})
            errors.append(f"{key}: {value.reason}")
            continue
        verdict = condition.test(value)
        if isinstance(verdict, str):
            rows.append({"key": key, "value": value, "verdict": "error", "reason": verdict})
            errors.append(f"{key}: {verdict}")
        else:
            rows.append({"key": key, "value": value, "verdict": "pass" if verdict else "fail"})
            if not verdict:
                failed.append(f"{key} = {normalise(value)}")
    actual = "; ".join(f"{r['key']} = {normalise(r['value'])}" if r["value"] is not None
                       else f"{r['key']}: {r['reason']}" for r in rows)
    evidence = Evidence(expected, actual, tuple(rows))
    if failed:
        return Outcome(Status.FAIL, f"expected {expected}, found {', '.join(failed)}", evidence)
    if errors:
        return Outcome(Status.ERROR, "cannot evaluate: " + "; ".join(errors), evidence)
    return Outcome(Status.PASS, f"{expected} holds", evidence)
