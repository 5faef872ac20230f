"""systemd unit files, read and merged as systemd 252 merges them for the system manager.

A unit is found as ``src/basic/unit-file.c`` finds it: the directories of the system search
path (:data:`SEARCH_PATH`, ``src/basic/path-lookup.c``) are listed in order and the first entry
of a name wins, whether a regular file or a symbolic link. A link whose target lies in the
search path is an alias (``/etc/systemd/system/sshd.service -> /lib/systemd/system/ssh.service``)
and the unit is read from the target's fragment; a link out of it "links" a unit file from
elsewhere and keeps its own path; a link to ``/dev/null`` or an empty file masks the unit. An
instance (``md@a.service``) without a file of its own is read from its template
(``md@.service``); specifiers such as ``%i`` are left unexpanded in the values
(:func:`expand_specifiers` expands those that depend on the unit's name alone).

Drop-ins are found as ``src/shared/dropin.c`` finds them: ``NAME.d/*.conf`` for the unit's name
and its aliases in every directory of the search path, then for an instance its template's,
then the dash prefixes (``foo-.service.d`` for ``foo-bar.service``; ``foo-@i.service.d``,
``foo-@.service.d`` and ``foo-.service.d`` for ``foo-bar@i.service``), and last the unit
type's (``service.d``). Of several drop-ins with one file name the first found wins and masks the
others; the winners apply sorted by file name, whatever their directory.

Files are parsed as ``src/shared/conf-parser.c`` parses them: ``#`` and ``;`` start comment
lines (also inside a continuation), a trailing unescaped ``\\`` joins the next line with a
space, ``[Section]`` opens a section, ``Key=Value`` is an assignment with both sides stripped.
What systemd ignores with a warning (an assignment outside a section, a line without ``=``,
invalid UTF-8) is skipped and listed in :attr:`UnitFiles.warnings`; what makes systemd refuse
the unit (a bad section header, an unreadable file, a line longer than systemd's limit) raises
:class:`UnitFileError`, as does a file larger than :data:`MAX_UNIT_FILE` (host data is
hostile; real unit files are far smaller).

Everything is read under ``root`` with symbolic links resolved inside it
(:func:`agent.host.files.resolve`): ``load_unit`` is a pure function of the files there.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from agent.host.facts import ReadError
from agent.host.files import MAX_ENTRIES, MAX_TEXT, resolve

SEARCH_PATH = (
    "/etc/systemd/system.control",
    "/run/systemd/system.control",
    "/run/systemd/transient",
    "/run/systemd/generator.early",
    "/etc/systemd/system",
    "/etc/systemd/system.attached",
    "/run/systemd/system",
    "/run/systemd/system.attached",
    "/run/systemd/generator",
    "/usr/local/lib/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/run/systemd/generator.late",
)
"""The system manager's unit search path, highest priority first, as Debian's systemd 252
builds it (``/lib/systemd/system`` precedes ``/usr/lib/systemd/system``: on a merged ``/usr``
they are one directory and units show under ``/lib``, as ``systemctl status`` shows them)."""

MAX_UNIT_FILE = MAX_TEXT
"""Bytes of one unit file or drop-in read (the text limit of :mod:`agent.host.files`)."""
LONG_LINE_MAX = 1 << 20
"""systemd's ``LONG_LINE_MAX``: a longer line, joined or not, makes it refuse the file."""

UNIT_TYPES = ("service", "socket", "target", "device", "mount", "automount", "swap",
              "timer", "path", "slice", "scope")
"""Unit types, the suffixes of unit names."""
_MAY_ALIAS = {"service", "socket", "target", "device", "timer", "path"}
_MAY_TEMPLATE = {"service", "socket", "target", "timer", "path"}
_VALID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.\\")
_UNIT_NAME_MAX = 255
_FOLLOW_MAX = 64
_COMMENTS = "#;"
_WHITESPACE = " \t\n\r"
_EOL = re.compile("\r\n|\r|\n|\0")
"""``read_line``'s line ends."""

EMPTY_IGNORED = frozenset({
    "AllowIsolate", "BlockIOAccounting", "BusName", "CPUAccounting",
    "CPUSchedulingPriority", "CPUSchedulingResetOnFork", "CacheDirectoryMode",
    "CollectMode", "ConfigurationDirectoryMode", "DefaultDependencies", "DevicePolicy",
    "ExitType", "FailureAction", "FileDescriptorStoreMax", "FinalKillSignal",
    "GuessMainPID", "IOAccounting", "IPAccounting", "IgnoreOnIsolate", "IgnoreSIGPIPE",
    "JobRunningTimeoutSec", "JobTimeoutAction", "JobTimeoutSec", "KeyringMode",
    "KillSignal", "LimitAS", "LimitCORE", "LimitCPU", "LimitDATA", "LimitFSIZE",
    "LimitLOCKS", "LimitMEMLOCK", "LimitMSGQUEUE", "LimitNICE", "LimitNOFILE", "LimitNPROC",
    "LimitRSS", "LimitRTPRIO", "LimitRTTIME", "LimitSIGPENDING", "LimitSTACK",
    "LockPersonality", "LogLevelMax", "LogRateLimitBurst", "LogRateLimitIntervalSec",
    "LogsDirectoryMode", "ManagedOOMPreference", "MemoryAccounting",
    "MemoryDenyWriteExecute", "NoNewPrivileges", "NonBlocking", "NotifyAccess", "OOMPolicy",
    "OnFailureIsolate", "OnFailureJobMode", "OnSuccessJobMode", "PermissionsStartOnly",
    "PrivateDevices", "PrivateIPC", "PrivateMounts", "PrivateNetwork", "PrivateTmp",
    "PrivateUsers", "ProcSubset", "ProtectClock", "ProtectControlGroups", "ProtectHome",
    "ProtectHostname", "ProtectKernelLogs", "ProtectKernelModules", "ProtectKernelTunables",
    "ProtectProc", "ProtectSystem", "RefuseManualStart", "RefuseManualStop",
    "RemainAfterExit", "RemoveIPC", "Restart", "RestartKillSignal", "RestartSec",
    "RestrictRealtime", "RestrictSUIDSGID", "RootDirectoryStartOnly",
    "RuntimeDirectoryMode", "RuntimeDirectoryPreserve", "RuntimeMaxSec",
    "RuntimeRandomizedExtraSec", "SendSIGHUP", "SendSIGKILL", "Slice", "StandardError",
    "StandardInput", "StandardOutput", "StartLimitAction", "StartLimitBurst",
    "StartLimitInterval", "StartLimitIntervalSec", "StateDirectoryMode", "StopWhenUnneeded",
    "SuccessAction", "SyslogFacility", "SyslogLevel", "SyslogLevelPrefix", "TTYReset",
    "TTYVHangup", "TTYVTDisallocate", "TasksAccounting", "TimeoutCleanSec", "TimeoutSec",
    "TimeoutStartFailureMode", "TimeoutStartSec", "TimeoutStopFailureMode",
    "TimeoutStopSec", "TimerSlackNSec", "Type", "UMask", "UtmpMode", "WatchdogSec",
    "WatchdogSignal",
})
"""Keys of ``[Unit]`` and ``[Service]`` (and the exec, kill and resource-control settings other
unit types share) whose parser refuses an empty value ("Failed to parse ..., ignoring") instead
of resetting: ``NoNewPrivileges=`` after ``NoNewPrivileges=yes`` leaves it yes. Probed from
systemd 252 (``systemd --dump-configuration-items``, each key assigned empty and loaded by
``systemd-analyze verify``); tests/host/test_unitfiles_empty.py probes again."""


class UnitFileError(Exception):
    """A unit file systemd would refuse, or one that could not be read."""

    def __init__(self, path: str, line: int, col: int, message: str) -> None:
        super().__init__(f"{path}:{line}:{col}: {message}")
        self.path = path
        """The file on the host (the unit's name when no file is at fault)."""
        self.line = line
        """1-based line; 0 when the file as a whole is at fault."""
        self.col = col
        """1-based column; 0 when the file as a whole is at fault."""
        self.message = message
        """What is wrong."""


@dataclass(frozen=True)
class Assignment:
    """One ``Key=Value`` line of a unit file or drop-in."""

    section: str
    """The section it is in, e.g. ``Service``."""
    key: str
    """e.g. ``NoNewPrivileges``."""
    value: str
    """After joining continued lines, surrounding whitespace stripped; specifiers kept."""
    path: str
    """The file's path on the host (without the root prefix)."""
    line: int
    """1-based line the key is on (the first line of a continued assignment)."""


@dataclass(frozen=True)
class UnitFiles:
    """A unit's fragment and drop-ins, and their assignments in the order systemd applies
    them."""

    name: str
    """The unit asked for, e.g. ``fixgw.service`` or ``md@a.service``."""
    fragment: str | None
    """The main unit file's host path (aliases and templates resolved); ``None`` when there
    is none (systemd then says "not-found" for a service, socket, timer or path)."""
    dropins: tuple[str, ...]
    """Drop-in files in the order systemd applies them (a masked drop-in, a link to
    ``/dev/null``, is listed and contributes nothing)."""
    masked: bool
    """The fragment is a link to ``/dev/null`` or empty: systemd reads nothing of the unit."""
    assignments: tuple[Assignment, ...]
    """The fragment's, then each drop-in's, in order; none when masked."""
    names: tuple[str, ...] = ()
    """Every name of the unit: its id (the fragment's name, an instance's own) first, then
    its aliases, sorted."""
    warnings: tuple[str, ...] = field(default=())
    """``path:line: message`` for each line systemd would ignore with a warning."""

    def values(self, section: str, key: str) -> list[str]:
        """The values of ``key`` in order, an empty assignment clearing those before it (as
        systemd treats list settings such as ``ExecStart=`` or ``CapabilityBoundingSet=``),
        except for the keys of :data:`EMPTY_IGNORED`, where systemd skips it."""
        found: list[str] = []
        for assignment in self.assignments:
            if assignment.section == section and assignment.key == key:
                if assignment.value:
                    found.append(assignment.value)
                elif key not in EMPTY_IGNORED:
                    found.clear()
        return found

    def last(self, section: str, key: str) -> str | None:
        """The effective value of a single-valued setting: the last assignment's (``""``
        when that one is empty, which resets it to systemd's default; for the keys of
        :data:`EMPTY_IGNORED` an empty one is skipped); ``None`` if unset."""
        value: str | None = None
        for assignment in self.assignments:
            if assignment.section == section and assignment.key == key and (
                    assignment.value or key not in EMPTY_IGNORED):
                value = assignment.value
        return value


def _unescape(text: str) -> str:
    """``unit_name_unescape``: ``-`` is ``/``, ``\\xNN`` the byte NN."""
    out = bytearray()
    i = 0
    while i < len(text):
        char = text[i]
        if char == "-":
            out += b"/"
        elif char == "\\" and text[i + 1:i + 2] == "x" and len(text) >= i + 4:
            try:
                out.append(int(text[i + 2:i + 4], 16))
                i += 4
                continue
            except ValueError:
                out += char.encode()
        else:
            out += char.encode()
        i += 1
    return out.decode("utf-8", "replace")


def expand_specifiers(unit_id: str, value: str) -> str:
    """``value`` with the specifiers that depend on the unit's name alone expanded as
    ``unit_full_printf`` expands them (``%n %N %p %P %i %I %j %J %f %%``); the others (host
    name, machine id, user ...) are left as written."""
    prefix, instance, _ = _split(unit_id)
    stem = unit_id.rpartition(".")[0]
    last = prefix.rpartition("-")[2]
    escaped = {"n": unit_id, "N": stem, "p": prefix, "P": _unescape(prefix),
               "i": instance or "", "I": _unescape(instance or ""), "j": last,
               "J": _unescape(last), "%": "%"}
    escaped["f"] = "/" + (_unescape(instance) if instance else _unescape(prefix)).lstrip("/")
    return re.sub(r"%(.)", lambda m: escaped.get(m.group(1), m.group(0)), value)


def unit_name_valid(name: str) -> bool:
    """Whether ``name`` is a valid unit name (plain, template or instance), as
    ``unit_name_is_valid(name, UNIT_NAME_ANY)``."""
    return _name_kind(name) is not None


def _name_kind(name: str) -> str | None:
    """``plain``, ``template`` or ``instance``; ``None`` for an invalid name."""
    if not name or len(name) > _UNIT_NAME_MAX:
        return None
    stem, dot, suffix = name.rpartition(".")
    if not dot or suffix not in UNIT_TYPES or not stem:
        return None
    prefix, at, instance = stem.partition("@")
    if not prefix or not set(prefix) <= _VALID_CHARS:
        return None
    if not at:
        return "plain"
    if not instance:
        return "template"
    return "instance" if set(instance) <= _VALID_CHARS | {"@"} else None


def _split(name: str) -> tuple[str, str | None, str]:
    """``(prefix, instance or None, type)`` of a valid unit name."""
    stem, _, suffix = name.rpartition(".")
    prefix, at, instance = stem.partition("@")
    return prefix, (instance if at else None), suffix


def _template(name: str) -> str:
    prefix, _, suffix = _split(name)
    return f"{prefix}@.{suffix}"


def _with_instance(template: str, instance: str) -> str:
    prefix, _, suffix = _split(template)
    return f"{prefix}@{instance}.{suffix}"


def _base(root: Path) -> str:
    return os.path.realpath(root).rstrip("/")


def _entries(base: str, directory: str) -> list[os.DirEntry[str]]:
    """The entries of a search-path directory (links above it followed inside the root),
    sorted by name; none if it does not exist."""
    where = resolve(base, directory, True)
    if isinstance(where, ReadError):
        raise UnitFileError(directory, 0, 0, where.reason)
    try:
        with os.scandir(base + where) as it:
            entries = []
            for entry in it:
                entries.append(entry)
                if len(entries) > MAX_ENTRIES:
                    raise UnitFileError(directory, 0, 0,
                                        f"more than {MAX_ENTRIES} entries: not read")
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise UnitFileError(directory, 0, 0, _strerror(exc)) from None
    return sorted(entries, key=lambda e: e.name)


def _strerror(exc: OSError) -> str:
    return os.strerror(exc.errno).lower() if exc.errno else str(exc)


def _simplify(path: str) -> str:
    """``.`` and ``..`` removed without following links (``chase_symlinks`` with
    ``CHASE_NOFOLLOW|CHASE_NONEXISTENT``, for the last component)."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
        else:
            parts.append(part)
    return "/" + "/".join(parts)


def _in_search_path(path: str) -> str | None:
    """What follows the search-path directory ``path`` is in, if any."""
    for directory in SEARCH_PATH:
        if path.startswith(directory + "/"):
            return path[len(directory) + 1:]
    return None


def _alias_ok(source: str, target: str) -> bool:
    """``unit_validate_alias_symlink_or_warn``: may ``source`` be an alias of ``target``?"""
    kind = _name_kind(source)
    _, source_instance, source_type = _split(source)
    if kind is None or source_type not in _MAY_ALIAS:
        return False
    if kind != "plain" and source_type not in _MAY_TEMPLATE:
        return False
    target_kind = _name_kind(target)
    if target_kind is None or source == target:
        return False
    _, target_instance, target_type = _split(target)
    if target_type != source_type or target_kind != kind:
        return False
    return kind != "instance" or source_instance == target_instance


@dataclass
class _NameMap:
    """``unit_file_build_name_map``: name -> absolute path or the name it aliases."""

    ids: dict[str, str] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)
    """Host paths of the ``*.d`` entries present (the unit path cache)."""


def _build_map(base: str) -> _NameMap:
    found = _NameMap()
    for directory in SEARCH_PATH:
        for entry in _entries(base, directory):
            name = entry.name
            path = f"{directory}/{name}"
            try:
                is_link = entry.is_symlink()
                is_file = not is_link and entry.is_file(follow_symlinks=False)
                is_dir = not is_link and entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if (is_dir or is_link) and name.endswith(".d"):
                found.dirs.add(path)
            if _name_kind(name) is None or name in found.ids or not (is_file or is_link):
                continue
            if is_file:
                found.ids[name] = path
                continue
            try:
                target = os.readlink(entry.path)
            except OSError:
                continue
            simplified = _simplify(target if target.startswith("/") else f"{directory}/{target}")
            tail = _in_search_path(simplified)
            if tail is None:
                found.ids[name] = path  # a linked unit file or a mask: the link is the fragment
                continue
            target_name = tail.rsplit("/", 1)[-1]
            if target_name == name:
                found.ids[name] = simplified  # a self-alias: the target is the fragment
            elif _alias_ok(name, target_name):
                found.ids[name] = target_name
    return found


def _ids_get(ids: dict[str, str], name: str) -> str | None:
    """``unit_ids_map_get``: follow aliases (an instance's target falling back to its
    template) to an absolute path."""
    current: str | None = None
    for _ in range(_FOLLOW_MAX):
        target = ids.get(current or name)
        if target is None:
            if current is None or _name_kind(current) != "instance":
                return None
            target = ids.get(_template(current))
            if target is None:
                return None
        if target.startswith("/"):
            return target
        current = target
    return None


def _is_masked(base: str, path: str) -> bool:
    """``null_or_empty``: the fragment resolves to ``/dev/null``, a character device or an
    empty regular file."""
    resolved = resolve(base, path, True)
    if isinstance(resolved, ReadError):
        raise UnitFileError(path, 0, 0, resolved.reason)
    if resolved == "/dev/null":
        return True  # systemd opens the link itself, which reaches the host's /dev/null
    try:
        st = os.stat(base + resolved)
    except OSError as exc:
        raise UnitFileError(path, 0, 0, _strerror(exc)) from None
    return stat.S_ISCHR(st.st_mode) or (stat.S_ISREG(st.st_mode) and st.st_size == 0)


def _aliases(names_map: _NameMap, fragment: str, wanted: str) -> list[str]:
    """Every name whose fragment is ``fragment`` (for an instance, aliases of its template
    instantiated), the unit's alias names in ``unit_file_find_fragment``."""
    _, instance, _ = _split(wanted)
    fragment_name = fragment.rsplit("/", 1)[-1]
    found: list[str] = []
    for name in names_map.ids:
        path = _ids_get(names_map.ids, name)
        if path is None or path.rsplit("/", 1)[-1] != fragment_name:
            continue
        kind = _name_kind(name)
        if instance is not None and kind == "template":
            alias = _with_instance(name, instance)
            other = _ids_get(names_map.ids, alias)
            if other is not None and other.rsplit("/", 1)[-1] != fragment_name:
                continue
            found.append(alias)
        elif (kind == ("instance" if instance is not None else "plain")
              and (instance is None or _split(name)[1] == instance)):
            found.append(name)
    return found


def _find_dirs(names_map: _NameMap, base: str, directory: str, name: str,
               dirs: list[str]) -> None:
    """``unit_file_find_dirs``: ``NAME.d``, the template's, then the dash prefixes'."""
    path = f"{directory}/{name}.d"
    if path in names_map.dirs:
        resolved = resolve(base, path, True)
        if isinstance(resolved, ReadError):
            raise UnitFileError(path, 0, 0, resolved.reason)
        if os.path.isdir(base + resolved):
            dirs.append(resolved)
    kind = _name_kind(name)
    if kind == "instance":
        _find_dirs(names_map, base, directory, _template(name), dirs)
    prefix, instance, suffix = _split(name)
    chopped = False
    while True:
        dash = prefix.rfind("-")
        if dash <= 0:
            return
        if dash + 1 < len(prefix) or chopped:
            prefix = prefix[:dash + 1]
            break
        prefix = prefix[:dash]  # a trailing dash: chop it off, once
        chopped = True
    # Only an instance keeps its instance: a template's prefix is a plain name, so the
    # template foo-bar@.service reaches foo-.service.d, as systemd's recursion does.
    built = f"{prefix}@{instance}.{suffix}" if kind == "instance" else f"{prefix}.{suffix}"
    _find_dirs(names_map, base, directory, built, dirs)


def _dropins(names_map: _NameMap, base: str, names: list[str]) -> list[str]:
    """``unit_file_find_dropin_paths``: every name's directories, then the type's; of one
    file name the first found wins; sorted by file name."""
    dirs: list[str] = []
    for name in names:
        for directory in SEARCH_PATH:
            _find_dirs(names_map, base, directory, name, dirs)
    unit_type = _split(names[0])[2]
    for directory in SEARCH_PATH:
        path = f"{directory}/{unit_type}.d"
        resolved = resolve(base, path, True)
        if isinstance(resolved, ReadError):
            raise UnitFileError(path, 0, 0, resolved.reason)
        if os.path.isdir(base + resolved):
            dirs.append(resolved)
    chosen: dict[str, str] = {}
    for directory in dirs:
        for entry in _entries(base, directory):
            if entry.name.endswith(".conf") and not entry.name.startswith("."):
                chosen.setdefault(entry.name, f"{directory}/{entry.name}")
    return [chosen[name] for name in sorted(chosen)]


def _read(base: str, path: str) -> str:
    """The text of a unit file, links followed inside the root; bounded."""
    resolved = resolve(base, path, True)
    if isinstance(resolved, ReadError):
        raise UnitFileError(path, 0, 0, resolved.reason)
    if resolved == "/dev/null":
        return ""
    try:
        fd = os.open(base + resolved, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise UnitFileError(path, 0, 0, _strerror(exc)) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISCHR(st.st_mode):
            return ""
        if not stat.S_ISREG(st.st_mode):
            raise UnitFileError(path, 0, 0, "not a regular file")
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, 1 << 16):
            size += len(chunk)
            if size > MAX_UNIT_FILE:
                raise UnitFileError(path, 0, 0,
                                    f"larger than the {MAX_UNIT_FILE} byte limit for a unit file")
            chunks.append(chunk)
    except OSError as exc:
        raise UnitFileError(path, 0, 0, _strerror(exc)) from None
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", "surrogateescape")


def parse_unit_text(text: str, path: str) -> tuple[list[Assignment], list[str]]:
    """The assignments of one unit file's text and the warnings systemd would log for the
    lines it ignores (``config_parse``); raises :class:`UnitFileError` where systemd refuses
    the file."""
    assignments: list[Assignment] = []
    warnings: list[str] = []
    section: str | None = None
    pending: str | None = None
    pending_line = 0
    lines = _EOL.split(text.removeprefix("\ufeff"))
    if lines and lines[-1] == "":
        lines.pop()
    for number, raw in enumerate(lines, 1):
        if len(raw) > LONG_LINE_MAX:
            raise UnitFileError(path, number, 1, "line too long")
        stripped = raw.lstrip(_WHITESPACE)
        if stripped and stripped[0] in _COMMENTS:
            continue
        if pending is not None:
            if len(pending) + len(raw) > LONG_LINE_MAX:
                raise UnitFileError(path, number, 1, "continuation line too long")
            joined = pending + raw
        else:
            joined = raw
            pending_line = number
        if _ends_escaped(joined):
            pending = joined[:-1] + " "
            continue
        pending = None
        section = _parse_line(joined, path, pending_line, section,
                              assignments=assignments, warnings=warnings)
    if pending is not None:
        _parse_line(pending, path, pending_line, section, assignments=assignments,
                    warnings=warnings)
    return assignments, warnings


def _ends_escaped(text: str) -> bool:
    escaped = False
    for char in text:
        escaped = not escaped and char == "\\"
    return escaped


def _parse_line(line: str, path: str, number: int, section: str | None, *,
                assignments: list[Assignment], warnings: list[str]) -> str | None:
    """One logical line (``parse_line``); returns the section in force after it."""
    text = line.strip(_WHITESPACE)
    if not text:
        return section
    indent = len(line) - len(line.lstrip(_WHITESPACE)) + 1
    if any(0xDC80 <= ord(c) <= 0xDCFF for c in text):
        warnings.append(f"{path}:{number}: invalid UTF-8, line ignored")
        return section
    if text.startswith("["):
        if not text.endswith("]") or len(text) < 2:
            raise UnitFileError(path, number, indent, f"invalid section header {text!r}")
        name = text[1:-1]
        if any(c in name for c in "\"'\\") or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
            raise UnitFileError(path, number, indent,
                                f"bad characters in section header {text!r}")
        return name
    if section is None:
        warnings.append(f"{path}:{number}: assignment outside of section, ignored")
        return section
    key, equals, value = text.partition("=")
    if not equals:
        warnings.append(f"{path}:{number}: missing '=', line ignored")
        return section
    if not key:
        warnings.append(f"{path}:{number}: missing key name before '=', line ignored")
        return section
    assignments.append(Assignment(section, key.strip(_WHITESPACE), value.strip(_WHITESPACE),
                                  path, number))
    return section


def load_unit(root: Path, name: str) -> UnitFiles:
    """The unit ``name`` as systemd 252 would load it from the files under ``root``.

    Raises :class:`UnitFileError` for an invalid name, an unreadable file or directory of the
    search path, or a file systemd would refuse to parse.
    """
    base = _base(root)
    return _load(base, _build_map(base), name)


def load_units(root: Path, names: list[str]) -> dict[str, UnitFiles | UnitFileError]:
    """:func:`load_unit` for each name, the search path listed once (an error stands in for
    the unit it is about; one raised while listing the search path is raised)."""
    base = _base(root)
    names_map = _build_map(base)
    loaded: dict[str, UnitFiles | UnitFileError] = {}
    for name in names:
        try:
            loaded[name] = _load(base, names_map, name)
        except UnitFileError as error:
            loaded[name] = error
    return loaded


def _load(base: str, names_map: _NameMap, name: str) -> UnitFiles:
    kind = _name_kind(name)
    if kind is None:
        raise UnitFileError(name, 0, 0, "not a valid unit name")
    fragment = _ids_get(names_map.ids, name)
    if fragment is None and kind == "instance":
        fragment = _ids_get(names_map.ids, _template(name))
    unit_id = name
    if fragment is not None:
        unit_id = fragment.rsplit("/", 1)[-1]
        if _name_kind(unit_id) == "template" and kind == "instance":
            unit_id = _with_instance(unit_id, _split(name)[1] or "")
    aliases = set(_aliases(names_map, fragment, name) if fragment is not None else [])
    aliases.add(name)
    aliases.discard(unit_id)
    names = [unit_id, *sorted(aliases)]
    masked = fragment is not None and _is_masked(base, fragment)
    dropins = _dropins(names_map, base, names)
    assignments: list[Assignment] = []
    warnings: list[str] = []
    if not masked:
        for path in ([fragment] if fragment is not None else []) + dropins:
            found, said = parse_unit_text(_read(base, path), path)
            assignments += found
            warnings += said
    return UnitFiles(name=name, fragment=fragment, dropins=tuple(dropins), masked=masked,
                     assignments=tuple(assignments), names=tuple(names),
                     warnings=tuple(warnings))


def unit_names(root: Path) -> list[str]:
    """Every unit name with a file or link in the search path under ``root``, sorted
    (templates included; their instances exist only when asked for)."""
    base = _base(root)
    return sorted(_build_map(base).ids)
