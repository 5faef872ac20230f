"""``ports`` checks: parse, semantics over hand-built listener tables, lint, and a real audit.

The semantics tests build :class:`ListenerTable` values by hand (no host is read); the end-to-end
tests run ``hostguard audit`` inside a network + pid namespace the test creates, beside the
sockets of ``tests/host/listen_helper.py``.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.checks import KINDS, get
from agent.checks.base import SpecError, SpecProblem
from agent.checks.ports import PortsKind, PortsSpec
from agent.host.facts import ReadError
from agent.host.snapshot import OwnListener, Snapshot, SnapshotRequest
from agent.host.sockets import Listener, ListenerTable, NamespaceRead, Owner
from agent.result import Outcome, Status
from tests.checks.snapshots import FACTS
from tests.host.netns_support import run_in_fresh_namespaces
from tests.support import PROJECT, need_root, need_tool, run_cli

KIND = PortsKind()
HOST = 4026531840
CONT = 4026532300
SSHD = Owner(100, "sshd", "/usr/sbin/sshd", 0, "root", HOST)
FIXGW = Owner(102, "fixgw-main", "/opt/fix/bin/fixgw-main", 1001, "fix", HOST)
ROGUE = Owner(666, "sshd", "/tmp/sshd", 1002, "mallory", HOST)
HIDDEN_EXE = Owner(103, "fixgw-main", None, 1001, None, HOST)
DUAL = frozenset({"ipv4", "ipv6"})


def sock(proto: str, address: str, port: int, *owners: Owner, v6only: bool | None = None,
         netns: int = HOST, inode: int = 0) -> Listener:
    """A listener; families as the reader derives them (None for a procfs ``[::]``)."""
    family = "ipv6" if ":" in address else "ipv4"
    families: frozenset[str] | None
    if family == "ipv4" or address.startswith("::ffff:"):
        families = frozenset({"ipv4"})
    elif address != "::":
        families = frozenset({"ipv6"})
    else:
        families = None if v6only is None else frozenset({"ipv6"}) if v6only else DUAL
    return Listener(proto, family, address, port, v6only, families, inode or port, 0, netns,
                    0, owners)


def table(*listeners: Listener, complete: bool = True, errors: dict[int | None, str] | None = None,
          unknown_netns: tuple[int, ...] = ()) -> ListenerTable:
    reads = (NamespaceRead(HOST, "sock_diag", "self"), NamespaceRead(CONT, "sock_diag", "pid 300"))
    return ListenerTable(listeners, HOST, reads, complete, () if complete else (1,),
                         unknown_netns, errors or {})


def judge(raw: dict[str, Any], listeners: ListenerTable | ReadError | None) -> Outcome:
    return KIND.evaluate(KIND.parse(raw), Snapshot(root="/x", facts=FACTS, listeners=listeners))


def status(raw: dict[str, Any], *listeners: Listener, complete: bool = True) -> Status:
    return judge(raw, table(*listeners, complete=complete)).status


def problems(raw: dict[str, Any]) -> list[SpecProblem]:
    with pytest.raises(SpecError) as caught:
        KIND.parse(raw)
    return caught.value.problems


def test_registered_and_requests_listeners() -> None:
    assert get("ports") is KINDS["ports"]
    assert isinstance(KINDS["ports"], PortsKind)
    assert KIND.request(KIND.parse({"forbid": [23]})) == SnapshotRequest(listeners=True)


def test_request_reads_no_command_line_and_credentials_and_exe_of_holders_only() -> None:
    plan = KIND.request(KIND.parse({"allow": [{"port": 22, "process": "sshd", "user": "root"}],
                                    "namespaces": "all"})).process_plan()
    assert plan is not None
    fields, details = plan
    assert fields == {"socket_inodes", "netns"}  # plus the stat fields (name...)
    (owners,) = details
    assert owners.fields == {"uid", "user", "exe"}
    assert "cmdline" not in fields | owners.fields


def test_parse_defaults() -> None:
    spec = KIND.parse({"allow": [{"port": "8000-8100"}]})
    assert isinstance(spec, PortsSpec)
    assert spec.deny_unlisted is True and spec.namespaces == "host" and spec.forbid == ()
    (entry,) = spec.allow
    assert (entry.ports.low, entry.ports.high, entry.protos, entry.bind, entry.networks,
            entry.process, entry.user) == (8000, 8100, frozenset({"tcp", "udp"}), "any", None,
                                           None, None)


# --- semantic lint ----------------------------------------------------------------------------


def test_bad_ports_and_ranges() -> None:
    assert problems({"allow": [{"port": 0}, {"port": 70000}, {"port": "9000-8000"},
                               {"port": "1-65536"}, {"port": "x"}],
                     "forbid": [{"port": "200-100", "proto": "tcp"}, 65536]}) == [
        SpecProblem(("allow", 0, "port"), "port 0 is outside 1-65535"),
        SpecProblem(("allow", 1, "port"), "port 70000 is outside 1-65535"),
        SpecProblem(("allow", 2, "port"), "port range '9000-8000' runs backwards (9000 > 8000)"),
        SpecProblem(("allow", 3, "port"), "port 65536 is outside 1-65535"),
        SpecProblem(("allow", 4, "port"), "port 'x' is not a number or a range like "
                                          "\"6000-6063\""),
        SpecProblem(("forbid", 0, "port"), "port range '200-100' runs backwards (200 > 100)"),
        SpecProblem(("forbid", 1), "port 65536 is outside 1-65535"),
    ]


def test_bad_binds() -> None:
    assert problems({"allow": [{"port": 22, "bind": b} for b in (
        "10.0.0.300", "10.10.0.1/16", "0.0.0.0", "::", "::ffff:10.0.0.0/104", "eth0",
        "2001:db8::/129")]}) == [
        SpecProblem(("allow", 0, "bind"), "bind '10.0.0.300' is not any, loopback, an IP "
                                          "address or a CIDR"),
        SpecProblem(("allow", 1, "bind"), "bind '10.10.0.1/16' has host bits set; the network "
                                          "is 10.10.0.0/16"),
        SpecProblem(("allow", 2, "bind"), "bind '0.0.0.0' names the wildcard address only; "
                    "write 'any' (every bind, dual-stack included) or '0.0.0.0/0' (every "
                    "IPv4-only bind)"),
        SpecProblem(("allow", 3, "bind"), "bind '::' names the wildcard address only; write "
                    "'any' (every bind, dual-stack included) or '::/0' (every IPv6-only bind)"),
        SpecProblem(("allow", 4, "bind"), "bind '::ffff:10.0.0.0/104' is IPv4-mapped; write "
                    "the IPv4 address or network (mapped binds are judged as IPv4)"),
        SpecProblem(("allow", 5, "bind"), "bind 'eth0' is not any, loopback, an IP address "
                                          "or a CIDR"),
        SpecProblem(("allow", 6, "bind"), "bind '2001:db8::/129' is not any, loopback, an IP "
                                          "address or a CIDR"),
    ]


def test_bad_glob_and_empty_and_dead_entries() -> None:
    assert problems({"allow": [{"port": 7001, "process": "fix[gw"}]}) == [
        SpecProblem(("allow", 0, "process"), "invalid process glob 'fix[gw': '[' at position "
                                             "4 is never closed", "invalid-glob"),
    ]
    assert problems({"allow": [{"port": 7001, "process": "fixgw-main-venue-lse"},
                               {"port": 7002, "process": "/opt/fix/bin/fixgw-main-venue-lse"},
                               {"port": 7003, "process": "fixgw-main-venue*"}]}) == [
        SpecProblem(("allow", 0, "process"), "process name 'fixgw-main-venue-lse' is longer "
                    "than the 15 bytes the kernel keeps of a name (comm), so it can never "
                    "match; glob the exe path instead (it contains '/')"),
    ]
    assert problems({"allow": [], "deny_unlisted": False}) == [
        SpecProblem((), "deny_unlisted: false with no allow or forbid entries checks nothing"),
    ]
    assert problems({"allow": [{"port": 6010, "proto": "tcp"}, {"port": 111}],
                     "forbid": ["6000-6063", {"port": 111, "proto": "udp"}]}) == [
        SpecProblem(("allow", 0, "port"), "allow entry 6010/tcp bind any can never take "
                                          "effect: forbid 6000-6063/tcp+udp covers it"),
    ]


def test_valid_binds_parse() -> None:
    spec = KIND.parse({"allow": [{"port": 22, "bind": b} for b in (
        "any", "loopback", "10.10.0.0/16", "10.10.0.5", "::1", "2001:db8::/32", "0.0.0.0/0",
        "::/0")]})
    assert [str(n) for e in spec.allow for n in (e.networks or ())] == [
        "127.0.0.0/8", "::1/128", "10.10.0.0/16", "10.10.0.5/32", "::1/128", "2001:db8::/32",
        "0.0.0.0/0", "::/0"]


# --- binds: reach against the entry ------------------------------------------------------------

V4_ANY = sock("tcp", "0.0.0.0", 7001, FIXGW)
V6_ONLY = sock("tcp", "::", 7001, FIXGW, v6only=True)
V6_DUAL = sock("tcp", "::", 7001, FIXGW, v6only=False)
V6_UNKNOWN = sock("tcp", "::", 7001, FIXGW)
V4_LO = sock("tcp", "127.0.0.1", 7001, FIXGW)
V6_LO = sock("tcp", "::1", 7001, FIXGW, v6only=False)
MAPPED_LO = sock("tcp", "::ffff:127.0.0.1", 7001, FIXGW, v6only=False)
MGMT = sock("tcp", "10.10.3.4", 7001, FIXGW)
V6_ADDR = sock("tcp", "2001:db8::5", 7001, FIXGW, v6only=True)

P, F, E = Status.PASS, Status.FAIL, Status.ERROR


@pytest.mark.parametrize(("bind", "expected"), [
    # bind       v4 any v6only dual ?v6 v4 lo v6 lo mapped mgmt  v6 addr
    ("any",      [P,    P,     P,   P,  P,    P,    P,     P,    P]),
    ("loopback", [F,    F,     F,   F,  P,    P,    P,     F,    F]),
    ("0.0.0.0/0", [P,   F,     F,   F,  P,    F,    P,     P,    F]),
    ("::/0",     [F,    P,     F,   E,  F,    P,    F,     F,    P]),
    ("10.10.0.0/16", [F, F,    F,   F,  F,    F,    F,     P,    F]),
    ("127.0.0.1", [F,   F,     F,   F,  P,    F,    P,     F,    F]),
    ("2001:db8::/32", [F, F,   F,   F,  F,    F,    F,     F,    P]),
])
def test_bind_semantics(bind: str, expected: list[Status]) -> None:
    spec = {"allow": [{"port": 7001, "proto": "tcp", "bind": bind}]}
    sockets = [V4_ANY, V6_ONLY, V6_DUAL, V6_UNKNOWN, V4_LO, V6_LO, MAPPED_LO, MGMT, V6_ADDR]
    assert [status(spec, s) for s in sockets] == expected


def test_dual_stack_is_covered_by_any_not_by_both_cidrs() -> None:
    # One entry must cover a socket's whole reach: two family CIDRs side by side do not add up.
    spec = {"allow": [{"port": 7001, "bind": "0.0.0.0/0"}, {"port": 7001, "bind": "::/0"}]}
    assert status(spec, V6_DUAL) is F
    assert status(spec, V6_ONLY) is P and status(spec, V4_ANY) is P
    outcome = judge(spec, table(V6_UNKNOWN))
    assert outcome.status is E
    assert outcome.message == (
        "tcp [::]:7001 (fixgw-main[102]): cannot tell whether allowed: 7001/tcp+udp bind ::/0: "
        "procfs does not tell whether this [::] socket is v6only")


# --- owners -----------------------------------------------------------------------------------


def test_process_name_exe_glob_and_user() -> None:
    fixgw = {"port": 7001, "proto": "tcp", "bind": "any"}
    assert status({"allow": [{**fixgw, "process": "fixgw*"}]}, V4_ANY) is P
    assert status({"allow": [{**fixgw, "process": "FIXGW*"}]}, V4_ANY) is F  # case matters
    assert status({"allow": [{**fixgw, "process": "/opt/fix/bin/*"}]}, V4_ANY) is P
    assert status({"allow": [{**fixgw, "process": "/usr/*"}]}, V4_ANY) is F
    assert status({"allow": [{**fixgw, "user": "fix"}]}, V4_ANY) is P
    assert status({"allow": [{**fixgw, "user": 1001}]}, V4_ANY) is P
    assert status({"allow": [{**fixgw, "user": "1001"}]}, V4_ANY) is P
    assert status({"allow": [{**fixgw, "user": 0}]}, V4_ANY) is F
    assert status({"allow": [{**fixgw, "user": "root"}]}, V4_ANY) is F


def test_every_owner_must_match() -> None:
    shared = sock("tcp", "10.10.0.5", 22, SSHD, ROGUE)
    spec = {"allow": [{"port": 22, "proto": "tcp", "bind": "10.10.0.0/16", "process": "sshd"}]}
    assert status(spec, shared) is P  # both are called sshd ...
    spec["allow"][0]["process"] = "/usr/sbin/sshd"
    assert status(spec, shared) is F  # ... but one is not /usr/sbin/sshd
    spec["allow"][0]["process"] = "sshd"
    spec["allow"][0]["user"] = "root"
    assert status(spec, shared) is F


def test_unseen_owner_is_error_only_where_the_entry_needs_it() -> None:
    unowned = sock("tcp", "0.0.0.0", 7001)
    assert status({"allow": [{"port": 7001}]}, unowned) is P
    outcome = judge({"allow": [{"port": 7001, "process": "fixgw*"}]}, table(unowned))
    assert outcome.status is E
    assert outcome.message == (
        "tcp 0.0.0.0:7001 (owner unknown): cannot tell whether allowed: 7001/tcp+udp bind any "
        "process fixgw*: no visible process holds the socket, so its process/user is unknown")
    # A bind that rules the socket out settles it without knowing the owner.
    assert status({"allow": [{"port": 7001, "bind": "loopback", "process": "x"}]}, unowned) is F


def test_unreadable_exe_or_user_is_error_but_a_known_mismatch_fails() -> None:
    hidden = sock("tcp", "0.0.0.0", 7001, HIDDEN_EXE)
    assert status({"allow": [{"port": 7001, "process": "/opt/fix/bin/*"}]}, hidden) is E
    assert status({"allow": [{"port": 7001, "user": "fix"}]}, hidden) is E
    assert status({"allow": [{"port": 7001, "user": 1001}]}, hidden) is P
    assert status({"allow": [{"port": 7001, "process": "sshd", "user": "fix"}]}, hidden) is F
    both = sock("tcp", "0.0.0.0", 7001, HIDDEN_EXE, SSHD)
    assert status({"allow": [{"port": 7001, "process": "/opt/fix/bin/*"}]}, both) is F


def test_owners_incomplete_makes_owner_entries_error() -> None:
    spec = {"allow": [{"port": 7001, "process": "fixgw*"}]}
    assert status(spec, V4_ANY, complete=False) is E
    assert status({"allow": [{"port": 7001}]}, V4_ANY, complete=False) is P
    assert status({"allow": [{"port": 7001, "process": "sshd"}]}, V4_ANY, complete=False) is F


# --- allow, forbid, deny_unlisted -------------------------------------------------------------


def test_forbid_beats_allow_and_respects_proto() -> None:
    telnet = sock("tcp", "10.10.0.5", 23, SSHD)
    udp23 = sock("udp", "10.10.0.5", 23, SSHD)
    spec = {"allow": [{"port": "1-1024"}], "forbid": [{"port": 23, "proto": "tcp"}]}
    outcome = judge(spec, table(telnet, udp23))
    assert outcome.status is F
    assert [(r["proto"], r["port"], r["reason"]) for r in outcome.evidence.items] == [
        ("tcp", 23, "port 23/tcp is forbidden (forbid 23/tcp)")]


def test_deny_unlisted() -> None:
    stray = sock("udp", "127.0.0.1", 8125, SSHD)
    sshd_wrong_bind = sock("tcp", "0.0.0.0", 22, SSHD)
    allow = [{"port": 22, "proto": "tcp", "bind": "10.10.0.0/16", "process": "sshd"}]
    assert status({"allow": allow}, stray) is F
    assert judge({"allow": allow}, table(stray)).evidence.items[0]["reason"] == \
        "no allow entry for 8125/udp"
    # deny_unlisted false: ports no entry names are not judged; named ports still are.
    assert status({"allow": allow, "deny_unlisted": False}, stray) is P
    outcome = judge({"allow": allow, "deny_unlisted": False}, table(stray, sshd_wrong_bind))
    assert outcome.status is F
    assert outcome.evidence.items[0]["reason"] == (
        "22/tcp is allowed only as 22/tcp bind 10.10.0.0/16 process sshd")


def test_no_listeners_at_all() -> None:
    assert judge({"allow": []}, table()).status is P
    outcome = judge({"allow": []}, table(V4_ANY))
    assert outcome.status is F
    assert outcome.evidence.expected == "in the host network namespace: listeners only as " \
                                        "allowed (nothing)"


# --- namespaces and errors --------------------------------------------------------------------


def test_namespaces_host_ignores_other_namespaces() -> None:
    container = sock("tcp", "0.0.0.0", 23, netns=CONT)
    spec: dict[str, Any] = {"forbid": [23]}
    assert judge(spec, table(container)).status is P
    spec["namespaces"] = "all"
    outcome = judge(spec, table(container))
    assert outcome.status is F
    assert outcome.evidence.items[0]["netns"] == CONT


def test_namespace_errors() -> None:
    errors: dict[int | None, str] = {CONT: "setns: Operation not permitted"}
    assert judge({"forbid": [23]}, table(V4_ANY, errors=errors)).status is P  # host mode
    outcome = judge({"forbid": [23], "namespaces": "all"}, table(V4_ANY, errors=errors))
    assert (outcome.status, outcome.message) == (
        E, f"net:[{CONT}]: setns: Operation not permitted")
    host_error: dict[int | None, str] = {HOST: "proc/net/tcp: Permission denied"}
    outcome = judge({"forbid": [23]}, table(errors=host_error))
    assert (outcome.status, outcome.message) == (
        E, "host network namespace: proc/net/tcp: Permission denied")
    outcome = judge({"forbid": [23], "namespaces": "all"}, table(unknown_netns=(1, 4040)))
    assert (outcome.status, outcome.message) == (
        E, "the network namespace of 2 process(es) could not be read (pids 1, 4040)")


def test_failure_dominates_errors() -> None:
    telnet = sock("tcp", "0.0.0.0", 23)
    unowned = sock("tcp", "0.0.0.0", 7001)
    spec = {"allow": [{"port": 7001, "process": "fixgw*"}], "forbid": [23],
            "namespaces": "all"}
    outcome = judge(spec, table(telnet, unowned, unknown_netns=(1,)))
    assert outcome.status is F
    assert outcome.message == ("1 listener(s) not allowed: tcp 0.0.0.0:23 (owner unknown); "
                               "1 cannot be judged; the network "
                               "namespace of 1 process(es) could not be read (pids 1)")


def test_snapshot_without_listeners_is_error() -> None:
    assert judge({"forbid": [23]}, None).status is E
    outcome = judge({"forbid": [23]}, ReadError("sock_diag: Permission denied"))
    assert (outcome.status, outcome.message) == (
        E, "cannot read listening sockets: sock_diag: Permission denied")


def test_evidence_names_every_offending_socket_and_owner() -> None:
    shared = sock("tcp", "0.0.0.0", 2222, SSHD, ROGUE, inode=5001)
    dual = sock("udp", "::", 5353, FIXGW, v6only=False, inode=5002)
    unowned = sock("tcp", "127.0.0.1", 23, inode=5003)
    fine = sock("tcp", "10.10.0.5", 22, SSHD, inode=5004)
    spec = {"allow": [{"port": 22, "proto": "tcp", "bind": "10.10.0.0/16"}], "forbid": [23]}
    outcome = judge(spec, table(shared, dual, unowned, fine))
    assert outcome.status is F
    common = {"verdict": "fail", "netns": HOST}
    assert outcome.evidence.items == (
        {**common, "reason": "no allow entry for 2222/tcp", "proto": "tcp", "bind": "0.0.0.0",
         "port": 2222, "families": "ipv4", "inode": 5001, "pid": 100, "name": "sshd",
         "exe": "/usr/sbin/sshd", "user": "root"},
        {**common, "reason": "no allow entry for 2222/tcp", "proto": "tcp", "bind": "0.0.0.0",
         "port": 2222, "families": "ipv4", "inode": 5001, "pid": 666, "name": "sshd",
         "exe": "/tmp/sshd", "user": "mallory"},
        {**common, "reason": "no allow entry for 5353/udp", "proto": "udp", "bind": "::",
         "port": 5353, "families": "ipv4+ipv6", "inode": 5002, "pid": 102,
         "name": "fixgw-main", "exe": "/opt/fix/bin/fixgw-main", "user": "fix"},
        {**common, "reason": "port 23/tcp is forbidden (forbid 23/tcp+udp)", "proto": "tcp",
         "bind": "127.0.0.1", "port": 23,
         "families": "ipv4", "inode": 5003, "pid": None, "name": None, "exe": None,
         "user": None},
    )
    assert outcome.message == (
        "3 listener(s) not allowed: tcp 0.0.0.0:2222 (sshd[100], sshd[666]), udp *:5353 "
        "(fixgw-main[102]), tcp 127.0.0.1:23 (owner unknown)")
    assert outcome.evidence.actual == (
        "4 listeners; 3 not allowed: tcp 0.0.0.0:2222 (sshd[100], sshd[666]), udp *:5353 "
        "(fixgw-main[102]), tcp 127.0.0.1:23 (owner unknown)")


# --- the agent's own listener -------------------------------------------------------------------

AGENT = Owner(4242, "hostguard", "/usr/bin/python3.11", 0, "root", HOST)
METRICS = OwnListener(4242, "127.0.0.1", 9420, "metrics_listen 127.0.0.1:9420")
SHIPPED_PORT_001 = {"allow": [{"port": 22, "proto": "tcp", "bind": "10.10.0.0/16",
                               "process": "sshd", "user": "root"}], "deny_unlisted": True}


def judge_own(raw: dict[str, Any], *listeners: Listener) -> Outcome:
    return KIND.evaluate(KIND.parse(raw), Snapshot(root="/x", facts=FACTS, listeners=table(
        *listeners), own_listeners=(METRICS,)))


def test_the_agents_own_listener_passes_and_is_shown() -> None:
    outcome = judge_own(SHIPPED_PORT_001, sock("tcp", "10.10.0.5", 22, SSHD),
                        sock("tcp", "127.0.0.1", 9420, AGENT, inode=77))
    assert outcome.status is Status.PASS
    assert outcome.message == ("2 listener(s), all allowed; tolerated as hostguard's own: "
                               "tcp 127.0.0.1:9420 (hostguard[4242])")
    assert outcome.evidence.items == ({
        "verdict": "pass", "reason": "hostguard's own listener (metrics_listen 127.0.0.1:9420, "
        "pid 4242)", "proto": "tcp", "bind": "127.0.0.1", "port": 9420, "families": "ipv4",
        "netns": HOST, "inode": 77, "pid": 4242, "name": "hostguard",
        "exe": "/usr/bin/python3.11", "user": "root"},)


@pytest.mark.parametrize("listener", [
    sock("tcp", "127.0.0.1", 9420, ROGUE),  # another process on the agent's port
    sock("tcp", "127.0.0.1", 9420, AGENT, ROGUE),  # shared with another process
    sock("tcp", "::1", 9420, AGENT),  # not the configured address
    sock("tcp", "127.0.0.1", 9421, AGENT),  # not the configured port
    sock("udp", "127.0.0.1", 9420, AGENT),  # not TCP
    sock("tcp", "127.0.0.1", 9420),  # no visible owner
])
def test_only_the_agents_own_socket_is_tolerated(listener: Listener) -> None:
    outcome = judge_own(SHIPPED_PORT_001, listener)
    assert outcome.status is Status.FAIL
    assert "hostguard's own" not in outcome.message + outcome.evidence.actual


def test_a_forbid_entry_still_fails_the_agents_own_listener() -> None:
    outcome = judge_own({"forbid": [9420], "deny_unlisted": False},
                        sock("tcp", "127.0.0.1", 9420, AGENT))
    assert (outcome.status, outcome.message) == (
        Status.FAIL, "1 listener(s) not allowed: tcp 127.0.0.1:9420 (hostguard[4242])")


def test_the_daemons_metrics_endpoint_does_not_fail_the_shipped_listener_check(
        tmp_path: Path) -> None:
    # A real daemon in a fresh network + pid namespace: its metrics endpoint (the docs'
    # 127.0.0.1:9420) and a foreign listener on [::1]:9420, the same port on another address.
    need_root()
    unshare = need_tool("unshare")
    need_tool("ip")
    ready = tmp_path / "foreign-ready"
    config = tmp_path / "hostguard.yaml"
    config.write_text(json.dumps({
        "apiVersion": "hostguard/v1", "kind": "AgentConfig",
        "policies": [str(PROJECT / "policies" / "listeners.yaml")],
        "labels": {"role": "gateway"}, "metrics_listen": "127.0.0.1:9420",
        "output_dir": str(tmp_path / "out"), "reports": ["json"]}))
    foreign = ("import socket, sys, time\n"
               "s = socket.socket(socket.AF_INET6)\n"
               "s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)\n"
               "s.bind(('::1', 9420)); s.listen()\n"
               "open(sys.argv[1], 'w').write('ready')\n"
               "time.sleep(600)\n")
    daemon = [sys.executable, "-m", "agent", "daemon", "--config", str(config), "--once",
              "--no-placement"]

    def run(script: str) -> tuple[int, dict[str, Any]]:
        done = subprocess.run([unshare, "--net", "--pid", "--fork", "--mount-proc", "sh", "-c",
                               script, "sh", *daemon], capture_output=True, text=True,
                              cwd=PROJECT, timeout=120, check=False)
        [report] = (tmp_path / "out").iterdir()
        data = json.loads(report.read_text())
        report.unlink()
        return done.returncode, {r["id"]: r for r in data["results"]}

    code, results = run('ip link set lo up && exec "$@"')
    assert code == 0, results
    port = results["PORT-001"]
    assert port["status"] == "pass", port
    assert port["message"].startswith("1 listener(s), all allowed; tolerated as hostguard's "
                                      "own: tcp 127.0.0.1:9420 (")
    [row] = port["evidence"]["items"]
    assert (row["verdict"], row["bind"], row["port"]) == ("pass", "127.0.0.1", 9420)
    assert row["reason"] == f"hostguard's own listener (metrics_listen 127.0.0.1:9420, pid " \
                           f"{row['pid']})"
    assert results["PORT-002"]["status"] == "pass"
    # The same port held by another process is judged as any socket.
    code, results = run(f'ip link set lo up && {sys.executable} -c "$0" {ready} & '
                        f'while [ ! -s {ready} ]; do sleep 0.05; done; "$@"'.replace(
                            '"$0"', shlex.quote(foreign)))
    port = results["PORT-001"]
    assert (code, port["status"]) == (1, "fail"), port
    assert [(i["verdict"], i["bind"]) for i in port["evidence"]["items"]] == [
        ("fail", "::1"), ("pass", "127.0.0.1")]


# --- lint and audit through the CLI -------------------------------------------------------------

BAD_POLICY = """\
apiVersion: hostguard/v1
kind: Policy
metadata: {name: bad-ports}
checks:
  - id: BADPORT-1
    kind: ports
    title: t
    severity: low
    rationale: r
    remediation: m
    spec:
      allow:
        - {port: "9000-8000", bind: 10.1.2.3/8}
        - {port: 22, process: "ssh[d"}
      forbid: [70000]
"""


def test_lint_locates_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_POLICY)
    done = run_cli("lint", str(path))
    assert done.returncode == 1
    lines = [line.replace(str(path), "bad.yaml") for line in done.stdout.splitlines()]
    assert [line for line in lines if line.startswith("bad.yaml")] == [
        "bad.yaml:13:18: error: port range '9000-8000' runs backwards (9000 > 8000) [spec]",
        "bad.yaml:13:37: error: bind '10.1.2.3/8' has host bits set; the network is "
        "10.0.0.0/8 [spec]",
        "bad.yaml:14:31: error: invalid process glob 'ssh[d': '[' at position 4 is never "
        "closed [invalid-glob]",
        "bad.yaml:15:16: error: port 70000 is outside 1-65535 [spec]",
    ]
    # An unknown key is reported beside the spec's other problems, in the same pass.
    path.write_text(BAD_POLICY.replace('process: "ssh[d"', "color: red"))
    done = run_cli("lint", str(path))
    lines = [line.replace(str(path), "bad.yaml") for line in done.stdout.splitlines()]
    assert [line for line in lines if line.startswith("bad.yaml")] == [
        "bad.yaml:13:18: error: port range '9000-8000' runs backwards (9000 > 8000) [spec]",
        "bad.yaml:13:37: error: bind '10.1.2.3/8' has host bits set; the network is "
        "10.0.0.0/8 [spec]",
        "bad.yaml:14:22: error: unknown key 'color' [unknown-key]",
        "bad.yaml:15:16: error: port 70000 is outside 1-65535 [spec]",
    ]
    # A value of the wrong shape stops the spec's interpretation: the schema's word is the one.
    path.write_text(BAD_POLICY.replace('process: "ssh[d"', "process: [ssh]"))
    done = run_cli("lint", str(path))
    lines = [line.replace(str(path), "bad.yaml") for line in done.stdout.splitlines()]
    assert [line.split(": error: ")[1] for line in lines if line.startswith("bad.yaml")] == [
        "checks[0].spec.allow[1].process must be a string, not array ['ssh'] [schema]",
    ]


def audit_in_namespace(policy: Path, *labels: str) -> tuple[int, dict[str, Any]]:
    done = run_in_fresh_namespaces(sys.executable, "-m", "agent", "audit", "--policy",
                                   str(policy), "--format", "json", *labels)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


EXACT = """\
apiVersion: hostguard/v1
kind: Policy
metadata: {name: helper-listeners}
checks:
  - id: T-EXACT
    kind: ports
    title: exactly the helper's sockets
    severity: high
    rationale: r
    remediation: m
    spec:
      allow:
        - {port: "7001-7005", bind: any, process: "python*", user: root}
        - {port: 7006, proto: tcp, bind: 0.0.0.0/0, process: "python*", user: nobody}
        - {port: 7007, proto: tcp, bind: any, process: "python*"}
        - {port: 7009, proto: udp, bind: any, user: 0}
        - {port: 7010, proto: tcp, bind: loopback}
        - {port: 7011, proto: tcp, bind: any}
        - {port: "9100-9101", proto: tcp, bind: loopback, process: "python*", user: root}
      deny_unlisted: true
  - id: T-STRICT
    kind: ports
    title: the dual-stack and wildcard sockets are too wide
    severity: high
    rationale: r
    remediation: m
    spec:
      allow:
        - {port: "7001-7011", bind: "::/0"}
        - {port: "7001-7011", bind: 0.0.0.0/0, user: root}
        - {port: "9100-9101", proto: tcp, bind: loopback}
  - id: T-FORBID
    kind: ports
    title: nothing on 7000-7099 in any namespace
    severity: high
    rationale: r
    remediation: m
    spec:
      forbid: ["7000-7099"]
      deny_unlisted: false
      namespaces: all
"""


def test_audit_inside_a_namespace_end_to_end(tmp_path: Path) -> None:
    policy = tmp_path / "helper.yaml"
    policy.write_text(EXACT)
    code, report = audit_in_namespace(policy)
    results = {r["id"]: r for r in report["results"]}
    assert code == 1
    assert results["T-EXACT"]["status"] == "pass", results["T-EXACT"]
    assert results["T-EXACT"]["message"] == "12 listener(s), all allowed"
    strict = results["T-STRICT"]
    assert strict["status"] == "fail"
    # 7003 and 7009 are dual-stack (neither CIDR covers them), 7006 runs as nobody and 7007 is
    # also held by the nobody child; 7010 (::ffff:127.0.0.1) is IPv4 and so inside 0.0.0.0/0.
    assert sorted({(i["proto"], i["port"]) for i in strict["evidence"]["items"]}) == [
        ("tcp", 7003), ("tcp", 7006), ("tcp", 7007), ("udp", 7009)]
    forbid = results["T-FORBID"]
    assert forbid["status"] == "fail"
    assert len({i["inode"] for i in forbid["evidence"]["items"]}) == 10
    nobody = [i for i in forbid["evidence"]["items"] if i["port"] == 7006]
    assert [(i["user"], i["bind"], i["proto"]) for i in nobody] == [("nobody", "0.0.0.0", "tcp")]


def test_shipped_listeners_policy_in_a_namespace() -> None:
    code, report = audit_in_namespace(PROJECT / "policies" / "listeners.yaml",
                                      "--label", "role=gateway")
    results = {r["id"]: r for r in report["results"]}
    assert code == 1
    assert results["PORT-001"]["status"] == "fail"
    # sshd/node_exporter/fixgw are absent; every helper socket is unlisted or wrongly owned.
    assert len({i["inode"] for i in results["PORT-001"]["evidence"]["items"]}) == 12
    assert results["PORT-002"]["status"] == "pass"
    code, report = audit_in_namespace(PROJECT / "policies" / "listeners.yaml")
    assert code == 5  # not a single check applied: not evaluated
    assert {r["status"] for r in report["results"]} == {"not_applicable"}
