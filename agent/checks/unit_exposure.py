"""A service's "Overall exposure level", as ``systemd-analyze security --offline=yes`` of
systemd 252 computes it (``src/analyze/analyze-security.c``).

Each row of :data:`ASSESSORS` judges one setting with a badness from 0 to its range; a row
that does not apply (``RemoveIPC=`` for a service running as root, the file-system rows for a
unit with ``DefaultDependencies=no``) counts for nothing. The exposure is the sum of
``ceil(badness * weight / range)`` over the rows that apply, times 100, divided (rounding up)
by the sum of their weights: tenths on a scale of 0 to 10, printed with one decimal. A row's
own share is ``ceil(ceil(badness * weight * 100 / range) / weight sum)`` tenths.

The settings are those the service manager holds after loading the unit offline: the
merged files (:func:`agent.host.unitfiles.load_unit`) parsed as ``load-fragment.c`` parses
each setting (an invalid value is ignored, an empty one resets), then adjusted as
``unit_patch_contexts`` adjusts them: ``DynamicUser=`` turns on ``PrivateTmp=``,
``RemoveIPC=``, ``ProtectSystem=strict``, ``ProtectHome=read-only``, ``NoNewPrivileges=`` and
``RestrictSUIDSGID=``; ``PrivateDevices=``, ``ProtectKernelModules=``, ``ProtectKernelLogs=``
and ``ProtectClock=`` take their capabilities out of the bounding set; ``PrivateDevices=``
closes the device policy and ``ProtectClock=`` allows ``char-rtc``. Offline, systemd 252 does
not infer ``PrivateMounts=`` from the other sandboxing settings (the online assessment does).
``User=`` has the specifiers of the unit's name expanded (``User=%i`` of ``run@root.service``
is root); other specifiers are left as written.

This is evaluation over a unit already read, not host access, hence a module of the checks.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agent.checks.process import CAP_BITS
from agent.host.unitfiles import UnitFiles, expand_specifiers
from agent.seccomp import syscalls
from agent.seccomp.model import FormatError
from agent.seccomp.systemd import FilterSettings, filter_settings

_TRUE = frozenset({"1", "yes", "y", "true", "t", "on"})
_FALSE = frozenset({"0", "no", "n", "false", "f", "off"})
_CAP_ALL = (1 << 64) - 1
_NS = {"cgroup": 0x02000000, "ipc": 0x08000000, "net": 0x40000000, "mnt": 0x00020000,
       "pid": 0x20000000, "user": 0x10000000, "uts": 0x04000000}
"""Namespace names of ``RestrictNamespaces=`` -> their ``CLONE_NEW*`` flags."""
_NS_ALL = sum(_NS.values())
_NS_INITIAL = (1 << 64) - 1
_AF_INET, _AF_INET6, _AF_UNIX, _AF_NETLINK, _AF_PACKET = 2, 10, 1, 16, 17
_NOT_APPLICABLE = -1

LEVELS = ((100, "DANGEROUS"), (90, "UNSAFE"), (75, "EXPOSED"), (50, "MEDIUM"), (10, "OK"),
          (1, "SAFE"), (0, "PERFECT"))
"""Exposure (in tenths) -> systemd's word for it, the first whose bound it reaches."""


class ExposureError(Exception):
    """A unit systemd would not assess (masked, not found, not a service, a bad filter)."""


@dataclass(frozen=True)
class ExposureRow:
    """One assessed setting."""

    name: str
    """systemd's name for the row, e.g. ``PrivateNetwork=`` or ``SystemCallFilter=~@mount``."""
    description: str | None
    """What systemd says about it."""
    weight: int
    """The row's weight."""
    badness: int | None
    """0 (good) to ``range`` (bad); None when the row does not apply."""
    range: int
    """The largest badness."""
    exposure: float | None
    """Its share of the score as systemd prints it (one decimal); None when it adds nothing."""


@dataclass(frozen=True)
class Exposure:
    """The assessment of one service."""

    unit: str
    """The unit assessed."""
    score: float
    """The overall exposure level, 0.0 to 10.0, as systemd prints it."""
    level: str
    """``PERFECT``, ``SAFE``, ``OK``, ``MEDIUM``, ``EXPOSED``, ``UNSAFE`` or ``DANGEROUS``."""
    rows: tuple[ExposureRow, ...]
    """Every row of :data:`ASSESSORS`, in its order."""


@dataclass
class _Info:
    """systemd's ``SecurityInfo``, filled from the unit's settings."""

    default_dependencies: bool = True
    ambient: int = 0
    bounding: int = _CAP_ALL
    user: str | None = None
    supplementary_groups: bool = False
    dynamic_user: bool = False
    ip_deny_all: bool = False
    ip_allow_localhost: bool = False
    ip_allow_other: bool = False
    ip_filters: bool = False
    keyring_mode: str = "private"
    protect_proc: str = "default"
    proc_subset: str = "all"
    notify_access: str = "none"
    protect_home: str = "no"
    protect_system: str = "no"
    root_directory: str | None = None
    root_image: str | None = None
    delegate: bool = False
    device_policy: str = "auto"
    device_allow: list[str] = field(default_factory=list)
    """``DeviceAllow=`` entries as systemd lists them (``path:mode``, the last added first)."""
    restrict_namespaces: int = _NS_INITIAL
    umask: int = 0o022
    filters: FilterSettings | None = None
    flags: dict[str, bool] = field(default_factory=dict)

    def flag(self, key: str) -> bool:
        return self.flags.get(key, False)


Judge = Callable[[_Info], tuple[int, str | None]]


@dataclass(frozen=True)
class Assessor:
    """One row of systemd's ``security_assessor_table``."""

    name: str
    weight: int
    range: int
    judge: Judge
    good: str | None = None
    bad: str | None = None
    not_applicable: str | None = None
    default_dependencies_only: bool = False


def _bool_row(key: str, *, invert: bool = False) -> Judge:
    def judge(info: _Info) -> tuple[int, str | None]:
        value = info.flag(key)
        return (int(value) if invert else int(not value)), None
    return judge


def _caps_row(*names: str) -> Judge:
    mask = sum(1 << CAP_BITS[name] for name in names)

    def judge(info: _Info) -> tuple[int, str | None]:
        return int(bool(info.bounding & mask)), None
    return judge


def _ns_row(name: str) -> Judge:
    def judge(info: _Info) -> tuple[int, str | None]:
        return int(bool(info.restrict_namespaces & _NS[name])), None
    return judge


def _runs_privileged(info: _Info) -> bool:
    if info.user in ("0", "root"):
        return True
    return False if info.dynamic_user else not info.user


def _user(info: _Info) -> tuple[int, str | None]:
    if info.user == "nobody":
        return 9, "Service runs under as 'nobody' user, which should not be used for services"
    if info.dynamic_user and info.user not in ("0", "root"):
        return 0, "Service runs under a transient non-root user identity"
    if info.user and info.user not in ("0", "root"):
        return 0, "Service runs under a static non-root user identity"
    return 10, None


def _supplementary_groups(info: _Info) -> tuple[int, str | None]:
    return (_NOT_APPLICABLE if _runs_privileged(info)
            else int(info.supplementary_groups)), None


def _remove_ipc(info: _Info) -> tuple[int, str | None]:
    return (_NOT_APPLICABLE if _runs_privileged(info) else int(not info.flag("RemoveIPC"))), None


def _protect_home(info: _Info) -> tuple[int, str | None]:
    return {"yes": (0, "Service has no access to home directories"),
            "read-only": (5, "Service has read-only access to home directories"),
            "tmpfs": (1, "Service has access to fake empty home directories"),
            }.get(info.protect_home, (10, "Service has full access to home directories"))


def _protect_system(info: _Info) -> tuple[int, str | None]:
    return {"yes": (5, "Service has limited write access to the OS file hierarchy"),
            "full": (3, "Service has very limited write access to the OS file hierarchy"),
            "strict": (0, "Service has strict read-only access to the OS file hierarchy"),
            }.get(info.protect_system, (10, "Service has full access to the OS file hierarchy"))


def _root_directory(info: _Info) -> tuple[int, str | None]:
    own = any(path not in (None, "", "/") for path in (info.root_directory, info.root_image))
    return int(not own), None


def _umask(info: _Info) -> tuple[int, str | None]:
    for bit, badness, what in ((0o002, 10, "world-writable"), (0o004, 5, "world-readable"),
                               (0o020, 2, "group-writable"), (0o040, 1, "group-readable")):
        if not info.umask & bit:
            return badness, f"Files created by service are {what} by default"
    return 0, "Files created by service are accessible only by service's own user by default"


def _architectures(info: _Info) -> tuple[int, str | None]:
    arches = info.filters.architectures if info.filters else frozenset()
    if not arches:
        return 10, "Service may execute system calls with all ABIs"
    if arches == {"native"}:  # with another name, even the native one's, it counts as many
        return 0, "Service may execute system calls only with native ABI"
    return 8, "Service may execute system calls with multiple ABIs"


def _syscall_row(group: str) -> Judge:
    def judge(info: _Info) -> tuple[int, str | None]:
        filters = info.filters
        names = filters.syscalls if filters else None
        allow = bool(filters and filters.allow_list)
        if not allow and not names and not (filters and filters.held_elsewhere):
            return 10, "Service does not filter system calls"
        held = names or frozenset()
        offender = next((name for name in syscalls.expand([group])
                         if syscalls.lookup(name).status is syscalls.Status.KNOWN
                         and (name in held) == allow), None)
        kind = "allow" if allow else "deny"
        if offender is None:
            state = "not included" if allow else "included"
            return 0, f"System call {kind} list defined for service, and {group} is {state}"
        state = "included" if allow else "not included"
        return (9 if allow else 10), (f"System call {kind} list defined for service, and "
                                      f"{group} is {state} (e.g. {offender} is allowed)")
    return judge


def _families_row(which: str) -> Judge:
    def judge(info: _Info) -> tuple[int, str | None]:
        filters = info.filters
        allow = bool(filters and filters.families_allow)
        restricted = {"inet": allow, "unix": allow, "netlink": allow, "packet": allow,
                      "other": allow}
        for family in (filters.families if filters and filters.families else ()):
            kind = {_AF_INET: "inet", _AF_INET6: "inet", _AF_UNIX: "unix",
                    _AF_NETLINK: "netlink", _AF_PACKET: "packet"}.get(family, "other")
            restricted[kind] = not allow
        return int(not restricted[which]), None
    return judge


def _ip_address(info: _Info) -> tuple[int, str | None]:
    if info.ip_filters:
        return 0, "Service defines custom ingress/egress IP filters with BPF programs"
    if not info.ip_deny_all:
        return 10, "Service does not define an IP address allow list"
    if info.ip_allow_other:
        return 5, "Service defines IP address allow list with non-localhost entries"
    if info.ip_allow_localhost:
        return 2, "Service defines IP address allow list with only localhost entries"
    return 0, "Service blocks all IP address ranges"


def _device_allow(info: _Info) -> tuple[int, str | None]:
    if info.device_policy in ("strict", "closed"):
        if info.device_allow:
            return 5, ("Service has a device ACL with some special devices: "
                       + " ".join(info.device_allow))
        return 0, "Service has a minimal device ACL"
    return 10, "Service has no device ACL"


def _protect_proc(info: _Info) -> tuple[int, str | None]:
    if info.protect_proc == "noaccess":
        return 1, None
    return (0 if info.protect_proc in ("invisible", "ptraceable") else 3), None


_NA_ROOT = "Service runs as root, option does not matter"


def _cap(name: str, weight: int, caps: tuple[str, ...], good: str, bad: str) -> Assessor:
    return Assessor(f"CapabilityBoundingSet=~{name}", weight, 1, _caps_row(*caps), good, bad)


def _bool(name: str, weight: int, good: str, bad: str, *, invert: bool = False,
          default_dependencies_only: bool = False) -> Assessor:
    return Assessor(f"{name}=", weight, 1, _bool_row(name, invert=invert), good, bad,
                    default_dependencies_only=default_dependencies_only)


def _ns(name: str, weight: int, what: str) -> Assessor:
    return Assessor(f"RestrictNamespaces=~{name}", weight, 1, _ns_row(name),
                    f"Service cannot create {what} namespaces",
                    f"Service may create {what} namespaces")


def _af(name: str, which: str, weight: int, what: str) -> Assessor:
    return Assessor(f"RestrictAddressFamilies=~{name}", weight, 1, _families_row(which),
                    f"Service cannot allocate {what} sockets",
                    f"Service may allocate {what} sockets")


def _sc(group: str, weight: int) -> Assessor:
    return Assessor(f"SystemCallFilter=~{group}", weight, 10, _syscall_row(group))


ASSESSORS: tuple[Assessor, ...] = (
    Assessor("User=/DynamicUser=", 2000, 10, _user, bad="Service runs as root user"),
    Assessor("SupplementaryGroups=", 200, 1, _supplementary_groups,
             "Service has no supplementary groups", "Service runs with supplementary groups",
             _NA_ROOT),
    _bool("PrivateDevices", 1000, "Service has no access to hardware devices",
          "Service potentially has access to hardware devices"),
    _bool("PrivateMounts", 1000, "Service cannot install system mounts",
          "Service may install system mounts"),
    _bool("PrivateNetwork", 2500, "Service has no access to the host's network",
          "Service has access to the host's network"),
    _bool("PrivateTmp", 1000, "Service has no access to other software's temporary files",
          "Service has access to other software's temporary files",
          default_dependencies_only=True),
    _bool("PrivateUsers", 1000, "Service does not have access to other users",
          "Service has access to other users"),
    _bool("ProtectControlGroups", 1000, "Service cannot modify the control group file system",
          "Service may modify the control group file system"),
    _bool("ProtectKernelModules", 1000, "Service cannot load or read kernel modules",
          "Service may load or read kernel modules"),
    _bool("ProtectKernelTunables", 1000, "Service cannot alter kernel tunables (/proc/sys, …)",
          "Service may alter kernel tunables"),
    _bool("ProtectKernelLogs", 1000,
          "Service cannot read from or write to the kernel log ring buffer",
          "Service may read from or write to the kernel log ring buffer"),
    _bool("ProtectClock", 1000, "Service cannot write to the hardware clock or system clock",
          "Service may write to the hardware clock or system clock"),
    Assessor("ProtectHome=", 1000, 10, _protect_home, default_dependencies_only=True),
    _bool("ProtectHostname", 50, "Service cannot change system host/domainname",
          "Service may change system host/domainname"),
    Assessor("ProtectSystem=", 1000, 10, _protect_system, default_dependencies_only=True),
    Assessor("RootDirectory=/RootImage=", 200, 1, _root_directory,
             "Service has its own root directory/image",
             "Service runs within the host's root directory", default_dependencies_only=True),
    _bool("LockPersonality", 100, "Service cannot change ABI personality",
          "Service may change ABI personality"),
    _bool("MemoryDenyWriteExecute", 100,
          "Service cannot create writable executable memory mappings",
          "Service may create writable executable memory mappings"),
    _bool("NoNewPrivileges", 1000, "Service processes cannot acquire new privileges",
          "Service processes may acquire new privileges"),
    _cap("CAP_SYS_ADMIN", 1500, ("CAP_SYS_ADMIN",), "Service has no administrator privileges",
         "Service has administrator privileges"),
    _cap("CAP_SET(UID|GID|PCAP)", 1500, ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"),
         "Service cannot change UID/GID identities/capabilities",
         "Service may change UID/GID identities/capabilities"),
    _cap("CAP_SYS_PTRACE", 1500, ("CAP_SYS_PTRACE",),
         "Service has no ptrace() debugging abilities",
         "Service has ptrace() debugging abilities"),
    _cap("CAP_SYS_TIME", 1000, ("CAP_SYS_TIME",),
         "Service processes cannot change the system clock",
         "Service processes may change the system clock"),
    _cap("CAP_NET_ADMIN", 1000, ("CAP_NET_ADMIN",),
         "Service has no network configuration privileges",
         "Service has network configuration privileges"),
    _cap("CAP_SYS_RAWIO", 1000, ("CAP_SYS_RAWIO",), "Service has no raw I/O access",
         "Service has raw I/O access"),
    _cap("CAP_SYS_MODULE", 1000, ("CAP_SYS_MODULE",), "Service cannot load kernel modules",
         "Service may load kernel modules"),
    _cap("CAP_AUDIT_*", 500, ("CAP_AUDIT_CONTROL", "CAP_AUDIT_READ", "CAP_AUDIT_WRITE"),
         "Service has no audit subsystem access", "Service has audit subsystem access"),
    _cap("CAP_SYSLOG", 500, ("CAP_SYSLOG",), "Service has no access to kernel logging",
         "Service has access to kernel logging"),
    _cap("CAP_SYS_(NICE|RESOURCE)", 500, ("CAP_SYS_NICE", "CAP_SYS_RESOURCE"),
         "Service has no privileges to change resource use parameters",
         "Service has privileges to change resource use parameters"),
    _cap("CAP_MKNOD", 500, ("CAP_MKNOD",), "Service cannot create device nodes",
         "Service may create device nodes"),
    _cap("CAP_(CHOWN|FSETID|SETFCAP)", 1000, ("CAP_CHOWN", "CAP_FSETID", "CAP_SETFCAP"),
         "Service cannot change file ownership/access mode/capabilities",
         "Service may change file ownership/access mode/capabilities unrestricted"),
    _cap("CAP_(DAC_*|FOWNER|IPC_OWNER)", 1000,
         ("CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_IPC_OWNER"),
         "Service cannot override UNIX file/IPC permission checks",
         "Service may override UNIX file/IPC permission checks"),
    _cap("CAP_KILL", 500, ("CAP_KILL",), "Service cannot send UNIX signals to arbitrary processes",
         "Service may send UNIX signals to arbitrary processes"),
    _cap("CAP_NET_(BIND_SERVICE|BROADCAST|RAW)", 500,
         ("CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_RAW"),
         "Service has no elevated networking privileges",
         "Service has elevated networking privileges"),
    _cap("CAP_SYS_BOOT", 100, ("CAP_SYS_BOOT",), "Service cannot issue reboot()",
         "Service may issue reboot()"),
    _cap("CAP_MAC_*", 100, ("CAP_MAC_ADMIN", "CAP_MAC_OVERRIDE"),
         "Service cannot adjust SMACK MAC", "Service may adjust SMACK MAC"),
    _cap("CAP_LINUX_IMMUTABLE", 75, ("CAP_LINUX_IMMUTABLE",), "Service cannot mark files immutable",
         "Service may mark files immutable"),
    _cap("CAP_IPC_LOCK", 50, ("CAP_IPC_LOCK",), "Service cannot lock memory into RAM",
         "Service may lock memory into RAM"),
    _cap("CAP_SYS_CHROOT", 50, ("CAP_SYS_CHROOT",), "Service cannot issue chroot()",
         "Service may issue chroot()"),
    _cap("CAP_BLOCK_SUSPEND", 25, ("CAP_BLOCK_SUSPEND",), "Service cannot establish wake locks",
         "Service may establish wake locks"),
    _cap("CAP_WAKE_ALARM", 25, ("CAP_WAKE_ALARM",),
         "Service cannot program timers that wake up the system",
         "Service may program timers that wake up the system"),
    _cap("CAP_LEASE", 25, ("CAP_LEASE",), "Service cannot create file leases",
         "Service may create file leases"),
    _cap("CAP_SYS_TTY_CONFIG", 25, ("CAP_SYS_TTY_CONFIG",), "Service cannot issue vhangup()",
         "Service may issue vhangup()"),
    _cap("CAP_SYS_PACCT", 25, ("CAP_SYS_PACCT",), "Service cannot use acct()",
         "Service may use acct()"),
    _cap("CAP_BPF", 25, ("CAP_BPF",), "Service may not load BPF programs",
         "Service may load BPF programs"),
    Assessor("UMask=", 100, 10, _umask),
    Assessor("KeyringMode=", 1000, 1,
             lambda info: (int(info.keyring_mode != "private"), None),
             "Service doesn't share key material with other services",
             "Service shares key material with other service"),
    Assessor("ProtectProc=", 1000, 3, _protect_proc,
             "Service has restricted access to process tree (/proc hidepid=)",
             "Service has full access to process tree (/proc hidepid=)"),
    Assessor("ProcSubset=", 10, 1, lambda info: (int(info.proc_subset != "pid"), None),
             "Service has no access to non-process /proc files (/proc subset=)",
             "Service has full access to non-process /proc files (/proc subset=)"),
    Assessor("NotifyAccess=", 1000, 1, lambda info: (int(info.notify_access == "all"), None),
             "Service child processes cannot alter service state",
             "Service child processes may alter service state"),
    Assessor("RemoveIPC=", 100, 1, _remove_ipc,
             "Service user cannot leave SysV IPC objects around",
             "Service user may leave SysV IPC objects around",
             "Service runs as root, option does not apply"),
    Assessor("Delegate=", 100, 1, lambda info: (int(info.delegate), None),
             "Service does not maintain its own delegated control group subtree",
             "Service maintains its own delegated control group subtree"),
    _bool("RestrictRealtime", 500, "Service realtime scheduling access is restricted",
          "Service may acquire realtime scheduling"),
    _bool("RestrictSUIDSGID", 1000, "SUID/SGID file creation by service is restricted",
          "Service may create SUID/SGID files"),
    _ns("user", 1500, "user"),
    _ns("mnt", 500, "file system"),
    _ns("ipc", 500, "IPC"),
    _ns("pid", 500, "process"),
    _ns("cgroup", 500, "cgroup"),
    _ns("net", 500, "network"),
    _ns("uts", 100, "hostname"),
    _af("AF_(INET|INET6)", "inet", 1500, "Internet"),
    _af("AF_UNIX", "unix", 25, "local"),
    _af("AF_NETLINK", "netlink", 200, "netlink"),
    _af("AF_PACKET", "packet", 1000, "packet"),
    _af("…", "other", 1250, "exotic"),
    Assessor("SystemCallArchitectures=", 1000, 10, _architectures),
    _sc("@swap", 1000),
    _sc("@obsolete", 250),
    _sc("@clock", 1000),
    _sc("@cpu-emulation", 250),
    _sc("@debug", 1000),
    _sc("@mount", 1000),
    _sc("@module", 1000),
    _sc("@raw-io", 1000),
    _sc("@reboot", 1000),
    _sc("@privileged", 700),
    _sc("@resources", 700),
    Assessor("IPAddressDeny=", 1000, 10, _ip_address),
    Assessor("DeviceAllow=", 1000, 10, _device_allow),
    Assessor("AmbientCapabilities=", 500, 1, lambda info: (int(info.ambient != 0), None),
             "Service process does not receive ambient capabilities",
             "Service process receives ambient capabilities"),
)
"""systemd 252's assessor table: name, weight, range and judgement of each row."""

_BOOLS = ("PrivateDevices", "PrivateMounts", "PrivateNetwork", "PrivateTmp", "PrivateUsers",
          "ProtectControlGroups", "ProtectKernelModules", "ProtectKernelTunables",
          "ProtectKernelLogs", "ProtectClock", "ProtectHostname", "LockPersonality",
          "MemoryDenyWriteExecute", "NoNewPrivileges", "RemoveIPC", "RestrictRealtime",
          "RestrictSUIDSGID", "DynamicUser")


def exposure(unit: UnitFiles) -> Exposure:
    """The exposure systemd 252 reports for ``unit`` (a service) offline.

    Raises :class:`ExposureError` where systemd refuses: a unit that is not a service, is
    masked or has no fragment, or whose ``SystemCallFilter=`` names an unknown group.
    """
    if not unit.name.endswith(".service"):
        raise ExposureError(f"{unit.name} is not a service unit")
    if unit.masked:
        raise ExposureError(f"{unit.name} is masked")
    if unit.fragment is None:
        raise ExposureError(f"{unit.name} not found")
    info = _settings(unit)
    judged: list[tuple[Assessor, int, str | None]] = []
    for assessor in ASSESSORS:
        if assessor.default_dependencies_only and not info.default_dependencies:
            judged.append((assessor, _NOT_APPLICABLE,
                           "Service runs in special boot phase, option is not appropriate"))
        else:
            judged.append((assessor, *assessor.judge(info)))
    applying = [(a, b) for a, b, _ in judged if b != _NOT_APPLICABLE]
    weight_sum = sum(a.weight for a, _ in applying)
    badness_sum = sum(_ceil(b * a.weight, a.range) for a, b in applying)
    tenths = _ceil(badness_sum * 100, weight_sum)
    rows = []
    for assessor, badness, said in judged:
        share = None
        if badness not in (0, _NOT_APPLICABLE):
            share = _ceil(_ceil(badness * assessor.weight * 100, assessor.range), weight_sum) / 10
        rows.append(ExposureRow(assessor.name, said or _description(assessor, badness),
                                assessor.weight, None if badness == _NOT_APPLICABLE else badness,
                                assessor.range, share))
    level = next(word for bound, word in LEVELS if tenths >= bound)
    return Exposure(unit.name, tenths / 10, level, tuple(rows))


def _ceil(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def _description(assessor: Assessor, badness: int) -> str | None:
    if badness == _NOT_APPLICABLE:
        return assessor.not_applicable
    if badness == assessor.range:
        return assessor.bad
    return assessor.good if badness == 0 else None


def _entries(unit: UnitFiles, section: str, key: str) -> list[str]:
    return [a.value for a in unit.assignments if a.section == section and a.key == key]


def _last_bool(values: Sequence[str], default: bool) -> bool:
    result = default
    for value in values:
        if value.lower() in _TRUE:
            result = True
        elif value.lower() in _FALSE:
            result = False
    return result


def _last_enum(values: Sequence[str], choices: Sequence[str], default: str, *,
               booleans: bool = False) -> str:
    """An enum setting: the last valid value (``yes``/``no`` and their synonyms too when
    ``booleans``); an invalid or empty one is ignored, as systemd does."""
    result = default
    for value in values:
        if value in choices:
            result = value
        elif booleans and value.lower() in _TRUE:
            result = "yes"
        elif booleans and value.lower() in _FALSE:
            result = "no"
    return result


def _settings(unit: UnitFiles) -> _Info:
    """``SecurityInfo`` after loading and ``unit_patch_contexts``."""
    def get(key: str) -> list[str]:
        return _entries(unit, "Service", key)

    info = _Info()
    info.default_dependencies = _last_bool(_entries(unit, "Unit", "DefaultDependencies"), True)
    flags = {key: _last_bool(get(key), False) for key in _BOOLS}
    info.flags = flags
    info.dynamic_user = flags["DynamicUser"]
    for value in get("User"):
        info.user = expand_specifiers(unit.names[0] if unit.names else unit.name, value) or None
    info.supplementary_groups = _list_nonempty(get("SupplementaryGroups"))
    info.bounding = _capabilities(get("CapabilityBoundingSet"), _CAP_ALL)
    info.ambient = _capabilities(get("AmbientCapabilities"), 0)
    info.protect_home = _last_enum(get("ProtectHome"), ("read-only", "tmpfs"), "no",
                                   booleans=True)
    info.protect_system = _last_enum(get("ProtectSystem"), ("full", "strict"), "no",
                                     booleans=True)
    info.protect_proc = _last_enum(get("ProtectProc"),
                                   ("noaccess", "invisible", "ptraceable", "default"), "default")
    info.proc_subset = _last_enum(get("ProcSubset"), ("all", "pid"), "all")
    info.keyring_mode = _last_enum(get("KeyringMode"), ("inherit", "private", "shared"),
                                   "private")
    info.notify_access = _last_enum(get("NotifyAccess"), ("none", "main", "exec", "all"), "none")
    info.device_policy = _last_enum(get("DevicePolicy"), ("auto", "closed", "strict"), "auto")
    for value in get("RootDirectory"):
        info.root_directory = value or None
    for value in get("RootImage"):
        info.root_image = value or None
    for value in get("UMask"):
        try:
            mode = int(value, 8)
        except ValueError:
            continue
        if 0 <= mode <= 0o7777:
            info.umask = mode
    info.restrict_namespaces = _namespaces(get("RestrictNamespaces"))
    info.delegate = _delegate(get("Delegate"))
    _ip_settings(info, get("IPAddressDeny"), get("IPAddressAllow"))
    info.ip_filters = any(_list_nonempty(get(key))
                          for key in ("IPIngressFilterPath", "IPEgressFilterPath"))
    for value in get("DeviceAllow"):
        if not value:
            info.device_allow = []
        elif (entry := _device_entry(value)) is not None:
            info.device_allow.insert(0, entry)
    lines = [f"{a.key}={a.value}" for a in unit.assignments if a.section == "Service"
             and a.key in ("SystemCallFilter", "RestrictAddressFamilies",
                           "SystemCallArchitectures")]
    try:
        info.filters = filter_settings(lines, unit.fragment or unit.name)
    except (FormatError, syscalls.UnknownGroup) as error:
        raise ExposureError(f"{unit.name}: {error}") from None
    _patch(info, flags)
    return info


def _patch(info: _Info, flags: dict[str, bool]) -> None:
    """``unit_patch_contexts``."""
    if flags["PrivateDevices"]:
        info.bounding &= ~((1 << CAP_BITS["CAP_MKNOD"]) | (1 << CAP_BITS["CAP_SYS_RAWIO"]))
    if flags["ProtectKernelModules"]:
        info.bounding &= ~(1 << CAP_BITS["CAP_SYS_MODULE"])
    if flags["ProtectKernelLogs"]:
        info.bounding &= ~(1 << CAP_BITS["CAP_SYSLOG"])
    if flags["ProtectClock"]:
        info.bounding &= ~((1 << CAP_BITS["CAP_SYS_TIME"]) | (1 << CAP_BITS["CAP_WAKE_ALARM"]))
    if info.dynamic_user:
        flags.update(PrivateTmp=True, RemoveIPC=True, NoNewPrivileges=True,
                     RestrictSUIDSGID=True)
        info.protect_system = "strict"
        if info.protect_home == "no":
            info.protect_home = "read-only"
    if flags["PrivateDevices"] and info.device_policy == "auto":
        info.device_policy = "closed"
    if info.root_image and (info.device_policy != "auto" or info.device_allow):
        # The loop and device-mapper nodes an image needs.
        for entry in ("/dev/loop-control:rw", "/dev/mapper/control:rw", "block-loop:rwm",
                      "block-blkext:rwm", "block-device-mapper:rwm"):
            info.device_allow.insert(0, entry)
    if flags["ProtectClock"]:
        info.device_allow.insert(0, "char-rtc:r")


def _list_nonempty(values: Sequence[str]) -> bool:
    """Whether a list setting holds anything: an entry after its last empty assignment
    (which clears what came before)."""
    last_reset = max((i for i, value in enumerate(values) if not value), default=-1)
    return last_reset < len(values) - 1


def _device_entry(value: str) -> str | None:
    """``config_parse_device_allow``: ``path:mode`` of a valid entry, None for one systemd
    ignores."""
    path, _, mode = value.strip().partition(" ")
    mode = mode.strip()
    if mode and not set(mode) <= set("rwm"):
        return None
    shown = "".join(c for c in "rwm" if c in mode) if mode else "rwm"
    if path.startswith(("block-", "char-")):
        return f"{path}:{shown}"
    parts = path.split("/")
    normal = path.startswith(("/dev/", "/run/systemd/inaccessible/")) and not any(
        p in (".", "..") for p in parts) and "//" not in path
    return f"{path}:{shown}" if normal else None


def _capabilities(values: Sequence[str], initial: int) -> int:
    """``config_parse_capability_set``."""
    current = initial
    for raw in values:
        invert = raw.startswith("~")
        words = raw[1:].split() if invert else raw.split()
        total = 0
        for word in words:
            bit = _cap_bit(word)
            if bit is not None:
                total |= 1 << bit
        if total == 0 or current == initial:
            current = (~total & _CAP_ALL) if invert else total
        elif invert:
            current &= ~total
        else:
            current |= total
    return current


def _cap_bit(word: str) -> int | None:
    if word.isdigit():
        number = int(word)
        return number if number < 64 else None
    return CAP_BITS.get(word.upper())


def _namespaces(values: Sequence[str]) -> int:
    """``config_parse_restrict_namespaces``: the namespace types still allowed."""
    current = _NS_INITIAL
    for raw in values:
        if not raw:
            current = _NS_INITIAL
            continue
        if raw.lower() in _TRUE:
            current = 0
            continue
        if raw.lower() in _FALSE:
            current = _NS_ALL
            continue
        invert = raw.startswith("~")
        words = (raw[1:] if invert else raw).split()
        if any(word not in _NS for word in words):
            continue  # one unknown name makes systemd ignore the assignment
        flags = sum(_NS[word] for word in set(words))
        if current == _NS_INITIAL:
            current = (~flags & _NS_ALL) if invert else flags
        else:
            current = (current & ~flags) if invert else (current | flags)
    return current


def _delegate(values: Sequence[str]) -> bool:
    current = False
    for raw in values:
        current = raw.lower() not in _FALSE  # yes, or a list of controllers
    return current


_SPECIAL = {"any": ("0.0.0.0/0", "::/0"), "localhost": ("127.0.0.0/8", "::1/128"),
            "link-local": ("169.254.0.0/16", "fe80::/64"), "multicast": ("224.0.0.0/4", "ff00::/8")}


def _networks(values: Sequence[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    found: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for raw in values:
        if not raw:
            found = []
            continue
        for word in raw.split():
            for text in _SPECIAL.get(word, (word,)):
                try:
                    found.append(ipaddress.ip_network(text, strict=False))
                except ValueError:
                    continue
    return found


def _ip_settings(info: _Info, deny: Sequence[str], allow: Sequence[str]) -> None:
    denied = _networks(deny)
    info.ip_deny_all = (any(n.version == 4 and n.prefixlen == 0 for n in denied)
                        and any(n.version == 6 and n.prefixlen == 0 for n in denied))
    for network in _networks(allow):
        address = network.network_address
        local = (address in ipaddress.ip_network("127.0.0.0/8") if address.version == 4
                 else address == ipaddress.ip_address("::1"))
        if local:
            info.ip_allow_localhost = True
        else:
            info.ip_allow_other = True
