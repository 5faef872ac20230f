"""Profiles in and out of other formats: Docker/OCI seccomp JSON and systemd ``SystemCallFilter=``.

Docker/OCI JSON (:func:`from_oci`, :func:`to_oci`), imported the way Docker (moby
``profiles/seccomp``) and runc read it:

* ``archMap`` (or ``architectures``, never both) resolved for one architecture: the profile gets
  that architecture alone (``native`` when it is this machine's); the sub-architectures Docker
  filters with the same rules (x86 and x32 beside x86_64) are killed instead, as every hostguard
  profile does with the other ABIs (a note says so);
* each ``syscalls[]`` entry is kept or dropped by its ``includes``/``excludes`` (``arches``
  against ``arch`` in Go's naming, ``amd64`` for x86_64; ``caps`` against the capability set,
  Docker's default container set :data:`DOCKER_DEFAULT_CAPS` unless given; ``minKernel``
  against the running kernel's ``major.minor`` unless given): an include needs every listed cap,
  an exclude fires on any;
* names are resolved on ``arch`` through libseccomp: names that exist on other architectures only
  (``_llseek``, ``*_time64`` on x86_64) and names libseccomp does not know are skipped and listed
  in the notes, not an error;
* actions: ``SCMP_ACT_KILL`` is kill_thread (as in libseccomp), ``SCMP_ACT_ERRNO`` without an
  ``errnoRet`` is EPERM (as in runc); ``SCMP_ACT_TRACE`` becomes ``errno 38`` (ENOSYS), which is
  what the kernel answers when no tracer is attached and hostguard never attaches one (a note
  says so); ``SCMP_ACT_NOTIFY`` needs a user-space supervisor and is refused;
* ``args``: for ``SCMP_CMP_MASKED_EQ`` OCI's ``value`` is the mask and ``valueTwo`` the datum
  (libseccomp's ``datum_a``/``datum_b``: ``(arg & value) == valueTwo``); an entry with several
  conditions on the same argument is split into one rule per condition, because runc adds those
  as separate libseccomp rules (they are OR-ed, not AND-ed);
* permissive entries (allow, log) go to the profile's ``rules``, the others to ``deny`` (a deny
  wins, see :mod:`agent.seccomp.compile`); entries whose action is the default action are dropped
  with a note, as runc drops them.

Export writes the reverse: ``deny`` entries first, then ``rules``; a name is left out of the
entries after its first unconditional one (they can never decide it). OCI has no rule order, so
a syscall with a conditional rule followed by a rule with another action is listed by
:func:`oci_caveats`.
``mode: log`` is exported as what it does: every non-allow action becomes ``SCMP_ACT_LOG``.

systemd (:func:`to_systemd`, :func:`from_systemd`), as systemd 252 parses ``SystemCallFilter=``
(``src/core/load-fragment.c``, ``src/shared/seccomp-util.c``): the first non-empty assignment
decides allow-list (and adds ``@default``) or ``~`` deny-list; later assignments add to or remove
from the set (``~name`` on an allow-list removes it, ``~name:errno`` gives it that errno, a plain
name on a deny-list un-denies it); an empty assignment resets; ``:errno`` (a number 0-4095, a name
such as ``EPERM``, or ``kill``) is only taken on ``~`` entries. What systemd cannot express
(argument conditions, trap, kill_thread, per-architecture filters) is reported in
:attr:`SystemdFilter.unexpressed`, never dropped silently; the translation errs on the narrower
side unless asked to widen argument conditions.
"""

from __future__ import annotations

import errno as errno_mod
import os
import re
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from agent.core.location import Location
from agent.core.record import record
from agent.core.yamlload import Document, LoadError, Path_, load_file
from agent.seccomp import syscalls
from agent.seccomp.model import (
    ALLOW,
    PRECEDENCE,
    Action,
    ActionKind,
    ArgCondition,
    Profile,
    Rule,
)

DOCKER_DEFAULT_CAPS: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)
"""Docker's default container capabilities (moby ``oci/caps/defaults.go``)."""

MAX_ERRNO = 4095
U64_MAX = 2**64 - 1
ENOSYS = errno_mod.ENOSYS

_OCI_ACTIONS: dict[str, ActionKind] = {
    "SCMP_ACT_KILL": ActionKind.KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": ActionKind.KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": ActionKind.KILL_PROCESS,
    "SCMP_ACT_TRAP": ActionKind.TRAP,
    "SCMP_ACT_ERRNO": ActionKind.ERRNO,
    "SCMP_ACT_LOG": ActionKind.LOG,
    "SCMP_ACT_ALLOW": ActionKind.ALLOW,
}
_OCI_NAMES: dict[ActionKind, str] = {
    ActionKind.KILL_THREAD: "SCMP_ACT_KILL_THREAD",
    ActionKind.KILL_PROCESS: "SCMP_ACT_KILL_PROCESS",
    ActionKind.TRAP: "SCMP_ACT_TRAP",
    ActionKind.ERRNO: "SCMP_ACT_ERRNO",
    ActionKind.LOG: "SCMP_ACT_LOG",
    ActionKind.ALLOW: "SCMP_ACT_ALLOW",
}
_OCI_OPS: dict[str, str] = {
    "SCMP_CMP_NE": "ne", "SCMP_CMP_LT": "lt", "SCMP_CMP_LE": "le", "SCMP_CMP_EQ": "eq",
    "SCMP_CMP_GE": "ge", "SCMP_CMP_GT": "gt", "SCMP_CMP_MASKED_EQ": "masked_eq",
}
_OPS_OCI = {op: name for name, op in _OCI_OPS.items()}
_GO_ARCH: dict[str, str] = {"x86_64": "amd64", "aarch64": "arm64"}
"""libseccomp architecture name -> the name moby compares ``includes.arches`` with."""
_TOP_KEYS = {"defaultAction", "defaultErrnoRet", "archMap", "architectures", "syscalls",
             "flags", "listenerPath", "listenerMetadata"}
_ENTRY_KEYS = {"names", "name", "action", "errnoRet", "args", "comment", "includes", "excludes"}
_SYSTEMD_ARCH = {
    "x86-64": "x86_64", "x86": "x86", "x32": "x32", "arm": "arm", "arm64": "aarch64",
    "mips": "mips", "mips-le": "mipsel", "mips64": "mips64", "mips64-le": "mipsel64",
    "mips64-n32": "mips64n32", "mips64-le-n32": "mipsel64n32", "parisc": "parisc",
    "parisc64": "parisc64", "ppc": "ppc", "ppc64": "ppc64", "ppc64-le": "ppc64le",
    "riscv64": "riscv64", "s390": "s390", "s390x": "s390x",
}
"""systemd's architecture names (``SystemCallArchitectures=``) -> libseccomp's."""


class FormatError(ValueError):
    """Input that cannot be converted, with where it is."""

    def __init__(self, location: Location, message: str) -> None:
        super().__init__(f"{location}: {message}")
        self.location = location
        self.message = message


# --- Docker / OCI JSON in -----------------------------------------------------------------------

class _Source:
    """Where the input came from (errors are located through the document's positions), the
    import's settings and the notes collected on the way."""

    def __init__(self, doc: Document | None, name: str) -> None:
        self.doc = doc
        self.name = name
        self.notes: list[str] = []
        self.arch = "x86_64"
        self.caps: frozenset[str] = frozenset(DOCKER_DEFAULT_CAPS)
        self.running = (0, 0)
        self.profile_name = "imported"

    def at(self, path: Path_) -> Location:
        return self.doc.at(path) if self.doc is not None else Location(self.name)

    def error(self, path: Path_, message: str) -> FormatError:
        return FormatError(self.at(path), f"{_pointer(path)}: {message}" if path else message)

    def note(self, text: str) -> None:
        self.notes.append(text)


def _pointer(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def load_oci(path: Path, arch: str = "x86_64", caps: Iterable[str] | None = None,
             kernel: str | None = None) -> tuple[Profile, list[str]]:
    """Read an OCI/Docker JSON file and import it (errors located at ``path:line:col``)."""
    loaded = load_file(path, str(path))
    if isinstance(loaded, LoadError):
        raise FormatError(loaded.location, loaded.message)
    name = _profile_name(path.stem)
    src = _Source(loaded, str(path))
    src.profile_name = name
    return _import(loaded.data, arch, caps, kernel, src)


def from_oci(data: Any, arch: str = "x86_64", caps: Iterable[str] | None = None,
             kernel: str | None = None, *, name: str = "imported",
             source: Document | None = None) -> tuple[Profile, list[str]]:
    """Import parsed OCI/Docker seccomp JSON for ``arch``: the profile and notes on what changed.

    ``caps``: the container's capabilities (default :data:`DOCKER_DEFAULT_CAPS`); ``kernel``: a
    release string such as ``"6.1.0-18-amd64"`` (default ``os.uname().release``). Raises
    :class:`FormatError` on input Docker would refuse or hostguard cannot run.
    """
    where = source.path if source is not None else "<oci>"
    src = _Source(source, where)
    src.profile_name = name
    return _import(data, arch, caps, kernel, src)


def _profile_name(stem: str) -> str:
    name = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-._")[:64]
    return name or "imported"


def _import(data: Any, arch: str, caps: Iterable[str] | None, kernel: str | None,
            src: _Source) -> tuple[Profile, list[str]]:
    try:
        src.arch = syscalls.canonical_arch(arch)
    except syscalls.UnknownArch as exc:
        raise FormatError(Location(src.name), str(exc)) from None
    if not isinstance(data, dict):
        raise src.error((), "an OCI seccomp profile is a JSON object")
    for key in data:
        if key not in _TOP_KEYS:
            src.note(f"ignored unknown key {key!r}")
    if data.get("flags"):
        src.note(f"ignored flags {data['flags']!r} (hostguard sets its own filter flags)")
    if data.get("listenerPath"):
        src.note("ignored listenerPath (hostguard runs no seccomp notify agent)")
    default = _action(src, data.get("defaultAction"), ("defaultAction",),
                      data.get("defaultErrnoRet"), ("defaultErrnoRet",))
    arches = _architectures(src, data)
    if caps is not None:  # a bare string is one comma-separated list, not its characters
        src.caps = frozenset(caps.split(",") if isinstance(caps, str) else caps)
    release = kernel if kernel is not None else os.uname().release
    running = _kernel_version(release)
    if running is None:
        raise FormatError(Location(src.name), f"cannot read a kernel version from {release!r}")
    src.running = running
    entries = data.get("syscalls")
    entries = [] if entries is None else entries
    if not isinstance(entries, list):
        raise src.error(("syscalls",), "must be a list")
    allow: list[Rule] = []
    deny: list[Rule] = []
    skipped: dict[syscalls.Status, dict[str, None]] = {
        syscalls.Status.ABSENT: {}, syscalls.Status.UNKNOWN: {}}
    for i, entry in enumerate(entries):
        for rule in _entry(src, ("syscalls", i), entry, default, skipped):
            (allow if rule.action.kind in (ActionKind.ALLOW, ActionKind.LOG) else deny).append(
                rule)
    absent, unknown = skipped[syscalls.Status.ABSENT], skipped[syscalls.Status.UNKNOWN]
    if absent:
        src.note(f"skipped {len(absent)} names absent on {src.arch}: "
                 f"{', '.join(sorted(absent))}")
    if unknown:
        src.note(f"skipped {len(unknown)} names libseccomp does not know: "
                 f"{', '.join(sorted(unknown))}")
    profile = Profile(name=src.profile_name, default_action=default, rules=tuple(allow),
                      deny=tuple(deny),
                      architectures=arches, no_new_privs=True, mode="enforce",
                      path=src.name if src.doc is not None else None,
                      location=src.at(()) if src.doc is not None else None)
    return profile, src.notes


def _entry(src: _Source, at: Path_, entry: Any, default: Action,
           skipped: dict[syscalls.Status, dict[str, None]]) -> list[Rule]:
    """The rules one ``syscalls[]`` entry gives on ``src.arch`` (none when it is left out)."""
    if not isinstance(entry, dict):
        raise src.error(at, "each syscalls entry is an object")
    for key in entry:
        if key not in _ENTRY_KEYS:
            src.note(f"{_pointer(at)}: ignored unknown key {key!r}")
    names = _names(src, entry, at)
    notes = len(src.notes)
    action = _action(src, entry.get("action"), (*at, "action"), entry.get("errnoRet"),
                     (*at, "errnoRet"))
    conds = _args(src, entry, at)  # checked even when the entry is left out: bad is bad
    why = _excluded(src, entry, at)
    if why:
        del src.notes[notes:]
        src.note(f"{_pointer(at)} ({_short_list(names)}) left out: {why}")
        return []
    kept: dict[str, None] = {}
    for syscall in names:
        status = syscalls.lookup(syscall, src.arch).status
        if status is syscalls.Status.KNOWN:
            kept.setdefault(syscall, None)
        else:
            skipped[status].setdefault(syscall, None)
    if not kept:
        return []
    if action == default:
        src.note(f"{_pointer(at)} ({_short_list(list(kept))}) dropped: its action {action} is "
                 "the default action (runc drops such rules too)")
        return []
    location = src.at(at) if src.doc is not None else None
    return [Rule(syscalls=tuple(kept), action=action, args=group, written=tuple(kept),
                 location=location) for group in conds]


def _short_list(names: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" +{len(names) - limit} more" if len(names) > limit else "")


def _names(src: _Source, entry: dict[str, Any], at: Path_) -> list[str]:
    if "name" in entry and "names" in entry:
        raise src.error(at, "'name' and 'names' both given; use one (Docker refuses this too)")
    if "name" in entry:
        raw: Any = [entry["name"]]
        where: Path_ = (*at, "name")
    else:
        raw = entry.get("names")
        where = (*at, "names")
    if not isinstance(raw, list) or not raw:
        raise src.error(where, "needs a non-empty list of syscall names")
    for j, item in enumerate(raw):
        if not isinstance(item, str) or not item:
            raise src.error((*where, j) if "names" in entry else where,
                            f"syscall names are strings, not {item!r}")
    return list(raw)


def _action(src: _Source, raw: Any, at: Path_, errno_ret: Any, errno_at: Path_) -> Action:
    if raw is None:
        raise src.error(at, "missing action")
    if raw == "SCMP_ACT_TRACE":
        src.note(f"{_pointer(at)}: SCMP_ACT_TRACE imported as errno 38 (ENOSYS), what the "
                 "kernel answers when no tracer is attached")
        return Action(ActionKind.ERRNO, ENOSYS)
    if raw == "SCMP_ACT_NOTIFY":
        raise src.error(at, "SCMP_ACT_NOTIFY hands the decision to a user-space supervisor, "
                        "which hostguard does not run; replace it (e.g. SCMP_ACT_ERRNO)")
    kind = _OCI_ACTIONS.get(raw) if isinstance(raw, str) else None
    if kind is None:
        raise src.error(at, f"unknown action {raw!r} (one of {', '.join(_OCI_ACTIONS)}, "
                        "SCMP_ACT_TRACE, SCMP_ACT_NOTIFY)")
    if kind is not ActionKind.ERRNO:
        if errno_ret is not None:
            src.note(f"{_pointer(errno_at)} ignored: only errno actions return one")
        return Action(kind)
    if errno_ret is None:
        return Action(ActionKind.ERRNO, errno_mod.EPERM)
    if isinstance(errno_ret, bool) or not isinstance(errno_ret, int) or not (
            0 <= errno_ret <= MAX_ERRNO):
        raise src.error(errno_at, f"errno must be an integer 0-{MAX_ERRNO}, not {errno_ret!r}")
    return Action(ActionKind.ERRNO, errno_ret)


def _architectures(src: _Source, data: dict[str, Any]) -> tuple[str, ...]:
    arch = src.arch
    listed, mapped = data.get("architectures"), data.get("archMap")
    if listed and mapped:
        raise src.error(("architectures",), "'architectures' and 'archMap' both given; use one "
                        "(Docker refuses this too)")
    found: list[str] = []
    if listed:
        if not isinstance(listed, list):
            raise src.error(("architectures",), "must be a list of SCMP_ARCH_* names")
        for j, item in enumerate(listed):
            found.append(_scmp_arch(src, item, ("architectures", j)))
        if arch not in found:
            src.note(f"architectures does not list {arch}; imported for {arch} anyway")
    elif mapped:
        if not isinstance(mapped, list):
            raise src.error(("archMap",), "must be a list")
        for j, item in enumerate(mapped):
            if not isinstance(item, dict):
                raise src.error(("archMap", j), "each archMap entry is an object")
            main = _scmp_arch(src, item.get("architecture"), ("archMap", j, "architecture"))
            if main != arch:
                continue
            found.append(main)
            subs = item.get("subArchitectures") or []
            if not isinstance(subs, list):
                raise src.error(("archMap", j, "subArchitectures"), "must be a list")
            for k, sub in enumerate(subs):
                found.append(_scmp_arch(src, sub, ("archMap", j, "subArchitectures", k)))
            break
        else:
            src.note(f"archMap has no entry for {arch}: filter for {arch} only")
    others = [a for a in dict.fromkeys(found) if a != arch]
    if others:
        src.note(f"the profile also filters {', '.join(others)} with the same rules; hostguard "
                 f"kills those ABIs instead (architectures: only {arch})")
    return ("native",) if arch == syscalls.native_arch() else (arch,)


def _scmp_arch(src: _Source, raw: Any, at: Path_) -> str:
    if not isinstance(raw, str) or not raw.startswith("SCMP_ARCH_"):
        raise src.error(at, f"not an SCMP_ARCH_* name: {raw!r}")
    return raw.removeprefix("SCMP_ARCH_").lower()


def _kernel_version(release: str) -> tuple[int, int] | None:
    match = re.match(r"\s*(\d+)\.(\d+)", release)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _excluded(src: _Source, entry: dict[str, Any], at: Path_) -> str | None:
    """Why moby would leave this entry out, or None when it applies."""
    go_arch, caps, running = _GO_ARCH.get(src.arch, src.arch), src.caps, src.running
    filters: dict[str, dict[str, Any]] = {}
    for key in ("excludes", "includes"):
        raw = entry.get(key) or {}
        if not isinstance(raw, dict):
            raise src.error((*at, key), "must be an object")
        for field_name in ("arches", "caps"):
            value = raw.get(field_name)
            if value is not None and (not isinstance(value, list) or not all(
                    isinstance(v, str) for v in value)):
                raise src.error((*at, key, field_name), "must be a list of strings")
        filters[key] = raw
    exc, inc = filters["excludes"], filters["includes"]
    if exc.get("arches") and go_arch in exc["arches"]:
        return f"excluded on {go_arch}"
    hit = [c for c in exc.get("caps") or () if c in caps]
    if hit:
        return f"excluded with {', '.join(hit)}"
    if exc.get("minKernel") and running >= _min_kernel(src, exc["minKernel"],
                                                       (*at, "excludes", "minKernel")):
        return f"excluded from kernel {exc['minKernel']} on"
    if inc.get("arches") and go_arch not in inc["arches"]:
        return f"only for {', '.join(inc['arches'])}"
    missing = [c for c in inc.get("caps") or () if c not in caps]
    if missing:
        return f"needs {', '.join(missing)}"
    if inc.get("minKernel") and running < _min_kernel(src, inc["minKernel"],
                                                      (*at, "includes", "minKernel")):
        return f"needs kernel {inc['minKernel']}"
    return None


def _min_kernel(src: _Source, raw: Any, at: Path_) -> tuple[int, int]:
    version = _kernel_version(raw) if isinstance(raw, str) else None
    if version is None:
        raise src.error(at, f"not a kernel version (major.minor): {raw!r}")
    return version


def _args(src: _Source, entry: dict[str, Any], at: Path_) -> list[tuple[ArgCondition, ...]]:
    """The entry's conditions; several on one argument -> one group each (runc ORs them)."""
    raw = entry.get("args") or []
    if not isinstance(raw, list):
        raise src.error((*at, "args"), "must be a list")
    conds: list[ArgCondition] = []
    for k, arg in enumerate(raw):
        where: Path_ = (*at, "args", k)
        if not isinstance(arg, dict):
            raise src.error(where, "each argument condition is an object")
        index, value, two, op = (arg.get("index"), arg.get("value"), arg.get("valueTwo", 0),
                                 arg.get("op"))
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= 5:
            raise src.error((*where, "index"), f"index must be 0-5, not {index!r}")
        numbers: list[int] = []
        for label, number in (("value", value), ("valueTwo", two)):
            if isinstance(number, bool) or not isinstance(number, int) or not (
                    0 <= number <= U64_MAX):
                raise src.error((*where, label), f"{label} must be an integer 0-2^64-1, "
                                f"not {number!r}")
            numbers.append(number)
        first, second = numbers
        ours = _OCI_OPS.get(op) if isinstance(op, str) else None
        if ours is None:
            raise src.error((*where, "op"), f"unknown operator {op!r} (one of "
                            f"{', '.join(_OCI_OPS)})")
        if ours == "masked_eq":
            conds.append(ArgCondition(index, ours, second, mask=first))
        else:
            if second:
                src.note(f"{_pointer(where)}: valueTwo {second} ignored for {op}")
            conds.append(ArgCondition(index, ours, first))
    indices = [c.index for c in conds]
    if len(set(indices)) < len(indices):
        src.note(f"{_pointer(at)}: several conditions on one argument, split into one "
                 "rule each (runc ORs them)")
        return [(c,) for c in conds]
    return [tuple(conds)]


# --- Docker / OCI JSON out ----------------------------------------------------------------------

def to_oci(profile: Profile, arch: str = "x86_64") -> dict[str, Any]:
    """The profile as OCI/Docker seccomp JSON (a dict for ``json.dumps``).

    ``native`` in the profile's architectures stands for ``arch``. Raises :class:`FormatError`
    for a rule with two conditions on one argument: runc would OR them.
    """
    log = profile.mode == "log"
    out: dict[str, Any] = {}
    out.update(_oci_action(_logged(profile.default_action, log), "defaultAction",
                           "defaultErrnoRet"))
    arches = [arch if a == "native" else a for a in profile.architectures]
    out["architectures"] = [f"SCMP_ARCH_{a.upper()}" for a in dict.fromkeys(arches)]
    blocked: set[str] = set()
    entries: list[dict[str, Any]] = []
    for rule in (*profile.deny, *profile.rules):
        names = [n for n in rule.syscalls if n not in blocked]
        if not names:
            continue
        indices = [c.index for c in rule.args]
        if len(set(indices)) < len(indices):
            where = rule.location or Location(profile.path or profile.name)
            raise FormatError(where, f"rule for {_short_list(names)} has two conditions on one "
                              "argument; OCI runtimes OR those, so it cannot be exported")
        entry: dict[str, Any] = {"names": names}
        entry.update(_oci_action(_logged(rule.action, log), "action", "errnoRet"))
        if rule.args:
            entry["args"] = [_oci_arg(c) for c in rule.args]
        entries.append(entry)
        if not rule.args:  # later rules can never decide these names
            blocked.update(names)
    out["syscalls"] = entries
    return out


def oci_caveats(profile: Profile) -> list[str]:
    """Syscalls whose exported OCI form may act differently: OCI rules have no order."""
    seen: dict[str, list[Rule]] = {}
    for rule in (*profile.deny, *profile.rules):
        for name in rule.syscalls:
            seen.setdefault(name, []).append(rule)
    out = []
    for name, rules in seen.items():
        for i, rule in enumerate(rules):
            if rule.args and any(r.action != rule.action for r in rules[i + 1:]):
                out.append(f"{name}: a conditional {rule.action} rule comes before a rule with "
                           "another action; OCI has no rule order, the runtime decides")
                break
    return out


def _logged(action: Action, log: bool) -> Action:
    return Action(ActionKind.LOG) if log and action.kind is not ActionKind.ALLOW else action


def _oci_action(action: Action, key: str, errno_key: str) -> dict[str, Any]:
    out: dict[str, Any] = {key: _OCI_NAMES[action.kind]}
    if action.kind is ActionKind.ERRNO:
        out[errno_key] = action.errno if action.errno is not None else errno_mod.EPERM
    return out


def _oci_arg(cond: ArgCondition) -> dict[str, Any]:
    if cond.op == "masked_eq":
        return {"index": cond.index, "value": cond.mask if cond.mask is not None else 0,
                "valueTwo": cond.value, "op": "SCMP_CMP_MASKED_EQ"}
    return {"index": cond.index, "value": cond.value, "valueTwo": 0, "op": _OPS_OCI[cond.op]}


# --- YAML (kind: SeccompProfile) out ------------------------------------------------------------

def to_yaml(profile: Profile, header: Sequence[str] = ()) -> str:
    """The profile as a ``kind: SeccompProfile`` document (:mod:`agent.seccomp.profile` loads it).

    ``header`` lines are written as comments at the top (import notes, provenance).
    """
    doc: dict[str, Any] = {
        "apiVersion": "hostguard/v1",
        "kind": "SeccompProfile",
        "metadata": {"name": _profile_name(profile.name)},
        "default_action": _yaml_action(profile.default_action),
        "architectures": list(profile.architectures),
        "no_new_privs": profile.no_new_privs,
        "mode": profile.mode,
        "rules": [_yaml_rule(r) for r in profile.rules],
        "deny": [_yaml_rule(r) for r in profile.deny],
    }
    if not doc["deny"]:
        del doc["deny"]
    body = yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=100)
    comments = "".join(f"# {part}\n" for text in header for line in text.splitlines()
                       for part in textwrap.wrap(line, 96, subsequent_indent="  ") or [""])
    return comments + body


def _yaml_action(action: Action) -> Any:
    if action.kind is ActionKind.ERRNO:
        return {"errno": action.errno if action.errno is not None else errno_mod.EPERM}
    return action.kind.value


def _yaml_rule(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"syscalls": list(rule.written or rule.syscalls),
                           "action": _yaml_action(rule.action)}
    if rule.args:
        out["args"] = [_yaml_arg(c) for c in rule.args]
    if rule.acknowledged:
        out["acknowledged"] = rule.acknowledged
    return out


def _yaml_arg(cond: ArgCondition) -> dict[str, Any]:
    out: dict[str, Any] = {"index": cond.index, "op": cond.op, "value": cond.value}
    if cond.mask is not None:
        out["mask"] = cond.mask
    return out


# --- systemd out --------------------------------------------------------------------------------

@record
class SystemdFilter:
    """``[Service]`` settings for a profile, and what they cannot say."""

    lines: tuple[str, ...]
    """``Key=value`` lines, in order (several ``SystemCallFilter=`` lines combine)."""
    unexpressed: tuple[str, ...]
    """What the profile does that these lines do not, and which way they differ."""

    def dropin(self, unit: str, source: str | None = None) -> str:
        """The text of a drop-in file (``UNIT.d/hostguard-seccomp.conf``)."""
        head = [f"# hostguard seccomp filter for {unit}"
                + (f", from {source}" if source else "") + ". Generated: do not edit."]
        head += [f"# not expressed: {item}" for item in self.unexpressed]
        return "\n".join([*head, "[Service]", *self.lines]) + "\n"


def _errno_text(number: int) -> str:
    return errno_mod.errorcode.get(number, str(number))


def _wrap(prefix: str, words: Sequence[str], width: int = 100) -> list[str]:
    """``prefix`` + words, split over lines of about ``width`` (systemd merges them)."""
    lines: list[str] = []
    current: list[str] = []
    size = len(prefix)
    for word in words:
        if current and size + 1 + len(word) > width:
            lines.append(prefix + " ".join(current))
            current, size = [], len(prefix)
        current.append(word)
        size += len(word) + 1
    if current:
        lines.append(prefix + " ".join(current))
    return lines


def _suffix(action: Action) -> str:
    if action.kind is ActionKind.ERRNO:
        return f":{_errno_text(action.errno if action.errno is not None else 1)}"
    return ":kill"


def _narrowest(actions: Iterable[Action]) -> Action:
    """The most restrictive action (what the kernel picks among stacked filters)."""
    return min(actions, key=lambda a: (PRECEDENCE[a.kind], a.errno or 0))


def _widest(actions: Iterable[Action]) -> Action:
    """The least restrictive action."""
    return max(actions, key=lambda a: (PRECEDENCE[a.kind], a.errno or 0))


def _permissive(action: Action) -> bool:
    return action.kind in (ActionKind.ALLOW, ActionKind.LOG)


def to_systemd(profile: Profile, *, widen: bool = False) -> SystemdFilter:
    """``SystemCallFilter=`` and companions for ``profile`` (systemd 252 semantics).

    Allow-list profiles become an allow-list (plus ``~name:errno`` entries for denies with their
    own errno, and ``~name`` for members of systemd's implicit ``@default`` the profile does not
    allow); ``default_action: allow`` becomes a ``~`` deny-list; ``mode: log`` becomes
    ``SystemCallLog=`` only (log, never deny). Argument conditions cannot be written: such a
    syscall gets the most restrictive action its rules could lead to (with ``widen``: the most
    permissive, e.g. ``clone`` allowed with any flags), and :attr:`SystemdFilter.unexpressed`
    says so either way.
    """
    notes: list[str] = []
    decided = _decide(profile, notes, widen)
    if profile.mode == "log":
        notes.append("mode log: no SystemCallFilter=; SystemCallLog= logs what would be denied")
        if profile.default_action.kind is ActionKind.ALLOW:
            logged = [n for n, a in decided.items() if a.kind is not ActionKind.ALLOW]
            lines = _wrap("SystemCallLog=", logged)
        else:
            allowed = [n for n, a in decided.items() if a.kind is ActionKind.ALLOW]
            lines = _wrap("SystemCallLog=~", allowed) or ["SystemCallLog=~"]
        return SystemdFilter(tuple(lines + _common(profile, notes)), tuple(notes))
    default = _systemd_action(profile.default_action, "default action", notes)
    decided = {n: _systemd_action(a, n, notes) for n, a in decided.items()}
    if _permissive(default):
        lines = _deny_list(default, decided)
    else:
        lines = _allow_list(default, decided, notes)
    return SystemdFilter(tuple(lines + _common(profile, notes)), tuple(notes))


def _decide(profile: Profile, notes: list[str], widen: bool) -> dict[str, Action]:
    """One action per syscall name (known on this architecture), as the compiler orders rules:
    deny entries first, then rules, first match wins."""
    decided: dict[str, Action] = {}
    conditional: dict[str, list[Rule]] = {}
    for rule in (*profile.deny, *profile.rules):
        for name in rule.syscalls:
            if name in decided:
                continue
            if rule.args:
                conditional.setdefault(name, []).append(rule)
            else:
                decided[name] = rule.action
    for name, rules in conditional.items():
        after = decided.get(name, profile.default_action)
        choices = [*(r.action for r in rules), after]
        chosen = _widest(choices) if widen else _narrowest(choices)
        decided[name] = chosen
        conds = "; ".join(" and ".join(_cond_text(c) for c in r.args) for r in rules)
        notes.append(f"{name}: argument conditions ({conds}) cannot be expressed; "
                     f"{name} gets {chosen} in every case"
                     + (" (widened: the profile is stricter)" if widen else ""))
    return {n: a for n, a in decided.items()
            if syscalls.lookup(n).status is syscalls.Status.KNOWN}


def _deny_list(default: Action, decided: dict[str, Action]) -> list[str]:
    denied = {n: a for n, a in decided.items() if not _permissive(a)}
    errnos = [a.errno for a in denied.values() if a.kind is ActionKind.ERRNO]
    common = max(set(errnos), key=errnos.count) if errnos else None
    words = [n if (a.kind is ActionKind.ERRNO and a.errno == common) else n + _suffix(a)
             for n, a in denied.items()]
    lines = _wrap("SystemCallFilter=~", words)
    if common is not None:
        lines.append(f"SystemCallErrorNumber={_errno_text(common)}")
    if default.kind is ActionKind.LOG:
        quiet = [n for n, a in decided.items() if a.kind is ActionKind.ALLOW]
        lines += _wrap("SystemCallLog=~", quiet) or ["SystemCallLog=~"]
    else:
        lines += _wrap("SystemCallLog=", [n for n, a in decided.items()
                                          if a.kind is ActionKind.LOG])
    return lines


def _allow_list(default: Action, decided: dict[str, Action], notes: list[str]) -> list[str]:
    allowed = [n for n, a in decided.items() if _permissive(a)]
    own = {n: a for n, a in decided.items() if not _permissive(a) and a != default}
    lines = _wrap("SystemCallFilter=", allowed) or ["SystemCallFilter=@default"]
    implicit = [n for n in syscalls.expand(["@default"])
                if n not in allowed and n not in own
                and syscalls.lookup(n).status is syscalls.Status.KNOWN]
    if implicit:
        lines += _wrap("SystemCallFilter=~", implicit)
        notes.append("systemd always allows @default; taken out again with ~: "
                     + ", ".join(implicit))
    lines += _wrap("SystemCallFilter=~", [n + _suffix(a) for n, a in own.items()])
    lines.append("SystemCallErrorNumber=" + (
        _errno_text(default.errno or 0) if default.kind is ActionKind.ERRNO else "kill"))
    lines += _wrap("SystemCallLog=", [n for n, a in decided.items() if a.kind is ActionKind.LOG])
    return lines


def _common(profile: Profile, notes: list[str]) -> list[str]:
    lines = ["SystemCallArchitectures=native"]
    native = syscalls.native_arch()
    others = [a for a in profile.architectures if a not in ("native", native)]
    if others:
        notes.append(f"architectures {', '.join(others)} are blocked by "
                     "SystemCallArchitectures=native (the profile filters them)")
    if profile.no_new_privs:
        lines.append("NoNewPrivileges=yes")
    else:
        notes.append("no_new_privs: false is not written (systemd implies NoNewPrivileges=yes "
                     "for a filtered service that lacks CAP_SYS_ADMIN)")
    return lines


def _systemd_action(action: Action, what: str, notes: list[str]) -> Action:
    if action.kind is ActionKind.KILL_THREAD:
        notes.append(f"{what}: kill_thread becomes kill (systemd kills the whole process)")
        return Action(ActionKind.KILL_PROCESS)
    if action.kind is ActionKind.TRAP:
        notes.append(f"{what}: trap (SIGSYS to a handler) becomes kill")
        return Action(ActionKind.KILL_PROCESS)
    return action


def _cond_text(cond: ArgCondition) -> str:
    if cond.op == "masked_eq":
        return f"arg{cond.index} & {cond.mask or 0:#x} == {cond.value:#x}"
    return f"arg{cond.index} {cond.op} {cond.value}"


# --- systemd in ---------------------------------------------------------------------------------

_KILL = -2
"""``:kill`` suffix (systemd's SECCOMP_ERROR_NUMBER_KILL)."""
_LOG = Action(ActionKind.LOG)


def from_systemd(lines: Iterable[str], name: str = "systemd") -> Profile:
    """The profile a unit's ``SystemCallFilter=`` (and companion) lines describe."""
    return parse_systemd(lines, name)[0]


def parse_systemd(lines: Iterable[str], name: str = "systemd",
                  source: str = "<systemd>") -> tuple[Profile, list[str]]:
    """Like :func:`from_systemd`, plus notes on entries systemd itself would ignore.

    Accepts ``Key=value`` lines, section headers, comments and blank lines; keys other than
    ``SystemCallFilter``, ``SystemCallErrorNumber``, ``SystemCallArchitectures``,
    ``NoNewPrivileges`` and ``SystemCallLog`` are noted and ignored. Raises :class:`FormatError`
    for a line that is not ``Key=value``, an unknown ``@group`` or a bad errno.
    """
    parser = _SystemdParser()
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line[0] in "#;" or (line.startswith("[") and line.endswith("]")):
            continue
        key, sep, value = line.partition("=")
        where = Location(source, number)
        if not sep:
            raise FormatError(where, f"not a Key=value line: {line!r}")
        parser.setting(key.strip(), value.strip(), where)
    return parser.profile(name), parser.notes


class _SystemdParser:
    """The state systemd keeps while it reads a unit's syscall filter settings."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.table: dict[str, int | None] | None = None
        """Name -> errno (None: the list's own meaning), as systemd's hashmap."""
        self.allow_list = False
        self.errno: int | None = None
        """SystemCallErrorNumber=; None: kill."""
        self.arches: list[str] | None = None
        self.nnp = False
        self.log: dict[str, None] | None = None
        self.log_invert = False

    def setting(self, key: str, value: str, where: Location) -> None:
        if key == "SystemCallFilter":
            self.filter(value, where)
        elif key == "SystemCallErrorNumber":
            self.errno = None if value in ("", "kill") else _errno_value(value, where, 1)
        elif key == "SystemCallArchitectures":
            self.arches = None if not value else self.architectures(value.split(), where)
        elif key == "NoNewPrivileges":
            self.nnp = value.lower() in ("1", "yes", "true", "on")
        elif key == "SystemCallLog":
            self.syscall_log(value, where)
        else:
            self.notes.append(f"{where}: {key}= is not a syscall filter setting, ignored")

    def filter(self, value: str, where: Location) -> None:
        if not value:  # an empty assignment resets
            self.table, self.allow_list = None, False
            return
        invert = value.startswith("~")
        if self.table is None:  # the first assignment decides allow-list or deny-list
            self.table = {}
            self.allow_list = not invert
            if self.allow_list:
                self.table.update(dict.fromkeys(self.members("@default", where)))
        for word in value.removeprefix("~").split():
            entry, colon, suffix = word.partition(":")
            err: int | None = None
            if colon:
                if not invert:
                    self.notes.append(f"{where}: allow-listed system calls cannot take an error "
                                      f"number (systemd ignores {word!r})")
                    continue
                err = _KILL if suffix == "kill" else _errno_value(suffix, where, 0)
            for member in self.members(entry, where):
                if (not invert) == self.allow_list or (invert and err is not None):
                    self.table[member] = err
                else:
                    self.table.pop(member, None)

    def syscall_log(self, value: str, where: Location) -> None:
        if not value:
            self.log, self.log_invert = None, False
            return
        invert = value.startswith("~")
        if self.log is None:
            self.log, self.log_invert = {}, invert
        for word in value.removeprefix("~").split():
            for member in self.members(word, where):
                if invert == self.log_invert:
                    self.log[member] = None
                else:
                    self.log.pop(member, None)

    def members(self, entry: str, where: Location) -> list[str]:
        """Names of ``entry`` known on the native architecture (a group expanded)."""
        if syscalls.is_group(entry):
            try:
                names = syscalls.expand([entry])
            except syscalls.UnknownGroup:
                raise FormatError(where, f"unknown syscall group {entry!r}") from None
            return [n for n in names if syscalls.lookup(n).status is syscalls.Status.KNOWN]
        status = syscalls.lookup(entry).status
        if status is syscalls.Status.KNOWN:
            return [entry]
        what = "absent on this architecture" if status is syscalls.Status.ABSENT else (
            "not a system call libseccomp knows")
        self.notes.append(f"{where}: {entry} is {what}, skipped")
        return []

    def architectures(self, words: list[str], where: Location) -> list[str]:
        out: list[str] = []
        for word in words:
            if word == "native":
                out.append("native")
            elif word in _SYSTEMD_ARCH:
                out.append(_SYSTEMD_ARCH[word])
            else:
                self.notes.append(f"{where}: unknown architecture {word!r}, ignored (as systemd "
                                  "does)")
        return list(dict.fromkeys(out))

    def profile(self, name: str) -> Profile:
        """What the unit's processes get: the main filter and SystemCallLog='s filter stacked
        (the kernel takes the more restrictive answer of the two)."""
        default = (Action(ActionKind.KILL_PROCESS) if self.errno is None
                   else Action(ActionKind.ERRNO, self.errno))
        main: dict[str, Action] = {}
        main_default = ALLOW
        if self.table is not None and self.allow_list:
            main_default = default
            main = {s: ALLOW if e is None else _errno_action(e) for s, e in self.table.items()}
        elif self.table is not None:
            main = {s: default if e is None else _errno_action(e) for s, e in self.table.items()}
        log = self.log if self.log is not None else {}
        log_default = _LOG if (self.log is not None and self.log_invert) else ALLOW
        log_named = ALLOW if self.log_invert else _LOG
        overall = _narrowest((main_default, log_default))
        allow_side: dict[str, Action] = {}
        deny_side: dict[str, Action] = {}
        for syscall in dict.fromkeys([*main, *log]):
            action = _narrowest((main.get(syscall, main_default),
                                 log_named if syscall in log else log_default))
            if action != overall:
                (allow_side if _permissive(action) else deny_side)[syscall] = action
        arches = self.arches
        if arches is None:
            arches = ["native", *syscalls.other_abis()]
            self.notes.append("no SystemCallArchitectures=: systemd filters "
                              f"{', '.join(arches[1:])} with the same list (an open ABI to "
                              "hostguard's lint; add SystemCallArchitectures=native)")
        return Profile(name=_profile_name(name), default_action=overall,
                       rules=_grouped(allow_side), deny=_grouped(deny_side),
                       architectures=tuple(arches) or ("native",), no_new_privs=self.nnp,
                       mode="enforce")


def _grouped(decided: dict[str, Action]) -> tuple[Rule, ...]:
    """One rule per action, names in first-met order."""
    by_action: dict[Action, list[str]] = {}
    for syscall, action in decided.items():
        by_action.setdefault(action, []).append(syscall)
    return tuple(Rule(syscalls=tuple(names), action=action, written=tuple(names))
                 for action, names in by_action.items())


def _errno_action(err: int) -> Action:
    return Action(ActionKind.KILL_PROCESS) if err == _KILL else Action(ActionKind.ERRNO, err)


def _errno_value(text: str, where: Location, lowest: int) -> int:
    if text.isdigit():
        number = int(text)
    else:
        found = getattr(errno_mod, text, None) if text.startswith("E") else None
        if not isinstance(found, int):
            raise FormatError(where, f"not an errno number or name: {text!r}")
        number = found
    if not lowest <= number <= MAX_ERRNO:
        raise FormatError(where, f"errno must be {lowest}-{MAX_ERRNO}, not {number}")
    return number
