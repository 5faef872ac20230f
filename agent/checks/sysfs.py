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

Per CPU: ``{cpus}`` in the path stands for each CPU of ``cpus`` in turn (``isolated``,
``online``, ``all`` or a CPU list), and ``where`` judges only the matches whose sibling file
satisfies a condition. Passes on a host booted with ``isolcpus=2-3`` whose CPUs 2 and 3 have
disabled every idle state of more than 10 us exit latency; fails when CPU 3's ``state3``
(latency 133) reads ``disable`` 0; is ``error`` (never ``pass``) when CPU 3 has no ``cpuidle``
folder at all::

    - id: CPU-011
      kind: sysfs
      spec:
        path: devices/system/cpu/cpu{cpus}/cpuidle/state*/disable
        cpus: isolated
        where: {file: latency, op: ge, value: 11}
        value: 1
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from agent.checks.base import SpecError, SpecProblem
from agent.checks.compare import CONDITION_PROPERTIES, normalise, parse_condition
from agent.checks.valuekind import ValueKind, ValueSpec, Where, value_schema
from agent.host.cpus import format_cpus
from agent.host.facts import ReadError
from agent.host.processes import parse_cpu_list
from agent.host.snapshot import Snapshot, SnapshotRequest, Values
from agent.result import Evidence, Outcome, Status

_SELECTED = re.compile(r"\[([^\]\s]+)\]")

CPUS = "{cpus}"
"""What a path writes where the CPU's number goes."""
CPU_SET_NAMES = ("isolated", "online", "all")
"""The sets ``cpus`` may name instead of a CPU list."""
_SIBLING = re.compile(r"[A-Za-z0-9_.:@+-]+")
_MISSING_VERDICT = {"fail": "fail", "not_applicable": "not_applicable"}


def selected(text: str) -> str:
    """``always [madvise] never`` -> ``madvise``; text without a bracketed choice unchanged."""
    match = _SELECTED.search(text)
    return match.group(1) if match else text


def read_glob(key: str) -> str:
    """The glob the snapshot reads for ``key``: ``{cpus}`` becomes every CPU's number."""
    return key.replace(CPUS, "[0-9]*")


def _sibling(path: str, name: str) -> str:
    folder, sep, _ = path.rpartition("/")
    return f"{folder}{sep}{name}"


def _cpu_of(key: str) -> tuple[int, re.Pattern[str]]:
    """Which component of ``key`` holds ``{cpus}``, and what it reads as on the host."""
    for index, part in enumerate(key.split("/")):
        if CPUS in part:
            prefix, _, suffix = part.partition(CPUS)
            return index, re.compile(f"{re.escape(prefix)}(0|[1-9][0-9]*){re.escape(suffix)}")
    raise ValueError(f"no {CPUS} in {key!r}")  # parse() refuses such a spec


class SysfsKind(ValueKind):
    """Kernel settings under /sys."""

    name = "sysfs"
    summary = "A kernel setting under /sys; for choice lists the bracketed entry is compared."
    field = "path"
    noun = "sysfs path"
    spec_schema = value_schema(summary, field, {
        "description": "Path relative to /sys; '*' matches within a component; '{cpus}' "
        "stands for each CPU of 'cpus' in turn.",
        "examples": ["kernel/mm/transparent_hugepage/enabled",
                     "devices/system/cpu/cpu{cpus}/cpufreq/scaling_governor"],
    }, {
        "cpus": {"type": "string", "minLength": 1,
                 "examples": ["isolated", "online", "all", "2-5,8"],
                 "description": "The CPUs '{cpus}' in the path stands for, each judged and "
                 "shown: 'isolated' (the host's isolated CPUs), 'online', 'all' (present) or "
                 "a CPU list. A CPU without the file is judged by 'missing'."},
        "where": {"type": "object", "required": ["file", "value"],
                  "additionalProperties": False,
                  "description": "Judge only the matches whose sibling file (in the same "
                  "folder) satisfies this condition, e.g. {file: latency, op: ge, value: 11}.",
                  "properties": {"file": {"type": "string", "minLength": 1},
                                 **CONDITION_PROPERTIES}},
    })

    def key_problem(self, key: str) -> str | None:
        if key.count(CPUS) > 1:
            return f"{CPUS} may appear once"
        if CPUS in key:
            part = next(p for p in key.split("/") if CPUS in p)
            if any(c in part.replace(CPUS, "") for c in "*?[]"):
                return f"path component {part!r} mixes {CPUS} with a glob"
            key = key.replace(CPUS, "0")
        return super().key_problem(key)

    def parse(self, raw: Mapping[str, Any]) -> ValueSpec:
        spec, problems = self.parse_value(raw)
        cpus: str | frozenset[int] | None = None
        if "cpus" in raw:
            cpus, problem = _parse_cpus(str(raw["cpus"]))
            if problem is None and CPUS not in spec.key:
                problem = f"'cpus' stands for {CPUS} in the path, and the path has none"
            if problem is not None:
                problems.append(SpecProblem(("cpus",), problem))
        elif CPUS in spec.key:
            problems.append(SpecProblem(("path",), f"the path has {CPUS} but no 'cpus' says "
                                        "which CPUs"))
        where = None
        if "where" in raw:
            where, found = _parse_where(raw["where"])
            problems.extend(found)
        if problems:
            raise SpecError(problems)
        return dataclasses.replace(spec, cpus=cpus, where=where)

    def request(self, spec: ValueSpec) -> SnapshotRequest:
        paths = {read_glob(spec.key)}
        if spec.where is not None:
            paths.add(_sibling(read_glob(spec.key), spec.where.file))
        sets = frozenset({spec.cpus}) if isinstance(spec.cpus, str) else frozenset()
        return SnapshotRequest(sysfs=frozenset(paths), cpu_sets=sets)

    def values(self, spec: ValueSpec, snapshot: Snapshot) -> Values | None:
        values = snapshot.sysfs.get(read_glob(spec.key))
        if values is None:
            return None
        return {k: v if isinstance(v, ReadError) else selected(v) for k, v in values.items()}

    def evaluate(self, spec: ValueSpec, snapshot: Snapshot) -> Outcome:
        if spec.cpus is None and spec.where is None:
            return super().evaluate(spec, snapshot)
        return _Judge(spec, snapshot, self.values(spec, snapshot)).outcome()


def _parse_cpus(text: str) -> tuple[str | frozenset[int], str | None]:
    if text in CPU_SET_NAMES:
        return text, None
    try:
        cpus = parse_cpu_list(text)
    except ValueError:
        cpus = frozenset()
    if not cpus:
        return text, (f"invalid 'cpus' {text!r}: not {', '.join(CPU_SET_NAMES)} nor a CPU list "
                      "such as 2-5,8")
    return cpus, None


def _parse_where(raw: Mapping[str, Any]) -> tuple[Where, list[SpecProblem]]:
    name = str(raw.get("file", ""))
    condition, problems = parse_condition(raw, ("where",))
    if not _SIBLING.fullmatch(name) or name in (".", ".."):
        problems.append(SpecProblem(("where", "file"), f"'where' file {name!r} must be one file "
                                    "name in the folder of each match (no '/', no glob)"))
    return Where(name, condition), problems


class _Judge:
    """One row per judged file (per CPU with ``cpus``), the verdict over the rows."""

    def __init__(self, spec: ValueSpec, snapshot: Snapshot, values: Values | None) -> None:
        self.spec, self.snapshot, self.values = spec, snapshot, values
        self.expected = spec.condition.describe(spec.key)
        if spec.where is not None:
            self.expected += f" where {spec.where.condition.describe(spec.where.file)}"
        self.rows: list[dict[str, Any]] = []

    def outcome(self) -> Outcome:
        spec = self.spec
        if self.values is None:
            return Outcome(Status.ERROR, f"{spec.key} was not read",
                           Evidence(self.expected, "not read"))
        if spec.cpus is None:
            self.group(spec.key, self.values, None)
            return self.verdict(f"{spec.key} does not exist on this host")
        cpus = self.cpus()
        if isinstance(cpus, Outcome):
            return cpus
        self.expected += f" for {self.label()} {format_cpus(cpus)}"
        if not cpus:
            status = {"not_applicable": Status.NOT_APPLICABLE, "fail": Status.FAIL}.get(
                spec.missing, Status.ERROR)
            return Outcome(status, f"this host has no {self.label()}",
                           Evidence(self.expected, f"no {self.label()}"))
        index, pattern = _cpu_of(spec.key)
        by_cpu: dict[int, dict[str, str | ReadError]] = {cpu: {} for cpu in cpus}
        for key, value in self.values.items():
            parts = key.split("/")
            match = pattern.fullmatch(parts[index]) if len(parts) > index else None
            if match is None:
                if isinstance(value, ReadError):  # a folder above the CPUs' was unreadable
                    self.rows.append({"key": key, "value": None, "verdict": "error",
                                      "reason": value.reason})
                continue
            if int(match.group(1)) in by_cpu:
                by_cpu[int(match.group(1))][key] = value
        for cpu in sorted(cpus):
            self.group(spec.key.replace(CPUS, str(cpu)), by_cpu[cpu], cpu)
        return self.verdict(f"{spec.key} does not exist for any of the {self.label()} "
                            f"{format_cpus(cpus)}")

    def label(self) -> str:
        return "CPUs" if isinstance(self.spec.cpus, frozenset) else f"{self.spec.cpus} CPUs"

    def cpus(self) -> frozenset[int] | Outcome:
        spec = self.spec
        if isinstance(spec.cpus, frozenset):
            return spec.cpus
        assert spec.cpus is not None
        found = self.snapshot.cpu_sets.get(spec.cpus)
        if found is None:
            reason = f"the {spec.cpus} CPUs were not read"
        elif isinstance(found, ReadError):
            reason = f"the {spec.cpus} CPUs are unknown: {found.reason}"
        else:
            return found
        return Outcome(Status.ERROR, f"cannot evaluate: {reason}", Evidence(self.expected, reason))

    def group(self, shown: str, matches: Mapping[str, str | ReadError], cpu: int | None) -> None:
        """The rows of one CPU's matches (or of every match, without ``cpus``)."""
        at: dict[str, Any] = {} if cpu is None else {"cpu": cpu}
        if not matches:
            self.rows.append({**at, "key": shown, "value": None, "reason": "no such file",
                              "verdict": _MISSING_VERDICT.get(self.spec.missing, "error")})
            return
        where = self.spec.where
        skipped = 0
        for key, value in matches.items():
            row: dict[str, Any] = {**at, "key": key, "value": None}
            if isinstance(value, ReadError):  # judged or not: what it is cannot be told
                self.rows.append({**row, "verdict": "error", "reason": value.reason})
                continue
            if where is not None:
                judged, text = self.where(key, where)
                if judged is None:
                    self.rows.append({**row, "verdict": "error", "reason": text})
                    continue
                if not judged:
                    skipped += 1
                    continue
                row["where"] = f"{where.file} = {text}"
            verdict = self.spec.condition.test(value)
            row["value"] = value
            if isinstance(verdict, str):
                self.rows.append({**row, "verdict": "error", "reason": verdict})
            else:
                self.rows.append({**row, "verdict": "pass" if verdict else "fail"})
        if skipped == len(matches):
            assert where is not None
            self.rows.append({**at, "key": shown, "value": None, "verdict": "pass",
                              "reason": f"none of {skipped} matches has "
                              f"{where.condition.describe(where.file)}"})

    def where(self, key: str, where: Where) -> tuple[bool | None, str]:
        """Whether ``key`` is judged and its sibling's value; (None, why) when unknown."""
        siblings = self.snapshot.sysfs.get(_sibling(read_glob(self.spec.key), where.file), {})
        sibling = _sibling(key, where.file)
        value = siblings.get(sibling)
        if value is None:
            return None, f"no {sibling} beside it"
        if isinstance(value, ReadError):
            return None, f"{sibling}: {value.reason}"
        test = where.condition.test(selected(value))
        if isinstance(test, str):
            return None, f"{sibling}: {test}"
        return test, normalise(value)

    def verdict(self, absent: str) -> Outcome:
        rows = self.rows
        findings = [f"{r['key']} = {normalise(r['value'])}" if r["value"] is not None
                    else f"{r['key']}: {r['reason']}" for r in rows]
        evidence = Evidence(self.expected, "; ".join(findings), tuple(rows))
        failed = [f for f, r in zip(findings, rows, strict=True) if r["verdict"] == "fail"]
        errors = [f for f, r in zip(findings, rows, strict=True) if r["verdict"] == "error"]
        if failed:
            return Outcome(Status.FAIL, f"expected {self.expected}, found {', '.join(failed)}",
                           evidence)
        if errors:
            return Outcome(Status.ERROR, "cannot evaluate: " + "; ".join(errors), evidence)
        if all(r["verdict"] == "not_applicable" for r in rows):
            return Outcome(Status.NOT_APPLICABLE, absent, evidence)
        return Outcome(Status.PASS, f"{self.expected} holds", evidence)
