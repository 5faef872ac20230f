"""systemd ``SystemCallFilter=`` (and companion settings) in and out of a hostguard profile.

:func:`to_systemd` writes the lines (and :meth:`SystemdFilter.dropin` a drop-in file),
:func:`from_systemd` reads them back, as systemd 252 parses ``SystemCallFilter=``
(``src/core/load-fragment.c``, ``src/shared/seccomp-util.c``): the first non-empty assignment
decides allow-list (and adds ``@default``) or ``~`` deny-list; later assignments add to or remove
from the set (``~name`` on an allow-list removes it, ``~name:errno`` gives it that errno, a plain
name on a deny-list un-denies it); an empty assignment resets; ``:errno`` (a number 0-4095, a name
such as ``EPERM``, or ``kill``) is only taken on ``~`` entries.

``socket()`` rules on the address family alone (``args: [{index: 0, op: eq, value: 2}]``)
become ``RestrictAddressFamilies=``, which systemd 252 implements as a filter of its own, stacked
before ``SystemCallFilter=``'s (``seccomp_restrict_address_families``): on x86-64 and the other
ABIs without ``socketcall``, ``socket()`` with a family outside the list (compared as a 64-bit
value, as the profile's conditions are) fails with ``EAFNOSUPPORT``; ``socketpair()`` and the
i386 ABI are not filtered. So it is exact when the profile's own answer for the other families
is ``errno(EAFNOSUPPORT)``, and a loss (the errno differs) otherwise. Nothing else of systemd
expresses a profile rule exactly: ``RestrictNamespaces=``, ``LockPersonality=``,
``MemoryDenyWriteExecute=`` and ``RestrictRealtime=`` each deny more than an argument condition
would (other syscalls, other arguments, another errno), so they are never written.

What the lines do differently from the profile (other argument conditions, trap, kill_thread,
other architectures, another errno) is in :attr:`SystemdFilter.losses`, never dropped silently;
the translation errs on the narrower side unless asked to widen argument conditions.
"""

from __future__ import annotations

import errno as errno_mod
from collections.abc import Iterable, Sequence

from agent.core.location import Location
from agent.core.record import record
from agent.seccomp import syscalls
from agent.seccomp.model import (
    ALLOW,
    MAX_ERRNO,
    PRECEDENCE,
    Action,
    ActionKind,
    ArgCondition,
    FormatError,
    Profile,
    Rule,
    profile_name,
)

_SYSTEMD_ARCH = {
    "x86-64": "x86_64", "x86": "x86", "x32": "x32", "arm": "arm", "arm64": "aarch64",
    "mips": "mips", "mips-le": "mipsel", "mips64": "mips64", "mips64-le": "mipsel64",
    "mips64-n32": "mips64n32", "mips64-le-n32": "mipsel64n32", "parisc": "parisc",
    "parisc64": "parisc64", "ppc": "ppc", "ppc64": "ppc64", "ppc64-le": "ppc64le",
    "riscv64": "riscv64", "s390": "s390", "s390x": "s390x",
}
"""systemd's architecture names (``SystemCallArchitectures=``) -> libseccomp's."""


# --- systemd out --------------------------------------------------------------------------------

@record
class SystemdFilter:
    """``[Service]`` settings for a profile, and what they cannot say."""

    lines: tuple[str, ...]
    """``Key=value`` lines, in order (several ``SystemCallFilter=`` lines combine)."""
    losses: tuple[str, ...]
    """Where these lines make the kernel decide otherwise than the profile, and which way."""
    notes: tuple[str, ...] = ()
    """How the lines say what they say, where it is not obvious (no difference in effect)."""

    def dropin(self, unit: str, source: str | None = None) -> str:
        """The text of a drop-in file (``UNIT.d/hostguard-seccomp.conf``)."""
        head = [f"# hostguard seccomp filter for {unit}"
                + (f", from {source}" if source else "") + ". Generated: do not edit."]
        head += [f"# loss: {item}" for item in self.losses]
        head += [f"# note: {item}" for item in self.notes]
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


def to_systemd(profile: Profile, *, widen: bool = False) -> SystemdFilter:
    """``SystemCallFilter=`` and companions for ``profile`` (systemd 252 semantics).

    Allow-list profiles become an allow-list (plus ``~name:errno`` entries for denies with their
    own errno, and ``~name`` for members of systemd's implicit ``@default`` the profile does not
    allow); ``default_action: allow`` becomes a ``~`` deny-list; ``mode: log`` becomes
    ``SystemCallLog=`` only (log, never deny). ``socket()`` rules on the address family become
    ``RestrictAddressFamilies=`` (:func:`_socket_families`). Other argument conditions cannot be
    written: such a syscall gets the most restrictive action its rules could lead to (with
    ``widen``: the most permissive, e.g. ``clone`` allowed with any flags), and
    :attr:`SystemdFilter.losses` says so either way.
    """
    losses: list[str] = []
    notes: list[str] = []
    families = _socket_families(profile, syscalls.native_arch())
    fixed: dict[str, Action] = {}
    family_lines: list[str] = []
    if families is not None:
        fixed["socket"] = families.socket
        family_lines = [families.line] if families.line else []
        losses += families.losses
    decided = _decide(profile, losses, widen, fixed)
    if profile.mode == "log":
        notes.append("mode log: no SystemCallFilter=; SystemCallLog= logs what would be denied")
        if profile.default_action.kind is ActionKind.ALLOW:
            logged = [n for n, a in decided.items() if a.kind is not ActionKind.ALLOW]
            lines = _wrap("SystemCallLog=", logged)
        else:
            allowed = [n for n, a in decided.items() if a.kind is ActionKind.ALLOW]
            lines = _wrap("SystemCallLog=~", allowed) or ["SystemCallLog=~"]
    else:
        default = _systemd_action(profile.default_action, "default action", losses)
        decided = {n: _systemd_action(a, n, losses) for n, a in decided.items()}
        if default.permits:
            lines = _deny_list(default, decided)
        else:
            lines = _allow_list(default, decided, notes)
    lines += family_lines + _common(profile, losses, notes)
    return SystemdFilter(tuple(lines), tuple(losses), tuple(notes))


EAFNOSUPPORT = Action(ActionKind.ERRNO, errno_mod.EAFNOSUPPORT)
"""What ``RestrictAddressFamilies=`` makes a ``socket()`` of a family it refuses return."""

ADDRESS_FAMILIES = {
    1: "AF_UNIX", 2: "AF_INET", 3: "AF_AX25", 4: "AF_IPX", 5: "AF_APPLETALK", 6: "AF_NETROM",
    7: "AF_BRIDGE", 8: "AF_ATMPVC", 9: "AF_X25", 10: "AF_INET6", 11: "AF_ROSE", 12: "AF_DECnet",
    13: "AF_NETBEUI", 14: "AF_SECURITY", 15: "AF_KEY", 16: "AF_NETLINK", 17: "AF_PACKET",
    18: "AF_ASH", 19: "AF_ECONET", 20: "AF_ATMSVC", 21: "AF_RDS", 22: "AF_SNA", 23: "AF_IRDA",
    24: "AF_PPPOX", 25: "AF_WANPIPE", 26: "AF_LLC", 27: "AF_IB", 28: "AF_MPLS", 29: "AF_CAN",
    30: "AF_TIPC", 31: "AF_BLUETOOTH", 32: "AF_IUCV", 33: "AF_RXRPC", 34: "AF_ISDN",
    35: "AF_PHONET", 36: "AF_IEEE802154", 37: "AF_CAIF", 38: "AF_ALG", 39: "AF_NFC",
    40: "AF_VSOCK", 41: "AF_KCM", 42: "AF_QIPCRTR", 43: "AF_SMC", 44: "AF_XDP", 45: "AF_MCTP",
}
"""Address families by number (``linux/socket.h``), spelled as systemd 252 reads them; systemd
ignores numbers from ``AF_MAX`` (46) up, so a profile naming one is not translated this way."""
_FAMILY_NUMBERS = {name: number for number, name in ADDRESS_FAMILIES.items()}


@record
class _Families:
    """``socket()``'s rules as ``RestrictAddressFamilies=``."""

    line: str | None
    """The ``RestrictAddressFamilies=`` line (None: the families make no difference)."""
    socket: Action
    """What ``SystemCallFilter=`` is to give ``socket()`` itself."""
    losses: tuple[str, ...]
    """Families whose answer is ``EAFNOSUPPORT`` under systemd and another in the profile."""


_FAMILY_FILTER_ARCHES = frozenset({"x86_64", "x32", "arm", "aarch64", "mips64", "mipsel64",
                                   "mips64n32", "mipsel64n32", "riscv64"})
"""libseccomp architectures systemd 252 builds a ``RestrictAddressFamilies=`` filter for (no
``socketcall``); on any other the setting does nothing."""


def _socket_families(profile: Profile, native: str) -> _Families | None:
    """``socket()``'s rules when each is an address family check (``arg0 eq N``) and the
    families either all allow (the rest denied) or all deny (the rest permitted), as
    ``RestrictAddressFamilies=`` can say on ``native``; None otherwise (:func:`_decide` notes
    the loss)."""
    if profile.mode == "log":  # the profile logs where RestrictAddressFamilies= would deny
        return None
    if native not in _FAMILY_FILTER_ARCHES:
        return None
    per_family: dict[int, Action] = {}
    rest = profile.default_action
    for rule in (*profile.deny, *profile.rules):  # the compiler's order: first match wins
        if "socket" not in rule.syscalls:
            continue
        if not rule.args:
            rest = rule.action
            break
        if len(rule.args) != 1 or (rule.args[0].index, rule.args[0].op) != (0, "eq"):
            return None
        per_family.setdefault(rule.args[0].value, rule.action)
    if not per_family:
        return None
    differ = {f: a for f, a in sorted(per_family.items()) if a != rest}
    if not differ:
        return _Families(None, rest, ())
    if any(f not in ADDRESS_FAMILIES for f in differ):
        return None
    names = " ".join(ADDRESS_FAMILIES[f] for f in differ)
    losses: tuple[str, ...]
    if not rest.permits and all(a == ALLOW for a in differ.values()):
        losses = () if rest == EAFNOSUPPORT else (
            f"socket(): address families other than {names} fail with EAFNOSUPPORT "
            f"(RestrictAddressFamilies=), the profile gives {rest}",)
        return _Families(f"RestrictAddressFamilies={names}", ALLOW, losses)
    if rest.permits and not any(a.permits for a in differ.values()):
        losses = tuple(f"socket(): {ADDRESS_FAMILIES[f]} fails with EAFNOSUPPORT "
                       f"(RestrictAddressFamilies=~), the profile gives {a}"
                       for f, a in differ.items() if a != EAFNOSUPPORT)
        return _Families(f"RestrictAddressFamilies=~{names}", rest, losses)
    return None


def _decide(profile: Profile, losses: list[str], widen: bool,
            fixed: dict[str, Action]) -> dict[str, Action]:
    """One action per syscall name (known on this architecture), as the compiler orders rules:
    deny entries first, then rules, first match wins; ``fixed`` ones as given."""
    decided: dict[str, Action] = {}
    conditional: dict[str, list[Rule]] = {}
    for rule in (*profile.deny, *profile.rules):
        for name in rule.syscalls:
            if name in decided:
                continue
            if name in fixed:
                decided[name] = fixed[name]
            elif rule.args:
                conditional.setdefault(name, []).append(rule)
            else:
                decided[name] = rule.action
    for name, rules in conditional.items():
        after = decided.get(name, profile.default_action)
        choices = [*(r.action for r in rules), after]
        chosen = _widest(choices) if widen else _narrowest(choices)
        decided[name] = chosen
        conds = "; ".join(" and ".join(map(str, r.args)) for r in rules)
        shown = "log" if profile.mode == "log" and not chosen.permits else str(chosen)
        losses.append(f"{name}: argument conditions ({conds}) cannot be expressed; "
                      f"{name} gets {shown} in every case"
                      + (" (widened: the profile is stricter)" if widen else ""))
    return {n: a for n, a in decided.items()
            if syscalls.lookup(n).status is syscalls.Status.KNOWN}


def _deny_list(default: Action, decided: dict[str, Action]) -> list[str]:
    denied = {n: a for n, a in decided.items() if not a.permits}
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
    allowed = [n for n, a in decided.items() if a.permits]
    own = {n: a for n, a in decided.items() if not a.permits and a != default}
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


def _common(profile: Profile, losses: list[str], notes: list[str]) -> list[str]:
    lines = ["SystemCallArchitectures=native"]
    native = syscalls.native_arch()
    others = [a for a in profile.architectures if a not in ("native", native)]
    if others:
        losses.append(f"architectures {', '.join(others)} are blocked by "
                     "SystemCallArchitectures=native (the profile filters them)")
    if profile.no_new_privs:
        lines.append("NoNewPrivileges=yes")
    else:
        notes.append("no_new_privs: false is not written (systemd implies NoNewPrivileges=yes "
                     "only for a filtered service that lacks CAP_SYS_ADMIN, which could not load "
                     "the filter without it)")
    return lines


def _systemd_action(action: Action, what: str, losses: list[str]) -> Action:
    if action.kind is ActionKind.KILL_THREAD:
        losses.append(f"{what}: kill_thread becomes kill (systemd kills the whole process)")
        return Action(ActionKind.KILL_PROCESS)
    if action.kind is ActionKind.TRAP:
        losses.append(f"{what}: trap (SIGSYS to a handler) becomes kill")
        return Action(ActionKind.KILL_PROCESS)
    return action


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
    ``NoNewPrivileges``, ``SystemCallLog`` and ``RestrictAddressFamilies`` (systemd's filter of
    its own: :func:`address_family_filter`) are noted and ignored. Raises :class:`FormatError`
    for a line that is not ``Key=value``, an unknown ``@group`` or a bad errno.
    """
    parser = _parse(lines, source)
    return parser.profile(name), parser.notes


def address_family_filter(lines: Iterable[str], source: str = "<systemd>") -> Profile | None:
    """The filter systemd 252 builds for the lines' ``RestrictAddressFamilies=``
    (``seccomp_restrict_address_families``), None when they restrict nothing.

    systemd loads it beside ``SystemCallFilter=``'s, and the kernel takes the more restrictive
    answer of the two. An allow-list refuses ``socket()`` with ``EAFNOSUPPORT`` below the first
    family, above the last and for each number in between it does not list; a deny-list refuses
    the families it lists. Only the native ABI is described (systemd skips i386 altogether).
    """
    parser = _parse(lines, source)
    if not parser.families_allow and not parser.families:
        return None
    families = parser.families or set()
    refused: list[tuple[ArgCondition, ...]] = []
    if not parser.families_allow:
        refused = [(ArgCondition(0, "eq", f),) for f in sorted(families)]
    elif not families:
        refused = [()]
    else:
        first, last = min(families), max(families)
        refused = [(ArgCondition(0, "lt", first),), (ArgCondition(0, "gt", last),)]
        refused += [(ArgCondition(0, "eq", f),) for f in range(1, last)
                    if f not in families and f >= first]
    return Profile(name="restrict-address-families", default_action=ALLOW,
                   deny=tuple(Rule(("socket",), EAFNOSUPPORT, args, ("socket",))
                              for args in refused))


@record
class FilterSettings:
    """What a unit's ``SystemCallFilter=`` and ``RestrictAddressFamilies=`` lines leave in
    systemd's execution context (what ``systemd-analyze security`` judges)."""

    allow_list: bool
    """``SystemCallFilter=`` is an allow-list (its first assignment had no ``~``)."""
    syscalls: frozenset[str] | None
    """Native syscalls the list holds (an allow-list's ``~name:errno`` exceptions left out);
    None when no filter is set."""
    held_elsewhere: frozenset[str]
    """Syscalls of other architectures only the list holds: systemd keeps them, so a
    deny-list of nothing but those still counts as a filter."""
    families_allow: bool
    """``RestrictAddressFamilies=`` is an allow-list (or ``none``)."""
    families: frozenset[int] | None
    """Address family numbers it lists; None when it is not set (``none`` is an empty
    allow-list)."""
    architectures: frozenset[str]
    """``SystemCallArchitectures=``'s names systemd knows (``native``, ``x86-64`` ...),
    gathered over its assignments as systemd does (an empty one clears them)."""


def _elsewhere(entry: str) -> list[str]:
    """The names of ``entry`` (a group expanded) that are syscalls of other architectures
    only."""
    try:
        names = syscalls.expand([entry]) if syscalls.is_group(entry) else (entry,)
    except syscalls.UnknownGroup:
        return []  # members() reports it
    return [n for n in names if syscalls.lookup(n).status is syscalls.Status.ABSENT]


def filter_settings(lines: Sequence[str], source: str = "<systemd>") -> FilterSettings:
    """The :class:`FilterSettings` of ``Key=value`` lines, parsed as by :func:`parse_systemd`
    (which raises :class:`FormatError` for an unknown ``@group`` or a bad errno)."""
    parser = _parse(lines, source)
    table = parser.table
    names = None if table is None else frozenset(
        name for name, err in table.items() if not parser.allow_list or err is None)
    families = (None if parser.families is None and not parser.families_allow
                else frozenset(parser.families or ()))
    return FilterSettings(parser.allow_list, names, frozenset(parser.elsewhere),
                          parser.families_allow, families, frozenset(parser.arches))


def _parse(lines: Iterable[str], source: str) -> _SystemdParser:
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
    return parser


class _SystemdParser:
    """The state systemd keeps while it reads a unit's syscall filter settings."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.table: dict[str, int | None] | None = None
        """Name -> errno (None: the list's own meaning), as systemd's hashmap."""
        self.elsewhere: set[str] = set()
        """Syscalls of other architectures only that systemd's hashmap holds besides (it
        keeps their pseudo-numbers); they filter nothing here but make the list non-empty."""
        self.allow_list = False
        self.errno: int | None = None
        """SystemCallErrorNumber=; None: kill."""
        self.arches: list[str] = []
        """SystemCallArchitectures='s systemd names (``native``, ``x86-64``): systemd adds each
        assignment's to one set, an empty assignment clears it, and an empty set filters every
        ABI the same way."""
        self.nnp = False
        self.log: dict[str, None] | None = None
        self.log_invert = False
        self.families: set[int] | None = None
        """RestrictAddressFamilies='s set (None: never assigned, reset, or ``none``, which
        leaves an allow-list of nothing that the next assignment replaces, as systemd)."""
        self.families_allow = False

    def setting(self, key: str, value: str, where: Location) -> None:
        if key == "SystemCallFilter":
            self.filter(value, where)
        elif key == "SystemCallErrorNumber":
            self.errno = None if value in ("", "kill") else _errno_value(value, where, 1)
        elif key == "SystemCallArchitectures":
            self.arches = [] if not value else list(dict.fromkeys(
                [*self.arches, *self.architectures(value.split(), where)]))
        elif key == "NoNewPrivileges":
            self.nnp = value.lower() in ("1", "yes", "true", "on")
        elif key == "SystemCallLog":
            self.syscall_log(value, where)
        elif key == "RestrictAddressFamilies":
            self.address_families(value, where)
        else:
            self.notes.append(f"{where}: {key}= is not a syscall filter setting, ignored")

    def filter(self, value: str, where: Location) -> None:
        if not value:  # an empty assignment resets
            self.table, self.allow_list = None, False
            self.elsewhere = set()
            return
        invert = value.startswith("~")
        if self.table is None:  # the first assignment decides allow-list or deny-list
            self.table = {}
            self.allow_list = not invert
            if self.allow_list:
                self.table.update(dict.fromkeys(self.members("@default", where)))
                self.elsewhere = set(_elsewhere("@default"))
        for word in value.removeprefix("~").split():
            entry, colon, suffix = word.partition(":")
            err: int | None = None
            if colon:
                if not invert:
                    self.notes.append(f"{where}: allow-listed system calls cannot take an error "
                                      f"number (systemd ignores {word!r})")
                    continue
                err = _KILL if suffix == "kill" else _errno_value(suffix, where, 0)
            keep = (not invert) == self.allow_list or (invert and err is not None)
            for member in self.members(entry, where):
                if keep:
                    self.table[member] = err
                else:
                    self.table.pop(member, None)
            for member in _elsewhere(entry):
                if keep:
                    self.elsewhere.add(member)
                else:
                    self.elsewhere.discard(member)

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

    def address_families(self, value: str, where: Location) -> None:
        """As systemd's ``config_parse_address_families``: empty resets, ``none`` is an empty
        allow-list, the first assignment decides allow or ``~`` deny, later ones add or take
        out."""
        if not value:
            self.families, self.families_allow = None, False
            return
        if value == "none":  # no set, yet an allow-list: the next assignment starts afresh
            self.families, self.families_allow = None, True
            return
        invert = value.startswith("~")
        if self.families is None:
            self.families, self.families_allow = set(), not invert
        for word in value.removeprefix("~").split():
            number = _FAMILY_NUMBERS.get(word)
            if number is None:
                self.notes.append(f"{where}: unknown address family {word!r}, ignored (as "
                                  "systemd does)")
            elif (not invert) == self.families_allow:
                self.families.add(number)
            else:
                self.families.discard(number)

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
        """The names systemd knows among ``words`` (the others are noted)."""
        out: list[str] = []
        for word in words:
            if word == "native" or word in _SYSTEMD_ARCH:
                out.append(word)
            else:
                self.notes.append(f"{where}: unknown architecture {word!r}, ignored (as systemd "
                                  "does)")
        return out

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
                (allow_side if action.permits else deny_side)[syscall] = action
        arches = list(dict.fromkeys(w if w == "native" else _SYSTEMD_ARCH[w]
                                    for w in self.arches))
        if not arches:
            arches = ["native", *syscalls.other_abis()]
            self.notes.append("no SystemCallArchitectures=: systemd filters "
                              f"{', '.join(arches[1:])} with the same list (an open ABI to "
                              "hostguard's lint; add SystemCallArchitectures=native)")
        return Profile(name=profile_name(name), default_action=overall,
                       rules=_grouped(allow_side), deny=_grouped(deny_side),
                       architectures=tuple(arches), no_new_privs=self.nnp,
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
