"""``seccomp``: the filter a running process actually carries, up to proving what it does.

Passes::

    - id: SEC-101
      kind: seccomp
      spec:
        unit: fixgw.service               # or name / exe / cmdline / user, as in `process`
        mode: filter
        no_new_privs: true
        all_threads: true
        deep: true                         # read the loaded BPF (stops each thread briefly)
        profile: seccomp/trading-gateway.yaml
        must_deny: [ptrace, "@mount", kexec_load]
      # fixgw was started by `hostguard exec --profile seccomp/trading-gateway.yaml`

Fails::

    - id: SEC-102
      kind: seccomp
      spec: {name: mdfeed, mode: filter, all_threads: true}
      # pid 900 thread 903 has Seccomp 0: it was created before the filter was loaded without
      # TSYNC, so it runs unfiltered

Two layers. The cheap one is always on: ``Seccomp``, ``Seccomp_filters``, ``NoNewPrivs`` and
``Speculation_Store_Bypass`` of the process (every thread with ``all_threads``), from
``/proc/PID/task/*/status``. ``all_threads: true`` fails for any thread whose mode or filter
count differs from the main thread's. The deep layer (``deep: true``, required by ``profile``
and ``must_deny``) dumps the main thread's filters with ``PTRACE_SECCOMP_GET_FILTER``
(:mod:`agent.host.loaded_filters`): ``profile`` compares them syscall by syscall with the
declared profile compiled as ``hostguard exec`` loads it (:mod:`agent.seccomp.verify`), and
``must_deny`` fails for every listed syscall the loaded stack permits for some arguments. Processes
that may run on isolated CPUs are not stopped unless ``stop_isolated: true``: their verdict is
``error``. A relative ``profile`` path is taken from the policy file's folder. No process
selected: ``not_applicable``, or ``fail`` with ``required: true``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from agent.checks.base import CheckKind, SpecError, SpecProblem
from agent.checks.process import SECCOMP_MODES as MODES
from agent.checks.selectors import (
    SELECTOR_KEYS,
    SELECTOR_PROPERTIES,
    Selector,
    parse_selector,
    select,
)
from agent.checks.selectors import who as _who
from agent.checks.selectors import who_row as _who_row
from agent.core.record import record
from agent.host.facts import ReadError
from agent.host.processes import Process
from agent.host.snapshot import DumpRequest, Snapshot, SnapshotRequest
from agent.result import Evidence, Outcome, Status

if TYPE_CHECKING:
    from agent.host.seccomp_dump import FilterDump

_NAMES = {v: k for k, v in MODES.items()}
_MAX_ROWS = 200
"""Evidence rows kept per check (the message counts them all)."""


@record
class Declared:
    """The ``profile`` a check names, loaded when the policy is (compiled when evaluated)."""

    path: str
    """As written in the policy."""
    resolved: str
    """Absolute path read."""
    profile: Any = field(compare=False, hash=False)
    """The :class:`~agent.seccomp.model.Profile`."""


@record
class SeccompSpec:
    """Parsed ``seccomp`` spec."""

    selector: Selector
    required: bool = False
    mode: str | None = None
    no_new_privs: bool = False
    all_threads: bool = False
    deep: bool = False
    stop_isolated: bool = False
    profile: Declared | None = None
    must_deny: tuple[str, ...] = ()

    def dump_request(self) -> DumpRequest | None:
        if not self.deep:
            return None
        return DumpRequest(self.selector, self.stop_isolated, threads=self.all_threads)


class SeccompKind(CheckKind[SeccompSpec]):
    """Seccomp posture of running processes and, on request, their loaded filters."""

    name = "seccomp"
    summary = ("Seccomp of running processes: mode, no_new_privs and filters on every thread; "
               "with deep: true the loaded BPF itself, compared with a declared profile and "
               "must-deny syscalls.")
    spec_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "description": summary,
        "additionalProperties": False,
        "anyOf": [{"required": [k]} for k in SELECTOR_KEYS],
        "properties": {
            **SELECTOR_PROPERTIES,
            "required": {"type": "boolean", "description": "Fail when nothing is selected."},
            "mode": {"enum": list(MODES), "description": "Expected seccomp mode."},
            "no_new_privs": {"type": "boolean", "description": "NoNewPrivs must be set."},
            "all_threads": {"type": "boolean",
                            "description": "Every thread must carry the main thread's filters "
                            "(and mode / no_new_privs apply to every thread)."},
            "deep": {"type": "boolean", "default": False,
                     "description": "Read the loaded BPF with ptrace (stops the process for "
                     "well under a millisecond; needed by profile and must_deny)."},
            "stop_isolated": {"type": "boolean", "default": False,
                              "description": "Allow the deep read to stop a process that may "
                              "run on an isolated CPU."},
            "profile": {"type": "string", "minLength": 1,
                        "description": "Seccomp profile the loaded filters must be equivalent "
                        "to (relative to the policy file)."},
            "must_deny": {"type": "array", "minItems": 1, "uniqueItems": True,
                          "items": {"type": "string", "minLength": 1},
                          "description": "Syscalls or @groups the loaded filters must deny "
                          "whatever the arguments."},
        },
    }

    def parse(self, raw: Mapping[str, Any]) -> SeccompSpec:
        return self.parse_at(raw, None)

    def parse_at(self, raw: Mapping[str, Any], origin: Path | None) -> SeccompSpec:
        problems: list[SpecProblem] = []
        selector = parse_selector(raw, problems)
        deep = bool(raw.get("deep", False))
        for key in ("profile", "must_deny"):
            if key in raw and not deep:
                problems.append(SpecProblem((key,), f"'{key}' reads the loaded filter: it needs "
                                            "'deep: true' (which stops the process briefly)"))
        if raw.get("stop_isolated") and not deep:
            problems.append(SpecProblem(("stop_isolated",), "'stop_isolated' only matters with "
                                        "'deep: true'"))
        expectations = ("mode", "no_new_privs", "all_threads", "profile", "must_deny")
        if not any(raw.get(k) for k in expectations):
            problems.append(SpecProblem((), "nothing to check: give mode, no_new_privs, "
                                        "all_threads, profile or must_deny"))
        declared = _declared(raw.get("profile"), origin, problems)
        must_deny = tuple(str(n) for n in raw.get("must_deny", ()))
        _check_names(must_deny, problems)
        if problems:
            raise SpecError(problems)
        return SeccompSpec(
            selector=selector, required=bool(raw.get("required", False)),
            mode=None if raw.get("mode") is None else str(raw["mode"]),
            no_new_privs=bool(raw.get("no_new_privs", False)),
            all_threads=bool(raw.get("all_threads", False)), deep=deep,
            stop_isolated=bool(raw.get("stop_isolated", False)), profile=declared,
            must_deny=must_deny)

    def request(self, spec: SeccompSpec) -> SnapshotRequest:
        dump = spec.dump_request()
        return SnapshotRequest(processes=True, threads=True,
                               seccomp_dumps=frozenset({dump}) if dump else frozenset())

    def evaluate(self, spec: SeccompSpec, snapshot: Snapshot) -> Outcome:
        return _evaluate(spec, snapshot)


def _declared(raw: Any, origin: Path | None, problems: list[SpecProblem]) -> Declared | None:
    if raw is None:
        return None
    from agent.seccomp.profile import load_profile  # only policies that name a profile pay  # noqa: PLC0415 - the audit path loads libseccomp only when a check needs it

    written = str(raw)
    path = Path(written)
    if not path.is_absolute() and origin is not None:
        path = origin.parent / path
    loaded = load_profile(path)
    if isinstance(loaded, list):
        first = loaded[0] if loaded else None
        where = f": {first.location.path}:{first.location.line}:{first.location.col}: " \
                f"{first.message}" if first is not None and first.location else ""
        problems.append(SpecProblem(("profile",), f"profile {written!r} cannot be used "
                                    f"({len(loaded)} error(s)){where}", "invalid-profile"))
        return None
    return Declared(written, str(path.resolve()), loaded)


def _check_names(names: tuple[str, ...], problems: list[SpecProblem]) -> None:
    from agent.seccomp import syscalls  # noqa: PLC0415 - libseccomp only for seccomp checks

    for i, name in enumerate(names):
        try:
            expanded = syscalls.expand([name])
        except syscalls.UnknownGroup:
            problems.append(SpecProblem(("must_deny", i), f"unknown syscall group {name!r}",
                                        "unknown-syscall"))
            continue
        if syscalls.is_group(name):
            continue  # systemd's groups name a few calls libseccomp does not know: fine
        for member in expanded:
            try:
                syscalls.resolve(member)
            except syscalls.UnknownSyscall:
                problems.append(SpecProblem(("must_deny", i), f"unknown syscall {member!r}",
                                            "unknown-syscall"))


# --- evaluation -------------------------------------------------------------------------------


def _evaluate(spec: SeccompSpec, snapshot: Snapshot) -> Outcome:
    expected = describe(spec)
    table = snapshot.processes
    if table is None:
        return Outcome(Status.ERROR, "the process table was not read", Evidence(expected, ""))
    matched, unsure = select(spec.selector, table.processes.values())
    rows: list[dict[str, Any]] = [{**_who_row(proc), "verdict": "error",
                                   "finding": f"{_who(proc)} might be selected: {verdict}"}
                                  for proc, verdict in unsure]
    if not matched:
        if rows:
            return _outcome(expected, rows, 0)
        status = Status.FAIL if spec.required else Status.NOT_APPLICABLE
        return Outcome(status, f"no process selected by {spec.selector.describe()}",
                       Evidence(expected, "no process selected"))
    for proc in matched:
        _Judge(spec, proc, snapshot, rows).run()
    return _outcome(expected, rows, len(matched))


def _outcome(expected: str, rows: list[dict[str, Any]], selected: int) -> Outcome:
    failures = [r for r in rows if r["verdict"] == "fail"]
    errors = [r for r in rows if r["verdict"] == "error"]
    if failures:
        status, bad = Status.FAIL, failures
    elif errors:
        status, bad = Status.ERROR, errors
    else:
        status, bad = Status.PASS, []
    actual = f"{selected} process(es) selected"
    if bad:
        more = f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""
        message = f"{bad[0]['finding']}{more}"
        actual += f", {len(failures)} failure(s), {len(errors)} error(s)"
    else:
        message = f"{selected} process(es) as expected"
    kept = bad + [r for r in rows if r["verdict"] == "pass"]
    return Outcome(status, message, Evidence(expected, actual, tuple(kept[:_MAX_ROWS])))


@record
class _Unit:
    """One thread's seccomp posture (``/proc/PID/task/TID/status``)."""

    tid: int
    mode: int | None
    filters: int | None
    nnp: bool | None
    ssb: str | None


@dataclass
class _Judge:
    """Judges one process into rows."""

    spec: SeccompSpec
    proc: Process
    snapshot: Snapshot
    rows: list[dict[str, Any]]

    def add(self, expectation: str, verdict: str, finding: str, **extra: Any) -> None:
        self.rows.append({**_who_row(self.proc), "expectation": expectation,
                          "verdict": verdict, "finding": finding, **extra})

    def run(self) -> None:
        spec, proc = self.spec, self.proc
        # Seccomp and no_new_privs are per thread: the cheap layer looks at every one.
        units: list[_Unit] = [_Unit(t.tid, t.seccomp, t.seccomp_filters, t.no_new_privs,
                                    t.speculation_store_bypass) for t in proc.threads]
        if not units or "threads" in proc.unreadable:
            why = proc.unreadable.get("threads", "no threads were read")
            self.add("threads", "error", f"{_who(proc)}: its threads are not readable ({why})")
        for unit in units:
            self._posture(unit)
        if spec.all_threads and units:
            self._same_as_main(units)
        if spec.deep:
            self._deep()

    def _posture(self, unit: _Unit) -> None:
        spec = self.spec
        who = f"{_who(self.proc)} tid {unit.tid}"
        shown = {"tid": unit.tid, "seccomp": _mode_name(unit.mode), "filters": unit.filters,
                 "no_new_privs": unit.nnp, "speculation_store_bypass": unit.ssb}
        if spec.mode is not None:
            if unit.mode is None:
                self.add("mode", "error", f"{who}: Seccomp not readable", **shown)
            else:
                ok = unit.mode == MODES[spec.mode]
                self.add("mode", "pass" if ok else "fail",
                         "" if ok else f"{who} has seccomp mode {_mode_name(unit.mode)}, "
                         f"expected {spec.mode}", **shown)
        if spec.no_new_privs:
            if unit.nnp is None:
                self.add("no_new_privs", "error", f"{who}: NoNewPrivs not readable", **shown)
            else:
                self.add("no_new_privs", "pass" if unit.nnp else "fail",
                         "" if unit.nnp else f"{who} has NoNewPrivs 0", **shown)
        if spec.mode is None and not spec.no_new_privs:
            self.add("posture", "pass", "", **shown)  # the cheap layer's evidence, always

    def _same_as_main(self, units: list[_Unit]) -> None:
        proc = self.proc
        main = next((u for u in units if u.tid == proc.pid), None)
        if main is None or main.mode is None or main.filters is None:
            self.add("all_threads", "error", f"{_who(proc)}: the main thread's seccomp state "
                     "is not readable")
            return
        for unit in units:
            if unit.tid == proc.pid:
                continue
            if unit.mode is None or unit.filters is None:
                self.add("all_threads", "error", f"{_who(proc)} tid {unit.tid}: Seccomp not "
                         "readable", tid=unit.tid)
            elif (unit.mode, unit.filters) != (main.mode, main.filters):
                self.add("all_threads", "fail", f"{_who(proc)} tid {unit.tid} has seccomp "
                         f"{_mode_name(unit.mode)} with {unit.filters} filter(s), the main "
                         f"thread {_mode_name(main.mode)} with {main.filters}: it escaped the "
                         "filter (created before it was loaded without TSYNC)", tid=unit.tid)
            else:
                self.add("all_threads", "pass", "", tid=unit.tid)

    def _deep(self) -> None:
        proc, spec = self.proc, self.spec
        dumps = self.snapshot.seccomp_dumps or {}
        loaded = dumps.get(proc.pid)
        if loaded is None:
            self.add("deep", "error", f"{_who(proc)}: its filters were not read (the daemon "
                     "reads them only for checks listed in its deep_seccomp setting)")
            return
        if isinstance(loaded, ReadError):
            self.add("deep", "error", f"{_who(proc)}: cannot read its filters: {loaded.reason}")
            return
        self._dumped(proc.pid, loaded)
        if spec.all_threads:
            self._same_stack(loaded, dumps)
        if spec.profile is not None:
            self._profile(spec.profile, loaded.filters)
        if spec.must_deny:
            self._must_deny(loaded.filters)

    def _dumped(self, tid: int, dump: FilterDump) -> None:
        self.add("deep", "pass", "", tid=tid, filters=len(dump.filters),
                 instructions=[len(p) // 8 for p in dump.filters],
                 stopped_ms=round(dump.stop_ns / 1e6, 3), cached=dump.cached)

    def _same_stack(self, main: FilterDump, dumps: Mapping[int, FilterDump | ReadError]) -> None:
        """Filters are per thread: with ``all_threads``, every thread's stack is read and must
        be the main thread's, byte for byte (a count alone can hide a different filter)."""
        who = _who(self.proc)
        for thread in self.proc.threads:
            if thread.tid == self.proc.pid:
                continue
            other = dumps.get(thread.tid)
            if other is None or isinstance(other, ReadError):
                why = "not read" if other is None else other.reason
                self.add("all_threads", "error", f"{who} tid {thread.tid}: cannot read its "
                         f"filters: {why}", tid=thread.tid)
            elif other.filters != main.filters:
                self.add("all_threads", "fail", f"{who} tid {thread.tid} carries another "
                         f"filter stack than the main thread ({len(other.filters)} filter(s) "
                         f"of {[len(p) // 8 for p in other.filters]} instructions, the main "
                         f"thread {len(main.filters)} of {[len(p) // 8 for p in main.filters]})",
                         tid=thread.tid)
            else:
                self._dumped(thread.tid, other)

    def _profile(self, declared: Declared, stack: tuple[bytes, ...]) -> None:
        from agent.seccomp.plan import CompileError  # noqa: PLC0415 - only a profile comparison

        who = _who(self.proc)
        try:
            result = _compared(stack, declared.profile)
        except CompileError as exc:
            self.add("profile", "error", f"cannot compile {declared.path}: {exc}")
            return
        for diff in result.differences:
            verdict = "error" if diff.kind == "undecided" else "fail"
            self.add("profile", verdict, f"{who} vs {declared.path}: {diff}", kind=diff.kind,
                     arch=diff.arch, syscall=diff.syscall, loaded=diff.loaded,
                     declared=diff.declared,
                     args=None if diff.args is None else [hex(a) for a in diff.args],
                     instruction_pointer=None if diff.instruction_pointer is None
                     else hex(diff.instruction_pointer))
        if result.equivalent:
            self.add("profile", "pass", "", profile=declared.path, syscalls=result.syscalls,
                     arches=list(result.arches))

    def _must_deny(self, stack: tuple[bytes, ...]) -> None:
        from agent.seccomp import verify  # noqa: PLC0415 - only deep checks analyse filters

        who = _who(self.proc)
        found, unchecked = verify.must_deny(stack, self.spec.must_deny)
        for item in found:
            self.add("must_deny", "error" if item.undecided else "fail",
                     f"{who} may call {item.arch} {item.syscall}: {item.how}", arch=item.arch,
                     syscall=item.syscall)
        if not found:
            self.add("must_deny", "pass", "", checked=list(self.spec.must_deny),
                     not_syscalls_here=unchecked)


@lru_cache(maxsize=64)
def _compared(stack: tuple[bytes, ...], profile: Any) -> Any:
    """The comparison of a loaded stack with a profile: the same gateway build seen again (or
    by another check) is not analysed twice."""
    from agent.seccomp import verify  # noqa: PLC0415 - only deep checks analyse filters

    return verify.compare(stack, _compiled(profile))


@cache
def _compiled(profile: Any) -> Any:
    from agent.seccomp.compile import build_filter  # noqa: PLC0415 - only a profile comparison

    return build_filter(profile)


def _mode_name(value: int | None) -> str:
    return "unreadable" if value is None else _NAMES.get(value, str(value))


def describe(spec: SeccompSpec) -> str:
    """The expectation in words."""
    parts = [f"mode {spec.mode}"] if spec.mode else []
    if spec.no_new_privs:
        parts.append("no_new_privs")
    if spec.all_threads:
        parts.append("same filters on every thread")
    if spec.profile is not None:
        parts.append(f"loaded filters equivalent to {spec.profile.path}")
    if spec.must_deny:
        parts.append(f"denies {', '.join(spec.must_deny)}")
    return f"seccomp of {spec.selector.describe()}: {'; '.join(parts)}"
