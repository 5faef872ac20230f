"""``mount``: what is mounted at a mount point, read from ``/proc/<pid>/mountinfo``.

Passes::

    - id: MNT-001
      kind: mount
      spec: {path: /tmp, fstype: tmpfs, options: [nodev, nosuid], missing: not_applicable}
      # mountinfo: "... /tmp rw,nosuid,nodev,relatime - tmpfs tmpfs rw,size=1g"

Fails::

    - id: MNT-001
      kind: mount
      spec: {path: /dev/shm, options: [noexec]}
      # mountinfo: "... /dev/shm rw,nosuid,nodev - tmpfs tmpfs rw"

The table is the one of ``pid``'s mount namespace (``self``, the auditing process, by default;
``1`` for the host's view from inside a service with ``PrivateTmp=`` or ``PrivateMounts=``).
Where mounts are stacked on one point, the last one listed (the one on top) is judged. Options
are the mount's and its superblock's together, as ``findmnt`` shows them.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from agent.checks.base import CheckKind, SpecError, SpecProblem
from agent.core.record import record
from agent.host.facts import ReadError
from agent.host.mounts import Mount
from agent.host.snapshot import Snapshot, SnapshotRequest
from agent.result import Evidence, Outcome, Status

_OPTION = {"type": "string", "pattern": r"^[A-Za-z0-9_.:+-]+(=[^,\s]*)?$"}
_OPTIONS = {"type": "array", "items": _OPTION, "minItems": 1, "uniqueItems": True}
# The kernel lists only the restrictive form of these flags: "exec" never appears.
_NEVER_LISTED = {"exec": "noexec", "dev": "nodev", "suid": "nosuid"}
_SIZE = re.compile(r"([0-9]+)([kKmMgGtT]?)")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


@record
class MountSpec:
    """Parsed ``mount`` spec."""

    path: str
    """Absolute, normalised mount point."""
    mounted: bool
    """Whether something must be mounted there (False: nothing may be)."""
    fstype: tuple[str, ...]
    """Allowed filesystem types; empty: any."""
    options: tuple[str, ...]
    """Options that must be set (``name`` or ``name=value``)."""
    forbidden: tuple[str, ...]
    """Options that must not be set."""
    missing: str
    """Verdict when ``mounted`` and nothing is mounted: ``fail`` or ``not_applicable``."""
    pid: str
    """Whose mount namespace: ``self`` or a pid."""


class MountKind(CheckKind[MountSpec]):
    """Mount points, their filesystem type and options."""

    name = "mount"
    summary = "A mount point is mounted (or not), with a filesystem type and required and " \
              "forbidden options."
    spec_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "description": summary,
        "required": ["path"],
        "additionalProperties": False,
        "properties": {
            "path": {"type": "string", "pattern": "^/", "description": "Absolute mount point.",
                     "examples": ["/home", "/var/log", "/mnt/huge-1G"]},
            "mounted": {"type": "boolean", "default": True,
                        "description": "Whether something must be mounted there."},
            "fstype": {"description": "Allowed filesystem type, or a list of them.",
                       "anyOf": [{"type": "string", "minLength": 1},
                                 {"type": "array", "items": {"type": "string", "minLength": 1},
                                  "minItems": 1}]},
            "options": {**_OPTIONS, "description": "Options that must be set: 'nodev', "
                        "'pagesize=1G' (sizes compare by value: 1G is 1024M)."},
            "forbidden": {**_OPTIONS, "description": "Options that must not be set: 'rw', "
                          "'pagesize=2M'; a bare name forbids it with any value."},
            "missing": {"enum": ["fail", "not_applicable"], "default": "fail",
                        "description": "Verdict when nothing is mounted there (default: fail)."},
            "pid": {"anyOf": [{"const": "self"}, {"type": "integer", "minimum": 1}],
                    "default": "self",
                    "description": "Whose mount namespace: 'self' (the audit's) or a pid "
                    "(1: the host's, from inside a sandboxed service)."},
        },
    }

    def parse(self, raw: Mapping[str, Any]) -> MountSpec:
        problems: list[SpecProblem] = []
        path = str(raw["path"])
        normal = posixpath.normpath(path)
        if normal.startswith("//"):
            normal = normal[1:]  # normpath keeps a leading '//' (POSIX leaves it open)
        if ".." in path.split("/") or normal != path:
            problems.append(SpecProblem(("path",), f"mount point {path!r} is not a normalised "
                                        f"absolute path (write {normal!r})"))
        mounted = bool(raw.get("mounted", True))
        fstype = raw.get("fstype", [])
        fstypes = tuple(map(str, fstype if isinstance(fstype, list) else [fstype]))
        options = tuple(map(str, raw.get("options", [])))
        forbidden = tuple(map(str, raw.get("forbidden", [])))
        if not mounted:
            for key in ("fstype", "options", "forbidden", "missing"):
                if key in raw:
                    problems.append(SpecProblem((key,), f"'{key}' means nothing with "
                                                "mounted: false"))
        elif not (fstypes or options or forbidden) and raw.get("missing") == "not_applicable":
            problems.append(SpecProblem(("missing",), "a spec that only asks for a mount "
                                        "cannot be not_applicable when there is none"))
        for key, listed in (("options", options), ("forbidden", forbidden)):
            for i, option in enumerate(listed):
                name = option.partition("=")[0]
                if name in _NEVER_LISTED:
                    verb = "require" if key == "forbidden" else "forbid"
                    problems.append(SpecProblem((key, i), f"the kernel never lists {name!r}; "
                                                f"{verb} {_NEVER_LISTED[name]!r} instead"))
        for i, option in enumerate(options):
            if any(_matches(option, other) or _matches(other, option) for other in forbidden):
                problems.append(SpecProblem(("options", i), f"option {option!r} is both "
                                            "required and forbidden"))
        if problems:
            raise SpecError(problems)
        pid = raw.get("pid", "self")
        return MountSpec(path, mounted, fstypes, options, forbidden,
                         str(raw.get("missing", "fail")), str(pid))

    def request(self, spec: MountSpec) -> SnapshotRequest:
        return SnapshotRequest(mountinfo=frozenset({spec.pid}))

    def evaluate(self, spec: MountSpec, snapshot: Snapshot) -> Outcome:
        expected = _describe(spec)
        table = snapshot.mounts.get(spec.pid)
        if table is None or isinstance(table, ReadError):
            reason = table.reason if table is not None else f"mountinfo of {spec.pid} not read"
            return Outcome(Status.ERROR, f"cannot evaluate: {reason}", Evidence(expected, reason))
        stacked = [m for m in table if m.mount_point == spec.path]
        if not stacked:
            actual = f"nothing is mounted at {spec.path}"
            if not spec.mounted:
                return Outcome(Status.PASS, actual, Evidence(expected, actual))
            status = Status.NOT_APPLICABLE if spec.missing == "not_applicable" else Status.FAIL
            return Outcome(status, actual, Evidence(expected, actual))
        mount = stacked[-1]
        actual = _shown(mount)
        if not spec.mounted:
            return Outcome(Status.FAIL, f"{spec.path} is mounted: {actual}",
                           Evidence(expected, actual, (_row(mount),)))
        findings = _findings(spec, mount)
        row = {**_row(mount), "stacked": len(stacked), "findings": findings}
        evidence = Evidence(expected, actual, (row,))
        if findings:
            return Outcome(Status.FAIL, f"{spec.path}: " + "; ".join(findings), evidence)
        return Outcome(Status.PASS, f"{spec.path} is {actual}", evidence)


def _findings(spec: MountSpec, mount: Mount) -> list[str]:
    found: list[str] = []
    if spec.fstype and mount.fstype not in spec.fstype:
        found.append(f"fstype is {mount.fstype}, expected {' or '.join(spec.fstype)}")
    effective = mount.effective_options()
    missing = [o for o in spec.options if not any(_matches(o, have) for have in effective)]
    if missing:
        found.append(f"{', '.join(missing)} not set")
    present = [have for have in effective if any(_matches(o, have) for o in spec.forbidden)]
    if present:
        found.append(f"{', '.join(present)} set")
    return found


def _matches(wanted: str, have: str) -> bool:
    """Whether option ``have`` as the kernel lists it is ``wanted``: the same name, and for a
    ``name=value`` the same value (sizes by value, so ``pagesize=1G`` is ``pagesize=1024M``)."""
    name, sep, value = wanted.partition("=")
    have_name, have_sep, have_value = have.partition("=")
    if name != have_name:
        return False
    if not sep:
        return True
    if not have_sep:
        return False
    left, right = _size(value), _size(have_value)
    return left == right if left is not None and right is not None else value == have_value


def _size(text: str) -> int | None:
    match = _SIZE.fullmatch(text)
    return int(match.group(1)) * _UNITS[match.group(2).lower()] if match else None


def _shown(mount: Mount) -> str:
    return f"{mount.fstype} from {mount.source}, {','.join(mount.effective_options())}"


def _row(mount: Mount) -> dict[str, Any]:
    return {"mount_point": mount.mount_point, "fstype": mount.fstype, "source": mount.source,
            "options": ",".join(mount.effective_options()), "root": mount.root,
            "mount_id": mount.mount_id}


def _describe(spec: MountSpec) -> str:
    if not spec.mounted:
        return f"nothing mounted at {spec.path}"
    parts = [f"{spec.path} mounted"]
    if spec.fstype:
        parts.append(f"fstype {' or '.join(spec.fstype)}")
    if spec.options:
        parts.append(f"with {','.join(spec.options)}")
    if spec.forbidden:
        parts.append(f"without {','.join(spec.forbidden)}")
    if spec.missing == "not_applicable":
        parts.append("if mounted")
    return ", ".join(parts)
