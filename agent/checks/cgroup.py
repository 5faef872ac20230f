"""``cgroup``: resource limits and CPU isolation of a systemd unit, a cgroup or a process.

Passes::

    - id: CG-001
      kind: cgroup
      spec:
        unit: fixgw.service
        limits:
          memory.max: {op: le, value: 8G}        # host: 4294967296
          memory.swap.max: 0                     # host: 0
          cpu.max: max                           # host: "max 100000"
        isolation: {cpus_isolated: true, exclusive: true}
        # host: isolcpus=managed_irq,domain,2-5; the unit runs on 2-3 and nothing else may

Fails::

    - id: CG-002
      kind: cgroup
      spec:
        process: {cmdline: 'mdfeed .*--venue=XLON'}
        limits: {pids.max: {op: set}}            # host: max
        max_throttled: 0                         # host: cpu.stat nr_throttled 17

Targets: a systemd unit (glob, searched as a cgroup directory of that name anywhere in the
tree), a cgroup path (glob per component) or processes (name and exe globs, a cmdline regex,
matched as :mod:`agent.checks.selectors` does for every kind; their cgroups come from
``/proc/PID/cgroup``). Each expectation is read from the hierarchy where its
controller is active: the cgroup2 file, or on v1 its v1 counterpart (``memory.max`` from
``memory.limit_in_bytes``, ``cpu.max`` from ``cpu.cfs_quota_us``/``cpu.cfs_period_us``,
``cpu.weight`` from ``cpu.shares`` converted as systemd converts ``CPUWeight=``), by
:func:`agent.host.cgroups.read_setting`: this kind only judges the values; the evidence names the
file that was read. A selector that matches nothing is ``error`` unless ``missing``
says otherwise. See docs/policy.md, section `cgroup`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from fractions import Fraction
from typing import Any, ClassVar

from agent.checks.base import CheckKind, SpecError, SpecProblem
from agent.checks.compare import MISSING_SCHEMA
from agent.checks.selectors import ProcessSelector, parse_selectors, select
from agent.checks.units import is_unit, unit_glob
from agent.core.record import record
from agent.host.cgroups import (
    BYTES,
    COUNT,
    COUNTERS,
    CPULIST,
    IO,
    PARTITION,
    QUOTA,
    SETTINGS,
    WEIGHT,
    CgroupNode,
    Hierarchy,
    cpu_weight_to_shares,
    own_cpuset,
    parse_io,
    parse_quota,
    parse_size,
    read_counter,
    read_setting,
    setting_hierarchy,
)
from agent.host.cpus import format_cpus
from agent.host.facts import ReadError
from agent.host.isolation import host_isolation
from agent.host.processes import Process, parse_cpu_list
from agent.host.snapshot import Snapshot, SnapshotRequest
from agent.policy.globs import bracket_problem
from agent.result import Evidence, Outcome, Status

# --- settings ---------------------------------------------------------------------------------

_OPS: dict[str, tuple[str, ...]] = {
    BYTES: ("set", "eq", "le", "ge"),
    COUNT: ("set", "eq", "le", "ge"),
    QUOTA: ("set", "eq", "le", "ge"),
    WEIGHT: ("eq", "le", "ge"),
    CPULIST: ("set", "eq", "subset_of"),
    PARTITION: ("eq",),
    IO: ("set", "eq"),
}
"""Value type -> the ops an expectation on it may use."""


# --- spec -------------------------------------------------------------------------------------


@record
class Expectation:
    """One ``limits`` entry."""

    setting: str
    op: str
    value: Any
    """Parsed expected value (type depends on the setting)."""
    shown: str
    """Expected value as written, for evidence."""

    def describe(self) -> str:
        if self.op == "set":
            return f"{self.setting} is set (not max)"
        symbol = {"eq": "==", "le": "<=", "ge": ">=", "subset_of": "within"}[self.op]
        return f"{self.setting} {symbol} {self.shown}"


@record
class Isolation:
    """The trading isolation rule."""

    cpus_isolated: bool
    """The target's CPUs must all be isolated (isolcpus domain, or an isolated partition)."""
    nohz_full: bool
    """The target's CPUs must all be in ``nohz_full``."""
    exclusive: bool
    """No other process or cgroup may be allowed on the target's CPUs."""


@record
class CgroupSpec:
    """Parsed ``cgroup`` spec."""

    unit: str | None
    cgroup: str | None
    process: ProcessSelector | None
    """Name and exe globs, a cmdline regex; all must match."""
    limits: tuple[Expectation, ...]
    max_throttled: int | None
    max_oom_kills: int | None
    isolation: Isolation | None
    missing: str

    @property
    def selector(self) -> str:
        if self.unit is not None:
            return f"unit {self.unit}"
        if self.cgroup is not None:
            return f"cgroup {self.cgroup}"
        chosen = self.process or ProcessSelector()
        return "process " + ", ".join(
            [f"{k} = {p}" for k, p in (("name", chosen.name), ("exe", chosen.exe))
             if p is not None]
            + ([f"cmdline ~ /{chosen.cmdline.pattern}/"] if chosen.cmdline is not None else []))


def _entry_schema(setting: str) -> dict[str, Any]:
    # Every op is accepted by the schema; parse() says which ones a setting takes, in words.
    ops = ("set", "eq", "le", "ge", "subset_of")
    allowed = ", ".join(_OPS[SETTINGS[setting][0]])
    return {
        "description": f"Expectation on {setting}: a value (op eq) or {{op, value}}; "
                       f"ops: {allowed}.",
        "anyOf": [
            {"type": ["string", "integer"]},
            {
                "type": "object",
                "required": ["op"],
                "additionalProperties": False,
                "properties": {
                    "op": {"enum": list(ops)},
                    "value": {"type": ["string", "integer"]},
                },
            },
        ],
    }


_PATTERN = {"type": "string", "minLength": 1}


class CgroupKind(CheckKind[CgroupSpec]):
    """Resource limits and CPU isolation of cgroups."""

    name = "cgroup"
    summary = ("Resource limits (memory, pids, CPU quota/weight, cpuset, io) and CPU isolation of "
               "a systemd unit, a cgroup or a process.")
    spec_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "description": summary,
        "additionalProperties": False,
        "properties": {
            "unit": {"type": "string", "minLength": 1,
                     "description": "systemd unit name or glob (no '.': '.service' is added).",
                     "examples": ["fixgw.service", "md-*.service"]},
            "cgroup": {"type": "string", "pattern": "^/",
                       "description": "cgroup path; '*' and '?' match within one component.",
                       "examples": ["/trading.slice/fixgw.service"]},
            "process": {
                "type": "object", "additionalProperties": False, "minProperties": 1,
                "description": "Processes matching all of: name (glob on comm), exe (glob on "
                               "the executable path), cmdline (regex searched in the "
                               "arguments joined by spaces).",
                "properties": {"name": _PATTERN, "exe": _PATTERN, "cmdline": _PATTERN},
            },
            "limits": {
                "type": "object", "additionalProperties": False, "minProperties": 1,
                "description": "Expectations on cgroup2 settings (mapped to v1 files on v1).",
                "properties": {s: _entry_schema(s) for s in SETTINGS},
            },
            "max_throttled": {"type": "integer", "minimum": 0,
                              "description": "Fail when cpu.stat nr_throttled exceeds this."},
            "max_oom_kills": {"type": "integer", "minimum": 0,
                              "description": "Fail when memory.events oom_kill exceeds this."},
            "isolation": {
                "type": "object", "additionalProperties": False, "minProperties": 1,
                "description": "CPU isolation of the target's CPUs.",
                "properties": {
                    "cpus_isolated": {"type": "boolean", "description":
                                      "CPUs lie within isolcpus (domain) or an isolated "
                                      "cpuset partition."},
                    "nohz_full": {"type": "boolean",
                                  "description": "CPUs lie within nohz_full."},
                    "exclusive": {"type": "boolean", "description":
                                  "No other process or cgroup is allowed on the CPUs."},
                },
            },
            "missing": {**MISSING_SCHEMA,
                        "description": "Verdict when the selector matches nothing "
                                       "(default: error, fail closed)."},
        },
    }

    def parse(self, raw: Mapping[str, Any]) -> CgroupSpec:
        problems: list[SpecProblem] = []
        selectors = [k for k in ("unit", "cgroup", "process") if k in raw]
        if len(selectors) != 1:
            problems.append(SpecProblem((), "give exactly one of unit, cgroup or process" + (
                f" (found {', '.join(selectors)})" if selectors else "")))
        unit = unit_glob(raw, problems)
        cgroup = raw.get("cgroup")
        if cgroup is not None:
            cgroup = "/" + str(cgroup).strip("/")
            if problem := bracket_problem(cgroup):
                problems.append(SpecProblem(("cgroup",), f"invalid cgroup glob: {problem}",
                                            "invalid-glob"))
        process = (parse_selectors(raw["process"], problems, ("process",))
                   if raw.get("process") else None)
        limits = [self._expectation(setting, entry, problems)
                  for setting, entry in dict(raw.get("limits") or {}).items()]
        iso_raw = raw.get("isolation")
        isolation = None
        if iso_raw is not None:
            isolation = Isolation(bool(iso_raw.get("cpus_isolated", False)),
                                  bool(iso_raw.get("nohz_full", False)),
                                  bool(iso_raw.get("exclusive", False)))
            if not (isolation.cpus_isolated or isolation.nohz_full or isolation.exclusive):
                problems.append(SpecProblem(("isolation",), "isolation asks for nothing: set "
                                            "cpus_isolated, nohz_full or exclusive to true"))
        if not limits and isolation is None and "max_throttled" not in raw \
                and "max_oom_kills" not in raw:
            problems.append(SpecProblem((), "a cgroup check needs limits, isolation, "
                                        "max_throttled or max_oom_kills"))
        if problems:
            raise SpecError(problems)
        return CgroupSpec(
            unit=unit, cgroup=cgroup, process=process,
            limits=tuple(e for e in limits if e is not None),
            max_throttled=raw.get("max_throttled"), max_oom_kills=raw.get("max_oom_kills"),
            isolation=isolation, missing=str(raw.get("missing", "error")),
        )

    @staticmethod
    def _expectation(setting: str, entry: Any, problems: list[SpecProblem]) -> Expectation | None:
        kind = SETTINGS[setting][0]
        if isinstance(entry, Mapping):
            op, value = str(entry.get("op", "eq")), entry.get("value")
        else:
            op, value = "eq", entry
        at = ("limits", setting)
        if op not in _OPS[kind]:
            problems.append(SpecProblem((*at, "op"), f"op '{op}' does not apply to {setting} "
                                        f"(use {', '.join(_OPS[kind])})"))
            return None
        if op == "set":
            if value is not None:
                problems.append(SpecProblem((*at, "value"), "op 'set' takes no value"))
            return Expectation(setting, op, None, "")
        if value is None:
            problems.append(SpecProblem(at, f"op '{op}' needs a value"))
            return None
        text = str(value).strip()
        try:
            parsed: Any
            if kind == BYTES:
                parsed = parse_size(text)
            elif kind == COUNT:
                if text != "max" and not text.isdigit():
                    raise ValueError(f"{text!r} is not a number or 'max'")
                parsed = None if text == "max" else int(text)
            elif kind == QUOTA:
                parsed = parse_quota(text)
                if op != "eq" and parsed[0] is None:
                    raise ValueError(f"op '{op}' with 'max' always holds or never: use eq")
            elif kind == WEIGHT:
                if not text.isdigit() or not 1 <= int(text) <= 10000:
                    raise ValueError(f"{text!r} is not a weight between 1 and 10000")
                parsed = int(text)
            elif kind == CPULIST:
                parsed = parse_cpu_list(text)
                if not parsed:
                    raise ValueError("empty list")
            elif kind == PARTITION:
                if text not in ("member", "root", "isolated"):
                    raise ValueError(f"{text!r} is not member, root or isolated")
                parsed = text
            else:
                parsed = parse_io(text)
        except ValueError as exc:
            problems.append(SpecProblem((*at, "value"), f"{setting}: {exc}"))
            return None
        if kind in (BYTES, COUNT) and op in ("le", "ge") and parsed is None:
            problems.append(SpecProblem((*at, "value"), f"op '{op}' needs a number, not max"))
            return None
        return Expectation(setting, op, parsed, text)

    def request(self, spec: CgroupSpec) -> SnapshotRequest:
        # Of each process: its cgroups; its CPU affinity for isolation; what selects it.
        fields = {"cgroups"} | (spec.process.process_fields() if spec.process else set())
        if spec.isolation is not None:
            fields.add("cpus_allowed")
        return SnapshotRequest(cgroups=True, process_fields=frozenset(fields),
                               cmdline=spec.isolation is not None)

    def evaluate(self, spec: CgroupSpec, snapshot: Snapshot) -> Outcome:
        return _Evaluation(spec, snapshot).run()


# --- evaluation -------------------------------------------------------------------------------


@record
class Target:
    """One cgroup (or group of processes) the selector found."""

    label: str
    path: str | None
    """The cgroup path found by unit/cgroup selection (``None`` for process selection)."""
    pids: frozenset[int]
    """Member processes: the cgroup subtree's processes, or the selected processes."""
    by_membership: bool
    """Resolve each hierarchy through the members' ``/proc/PID/cgroup`` (process selection)."""


class _Evaluation:
    def __init__(self, spec: CgroupSpec, snapshot: Snapshot) -> None:
        self.spec = spec
        self.snapshot = snapshot
        self.rows: list[dict[str, Any]] = []
        self.failures: list[str] = []
        self.errors: list[str] = []

    def _expected(self) -> str:
        parts = [e.describe() for e in self.spec.limits]
        if self.spec.max_throttled is not None:
            parts.append(f"nr_throttled <= {self.spec.max_throttled}")
        if self.spec.max_oom_kills is not None:
            parts.append(f"oom_kill <= {self.spec.max_oom_kills}")
        iso = self.spec.isolation
        if iso is not None:
            parts += [name for name, on in (("CPUs isolated", iso.cpus_isolated),
                                            ("CPUs in nohz_full", iso.nohz_full),
                                            ("CPUs exclusive", iso.exclusive)) if on]
        return f"{self.spec.selector}: " + "; ".join(parts)

    def _done(self, status: Status, message: str, actual: str) -> Outcome:
        return Outcome(status, message, Evidence(self._expected(), actual, tuple(self.rows)))

    def run(self) -> Outcome:
        tree, table = self.snapshot.cgroups, self.snapshot.processes
        if tree is None or table is None:
            return self._done(Status.ERROR, "cgroups or processes were not read", "not read")
        if isinstance(tree, ReadError):
            return self._done(Status.ERROR, f"cannot read cgroups: {tree.reason}", tree.reason)
        self.tree, self.table = tree, table
        for hierarchy in tree.hierarchies:
            for error in hierarchy.errors:
                self.errors.append(f"{hierarchy.label}: {error}")
        targets = self._targets()
        if not targets:
            status = {"fail": Status.FAIL, "not_applicable": Status.NOT_APPLICABLE}.get(
                self.spec.missing, Status.ERROR)
            why = f"no cgroup matches {self.spec.selector}"
            if self.errors:
                why += " (not every cgroup or process could be read: " + "; ".join(
                    self.errors) + ")"
                status = Status.ERROR if status is not Status.FAIL else status
            return self._done(status, why, "no match")
        for target in targets:
            for expectation in self.spec.limits:
                self._limit(target, expectation)
            self._counters(target)
        if self.spec.isolation is not None:
            self._isolation(targets, self.spec.isolation)
        actual = "; ".join(f"{t.label}" for t in targets)
        if self.failures:
            return self._done(Status.FAIL, "; ".join(self.failures), actual)
        if self.errors:
            return self._done(Status.ERROR, "cannot evaluate: " + "; ".join(self.errors), actual)
        return self._done(Status.PASS, f"{len(targets)} target(s) satisfy every expectation",
                          actual)

    # --- selection ----------------------------------------------------------------------------

    def _search_order(self) -> list[Hierarchy]:
        unified = [h for h in self.tree.hierarchies if h.version == 2]
        named = [h for h in self.tree.hierarchies if h.version == 1 and "name=systemd"
                 in h.controllers]
        rest = [h for h in self.tree.hierarchies if h not in unified and h not in named]
        return unified + named + rest

    def _subtree_pids(self, hierarchy: Hierarchy, path: str) -> frozenset[int]:
        pids: set[int] = set()
        prefix = path.rstrip("/") + "/"
        for node_path, node in hierarchy.nodes.items():
            if node_path == path or node_path.startswith(prefix):
                procs = node.procs()
                if isinstance(procs, frozenset):
                    pids |= procs
        return frozenset(pids)

    def _targets(self) -> list[Target]:
        spec = self.spec
        if spec.process is not None:
            return self._process_targets(spec.process)
        found: dict[str, Hierarchy] = {}
        for hierarchy in self._search_order():
            for path in hierarchy.nodes:
                if path in found:
                    continue
                if spec.unit is not None:
                    hit = is_unit(path, spec.unit)
                else:
                    assert spec.cgroup is not None
                    hit = _path_match(path, spec.cgroup)
                if hit:
                    found[path] = hierarchy
        return [Target(f"cgroup {path}", path, self._subtree_pids(h, path), False)
                for path, h in sorted(found.items())]

    def _process_targets(self, selector: ProcessSelector) -> list[Target]:
        groups: dict[tuple[Any, ...], list[Process]] = {}
        matched, unsure = select(selector, self.table.processes.values())
        self.errors.extend(f"pid {process.pid} might match: {why}" for process, why in unsure)
        for process in matched:
            groups.setdefault(process.cgroups, []).append(process)
        targets = []
        for processes in groups.values():
            shown = _shown_cgroup(processes[0])
            pids = ", ".join(f"{p.pid} {p.name}" for p in processes)
            targets.append(Target(f"pid {pids} in {shown}", None,
                                  frozenset(p.pid for p in processes), True))
        return targets

    def _nodes(self, target: Target, hierarchy: Hierarchy) -> list[CgroupNode] | str:
        """The cgroup(s) of ``target`` in ``hierarchy``, or why there are none."""
        if target.path is not None and target.path in hierarchy.nodes:
            return [hierarchy.nodes[target.path]]
        paths: set[str] = set()
        for pid in sorted(target.pids):
            process = self.table.processes.get(pid)
            if process is None:
                continue
            if "cgroup" in process.unreadable:
                return f"cannot read /proc/{pid}/cgroup: {process.unreadable['cgroup']}"
            path = self.tree.membership(hierarchy, process.cgroups)
            if path is not None:
                paths.add(path)
        if not paths:
            where = target.path or target.label
            return f"{where} has no cgroup in the {hierarchy.label} hierarchy"
        missing = sorted(p for p in paths if p not in hierarchy.nodes)
        if missing:
            return f"cgroup {missing[0]} is not in the {hierarchy.label} hierarchy (removed?)"
        return [hierarchy.nodes[p] for p in sorted(paths)]

    # --- limits -------------------------------------------------------------------------------

    def _limit(self, target: Target, expectation: Expectation) -> None:
        setting = expectation.setting
        row: dict[str, Any] = {"target": target.label, "setting": setting,
                               "expected": expectation.describe()}
        hierarchy = setting_hierarchy(self.tree, setting)
        if isinstance(hierarchy, str):
            self._error(row, hierarchy)
            return
        nodes = self._nodes(target, hierarchy)
        if isinstance(nodes, str):
            self._error(row, nodes)
            return
        for node in nodes:
            node_row = {**row, "cgroup": node.path}
            reading = read_setting(hierarchy, node, setting)
            if isinstance(reading, str):
                self._error(node_row, reading)
                continue
            node_row.update({"version": reading.version, "file": ", ".join(reading.files),
                             "value": reading.shown})
            if reading.note:
                node_row["note"] = reading.note
            verdict = _judge(expectation, reading.value)
            node_row["verdict"] = "pass" if verdict else "fail"
            self.rows.append(node_row)
            if not verdict:
                self.failures.append(f"{node.path}: expected {expectation.describe()}, found "
                                     f"{reading.shown} ({', '.join(reading.files)})")

    def _error(self, row: dict[str, Any], reason: str) -> None:
        self.rows.append({**row, "verdict": "error", "reason": reason})
        self.errors.append(f"{row.get('cgroup', row['target'])}: {reason}")

    # --- throttling and OOM kills -------------------------------------------------------------

    def _counters(self, target: Target) -> None:
        for what, limit in (("throttled", self.spec.max_throttled),
                            ("oom_kill", self.spec.max_oom_kills)):
            controller = COUNTERS[what]
            row: dict[str, Any] = {"target": target.label, "setting": what}
            hierarchy = self.tree.for_controller(controller)
            if hierarchy is None:
                if limit is not None:
                    self._error(row, f"the {controller} controller is not mounted on this host")
                continue
            nodes = self._nodes(target, hierarchy)
            if isinstance(nodes, str):
                if limit is not None:
                    self._error(row, nodes)
                continue
            for node in nodes:
                node_row = {**row, "cgroup": node.path}
                got = read_counter(hierarchy, node, what)
                if isinstance(got, str):
                    if limit is not None:
                        self._error(node_row, got)
                    continue
                count, shown, path = got
                node_row.update({"version": hierarchy.version, "file": path, "value": shown})
                if limit is not None:
                    node_row["expected"] = f"<= {limit}"
                    node_row["verdict"] = "pass" if count <= limit else "fail"
                    if count > limit:
                        self.failures.append(f"{node.path}: {what} {count} > {limit} ({path})")
                self.rows.append(node_row)

    # --- isolation ----------------------------------------------------------------------------

    def _isolation(self, targets: list[Target], rule: Isolation) -> None:
        members = frozenset().union(*(t.pids for t in targets))
        cpus: set[int] = set()
        for target in targets:
            got = self._target_cpus(target)
            if isinstance(got, str):
                self._error({"target": target.label, "setting": "isolation"}, got)
                return
            cpus |= got[0]
            self.rows.append({"target": target.label, "setting": "cpus", "value":
                              format_cpus(got[0]), "source": got[1]})
        isolated, nohz, sources = self._host_isolated()
        shown = format_cpus(cpus)
        if rule.cpus_isolated:
            row: dict[str, Any] = {"setting": "isolated CPUs", "value": format_cpus(isolated),
                                   "source": "; ".join(sources) or "none found",
                                   "expected": f"contains {shown}"}
            outside = cpus - isolated
            row["verdict"] = "fail" if outside else "pass"
            self.rows.append(row)
            if outside:
                self.failures.append(f"CPUs {format_cpus(outside)} of the target are not isolated "
                                     f"(isolated: {format_cpus(isolated)})")
        if rule.nohz_full:
            outside = cpus - (nohz or frozenset())
            self.rows.append({"setting": "nohz_full", "value": format_cpus(nohz or ()),
                              "expected": f"contains {shown}",
                              "verdict": "fail" if outside else "pass"})
            if outside:
                self.failures.append(f"CPUs {format_cpus(outside)} of the target are not in "
                                     "nohz_full")
        if rule.exclusive:
            self._intruders(targets, members, frozenset(cpus))

    def _target_cpus(self, target: Target) -> tuple[frozenset[int], str] | str:
        """CPUs the target may run on: its processes' affinity, else its effective cpuset."""
        allowed: set[int] = set()
        live = [self.table.processes[p] for p in sorted(target.pids) if p in self.table.processes]
        for process in live:
            if process.cpus_allowed is None:
                return f"cannot read the CPU affinity of pid {process.pid}"
            allowed |= process.cpus_allowed
        if live:
            return frozenset(allowed), "affinity of " + ", ".join(str(p.pid) for p in live)
        hierarchy = self.tree.for_controller("cpuset")
        if hierarchy is None:
            return f"{target.label} has no processes and no cpuset controller is mounted"
        nodes = self._nodes(target, hierarchy)
        if isinstance(nodes, str):
            return nodes
        for node in nodes:
            reading = read_setting(hierarchy, node, "cpuset.cpus")
            if isinstance(reading, str):
                return reading
            allowed |= reading.value
        return frozenset(allowed), "effective cpuset of " + ", ".join(n.path for n in nodes)

    def _host_isolated(self) -> tuple[frozenset[int], frozenset[int] | None, list[str]]:
        found = host_isolation(self.snapshot.cmdline, self.tree)
        self.errors.extend(found.problems)
        return found.isolated, found.nohz_full, found.sources()

    def _intruders(self, targets: list[Target], members: frozenset[int],
                   cpus: frozenset[int]) -> None:
        # Processes: anything allowed on a target CPU that is not a member. Per-CPU kernel
        # threads (ksoftirqd/N, kworker/N:M, migration/N, cpuhp/N) are bound by the kernel to
        # one CPU, exist on every CPU by design and cannot be moved: they are not placement
        # intruders (their noise is what nohz_full/rcu_nocbs address). Unbound kernel threads
        # with a wider affinity are reported: their affinity can be changed.
        for process in self.table.processes.values():
            if process.pid in members:
                continue
            if process.cpus_allowed is None:
                self._error({"target": f"pid {process.pid} {process.name}",
                             "setting": "intruder"}, "CPU affinity unreadable")
                continue
            if process.kernel_thread and len(process.cpus_allowed) == 1:
                continue
            overlap = process.cpus_allowed & cpus
            if overlap:
                cgroup = _shown_cgroup(process)
                self.rows.append({"setting": "intruder", "pid": process.pid,
                                  "name": process.name, "cgroup": cgroup,
                                  "cpus_allowed": format_cpus(process.cpus_allowed),
                                  "overlap": format_cpus(overlap), "verdict": "fail"})
                self.failures.append(f"pid {process.pid} ({process.name}, {cgroup}) is allowed "
                                     f"on CPUs {format_cpus(overlap)}")
        # Cgroups: one that configures its own cpuset overlapping the target's CPUs, other than
        # the targets, their ancestors (which must contain them) and their descendants.
        hierarchy = self.tree.for_controller("cpuset")
        if hierarchy is None:
            return
        own: set[str] = set()
        for target in targets:
            nodes = self._nodes(target, hierarchy)
            if isinstance(nodes, list):
                own |= {n.path for n in nodes}
        for node in hierarchy.nodes.values():
            if node.path == hierarchy.mount_root or any(
                    _related(node.path, p) for p in own):
                continue
            found = own_cpuset(hierarchy, node)
            if found is None:
                continue  # inherits its parent's CPUs: its processes are checked above
            if isinstance(found, str):
                self.errors.append(found)
                continue
            configured, granted = found
            overlap = granted & cpus
            if overlap:
                self.rows.append({"setting": "intruder", "cgroup": node.path,
                                  "file": hierarchy.host_path(node.path, "cpuset.cpus"),
                                  "cpus": configured, "overlap": format_cpus(overlap),
                                  "verdict": "fail"})
                self.failures.append(f"cgroup {node.path} is configured for CPUs "
                                     f"{format_cpus(overlap)} ({hierarchy.label})")


def _shown_cgroup(process: Process) -> str:
    """The cgroup to name a process by: systemd's hierarchy (v1), else cgroup2, else any."""
    memberships = process.cgroups
    return next((m.path for m in memberships if "name=systemd" in m.controllers),
                next((m.path for m in memberships if m.hierarchy == 0),
                     memberships[0].path if memberships else "?"))


def _related(a: str, b: str) -> bool:
    """Whether one of two cgroup paths is the other or an ancestor of it."""
    a, b = a.rstrip("/") + "/", b.rstrip("/") + "/"
    return a.startswith(b) or b.startswith(a)


def _path_match(path: str, pattern: str) -> bool:
    parts, wanted = path.strip("/").split("/"), pattern.strip("/").split("/")
    if pattern == "/":
        return path == "/"
    return len(parts) == len(wanted) and all(
        fnmatch.fnmatchcase(p, w) for p, w in zip(parts, wanted, strict=True))


def _judge(expectation: Expectation, actual: Any) -> bool:
    """Whether ``actual`` (parsed as the setting's type) satisfies ``expectation``."""
    kind = SETTINGS[expectation.setting][0]
    op, want = expectation.op, expectation.value
    if kind == WEIGHT and isinstance(actual, tuple):  # v1 cpu.shares
        shares, want = actual[1], cpu_weight_to_shares(want)
        return bool({"eq": shares == want, "le": shares <= want, "ge": shares >= want}[op])
    if kind in (BYTES, COUNT):
        if op == "set":
            return actual is not None
        if op == "eq":
            return bool(actual == want)
        if actual is None:  # unlimited
            return op == "ge"
        return bool(actual <= want if op == "le" else actual >= want)
    if kind == QUOTA:
        quota, period = actual
        if op == "set":
            return quota is not None
        wanted_quota, wanted_period = want
        if op == "eq":
            if wanted_quota is None or quota is None:
                return wanted_quota is quota
            if expectation.shown.endswith("%"):
                return Fraction(quota, period) == Fraction(wanted_quota, wanted_period)
            return (quota, period) == (wanted_quota, wanted_period)
        if quota is None:
            return op == "ge"
        share, wanted = Fraction(quota, period), Fraction(wanted_quota, wanted_period)
        return share <= wanted if op == "le" else share >= wanted
    if kind == WEIGHT:
        return bool({"eq": actual == want, "le": actual <= want, "ge": actual >= want}[op])
    if kind == CPULIST:
        if op == "set":
            return bool(actual)
        return bool(actual == want if op == "eq" else actual <= want)
    if kind == IO:
        return bool(actual) if op == "set" else bool(actual == want)
    return bool(actual == want)  # partition

