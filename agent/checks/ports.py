"""``ports``: an exact allow-list of listening sockets (TCP LISTEN, bound unconnected UDP).

Passes (sshd listens on 10.10.0.5:22, the FIX gateway on [::]:7001 dual-stack, nothing else)::

    - id: PORT-001
      kind: ports
      spec:
        allow:
          - {port: 22, proto: tcp, bind: 10.10.0.0/16, process: sshd, user: root}
          - {port: 7001, proto: tcp, bind: any, process: "fixgw*"}
        deny_unlisted: true
        forbid: [23, 111, "6000-6063"]

Fails (the same spec; rpcbind listens on 0.0.0.0:111 and a debug server on 127.0.0.1:8080)::

    evidence rows: tcp 0.0.0.0:111 rpcbind pid 512 "port 111/tcp is forbidden";
                   tcp 127.0.0.1:8080 python3 pid 9120 "no allow entry for 8080/tcp"

Binds are judged by *reach*, the set of local addresses a socket accepts on: ``0.0.0.0`` reaches
0.0.0.0/0, ``[::]`` with IPV6_V6ONLY reaches ::/0, a dual-stack ``[::]`` reaches both 0.0.0.0/0
and ::/0, a bind to ``::ffff:a.b.c.d`` reaches the IPv4 address a.b.c.d. ``bind: any`` allows
every reach; a CIDR or address allows a socket whose whole reach lies inside it, so a dual-stack
``[::]`` matches only ``any`` (neither ``0.0.0.0/0`` nor ``::/0`` covers both families).

Order: a ``forbid`` entry fails a socket whatever ``allow`` says; else it passes when an allow
entry naming its port and protocol matches it (``process``/``user`` must hold for every process
holding it); a socket no entry names fails under ``deny_unlisted`` (default true when ``allow``
is given) and is ignored otherwise.

The agent's own listener: a TCP socket hostguard itself is configured to listen on (the daemon's
``metrics_listen``, told to the audit as ``Snapshot.own_listeners``) passes as ``hostguard's own
listener`` when the auditing process holds it, alone, on the configured port (and address, when
an address is configured); it is still an evidence row, with that reason. A ``forbid`` entry
still fails it; the same port held by any other process is judged like every socket.

Fail closed: a socket whose verdict depends on what could not be seen (its owning process, an
owner's exe or user, whether a ``[::]`` socket read from procfs is v6only, a namespace that
could not be read) is ``error``; the check is ``error`` unless some socket fails.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any, ClassVar

from agent.checks.base import CheckKind, SpecError, SpecPath, SpecProblem
from agent.core.record import record
from agent.host.facts import ReadError
from agent.host.snapshot import OwnListener, Snapshot, SnapshotRequest
from agent.host.sockets import Listener, ListenerTable, Owner
from agent.policy.globs import bracket_problem
from agent.result import Evidence, Outcome, Status

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

PROTOS = ("tcp", "udp")
_PORT_TEXT = re.compile(r"([0-9]+)(?:-([0-9]+))?")
_GLOB_CHARS = re.compile(r"[*?\[]")
COMM_MAX = 15
"""Bytes of a process name the kernel keeps (TASK_COMM_LEN - 1)."""
_ANY4 = ipaddress.IPv4Network("0.0.0.0/0")
_ANY6 = ipaddress.IPv6Network("::/0")
_LOOPBACK: tuple[Network, ...] = (ipaddress.IPv4Network("127.0.0.0/8"),
                                  ipaddress.IPv6Network("::1/128"))
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_SHOWN = 10
"""Offending sockets named in the one-line ``actual``; every one is in the evidence rows."""

_PORT_SCHEMA: dict[str, Any] = {
    "description": "A port (22) or an inclusive range (\"6000-6063\").",
    "anyOf": [{"type": "integer"}, {"type": "string", "pattern": r"^[0-9]+(-[0-9]+)?$"}],
    "examples": [22, "6000-6063"],
}
_PROTO_SCHEMA: dict[str, Any] = {
    "enum": list(PROTOS), "description": "tcp or udp; omitted: both.",
}


@record
class PortRange:
    """Inclusive port range."""

    low: int
    high: int

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.low <= port <= self.high

    def __str__(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


@record
class Allow:
    """One ``allow`` entry."""

    ports: PortRange
    protos: frozenset[str]
    bind: str
    """``any``, ``loopback`` or the address/CIDR as written."""
    networks: tuple[Network, ...] | None
    """What the bind allows; None for ``any``."""
    process: str | None
    """Glob on the process name (comm), or on the exe path when it holds a ``/``."""
    user: str | int | None
    """User name, or numeric uid."""

    def describe(self) -> str:
        text = f"{self.ports}/{'+'.join(sorted(self.protos))} bind {self.bind}"
        if self.process is not None:
            text += f" process {self.process}"
        if self.user is not None:
            text += f" user {self.user}"
        return text


@record
class Forbid:
    """One ``forbid`` entry."""

    ports: PortRange
    protos: frozenset[str]

    def describe(self) -> str:
        return f"{self.ports}/{'+'.join(sorted(self.protos))}"


@record
class PortsSpec:
    """Parsed ``ports`` spec."""

    allow: tuple[Allow, ...]
    deny_unlisted: bool
    """Every listener must match an allow entry (else only ports an entry names are judged)."""
    forbid: tuple[Forbid, ...]
    namespaces: str
    """``host`` (the namespace hostguard runs in) or ``all``."""


class PortsKind(CheckKind[PortsSpec]):
    """Listening sockets against an allow-list."""

    name = "ports"
    summary = ("Listening TCP/UDP sockets against an exact allow-list (port, protocol, bind "
               "address, process, user) and a list of ports that must never listen.")
    spec_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "description": summary,
        "additionalProperties": False,
        "anyOf": [{"required": ["allow"]}, {"required": ["forbid"]}],
        "properties": {
            "allow": {
                "type": "array",
                "description": "Listeners that may exist; each socket must match one entry.",
                "items": {
                    "type": "object",
                    "required": ["port"],
                    "additionalProperties": False,
                    "properties": {
                        "port": _PORT_SCHEMA,
                        "proto": _PROTO_SCHEMA,
                        "bind": {
                            "type": "string", "minLength": 1, "default": "any",
                            "description": "any (every bind, wildcard included), loopback, "
                                           "or an address/CIDR the socket's reach must lie in.",
                            "examples": ["any", "loopback", "10.10.0.0/16", "::1"],
                        },
                        "process": {
                            "type": "string", "minLength": 1,
                            "description": "Glob on the process name, or on the exe path "
                                           "when it contains '/'; every owner must match.",
                            "examples": ["sshd", "fixgw*", "/opt/fix/bin/*"],
                        },
                        "user": {
                            "anyOf": [{"type": "string", "minLength": 1},
                                      {"type": "integer", "minimum": 0}],
                            "description": "User name, or uid (an integer or digits), every "
                                           "owner must run as (effective uid).",
                        },
                    },
                },
            },
            "deny_unlisted": {
                "type": "boolean",
                "description": "true (the default when allow is given): every listener must "
                               "match an allow entry; false (the default otherwise): only ports "
                               "some allow entry names are judged.",
            },
            "forbid": {
                "type": "array",
                "description": "Ports that must never listen, whatever allow says.",
                "items": {
                    "anyOf": [
                        _PORT_SCHEMA,
                        {"type": "object", "required": ["port"], "additionalProperties": False,
                         "properties": {"port": _PORT_SCHEMA, "proto": _PROTO_SCHEMA}},
                    ],
                },
            },
            "namespaces": {
                "enum": ["host", "all"], "default": "host",
                "description": "host: the network namespace hostguard runs in; all: every "
                               "namespace a process is in (and every /run/netns mount).",
            },
        },
    }

    def parse(self, raw: Mapping[str, Any]) -> PortsSpec:
        problems: list[SpecProblem] = []
        allow = []
        for i, entry in enumerate(raw.get("allow", [])):
            parsed = _parse_allow(entry, ("allow", i), problems)
            if parsed is not None:
                allow.append(parsed)
        forbid = []
        for i, entry in enumerate(raw.get("forbid", [])):
            port, proto = (entry.get("port"), entry.get("proto")) if isinstance(entry, Mapping) \
                else (entry, None)
            path: SpecPath = ("forbid", i, "port") if isinstance(entry, Mapping) else ("forbid", i)
            ports = _parse_ports(port, path, problems)
            if ports is not None:
                forbid.append(Forbid(ports, _protos(proto)))
        deny_unlisted = bool(raw.get("deny_unlisted", "allow" in raw))
        if not deny_unlisted and not allow and not forbid and not problems:
            problems.append(SpecProblem((), "deny_unlisted: false with no allow or forbid "
                                            "entries checks nothing"))
        for i, entry in enumerate(allow):
            for rule in forbid:
                if (rule.ports.low <= entry.ports.low and entry.ports.high <= rule.ports.high
                        and entry.protos <= rule.protos):
                    problems.append(SpecProblem(
                        ("allow", i, "port"), f"allow entry {entry.describe()} can never take "
                        f"effect: forbid {rule.describe()} covers it"))
                    break
        if problems:
            raise SpecError(problems)
        return PortsSpec(tuple(allow), deny_unlisted, tuple(forbid),
                         str(raw.get("namespaces", "host")))

    def request(self, spec: PortsSpec) -> SnapshotRequest:
        return SnapshotRequest(listeners=True)

    def evaluate(self, spec: PortsSpec, snapshot: Snapshot) -> Outcome:
        expected = describe(spec)
        table = snapshot.listeners
        if table is None:
            return Outcome(Status.ERROR, "listening sockets were not read",
                           Evidence(expected, "not read"))
        if isinstance(table, ReadError):
            return Outcome(Status.ERROR, f"cannot read listening sockets: {table.reason}",
                           Evidence(expected, table.reason))
        return judge(spec, table, expected, snapshot.own_listeners)


# --- parsing -------------------------------------------------------------------------------


def _protos(value: object) -> frozenset[str]:
    return frozenset(PROTOS) if value is None else frozenset({str(value)})


def _parse_ports(value: object, path: SpecPath, problems: list[SpecProblem]) -> PortRange | None:
    if isinstance(value, int) and not isinstance(value, bool):
        low = high = value
    else:
        match = _PORT_TEXT.fullmatch(str(value))
        if match is None:
            problems.append(SpecProblem(path, f"port {value!r} is not a number or a range "
                                              "like \"6000-6063\""))
            return None
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
    for number in (low, high):
        if not 1 <= number <= 65535:
            problems.append(SpecProblem(path, f"port {number} is outside 1-65535"))
            return None
    if low > high:
        problems.append(SpecProblem(path, f"port range {value!r} runs backwards ({low} > {high})"))
        return None
    return PortRange(low, high)


def _parse_bind(text: str, path: SpecPath,
                problems: list[SpecProblem]) -> tuple[Network, ...] | bool | None:
    """Networks for ``text``; None for ``any``; False after recording a problem."""
    if text == "any":
        return None
    if text == "loopback":
        return _LOOPBACK
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        if "host bits set" in str(exc):
            fixed = ipaddress.ip_network(text, strict=False)
            problems.append(SpecProblem(path, f"bind {text!r} has host bits set; the network "
                                              f"is {fixed}"))
        else:
            problems.append(SpecProblem(path, f"bind {text!r} is not any, loopback, an IP "
                                              "address or a CIDR"))
        return False
    if "/" not in text and network.network_address.is_unspecified:
        other, family = ("0.0.0.0/0", "IPv4") if network.version == 4 else ("::/0", "IPv6")
        problems.append(SpecProblem(path, f"bind {text!r} names the wildcard address only; "
                                          f"write 'any' (every bind, dual-stack included) or "
                                          f"{other!r} (every {family}-only bind)"))
        return False
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96 \
            and network.subnet_of(_MAPPED):
        problems.append(SpecProblem(path, f"bind {text!r} is IPv4-mapped; write the IPv4 "
                                          "address or network (mapped binds are judged as IPv4)"))
        return False
    return (network,)


def _parse_allow(entry: Mapping[str, Any], at: SpecPath,
                 problems: list[SpecProblem]) -> Allow | None:
    ports = _parse_ports(entry.get("port"), (*at, "port"), problems)
    bind = str(entry.get("bind", "any"))
    networks = _parse_bind(bind, (*at, "bind"), problems)
    process = entry.get("process")
    if process is not None:
        problem = bracket_problem(str(process))
        if problem:
            problems.append(SpecProblem((*at, "process"), f"invalid process glob "
                                        f"{process!r}: {problem}", "invalid-glob"))
            return None
        if "/" not in str(process) and not _GLOB_CHARS.search(str(process)) \
                and len(str(process).encode()) > COMM_MAX:
            problems.append(SpecProblem((*at, "process"), f"process name {process!r} is longer "
                                        f"than the {COMM_MAX} bytes the kernel keeps of a "
                                        "name (comm), so it can never match; glob the exe "
                                        "path instead (it contains '/')"))
            return None
    if ports is None or networks is False:
        return None
    assert networks is not True
    user = entry.get("user")
    if isinstance(user, str) and user.isascii() and user.isdigit():
        user = int(user)  # "1000" is a uid, as in the process kind
    return Allow(ports, _protos(entry.get("proto")), bind, networks,
                 None if process is None else str(process),
                 user if isinstance(user, int) or user is None else str(user))


# --- evaluation ----------------------------------------------------------------------------


def describe(spec: PortsSpec) -> str:
    """The spec in words, for ``expected``."""
    scope = "in every network namespace" if spec.namespaces == "all" \
        else "in the host network namespace"
    parts = []
    if spec.allow or spec.deny_unlisted:
        allowed = "; ".join(a.describe() for a in spec.allow) or "nothing"
        parts.append(f"listeners only as allowed ({allowed})" if spec.deny_unlisted
                     else f"listeners on the named ports only as allowed ({allowed})")
    if spec.forbid:
        parts.append("never " + ", ".join(f.describe() for f in spec.forbid))
    return f"{scope}: {'; '.join(parts)}"


def reach(listener: Listener, v6only: bool | None) -> tuple[Network, ...]:
    """Local addresses the socket accepts on (see the module docstring)."""
    address = ipaddress.ip_address(listener.address)
    if isinstance(address, ipaddress.IPv4Address):
        return (_ANY4,) if address.is_unspecified else (ipaddress.IPv4Network(address),)
    mapped = address.ipv4_mapped
    if mapped is not None:
        return (_ANY4,) if mapped.is_unspecified else (ipaddress.IPv4Network(mapped),)
    if not address.is_unspecified:
        return (ipaddress.IPv6Network(address),)
    return (_ANY6,) if v6only else (_ANY6, _ANY4)


def _inside(nets: tuple[Network, ...], allowed: tuple[Network, ...]) -> bool:
    return all(
        any(net.version == a.version and net.subnet_of(a) for a in allowed)  # type: ignore[arg-type]
        for net in nets
    )


def bind_matches(entry: Allow, listener: Listener) -> bool | None:
    """Whether the socket's reach lies inside the entry's bind; None when it cannot be told."""
    if entry.networks is None:
        return True
    if listener.family == "ipv6" and listener.v6only is None and listener.wildcard:
        verdicts = {_inside(reach(listener, v6only), entry.networks) for v6only in (True, False)}
        return verdicts.pop() if len(verdicts) == 1 else None
    return _inside(reach(listener, listener.v6only), entry.networks)


def _owner_matches(entry: Allow, owner: Owner) -> bool | None:
    verdicts: list[bool | None] = []
    if entry.process is not None:
        if "/" in entry.process:
            verdicts.append(None if owner.exe is None else fnmatchcase(owner.exe, entry.process))
        else:
            verdicts.append(fnmatchcase(owner.name, entry.process))
    if isinstance(entry.user, int):
        verdicts.append(None if owner.uid is None else owner.uid == entry.user)
    elif entry.user is not None:
        verdicts.append(None if owner.user is None else owner.user == entry.user)
    if False in verdicts:
        return False
    return None if None in verdicts else True


def owner_matches(entry: Allow, listener: Listener, complete: bool) -> tuple[bool | None, str]:
    """Whether every owner satisfies ``process``/``user``; None (with why) when unknown."""
    if entry.process is None and entry.user is None:
        return True, ""
    if not listener.owners:
        return None, "no visible process holds the socket, so its process/user is unknown"
    verdicts = [_owner_matches(entry, owner) for owner in listener.owners]
    if False in verdicts:
        return False, ""
    if None in verdicts:
        return None, "an owner's exe or user could not be read"
    if not complete:
        return None, "some processes' open files could not be read: unseen owners possible"
    return True, ""


@record
class Verdict:
    """One socket's verdict."""

    listener: Listener
    status: Status
    reason: str


def own(listener: Listener, own_listeners: tuple[OwnListener, ...]) -> OwnListener | None:
    """The agent's own configured listener that ``listener`` is, if it is one: TCP, on the
    configured port (and address, when an address is configured), held by the agent's process
    and no other."""
    if listener.proto != "tcp" or not listener.owners:
        return None
    for mine in own_listeners:
        if mine.port != listener.port or any(o.pid != mine.pid for o in listener.owners):
            continue
        try:
            configured = ipaddress.ip_address(mine.host)
        except ValueError:
            return mine  # a host name: the process and port decide
        if configured == ipaddress.ip_address(listener.address):
            return mine
    return None


def verdict(spec: PortsSpec, listener: Listener, complete: bool,
            own_listeners: tuple[OwnListener, ...] = ()) -> Verdict:
    """Judge one socket."""
    where = f"{listener.port}/{listener.proto}"
    for rule in spec.forbid:
        if listener.port in rule.ports and listener.proto in rule.protos:
            return Verdict(listener, Status.FAIL, f"port {where} is forbidden "
                           f"(forbid {rule.describe()})")
    mine = own(listener, own_listeners)
    if mine is not None:
        return Verdict(listener, Status.PASS, f"hostguard's own listener ({mine.setting}, "
                       f"pid {mine.pid})")
    relevant = [a for a in spec.allow if listener.port in a.ports and listener.proto in a.protos]
    if not relevant:
        if spec.deny_unlisted:
            return Verdict(listener, Status.FAIL, f"no allow entry for {where}")
        return Verdict(listener, Status.PASS, "port not named by any allow entry")
    unknown: list[str] = []
    for entry in relevant:
        bind = bind_matches(entry, listener)
        owner, why = owner_matches(entry, listener, complete)
        if bind and owner:
            return Verdict(listener, Status.PASS, f"allowed by {entry.describe()}")
        if bind is False or owner is False:
            continue
        if bind is None:
            why = "procfs does not tell whether this [::] socket is v6only"
        unknown.append(f"{entry.describe()}: {why}")
    if unknown:
        return Verdict(listener, Status.ERROR, "cannot tell whether allowed: "
                       + "; ".join(unknown))
    return Verdict(listener, Status.FAIL, f"{where} is allowed only as "
                   + "; ".join(a.describe() for a in relevant))


def _families(listener: Listener) -> str:
    if listener.families is None:
        return "unknown"
    return "+".join(sorted(listener.families))


def rows(verdicts: list[Verdict]) -> tuple[dict[str, Any], ...]:
    """One evidence row per socket and owner (one with null process fields when unowned)."""
    out: list[dict[str, Any]] = []
    for v in verdicts:
        s = v.listener
        base = {"verdict": v.status.value, "reason": v.reason, "proto": s.proto,
                "bind": s.address, "port": s.port, "families": _families(s),
                "netns": s.netns, "inode": s.inode}
        owners: tuple[Owner | None, ...] = s.owners or (None,)
        for owner in owners:
            out.append({**base,
                        "pid": owner.pid if owner else None,
                        "name": owner.name if owner else None,
                        "exe": owner.exe if owner else None,
                        "user": (owner.user if owner.user is not None else owner.uid)
                        if owner else None})
    return tuple(out)


def _label(v: Verdict) -> str:
    s = v.listener
    who = ", ".join(f"{o.name}[{o.pid}]" for o in s.owners) or "owner unknown"
    return f"{s.proto} {s.endpoint} ({who})"


def judge(spec: PortsSpec, table: ListenerTable, expected: str,
          own_listeners: tuple[OwnListener, ...] = ()) -> Outcome:
    """The verdict over every in-scope listener of ``table`` (``own_listeners``: the agent's
    own, tolerated and shown)."""
    problems: list[str] = []
    if spec.namespaces == "host":
        scope = [s for s in table.listeners if s.netns == table.host_netns]
        if table.host_netns in table.errors:
            problems.append(f"host network namespace: {table.errors[table.host_netns]}")
    else:
        scope = list(table.listeners)
        problems += [f"net:[{ns}]: {why}" for ns, why in table.errors.items()]
        if table.unknown_netns:
            pids = ", ".join(map(str, table.unknown_netns[:_SHOWN]))
            problems.append(f"the network namespace of {len(table.unknown_netns)} process(es) "
                            f"could not be read (pids {pids})")
    verdicts = [verdict(spec, s, table.owners_complete, own_listeners) for s in scope]
    failed = [v for v in verdicts if v.status is Status.FAIL]
    errored = [v for v in verdicts if v.status is Status.ERROR]
    mine = [v for v in verdicts if v.status is Status.PASS and own(v.listener, own_listeners)]
    shown = failed + errored
    evidence_rows = rows(shown + mine)
    tolerated = (f"; tolerated as hostguard's own: {', '.join(_label(v) for v in mine)}"
                 if mine else "")
    names = ", ".join(_label(v) for v in shown[:_SHOWN])
    more = f" and {len(shown) - _SHOWN} more" if len(shown) > _SHOWN else ""
    if failed:
        actual = f"{len(scope)} listeners; {len(failed)} not allowed: {names}{more}"
        tail = f"; {len(errored)} cannot be judged" if errored else ""
        tail += f"; {'; '.join(problems)}" if problems else ""
        first = ", ".join(_label(v) for v in failed[:3])
        first += f" and {len(failed) - 3} more" if len(failed) > 3 else ""
        return Outcome(Status.FAIL, f"{len(failed)} listener(s) not allowed: {first}{tail}",
                       Evidence(expected, actual + tolerated, evidence_rows))
    if errored or problems:
        reasons = problems + [f"{_label(v)}: {v.reason}" for v in errored[:_SHOWN]]
        actual = f"{len(scope)} listeners; {len(errored)} cannot be judged"
        return Outcome(Status.ERROR, "; ".join(reasons),
                       Evidence(expected, actual + tolerated, evidence_rows))
    return Outcome(Status.PASS, f"{len(scope)} listener(s), all allowed{tolerated}",
                   Evidence(expected, f"{len(scope)} listeners, all allowed{tolerated}",
                            evidence_rows))
