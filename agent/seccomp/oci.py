"""Docker/OCI seccomp JSON in and out of a hostguard :class:`~agent.seccomp.model.Profile`.

Imported (:func:`from_oci`, :func:`load_oci`) the way Docker (moby ``profiles/seccomp``) and
runc read it:

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

Export (:func:`to_oci`) writes the reverse: ``deny`` entries first, then ``rules``; a name is
left out of the entries after its first unconditional one (they can never decide it). OCI has no
rule order, so a syscall with a conditional rule followed by a rule with another action is listed
by :func:`oci_caveats`.
``mode: log`` is exported as what it does: every non-allow action becomes ``SCMP_ACT_LOG``.
"""

from __future__ import annotations

import errno as errno_mod
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from agent.core.location import Location
from agent.core.yamlload import Document, LoadError, Path_, load_file
from agent.seccomp import syscalls
from agent.seccomp.model import (
    MAX_ERRNO,
    U64_MAX,
    Action,
    ActionKind,
    ArgCondition,
    FormatError,
    Profile,
    Rule,
    profile_name,
)
from agent.seccomp.plan import effective

DOCKER_DEFAULT_CAPS: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)
"""Docker's default container capabilities (moby ``oci/caps/defaults.go``)."""


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
    name = profile_name(path.stem)
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
            (allow if rule.action.permits else deny).append(
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
    out: dict[str, Any] = {}
    out.update(_oci_action(effective(profile.default_action, profile.mode), "defaultAction",
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
        entry.update(_oci_action(effective(rule.action, profile.mode), "action", "errnoRet"))
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
