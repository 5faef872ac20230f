"""Which processes a check looks at: one selector for the ``process``, ``cgroup`` and ``seccomp``
kinds (and the daemon's ``enforce:`` bindings), parsed, matched and named in messages the same way.

A selector names processes by ``name`` (glob on comm), ``exe`` (glob on the executable's path),
``cmdline`` (regex searched in the arguments joined by spaces) and ``user`` (name or uid of the
effective uid); all given must match. Kernel threads never match unless ``kernel_threads``.

Unreadable fields fail closed. A process whose selected-on field could not be read
(permission) might match: it is neither selected nor silently skipped. :func:`selects` returns
why it cannot be told, and each kind reports that as ``error`` naming the pid and the reason
(unless a definite failure decides the check). A definite mismatch on a field that was read
still rules the process out, whatever else is unreadable.

:class:`Selector` adds the ``unit`` selector (:mod:`agent.checks.units`) to those: what the
``seccomp`` kind and the daemon's ``enforce:`` bindings select processes by.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from agent.checks.base import SpecPath, SpecProblem
from agent.checks.units import in_unit, unit_glob
from agent.core.record import record
from agent.host.processes import Process
from agent.policy.globs import bracket_problem

COMM_MAX = 15
"""comm is truncated to TASK_COMM_LEN - 1 bytes."""

SELECTOR_PROPERTIES: Mapping[str, Any] = {
    "unit": {"type": "string", "minLength": 1,
             "description": "systemd unit glob ('.service' added when there is no '.')."},
    "name": {"type": "string", "minLength": 1, "description": "Glob on comm."},
    "exe": {"type": "string", "minLength": 1, "description": "Glob on the executable."},
    "cmdline": {"type": "string", "minLength": 1,
                "description": "Python regex searched in the arguments."},
    "user": {"type": ["string", "integer"], "minimum": 0,
             "description": "Effective user name or uid."},
}
"""JSON Schema properties of a :class:`Selector` (at least one of them is required)."""
SELECTOR_KEYS = tuple(SELECTOR_PROPERTIES)


@record
class ProcessSelector:
    """Which processes a check selects (hashable: it travels in snapshot requests)."""

    name: str | None = None
    """Glob on comm."""
    exe: str | None = None
    """Glob on the executable path."""
    cmdline: re.Pattern[str] | None = None
    """Searched in the arguments joined by single spaces."""
    user: str | int | None = None
    """Effective user: a name, or a uid."""
    kernel_threads: bool = False
    """Whether kernel threads may match."""

    @property
    def given(self) -> bool:
        """Whether any field selects (``kernel_threads`` alone selects nothing)."""
        return (self.name is not None or self.exe is not None or self.cmdline is not None
                or self.user is not None)

    def process_fields(self) -> frozenset[str]:
        """Process fields to read for every process to select on (name and whether it is a
        kernel thread come with every process)."""
        fields: set[str] = set()
        if self.exe is not None:
            fields.add("exe")
        if self.cmdline is not None:
            fields.add("cmdline")
        if self.user is not None:
            fields |= {"uid", "user"}
        return frozenset(fields)

    def __call__(self, proc: Process) -> bool | str:
        return selects(self, proc)


@record
class Selector:
    """Processes by systemd unit and/or :class:`ProcessSelector` (hashable: it travels in
    snapshot requests)."""

    process: ProcessSelector | None = None
    """name / exe / cmdline / user, matched as the ``process`` kind does."""
    unit: str | None = None
    """systemd unit glob, matched on the components of the process's cgroup paths."""

    def process_fields(self) -> frozenset[str]:
        """Process fields to read for every process to select on."""
        own = frozenset({"cgroups"}) if self.unit is not None else frozenset()
        return own | (self.process.process_fields() if self.process is not None else frozenset())

    def __call__(self, proc: Process) -> bool | str:
        if proc.kernel_thread:
            return False
        unknown: list[str] = []
        if self.unit is not None:
            if "cgroup" in proc.unreadable:
                unknown.append(f"cgroup: {proc.unreadable['cgroup']}")
            elif not any(in_unit(member.path, self.unit) for member in proc.cgroups):
                return False
        if self.process is not None:
            verdict = selects(self.process, proc)
            if verdict is False:
                return False
            if isinstance(verdict, str):
                unknown.append(verdict)
        return "; ".join(unknown) if unknown else True

    def describe(self) -> str:
        parts = [f"unit {self.unit}"] if self.unit else []
        spec = self.process
        if spec is not None:
            for key, value in (("name", spec.name), ("exe", spec.exe), ("user", spec.user)):
                if value is not None:
                    parts.append(f"{key} {value}")
            if spec.cmdline is not None:
                parts.append(f"cmdline /{spec.cmdline.pattern}/")
        return ", ".join(parts)


def parse_selector(raw: Mapping[str, Any], problems: list[SpecProblem]) -> Selector:
    """The :class:`Selector` of ``raw`` (keys :data:`SELECTOR_KEYS`); problems are appended,
    each at its key."""
    unit = unit_glob(raw, problems)
    process = parse_selectors(raw, problems)
    return Selector(process if process.given else None, unit)


def parse_selectors(raw: Mapping[str, Any], problems: list[SpecProblem],
                    at: SpecPath = ()) -> ProcessSelector:
    """``name``, ``exe``, ``cmdline``, ``user`` and ``kernel_threads`` of ``raw`` (found at
    ``at`` in the spec); problems are appended, each at its key."""
    name = _glob(raw, "name", problems, at)
    exe = _glob(raw, "exe", problems, at)
    if name is not None:
        shortest = _min_length(name)
        if shortest > COMM_MAX:
            problems.append(SpecProblem((*at, "name"), f"name {name!r} can never match: the "
                                        f"kernel truncates comm to {COMM_MAX} bytes; select "
                                        "by exe or cmdline instead"))
    if exe is not None and not exe.startswith(("/", "*", "?", "[")):
        problems.append(SpecProblem((*at, "exe"), f"exe {exe!r} can never match: executables "
                                    f"are absolute paths (did you mean '*/{exe}'?)"))
    pattern: re.Pattern[str] | None = None
    if "cmdline" in raw:
        try:
            pattern = re.compile(str(raw["cmdline"]))
        except re.error as exc:
            problems.append(SpecProblem((*at, "cmdline"), f"invalid regex {raw['cmdline']!r}: "
                                        f"{exc}", "invalid-regex"))
    user = raw.get("user")
    if isinstance(user, str) and user.isascii() and user.isdigit():
        user = int(user)
    if isinstance(user, str) and not user.strip():
        problems.append(SpecProblem((*at, "user"), "empty user name"))
    return ProcessSelector(name=name, exe=exe, cmdline=pattern,
                           user=user if isinstance(user, str | int) else None,
                           kernel_threads=bool(raw.get("kernel_threads", False)))


def _glob(raw: Mapping[str, Any], key: str, problems: list[SpecProblem],
          at: SpecPath) -> str | None:
    if key not in raw:
        return None
    pattern = str(raw[key])
    problem = bracket_problem(pattern)
    if problem:
        problems.append(SpecProblem((*at, key), f"invalid {key} glob {pattern!r}: {problem}",
                                    "invalid-glob"))
    return pattern


def _min_length(pattern: str) -> int:
    """Fewest bytes a comm matching the glob ``pattern`` can have."""
    total, i = 0, 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            i += 1
            continue
        if char == "[":
            end = pattern.find("]", i + 2)
            if end > 0:
                total += 1
                i = end + 1
                continue
        total += 1 if char == "?" else len(char.encode("utf-8", "surrogateescape"))
        i += 1
    return total


def selects(selector: ProcessSelector, proc: Process) -> bool | str:
    """True, False, or why the process cannot be told apart (a field it is selected on could
    not be read)."""
    if proc.kernel_thread and not selector.kernel_threads:
        return False
    unknown: list[str] = []
    if selector.name is not None:
        if "stat" in proc.unreadable and "status" in proc.unreadable:
            unknown.append(f"name: {proc.unreadable['stat']}")
        elif not fnmatch.fnmatchcase(proc.name, selector.name):
            return False
    if selector.exe is not None:
        if proc.exe is not None:
            if not fnmatch.fnmatchcase(proc.exe, selector.exe):
                return False
        elif "exe" in proc.unreadable:
            unknown.append(f"exe: {proc.unreadable['exe']}")
        else:
            return False  # no executable: a kernel thread or a zombie
    if selector.cmdline is not None:
        if "cmdline" in proc.unreadable:
            unknown.append(f"cmdline: {proc.unreadable['cmdline']}")
        elif not selector.cmdline.search(" ".join(proc.cmdline)):
            return False
    if selector.user is not None:
        if proc.uid is None:
            unknown.append(f"user: {why_unreadable(proc, 'status')}")
        elif isinstance(selector.user, int):
            if proc.uid != selector.user:
                return False
        elif proc.user != selector.user:
            return False
    return "; ".join(unknown) if unknown else True


def select(selects: Callable[[Process], bool | str], processes: Iterable[Process]
           ) -> tuple[list[Process], list[tuple[Process, str]]]:
    """The processes ``selects`` picks, and those it might (with why it cannot be told)."""
    matched: list[Process] = []
    unsure: list[tuple[Process, str]] = []
    for proc in processes:
        verdict = selects(proc)
        if verdict is True:
            matched.append(proc)
        elif isinstance(verdict, str):
            unsure.append((proc, verdict))
    return matched, unsure


def why_unreadable(proc: Process, source: str) -> str:
    """Why a field read from ``/proc/PID/source`` is missing, for a message."""
    if source == "threads":
        return proc.unreadable.get("threads", "no threads were read")
    return (f"{source}: {proc.unreadable[source]}" if source in proc.unreadable
            else f"not reported in /proc/{proc.pid}/{source}")


def host_text(value: str) -> str:
    """Host text made encodable: bytes that were not UTF-8 read as ``\\xff``."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def who(proc: Process) -> str:
    """``pid 812 ('fixgw')``: the process in messages, its name quoted as data."""
    return f"pid {proc.pid} ({host_text(proc.name)!r})"


def who_row(proc: Process) -> dict[str, Any]:
    """The process in an evidence row (host text made encodable)."""
    return {"pid": proc.pid, "name": host_text(proc.name),
            "user": host_text(proc.user or "") or None, "uid": proc.uid,
            "cmdline": host_text(" ".join(proc.cmdline))}
