"""``unit``: systemd unit settings as the unit files and drop-ins give them, a service's exposure
level as ``systemd-analyze security`` scores it, and whether a unit is enabled, disabled, masked
or absent as ``systemctl is-enabled`` says.

Passes::

    - id: UNIT-001
      kind: unit
      spec:
        unit: "*.service"
        slice: "trading*.slice"
        properties:
          Service:
            NoNewPrivileges: true
            CPUAffinity: {within: isolated}
            Restart: {set: true}
            LimitMEMLOCK: infinity
        exposure: {max: 2.5}
      # host: isolcpus=2-5; /etc/systemd/system/fixgw.service Slice=trading.slice,
      # NoNewPrivileges=yes, Restart=on-failure, LimitMEMLOCK=infinity, and its drop-in
      # fixgw.service.d/pin.conf CPUAffinity=2 3 with the sandboxing of hostguard.service (2.3)

Fails::

    - id: CIS-SVC-001
      kind: unit
      spec: {unit: rpcbind.socket, state: [disabled, masked, absent]}
      # host: /etc/systemd/system/sockets.target.wants/rpcbind.socket -> ...: enabled

Settings are read as systemd merges the fragment and its drop-ins (:mod:`agent.host.unitfiles`):
the last assignment of a key wins, an empty one resets it, and a CPU list (``CPUAffinity=``,
``AllowedCPUs=``) is the union of its assignments since the last reset. What the service
manager derives at run time (an implied ``NoNewPrivileges=`` under ``SystemCallFilter=``,
defaults) is not guessed: a key that is not set fails every expectation but ``set: false``.
The exposure is :func:`agent.checks.unit_exposure.exposure` of the same merged files.
Enablement is decided from the files and links (:mod:`agent.host.enablement`).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from agent.checks.base import CheckKind, SpecError, SpecProblem
from agent.checks.compare import CONDITION_PROPERTIES, OPS, Condition, parse_condition
from agent.checks.rows import outcome_of
from agent.checks.unit_exposure import ExposureError, exposure
from agent.checks.units import unit_glob
from agent.core.record import record
from agent.core.schema_errors import suggest
from agent.host.cpus import format_cpus
from agent.host.enablement import STATES
from agent.host.facts import ReadError
from agent.host.isolation import host_isolation
from agent.host.processes import parse_cpu_list
from agent.host.snapshot import Snapshot, SnapshotRequest
from agent.host.systemd_units import UnitReading
from agent.host.unitfiles import Assignment, UnitFiles
from agent.policy.globs import bracket_problem
from agent.result import Evidence, Outcome, Status

SECTIONS: dict[str, str | None] = {
    "Unit": None, "Install": None, "Service": "service", "Socket": "socket", "Mount": "mount",
    "Automount": "automount", "Swap": "swap", "Timer": "timer", "Path": "path",
    "Slice": "slice", "Scope": "scope",
}
"""Sections a policy may name -> the one unit type that has it (None: every type)."""

CPU_LISTS = frozenset({"CPUAffinity", "AllowedCPUs", "StartupAllowedCPUs"})
"""Keys holding CPU lists, which systemd merges across assignments."""

STATE_WORDS = (*(s for s in STATES if s != "not-found"), "absent")
"""``state:`` words: ``systemctl is-enabled``'s, with ``absent`` for no unit file."""

_TRUE = frozenset({"1", "yes", "y", "true", "t", "on"})
_FALSE = frozenset({"0", "no", "n", "false", "f", "off"})
_KEY = r"^[A-Za-z][A-Za-z0-9]*$"
_BYTE_LIMITS = frozenset({"LimitAS", "LimitCORE", "LimitDATA", "LimitFSIZE", "LimitMEMLOCK",
                          "LimitMSGQUEUE", "LimitRSS", "LimitSTACK"})
_SIZE = re.compile(r"([0-9]+)\s*([KMGTPE]?)")
_SUFFIX = {"": 0, "K": 10, "M": 20, "G": 30, "T": 40, "P": 50, "E": 60}

_EXPECTATION: dict[str, Any] = {
    "anyOf": [
        {"type": ["boolean", "string", "integer"]},
        {"type": "object", "additionalProperties": False, "minProperties": 1,
         "properties": {
             "set": {"type": "boolean", "description": "The key has a value (true) or none "
                     "(false)."},
             **CONDITION_PROPERTIES,
             "within": {"type": "string", "minLength": 1, "examples": ["isolated", "2-5"],
                        "description": "A CPU list key's CPUs all lie in 'isolated' (the "
                        "host's isolated CPUs) or in this CPU list."},
         }},
    ],
    "description": "true/false: the value as a systemd boolean (1/yes/true/on, 0/no/false/"
                   "off); a string or integer: equal (Limit* values as systemd reads them: "
                   "'infinity', 'soft:hard', sizes with K/M/G); {set}, {op, value} or {within}.",
}
_STATE = {"type": "string", "minLength": 1, "examples": list(STATE_WORDS)}


@record
class Expectation:
    """One ``properties`` entry."""

    section: str
    key: str
    test: str
    """``bool``, ``eq`` (equal, Limit-aware), ``set``, ``op`` (a condition) or ``within``."""
    value: Any = None
    """The boolean, expected text, set flag, :class:`Condition` or CPU set (None: isolated)."""

    def describe(self) -> str:
        key = f"{self.section}.{self.key}"
        if self.test == "bool":
            return f"{key} is {'yes' if self.value else 'no'}"
        if self.test == "set":
            return f"{key} is {'set' if self.value else 'not set'}"
        if self.test == "within":
            cpus = "the isolated CPUs" if self.value is None else format_cpus(self.value)
            return f"{key} within {cpus}"
        if self.test == "op":
            assert isinstance(self.value, Condition)
            return self.value.describe(key)
        return f"{key} = {self.value}"


@record
class UnitSpec:
    """Parsed ``unit`` spec."""

    unit: str
    """Unit name or glob (``.service`` added when it has no ``.``)."""
    slice: str | None
    """Only the units whose ``Slice=`` matches this glob."""
    properties: tuple[Expectation, ...]
    state: tuple[str, ...]
    """Allowed ``is-enabled`` words (``absent`` for none); empty: not judged."""
    exposure: float | None
    """The highest exposure score allowed; None: not judged."""
    missing: str
    """Verdict when no unit is there to judge settings of: ``fail`` or ``not_applicable``."""

    @property
    def settings(self) -> bool:
        """Whether the unit's settings are judged (properties or exposure)."""
        return bool(self.properties) or self.exposure is not None

    @property
    def isolated(self) -> bool:
        return any(e.test == "within" and e.value is None for e in self.properties)


class UnitKind(CheckKind[UnitSpec]):
    """systemd unit settings (fragment and drop-ins merged) and enablement."""

    name = "unit"
    summary = ("systemd unit settings as the unit files and drop-ins merge them (booleans, "
               "Limit* values, CPU lists within the isolated CPUs), a service's exposure "
               "level (systemd-analyze security), and whether a unit is enabled, disabled, "
               "masked or absent (systemctl is-enabled).")
    spec_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "description": summary,
        "required": ["unit"],
        "additionalProperties": False,
        "properties": {
            "unit": {"type": "string", "minLength": 1,
                     "examples": ["fixgw.service", "*.service", "rpcbind.socket"],
                     "description": "Unit name or glob; '.service' added when it has no '.'."},
            "slice": {"type": "string", "minLength": 1, "examples": ["trading*.slice"],
                      "description": "Only the units whose Slice= matches this glob."},
            "properties": {
                "type": "object", "minProperties": 1, "additionalProperties": False,
                "description": "Section -> key -> expectation, e.g. "
                               "{Service: {NoNewPrivileges: true}}.",
                "properties": {
                    section: {"type": "object", "minProperties": 1,
                              "propertyNames": {"pattern": _KEY},
                              "additionalProperties": _EXPECTATION,
                              "description": f"Keys of the [{section}] section."}
                    for section in SECTIONS
                },
            },
            "state": {"anyOf": [_STATE, {"type": "array", "items": _STATE, "minItems": 1,
                                         "uniqueItems": True}],
                      "description": "Allowed enablement, as systemctl is-enabled prints it "
                                     "('absent': no unit file); a list allows any of them."},
            "exposure": {
                "type": "object", "required": ["max"], "additionalProperties": False,
                "description": "The overall exposure level systemd-analyze security "
                               "--offline=yes gives the service (0.0 safest to 10.0).",
                "properties": {"max": {"type": "number", "minimum": 0, "maximum": 10,
                                       "examples": [2.5],
                                       "description": "The highest exposure allowed."}},
            },
            "missing": {"enum": ["fail", "not_applicable"], "default": "fail",
                        "description": "Verdict when no unit is there whose settings to judge "
                                       "(default: fail)."},
        },
    }

    def parse(self, raw: Mapping[str, Any]) -> UnitSpec:
        problems: list[SpecProblem] = []
        unit = unit_glob(raw, problems) or ""
        suffix = unit.rsplit(".", 1)[-1] if "." in unit else ""
        kind = suffix if suffix and not set(suffix) & set("*?[") else None
        slice_glob = str(raw["slice"]) if "slice" in raw else None
        if slice_glob is not None:
            why = bracket_problem(slice_glob)
            if why:
                problems.append(SpecProblem(("slice",), f"invalid slice glob {slice_glob!r}: "
                                            f"{why}", "invalid-glob"))
        expectations: list[Expectation] = []
        for section, keys in dict(raw.get("properties", {})).items():
            owner = SECTIONS.get(str(section))
            if owner is not None and kind is not None and kind != owner:
                problems.append(SpecProblem(("properties", section), f"a .{kind} unit has no "
                                            f"[{section}] section"))
            for key, value in dict(keys).items():
                expectations.append(_expectation(str(section), str(key), value,
                                                 ("properties", section, key), problems))
        state = raw.get("state", [])
        states = tuple(str(s) for s in (state if isinstance(state, list) else [state]))
        for index, word in enumerate(states):
            if word not in STATE_WORDS:
                at: tuple[str | int, ...] = ("state", index) if isinstance(state, list) else (
                    "state",)
                problems.append(SpecProblem(at, f"unknown state {word!r}"
                                            f"{suggest(word, list(STATE_WORDS))}; one of "
                                            f"{', '.join(STATE_WORDS)}"))
        limit = raw.get("exposure", {}).get("max") if "exposure" in raw else None
        settings = bool(expectations) or limit is not None
        if limit is not None and kind not in (None, "service"):
            problems.append(SpecProblem(("exposure",), f"exposure is assessed for services, "
                                        f"not a .{kind} unit"))
        if not settings and not states:
            problems.append(SpecProblem((), "a unit check expects nothing: give properties, "
                                        "exposure or state"))
        if "absent" in states and settings:
            problems.append(SpecProblem(("state",), "'absent' allows no unit, whose "
                                        "settings cannot hold"))
        if raw.get("missing") == "not_applicable" and not settings:
            problems.append(SpecProblem(("missing",), "'missing' is for properties and "
                                        "exposure; a state check judges an absent unit by "
                                        "'state'"))
        if problems:
            raise SpecError(problems)
        return UnitSpec(unit, slice_glob, tuple(expectations), states,
                        float(limit) if limit is not None else None,
                        str(raw.get("missing", "fail")))

    def request(self, spec: UnitSpec) -> SnapshotRequest:
        return SnapshotRequest(units=frozenset({spec.unit}), cmdline=spec.isolated,
                               cgroups=spec.isolated)

    def evaluate(self, spec: UnitSpec, snapshot: Snapshot) -> Outcome:
        expected = _describe(spec)
        found = snapshot.units.get(spec.unit)
        if found is None:
            return Outcome(Status.ERROR, f"cannot evaluate: {spec.unit} was not read",
                           Evidence(expected, "not read"))
        if found.error is not None:
            return Outcome(Status.ERROR, f"cannot evaluate: {found.error.reason}",
                           Evidence(expected, found.error.reason))
        isolated: frozenset[int] | ReadError | None = None
        if spec.isolated:
            isolated = _isolated(snapshot)
        rows: list[dict[str, Any]] = []
        skipped: list[str] = []
        units = [u for u in found.units if _selected(spec, u)]
        selected = {u.name for u in units}
        for reading in units:
            rows += _judge(spec, reading, isolated, skipped,
                           alias_of_selected=_alias_of(reading) in selected)
        if not units:
            finding = f"no unit matches {spec.unit}" + (
                f" with Slice= {spec.slice}" if spec.slice else "")
            if spec.state and not spec.settings:
                verdict = "pass" if "absent" in spec.state else "fail"
                rows.append(_row(spec.unit, "state", verdict, finding))
            elif spec.missing == "not_applicable":
                skipped.append(finding)
            else:
                rows.append(_row(spec.unit, "settings", "fail", finding))
        if not rows:
            actual = "; ".join(skipped)
            return Outcome(Status.NOT_APPLICABLE, actual, Evidence(expected, actual))
        return outcome_of(expected, rows)


def _expectation(section: str, key: str, value: Any, at: tuple[str | int, ...],
                 problems: list[SpecProblem]) -> Expectation:
    if isinstance(value, bool):
        return Expectation(section, key, "bool", value)
    if not isinstance(value, Mapping):
        text = str(value)
        return Expectation(section, key, "eq", _limit(text) if key.startswith("Limit") else text)
    parts = {name for name in ("set", "op", "within") if name in value}
    if "value" in value and "op" not in value:
        parts.add("op")
    if len(parts) != 1:
        problems.append(SpecProblem(at, "an expectation holds one of 'set', 'op'/'value' or "
                                    "'within'"))
        return Expectation(section, key, "set", True)
    if "set" in value:
        return Expectation(section, key, "set", bool(value["set"]))
    if "within" in value:
        if key not in CPU_LISTS:
            problems.append(SpecProblem((*at, "within"), f"'within' is for CPU lists "
                                        f"({', '.join(sorted(CPU_LISTS))}), not {key}"))
        text = str(value["within"])
        if text == "isolated":
            return Expectation(section, key, "within", None)
        cpus = _cpus(text)
        if not isinstance(cpus, frozenset) or not cpus:
            problems.append(SpecProblem((*at, "within"), f"invalid CPU list {text!r} (or "
                                        "'isolated')"))
            cpus = frozenset()
        return Expectation(section, key, "within", cpus)
    condition, found = parse_condition(value, at)
    problems.extend(found)
    assert condition.op in OPS
    return Expectation(section, key, "op", condition)


def _cpus(text: str) -> frozenset[int] | str:
    """A systemd CPU list (commas or blanks between CPUs and ranges), or why it is not one."""
    try:
        return parse_cpu_list(",".join(text.replace(",", " ").split()))
    except ValueError:
        return f"{text!r} is not a CPU list"


def _limit(text: str) -> str:
    """A ``Limit*`` value as systemd reads it: ``soft:hard`` (one value when they agree),
    sizes with ``K``/``M``/``G``... in bytes, ``infinity`` as is."""
    halves = [part.strip() for part in text.split(":")]
    shown = []
    for half in halves:
        size = _SIZE.fullmatch(half)
        shown.append(str(int(size[1]) << _SUFFIX[size[2]]) if size else half)
    if len(shown) == 2 and shown[0] == shown[1]:
        shown = shown[:1]
    return ":".join(shown)


def _boolean(text: str) -> bool | None:
    lowered = text.lower()
    return True if lowered in _TRUE else False if lowered in _FALSE else None


def _isolated(snapshot: Snapshot) -> frozenset[int] | ReadError:
    # What the kernel keeps out of load balancing, not the wider set irq and sysfs protect:
    # a CPU counts only if a unit pinned within it is truly isolated ("within" must not pass
    # a nohz_full-only or managed_irq-only CPU the scheduler still balances).
    found = host_isolation(snapshot.cmdline, snapshot.cgroups)
    if found.problems:
        return ReadError("the isolated CPUs are unknown: " + "; ".join(found.problems))
    return found.isolated


def _selected(spec: UnitSpec, reading: UnitReading) -> bool:
    if spec.slice is None:
        return True
    if not isinstance(reading.files, UnitFiles):
        return True  # unreadable: judged (as an error), never skipped
    return fnmatch.fnmatchcase(reading.files.last(_section(reading.name), "Slice") or "",
                               spec.slice)


def _section(name: str) -> str:
    kind = name.rsplit(".", 1)[-1]
    return next((s for s, owner in SECTIONS.items() if owner == kind), "Unit")


def _row(unit: str, expectation: str, verdict: str, finding: str) -> dict[str, Any]:
    return {"unit": unit, "expectation": expectation, "verdict": verdict, "finding": finding}


def _last(files: UnitFiles, section: str, key: str) -> Assignment | None:
    """The assignment that gives ``key`` its value (an empty one systemd skips is none)."""
    value = files.last(section, key)
    return next((a for a in reversed(files.assignments) if a.section == section
                 and a.key == key and a.value == value), None)


def _where(assignment: Assignment) -> str:
    return f"{assignment.path}:{assignment.line}"


def _alias_of(reading: UnitReading) -> str | None:
    """The unit's id when ``reading`` selected it by an alias, else None."""
    files = reading.files
    if isinstance(files, UnitFiles) and files.names and files.names[0] != reading.name:
        return files.names[0]
    return None


def _judge(spec: UnitSpec, reading: UnitReading, isolated: frozenset[int] | ReadError | None,
           skipped: list[str], *, alias_of_selected: bool) -> list[dict[str, Any]]:
    name = reading.name
    rows: list[dict[str, Any]] = []
    if spec.state:
        if isinstance(reading.state, ReadError):
            rows.append(_row(name, "state", "error", f"{name}: {reading.state.reason}"))
        else:
            word = "absent" if reading.state == "not-found" else reading.state
            rows.append(_row(name, "state", "pass" if word in spec.state else "fail",
                             f"{name}: {word}"))
    if not spec.settings or alias_of_selected:
        return rows  # an alias's settings are its unit's, judged under the unit's own name
    files = reading.files
    if isinstance(files, ReadError):
        return [*rows, _row(name, "settings", "error", f"{name}: {files.reason}")]
    if files.masked or files.fragment is None:
        what = "masked" if files.masked else "not found"
        finding = f"{name}: {what}"
        if spec.missing == "not_applicable":
            skipped.append(finding)
        else:
            rows.append(_row(name, "settings", "fail", finding))
        return rows
    for expectation in spec.properties:
        rows.append(_property(name, files, expectation, isolated))
    if spec.exposure is not None:
        rows.append(_exposure(name, files, spec.exposure))
    return rows


def _exposure(name: str, files: UnitFiles, limit: float) -> dict[str, Any]:
    row = _row(name, f"exposure <= {limit}", "error", "")
    try:
        found = exposure(files)
    except ExposureError as exc:
        row["finding"] = f"{name}: no exposure score: {exc}"
        return row
    worst = sorted((r for r in found.rows if r.exposure), key=lambda r: -(r.exposure or 0))
    row.update(value=found.score, level=found.level,
               worst=[f"{r.name} {r.exposure}" for r in worst[:5]])
    row["verdict"] = "pass" if found.score <= limit else "fail"
    above = f" > {limit}; most: {', '.join(row['worst'][:3])}" if row["verdict"] == "fail" else ""
    row["finding"] = f"{name}: exposure {found.score:.1f} {found.level}{above}"
    return row


def _property(name: str, files: UnitFiles, rule: Expectation,
              isolated: frozenset[int] | ReadError | None) -> dict[str, Any]:
    row = _row(name, rule.describe(), "fail", "")
    values = files.values(rule.section, rule.key)
    last = _last(files, rule.section, rule.key)
    if last is not None:
        row["file"] = _where(last)
    if not values or last is None or not last.value:
        row["verdict"] = "pass" if rule.test == "set" and not rule.value else "fail"
        shown = "reset to the default" if last is not None else "not set"
        row["finding"] = f"{name}: {rule.key} {shown}" + (f" ({_where(last)})" if last else "")
        return row
    value = last.value
    verdict: bool | str
    if rule.test == "set":
        verdict, shown = bool(rule.value), value
    elif rule.test == "bool":
        parsed = _boolean(value)
        verdict = f"{value!r} is not a boolean" if parsed is None else parsed == rule.value
        shown = value
    elif rule.test in ("eq", "op"):
        condition = rule.value if isinstance(rule.value, Condition) else Condition(
            "eq", str(rule.value))
        shown = value
        verdict = _compare(rule.key, condition, value)
    else:
        verdict, shown = _within(values, rule.value, isolated)
        row["value"] = shown
    row["verdict"] = ("error" if isinstance(verdict, str) else "pass" if verdict else "fail")
    reason = f": {verdict}" if isinstance(verdict, str) else ""
    origin = f" ({_where(last)})" if rule.test != "within" else _origins(files, rule)
    row["finding"] = f"{name}: {rule.key}={shown}{origin}{reason}"
    return row


def _origins(files: UnitFiles, rule: Expectation) -> str:
    places = [_where(a) for a in files.assignments if a.section == rule.section
              and a.key == rule.key]
    return f" ({', '.join(places)})"


def _compare(key: str, condition: Condition, value: str) -> bool | str:
    if key.startswith("Limit"):
        value = _limit(value)
        if value == "infinity" and condition.op in ("ge", "le"):
            return condition.op == "ge"
    return condition.test(value)


def _within(values: list[str], allowed: frozenset[int] | None,
            isolated: frozenset[int] | ReadError | None) -> tuple[bool | str, str]:
    cpus: set[int] = set()
    for value in values:
        if "%" in value or value.strip() == "numa":
            return f"{value!r} is only known at run time", value
        parsed = _cpus(value)
        if isinstance(parsed, str):
            return parsed, value
        cpus |= parsed
    shown = format_cpus(cpus)
    if allowed is None:
        if isinstance(isolated, ReadError) or isolated is None:
            return (isolated.reason if isolated else "the isolated CPUs were not read"), shown
        allowed = isolated
    outside = cpus - allowed
    if outside:
        return False, f"{shown} (CPUs {format_cpus(outside)} outside {format_cpus(allowed)})"
    return True, f"{shown} (within {format_cpus(allowed)})"


def _describe(spec: UnitSpec) -> str:
    parts = [spec.unit + (f" in slices {spec.slice}" if spec.slice else "")]
    if spec.state:
        parts.append("state " + " or ".join(spec.state))
    parts += [rule.describe() for rule in spec.properties]
    if spec.exposure is not None:
        parts.append(f"exposure <= {spec.exposure}")
    if spec.missing == "not_applicable":
        parts.append("if present")
    return ": ".join(parts[:1]) + (": " + ", ".join(parts[1:]) if parts[1:] else "")
