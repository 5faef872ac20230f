"""``process``: posture of named processes: running or not, user, capabilities, CPUs, scheduling.

Passes::

    - id: PROC-101
      kind: process
      spec:
        name: fixgw                       # comm glob
        required: true
        not_root: true
        no_new_privs: true
        capabilities: {effective: {subset_of: [CAP_NET_BIND_SERVICE, CAP_SYS_NICE]}}
        sched: {policy: SCHED_FIFO, priority: {ge: 50}}
      # fixgw runs as uid 1001 with CapEff = CAP_SYS_NICE, SCHED_FIFO priority 60

Fails::

    - id: PROC-001
      kind: process
      spec: {name: telnetd, forbidden: true}
      # pid 812 telnetd is running: the evidence names pid, user and command line

Selectors (all given must match, :mod:`agent.checks.selectors`): ``name`` (glob on comm),
``exe`` (glob on the executable's path), ``cmdline`` (regex searched in the arguments joined by
spaces), ``user`` (name or uid of the effective uid). Kernel threads never match unless
``kernel_threads: true``. A process whose selector fields cannot be read (permission) might
match, so it makes the check ``error`` unless a definite failure decides it. A field an
expectation needs that cannot be read is ``error`` naming the pid (and tid) and the field, never
``pass``. When no process matches, ``required`` / ``count`` fail, ``forbidden`` passes and every
other expectation is ``not_applicable``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from agent.checks.base import CheckKind, SpecError, SpecPath, SpecProblem
from agent.checks.selectors import (
    ProcessSelector,
    host_text,
    parse_selectors,
    select,
    who,
    who_row,
    why_unreadable,
)
from agent.core.record import record
from agent.core.schema_errors import suggest
from agent.host.cpus import format_cpus
from agent.host.processes import (
    SCHED_POLICIES,
    Detail,
    Process,
    Thread,
    parse_cpu_list,
)
from agent.host.snapshot import Snapshot, SnapshotRequest
from agent.result import Evidence, Outcome, Status

CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",               # 0
    "CAP_DAC_OVERRIDE",        # 1
    "CAP_DAC_READ_SEARCH",     # 2
    "CAP_FOWNER",              # 3
    "CAP_FSETID",              # 4
    "CAP_KILL",                # 5
    "CAP_SETGID",              # 6
    "CAP_SETUID",              # 7
    "CAP_SETPCAP",             # 8
    "CAP_LINUX_IMMUTABLE",     # 9
    "CAP_NET_BIND_SERVICE",    # 10
    "CAP_NET_BROADCAST",       # 11
    "CAP_NET_ADMIN",           # 12
    "CAP_NET_RAW",             # 13
    "CAP_IPC_LOCK",            # 14
    "CAP_IPC_OWNER",           # 15
    "CAP_SYS_MODULE",          # 16
    "CAP_SYS_RAWIO",           # 17
    "CAP_SYS_CHROOT",          # 18
    "CAP_SYS_PTRACE",          # 19
    "CAP_SYS_PACCT",           # 20
    "CAP_SYS_ADMIN",           # 21
    "CAP_SYS_BOOT",            # 22
    "CAP_SYS_NICE",            # 23
    "CAP_SYS_RESOURCE",        # 24
    "CAP_SYS_TIME",            # 25
    "CAP_SYS_TTY_CONFIG",      # 26
    "CAP_MKNOD",               # 27
    "CAP_LEASE",               # 28
    "CAP_AUDIT_WRITE",         # 29
    "CAP_AUDIT_CONTROL",       # 30
    "CAP_SETFCAP",             # 31
    "CAP_MAC_OVERRIDE",        # 32
    "CAP_MAC_ADMIN",           # 33
    "CAP_SYSLOG",              # 34
    "CAP_WAKE_ALARM",          # 35
    "CAP_BLOCK_SUSPEND",       # 36
    "CAP_AUDIT_READ",          # 37
    "CAP_PERFMON",             # 38
    "CAP_BPF",                 # 39
    "CAP_CHECKPOINT_RESTORE",  # 40 (CAP_LAST_CAP since Linux 5.9)
)
"""Capability names by bit number, from include/uapi/linux/capability.h."""

CAP_BITS: dict[str, int] = {name: bit for bit, name in enumerate(CAPABILITIES)}

CAP_SETS: dict[str, tuple[str, str]] = {
    "effective": ("cap_eff", "CapEff"),
    "permitted": ("cap_prm", "CapPrm"),
    "bounding": ("cap_bnd", "CapBnd"),
    "ambient": ("cap_amb", "CapAmb"),
}
"""Spec key -> (Process attribute, /proc/PID/status field)."""

SECCOMP_MODES = {"disabled": 0, "strict": 1, "filter": 2}
_SECCOMP_NAMES = {v: k for k, v in SECCOMP_MODES.items()}
_POLICY_NAMES = tuple(SCHED_POLICIES.values())
_POLICY_NUMBERS = {v: k for k, v in SCHED_POLICIES.items()}
_CPU_LIST = re.compile(r"[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*")

_CAP_LIST = {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True}
_CAP_RULE = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "subset_of": {**_CAP_LIST, "description": "Every capability in the set must be listed."},
        "must_not_have": {**_CAP_LIST, "minItems": 1,
                          "description": "None of these may be in the set."},
    },
}
_THREADS = {"type": "boolean", "description": "Check every thread, not only the main thread."}


@record
class CapRule:
    """Conditions on one capability set."""

    set_key: str
    """``effective``, ``permitted``, ``bounding`` or ``ambient``."""
    allowed: int | None
    """Mask the set must stay within (``subset_of``); None when not given."""
    forbidden: int
    """Mask of capabilities the set must not hold (``must_not_have``)."""


@record
class ProcessSpec:
    """Parsed ``process`` spec."""

    selector: ProcessSelector = ProcessSelector()
    """Which processes are judged."""
    count: tuple[int, int | None] | None = None
    """(min, max) number of matching processes; ``required: true`` is (1, None)."""
    forbidden: bool = False
    """No process may match."""
    not_root: bool = False
    """Effective uid must not be 0."""
    no_new_privs: bool = False
    """NoNewPrivs must be set."""
    caps: tuple[CapRule, ...] = ()
    """Capability-set conditions."""
    cpus: frozenset[int] | None = None
    """Allowed CPUs must be a subset of these."""
    cpus_text: str = ""
    """``cpus.subset_of`` as written."""
    sched_policy: str | None = None
    """e.g. ``SCHED_FIFO``."""
    priority: tuple[tuple[str, int], ...] = ()
    """(op, value) conditions on the real-time priority, op in ge, le, eq."""
    seccomp_mode: str | None = None
    """``disabled``, ``strict`` or ``filter``."""
    min_filters: int | None = None
    """Minimum number of attached seccomp filters."""
    nnp_threads: bool = False
    """Check no_new_privs on every thread."""
    cpus_threads: bool = False
    """Check affinity on every thread."""
    seccomp_threads: bool = False
    """Check seccomp on every thread."""

    @property
    def needs_threads(self) -> bool:
        return ((self.nnp_threads and self.no_new_privs) or (self.cpus_threads and self.cpus
                is not None) or (self.seccomp_threads and (self.seccomp_mode is not None
                                                           or self.min_filters is not None)))

    @property
    def has_posture(self) -> bool:
        """Whether any expectation beyond running / not running is given."""
        return bool(self.not_root or self.no_new_privs or self.caps or self.cpus is not None
                    or self.sched_policy or self.priority or self.seccomp_mode
                    or self.min_filters is not None)


class ProcessKind(CheckKind[ProcessSpec]):
    """Posture of processes selected by name, executable, command line or user."""

    name = "process"
    summary = ("Processes selected by name, exe, cmdline or user: required, forbidden, user, "
               "capabilities, no_new_privs, CPU affinity, scheduling and seccomp mode.")
    spec_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "description": summary,
        "additionalProperties": False,
        "anyOf": [{"required": [k]} for k in ("name", "exe", "cmdline", "user")],
        "properties": {
            "name": {"type": "string", "minLength": 1,
                     "description": "Glob on the process name (comm, at most 15 bytes).",
                     "examples": ["sshd", "fixgw*"]},
            "exe": {"type": "string", "minLength": 1,
                    "description": "Glob on the executable path ('*' also matches '/').",
                    "examples": ["/opt/fixgw/bin/*"]},
            "cmdline": {"type": "string", "minLength": 1,
                        "description": "Python regex searched in the arguments joined by spaces.",
                        "examples": [r"fixgw .*--venue=LSE"]},
            "user": {"type": ["string", "integer"], "minimum": 0,
                     "description": "Effective user: a name from the host's passwd, or a uid."},
            "kernel_threads": {"type": "boolean", "default": False,
                               "description": "Let kernel threads match (never by default)."},
            "required": {"type": "boolean", "description": "At least one process must match."},
            "count": {
                "type": "object", "additionalProperties": False, "minProperties": 1,
                "properties": {"min": {"type": "integer", "minimum": 0, "default": 1},
                               "max": {"type": "integer", "minimum": 0}},
                "description": "How many processes must match (min defaults to 1).",
            },
            "forbidden": {"type": "boolean", "description": "No process may match."},
            "not_root": {"type": "boolean", "description": "Effective uid must not be 0."},
            "no_new_privs": {"type": "boolean", "description": "NoNewPrivs must be set."},
            "capabilities": {
                "type": "object", "additionalProperties": False, "minProperties": 1,
                "properties": {key: {**_CAP_RULE, "description": f"Conditions on {field}."}
                               for key, (_, field) in CAP_SETS.items()},
                "description": "Conditions on capability sets, by capability name.",
            },
            "cpus": {
                "type": "object", "additionalProperties": False, "required": ["subset_of"],
                "properties": {
                    "subset_of": {"type": ["string", "integer"], "minimum": 0,
                                  "description": "CPU list, e.g. '2-5,8'.",
                                  "examples": ["2-5"]},
                    "threads": _THREADS,
                },
                "description": "CPU affinity must stay within these CPUs.",
            },
            "sched": {
                "type": "object", "additionalProperties": False, "minProperties": 1,
                "properties": {
                    "policy": {"type": "string", "minLength": 1,
                               "examples": list(_POLICY_NAMES)},
                    "priority": {
                        "type": "object", "additionalProperties": False, "minProperties": 1,
                        "properties": {op: {"type": "integer", "minimum": 0, "maximum": 99}
                                       for op in ("ge", "le", "eq")},
                        "description": "Real-time priority (1-99) conditions.",
                    },
                },
                "description": "Scheduling policy and real-time priority.",
            },
            "seccomp": {
                "type": "object", "additionalProperties": False, "minProperties": 1,
                "properties": {
                    "mode": {"enum": list(SECCOMP_MODES)},
                    "min_filters": {"type": "integer", "minimum": 0},
                    "threads": _THREADS,
                },
                "description": "Seccomp mode and number of filters (/proc/PID/status).",
            },
            "threads": {**_THREADS, "description": "Check affinity, seccomp and no_new_privs "
                        "on every thread (default for each of them)."},
        },
    }

    def parse(self, raw: Mapping[str, Any]) -> ProcessSpec:
        problems: list[SpecProblem] = []
        selector = parse_selectors(raw, problems)
        count = _count(raw, problems)
        forbidden = bool(raw.get("forbidden", False))
        caps = _caps(raw.get("capabilities", {}), problems)
        cpus, cpus_text = _cpus(raw, problems)
        policy, priority = _sched(raw.get("sched", {}), problems)
        seccomp = dict(raw.get("seccomp", {}))
        mode = seccomp.get("mode")
        min_filters = seccomp.get("min_filters")
        if min_filters is not None and mode not in (None, "filter"):
            problems.append(SpecProblem(("seccomp", "min_filters"), f"min_filters needs mode "
                                        f"'filter' (mode {mode!r} has no filters)"))
        threads = bool(raw.get("threads", False))
        spec = ProcessSpec(
            selector=selector, count=count, forbidden=forbidden,
            not_root=bool(raw.get("not_root", False)),
            no_new_privs=bool(raw.get("no_new_privs", False)),
            caps=caps, cpus=cpus, cpus_text=cpus_text,
            sched_policy=policy, priority=priority,
            seccomp_mode=None if mode is None else str(mode),
            min_filters=None if min_filters is None else int(min_filters),
            nnp_threads=threads,
            cpus_threads=bool(dict(raw.get("cpus", {})).get("threads", threads)),
            seccomp_threads=bool(seccomp.get("threads", threads)),
        )
        if forbidden and count is not None:
            which = "required" if raw.get("required") else "count"
            problems.append(SpecProblem((which,), f"'{which}' contradicts 'forbidden: true'"))
        if forbidden and spec.has_posture:
            problems.append(SpecProblem(("forbidden",), "a forbidden process needs no other "
                                        "expectation: drop them or drop 'forbidden'"))
        if not forbidden and count is None and not spec.has_posture:
            problems.append(SpecProblem((), "no expectation: give required, count, forbidden, "
                                        "not_root, no_new_privs, capabilities, cpus, sched or "
                                        "seccomp"))
        if problems:
            raise SpecError(problems)
        return spec

    def request(self, spec: ProcessSpec) -> SnapshotRequest:
        return SnapshotRequest(process_fields=spec.selector.process_fields(),
                               process_details=frozenset(
                                   {Detail(spec.selector, judged_fields(spec))}))

    def evaluate(self, spec: ProcessSpec, snapshot: Snapshot) -> Outcome:
        expected = describe(spec)
        table = snapshot.processes
        if table is None:
            return Outcome(Status.ERROR, "the process table was not read",
                           Evidence(expected, "not read"))
        matched, unsure = select(spec.selector, table.processes.values())
        tally = _Tally([], [], [])
        rows, fails, errors = tally.rows, tally.fails, tally.errors
        for proc, reason in unsure:
            rows.append({**who_row(proc), "expectation": "selection", "verdict": "error",
                         "reason": reason})
        if spec.count is not None:
            _judge_count(spec.count, matched, unsure, tally)
        if spec.forbidden:
            for proc in matched:
                tally.add({**who_row(proc), "expectation": "forbidden", "verdict": "fail",
                           "finding": f"{who(proc)} user {_user(proc)} is running: "
                                      f"{host_text(' '.join(proc.cmdline))!r}"})
            if unsure and not matched:
                errors.append(f"cannot rule out {len(unsure)} process(es): "
                              + "; ".join(f"pid {p.pid}: {r}" for p, r in unsure[:5])
                              + _more(unsure))
        if spec.has_posture:
            for proc in matched:
                _posture(spec, proc, tally)
            if unsure:
                errors.append("selection undecided for " + "; ".join(
                    f"pid {p.pid}: {r}" for p, r in unsure[:5]) + _more(unsure))
        actual = (f"{len(matched)} matching process(es)"
                  + (f": pids {', '.join(str(p.pid) for p in matched[:20])}" if matched else "")
                  + (f"; {len(unsure)} undecided" if unsure else ""))
        evidence = Evidence(expected, actual, tuple(rows))
        if fails:
            return Outcome(Status.FAIL, "; ".join(fails[:5]) + _more(fails), evidence)
        if errors:
            return Outcome(Status.ERROR, "cannot evaluate: " + "; ".join(errors[:5])
                           + _more(errors), evidence)
        if not matched and spec.count is None:
            if spec.forbidden:
                return Outcome(Status.PASS, "no process matches", evidence)
            return Outcome(Status.NOT_APPLICABLE, "no process matches", evidence)
        return Outcome(Status.PASS, f"{expected} holds for {actual}", evidence)


# --- parsing ----------------------------------------------------------------------------------


def _count(raw: Mapping[str, Any], problems: list[SpecProblem]) -> tuple[int, int | None] | None:
    count = raw.get("count")
    if count is None:
        return (1, None) if raw.get("required") else None
    low = int(count.get("min", 1))
    high = None if count.get("max") is None else int(count["max"])
    if high is not None and low > high:
        problems.append(SpecProblem(("count",), f"count min {low} is greater than max {high}"))
    if raw.get("required") and low < 1:
        problems.append(SpecProblem(("count", "min"), "'required: true' with count min 0"))
    return low, high


def cap_name(word: str) -> str:
    """``net_raw`` / ``cap_net_raw`` / ``CAP_NET_RAW`` -> ``CAP_NET_RAW``."""
    upper = word.strip().upper()
    return upper if upper.startswith("CAP_") else "CAP_" + upper


def decode_caps(mask: int) -> list[str]:
    """Capability names of the bits set in ``mask``; bits past the table read ``CAP_#41``."""
    return [CAPABILITIES[bit] if bit < len(CAPABILITIES) else f"CAP_#{bit}"
            for bit in range(mask.bit_length()) if mask >> bit & 1]


def _mask(names: Iterable[Any], at: SpecPath, problems: list[SpecProblem]) -> int:
    mask = 0
    for i, word in enumerate(names):
        name = cap_name(str(word))
        if name not in CAP_BITS:
            # Compare without the shared "CAP_" prefix, which would make any word look close.
            hint = suggest(name[4:], [c[4:] for c in CAPABILITIES]).replace("mean '",
                                                                             "mean 'CAP_")
            problems.append(SpecProblem((*at, i), f"unknown capability {str(word)!r}{hint}"))
            continue
        mask |= 1 << CAP_BITS[name]
    return mask


def _caps(raw: Mapping[str, Any], problems: list[SpecProblem]) -> tuple[CapRule, ...]:
    rules = []
    for key, body in raw.items():
        at: SpecPath = ("capabilities", key)
        allowed = (_mask(body["subset_of"], (*at, "subset_of"), problems)
                   if "subset_of" in body else None)
        forbidden = _mask(body.get("must_not_have", []), (*at, "must_not_have"), problems)
        rules.append(CapRule(str(key), allowed, forbidden))
    return tuple(rules)


def _cpus(raw: Mapping[str, Any], problems: list[SpecProblem]) -> tuple[frozenset[int] | None,
                                                                         str]:
    if "cpus" not in raw:
        return None, ""
    text = str(raw["cpus"]["subset_of"]).strip()
    if not _CPU_LIST.fullmatch(text):
        problems.append(SpecProblem(("cpus", "subset_of"), f"bad CPU list {text!r}: expected "
                                    "numbers and ranges such as '2-5,8'"))
        return frozenset(), text
    try:
        return parse_cpu_list(text), text
    except ValueError as exc:
        problems.append(SpecProblem(("cpus", "subset_of"), f"bad CPU list {text!r}: {exc}"))
        return frozenset(), text


def _sched(raw: Mapping[str, Any], problems: list[SpecProblem]) -> tuple[
        str | None, tuple[tuple[str, int], ...]]:
    policy: str | None = None
    if "policy" in raw:
        word = str(raw["policy"]).strip().upper()
        policy = word if word.startswith("SCHED_") else "SCHED_" + word
        if policy not in _POLICY_NUMBERS:
            problems.append(SpecProblem(("sched", "policy"), f"unknown scheduling policy "
                                        f"{raw['policy']!r}" + suggest(policy, list(_POLICY_NAMES))
                                        + f"; known: {', '.join(_POLICY_NAMES)}"))
    priority = tuple((op, int(v)) for op, v in dict(raw.get("priority", {})).items())
    bounds = dict(priority)
    low = max(bounds.get("ge", 0), bounds.get("eq", 0))
    high = min(bounds.get("le", 99), bounds.get("eq", 99))
    if low > high:
        problems.append(SpecProblem(("sched", "priority"), f"priority conditions {bounds} "
                                    "cannot all hold"))
    if policy in _POLICY_NUMBERS and policy not in ("SCHED_FIFO", "SCHED_RR") and low > 0:
        problems.append(SpecProblem(("sched", "priority"), f"{policy} has real-time priority 0; "
                                    f"a priority >= {low} needs SCHED_FIFO or SCHED_RR"))
    return policy, priority


# --- what is read -----------------------------------------------------------------------------


def judged_fields(spec: ProcessSpec) -> frozenset[str]:
    """Process fields read only for the processes selected (or undecided): who they are for
    the evidence, and each expectation's field."""
    fields = {"uid", "user", "cmdline"}
    if spec.no_new_privs:
        fields.add("no_new_privs")
    fields.update(CAP_SETS[rule.set_key][0] for rule in spec.caps)
    if spec.cpus is not None:
        fields.add("cpus_allowed")
    if spec.seccomp_mode is not None or spec.min_filters is not None:
        fields |= {"seccomp", "seccomp_filters"}
    if spec.needs_threads:
        fields.add("threads")
    return frozenset(fields)


# --- evaluation -------------------------------------------------------------------------------


@dataclass
class _Tally:
    """Rows and findings collected while judging."""

    rows: list[dict[str, Any]]
    fails: list[str]
    errors: list[str]

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if row["verdict"] == "fail":
            self.fails.append(row["finding"])
        elif row["verdict"] == "error":
            self.errors.append(row["finding"])


def _judge_count(count: tuple[int, int | None], matched: list[Process],
                 unsure: list[tuple[Process, str]], tally: _Tally) -> None:
    low, high = count
    found, maybe = len(matched), len(unsure)
    wanted = _range(low, high)
    if high is not None and found > high:
        verdict, finding = "fail", f"{found} processes match, expected {wanted}"
    elif found + maybe < low:
        verdict = "fail"
        finding = ("no process matches" if found == 0 and low == 1 and not maybe
                   else f"{found} process(es) match, expected {wanted}")
    elif maybe and not (found >= low and (high is None or found + maybe <= high)):
        verdict = "error"
        finding = f"{found} process(es) match and {maybe} cannot be told, expected {wanted}"
    else:
        verdict, finding = "pass", f"{found} process(es) match"
    tally.add({"expectation": "count", "expected": wanted, "actual": found,
               "verdict": verdict, "finding": finding})
    if verdict == "pass":
        for proc in matched:
            tally.rows.append({**who_row(proc), "expectation": "running", "verdict": "pass"})


@dataclass
class _Posture:
    """Judges one process's posture into rows."""

    proc: Process
    tally: _Tally

    def at(self, tid: int | None = None) -> str:
        return who(self.proc) + (f" tid {tid}" if tid is not None else "")

    def row(self, expectation: str, expected: str, actual: Any, bad: bool, finding: str, *,
            tid: int | None = None) -> None:
        entry = {**who_row(self.proc), "expectation": expectation, "expected": expected,
                 "actual": actual, "verdict": "fail" if bad else "pass",
                 "finding": finding if bad else ""}
        if tid is not None:
            entry["tid"] = tid
        self.tally.add(entry)

    def unreadable(self, expectation: str, expected: str, field: str, source: str, *,
                   tid: int | None = None) -> None:
        proc = self.proc
        why = (proc.unreadable["threads"] if tid is not None and "threads" in proc.unreadable
               else why_unreadable(proc, source))
        entry = {**who_row(proc), "expectation": expectation, "expected": expected,
                 "actual": None, "verdict": "error",
                 "finding": f"{self.at(tid)}: {field} not readable ({why})"}
        if tid is not None:
            entry["tid"] = tid
        self.tally.add(entry)

    def per_unit(self, expectation: str, expected: str, field: str, *, per_thread: bool,
                 get: Callable[[Thread], Any], whole: Any,
                 judge: Callable[[Any], tuple[Any, str | None]]) -> None:
        """Judge the process (or each thread): ``judge(value)`` -> (shown, failure or None)."""
        for tid, value in _units(self.proc, per_thread, get, whole):
            if isinstance(tid, _NoThreads):
                self.unreadable(expectation, expected, "threads", "threads")
            elif value is None:
                self.unreadable(expectation, expected, field, "status", tid=tid)
            else:
                shown, failure = judge(value)
                self.row(expectation, expected, shown, failure is not None,
                         f"{self.at(tid)} {failure}", tid=tid)


def _posture(spec: ProcessSpec, proc: Process, tally: _Tally) -> None:
    judge = _Posture(proc, tally)
    if spec.not_root:
        if proc.uid is None:
            judge.unreadable("not_root", "euid != 0", "Uid", "status")
        else:
            judge.row("not_root", "euid != 0", proc.uid, proc.uid == 0,
                      f"{judge.at()} runs as root")
    if spec.no_new_privs:
        judge.per_unit("no_new_privs", "1", "NoNewPrivs", per_thread=spec.nnp_threads,
                       get=lambda t: t.no_new_privs, whole=proc.no_new_privs,
                       judge=lambda v: (int(v), None if v else "has NoNewPrivs 0"))
    for rule in spec.caps:
        _judge_caps(rule, judge)
    if spec.cpus is not None:
        allowed, text = spec.cpus, spec.cpus_text
        judge.per_unit("cpus", f"subset of {text}", "Cpus_allowed_list",
                       per_thread=spec.cpus_threads,
                       get=lambda t: t.cpus_allowed, whole=proc.cpus_allowed,
                       judge=lambda v: (format_cpus(v), None if v <= allowed else
                                        f"may run on CPUs {format_cpus(v)}, outside {text}"))
    if spec.sched_policy is not None:
        if proc.sched_policy is None:
            judge.unreadable("sched.policy", spec.sched_policy, "policy", "stat")
        else:
            actual = proc.sched_policy_name
            judge.row("sched.policy", spec.sched_policy, actual, actual != spec.sched_policy,
                      f"{judge.at()} runs under {actual}")
    for op, limit in spec.priority:
        expected = f"rt_priority {_OPS[op]} {limit}"
        if proc.rt_priority is None:
            judge.unreadable("sched.priority", expected, "rt_priority", "stat")
            continue
        value = proc.rt_priority
        ok = {"ge": value >= limit, "le": value <= limit, "eq": value == limit}[op]
        judge.row("sched.priority", expected, value, not ok,
                  f"{judge.at()} has real-time priority {value}, expected {_OPS[op]} {limit}")
    if spec.seccomp_mode is not None:
        mode = spec.seccomp_mode
        judge.per_unit("seccomp.mode", mode, "Seccomp", per_thread=spec.seccomp_threads,
                       get=lambda t: t.seccomp, whole=proc.seccomp,
                       judge=lambda v: (_SECCOMP_NAMES.get(v, str(v)),
                                        None if _SECCOMP_NAMES.get(v) == mode
                                        else f"has seccomp mode {_SECCOMP_NAMES.get(v, v)}"))
    if spec.min_filters is not None:
        least = spec.min_filters
        judge.per_unit("seccomp.min_filters", f">= {least} filters", "Seccomp_filters",
                       per_thread=spec.seccomp_threads,
                       get=lambda t: t.seccomp_filters, whole=proc.seccomp_filters,
                       judge=lambda v: (v, None if v >= least else
                                        f"has {v} seccomp filter(s), expected >= {least}"))


def _judge_caps(rule: CapRule, judge: _Posture) -> None:
    attr, field = CAP_SETS[rule.set_key]
    value = getattr(judge.proc, attr)
    expected = _describe_caps(rule)
    where = f"capabilities.{rule.set_key}"
    if value is None:
        judge.unreadable(where, expected, field, "status")
        return
    extra = value & rule.forbidden
    if rule.allowed is not None:
        extra |= value & ~rule.allowed
    judge.row(where, expected, ",".join(decode_caps(value)) or "(none)", bool(extra),
              f"{judge.at()} {field} has {', '.join(decode_caps(extra))}")


class _NoThreads:
    """Marker: per-thread data was asked for but none could be read."""


_NO_THREADS = _NoThreads()
_OPS = {"ge": ">=", "le": "<=", "eq": "=="}


def _units(proc: Process, per_thread: bool, get: Any, whole: Any) -> list[tuple[Any, Any]]:
    """(tid or None, value) pairs to judge: the process, or each of its threads."""
    if not per_thread:
        return [(None, whole)]
    threads: tuple[Thread, ...] = proc.threads
    if not threads:
        return [(_NO_THREADS, None)]
    units: list[tuple[Any, Any]] = [(t.tid, get(t)) for t in threads]
    if "threads" in proc.unreadable and not any(get(t) is None for t in threads):
        units.append((_NO_THREADS, None))  # the task list itself was cut short
    return units


def _user(proc: Process) -> str:
    if proc.uid is None:
        return "?"
    return host_text(proc.user) if proc.user else str(proc.uid)


def _more(items: list[Any]) -> str:
    return f" (and {len(items) - 5} more)" if len(items) > 5 else ""


def _range(low: int, high: int | None) -> str:
    if high is None:
        return f">= {low}"
    return f"{low}" if low == high else f"{low}..{high}"


def _describe_caps(rule: CapRule) -> str:
    field = CAP_SETS[rule.set_key][1]
    parts = []
    if rule.allowed is not None:
        parts.append(f"{field} subset of [{', '.join(decode_caps(rule.allowed))}]")
    if rule.forbidden:
        parts.append(f"{field} without [{', '.join(decode_caps(rule.forbidden))}]")
    return " and ".join(parts)


def describe(spec: ProcessSpec) -> str:
    """The expectation in words: ``processes named 'fixgw': running, not root, ...``."""
    chosen, who = spec.selector, []
    if chosen.name is not None:
        who.append(f"named {chosen.name!r}")
    if chosen.exe is not None:
        who.append(f"exe {chosen.exe!r}")
    if chosen.cmdline is not None:
        who.append(f"cmdline ~ {chosen.cmdline.pattern!r}")
    if chosen.user is not None:
        who.append(f"user {chosen.user!r}")
    what = []
    if spec.forbidden:
        what.append("none running")
    if spec.count is not None:
        what.append(f"count {_range(*spec.count)}")
    if spec.not_root:
        what.append("not root")
    if spec.no_new_privs:
        what.append("no_new_privs")
    what.extend(_describe_caps(rule) for rule in spec.caps)
    if spec.cpus is not None:
        what.append(f"CPUs within {spec.cpus_text}")
    if spec.sched_policy:
        what.append(spec.sched_policy)
    what.extend(f"rt_priority {_OPS[op]} {v}" for op, v in spec.priority)
    if spec.seccomp_mode:
        what.append(f"seccomp {spec.seccomp_mode}")
    if spec.min_filters is not None:
        what.append(f">= {spec.min_filters} seccomp filters")
    return f"processes {' and '.join(who)}: {', '.join(what)}"
