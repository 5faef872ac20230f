"""The snapshot reads only what the checks ask for, and that changes no verdict.

Each check is evaluated twice: on a snapshot read with exactly its own request (so a field it
looks at without asking for it raises, and the check ends in ``error``), and on a snapshot
holding everything (every process field, the sockets, listeners and cgroups). The outcomes
must be equal, rows and messages included.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from agent import audit
from agent.checks import KINDS
from agent.host.snapshot import SnapshotRequest, take
from agent.policy.resolve import resolve
from agent.result import Status
from tests.authoring import check, policy, write
from tests.host.test_sockets import HOST_NS, add_process, gateway_host
from tests.support import FIXTURES

EVERYTHING = SnapshotRequest(processes=True, process_sockets=True, listeners=True, cgroups=True,
                             cmdline=True)
V1 = FIXTURES / "hosts" / "cgroup-v1-trading"
V2 = FIXTURES / "hosts" / "cgroup-v2-trading"
TODAY = dt.date(2026, 6, 1)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sockets tests' gateway host (sshd, node_exporter, fixgw, chronyd, a container with
    redis) and a socketless sleep."""
    root = gateway_host(tmp_path_factory.mktemp("gateway"))
    add_process(root, 400, "sleep", "/usr/bin/sleep", 1000, HOST_NS, ())
    return root


GATEWAY_CHECKS: list[tuple[str, dict[str, Any]]] = [
    ("ports", {"allow": [{"port": 22, "proto": "tcp", "process": "sshd", "user": "root"},
                         {"port": 9100, "bind": "loopback", "user": 998},
                         {"port": "7001-7010", "process": "/opt/fix/bin/*"},
                         {"port": 123, "proto": "udp", "user": "chrony"}],
               "namespaces": "all"}),
    ("ports", {"forbid": [23, 6379]}),
    ("ports", {"allow": [{"port": 22, "bind": "10.10.0.0/16"}], "deny_unlisted": False}),
    ("process", {"name": "sshd", "required": True, "not_root": True}),
    ("process", {"name": "*", "count": {"min": 1, "max": 3}}),
    ("process", {"cmdline": "redis", "forbidden": True}),
    ("process", {"exe": "/usr/*", "user": "prometheus", "required": True,
                 "no_new_privs": True}),
    ("process", {"user": 0, "capabilities": {"effective": {"must_not_have": ["sys_admin"]}}}),
]

CGROUP_CHECKS: list[tuple[str, dict[str, Any]]] = [
    ("cgroup", {"unit": "fixgw.service",
                "limits": {"memory.max": {"op": "le", "value": "8G"}, "memory.swap.max": 0,
                           "pids.max": {"op": "set"}, "cpu.max": "max",
                           "cpuset.cpus": {"op": "subset_of", "value": "2-5"},
                           "cpu.weight": 100},
                "max_throttled": 0, "max_oom_kills": 0,
                "isolation": {"cpus_isolated": True, "nohz_full": True, "exclusive": True}}),
    ("cgroup", {"unit": "mdfeed.service", "isolation": {"cpus_isolated": True,
                                                        "exclusive": True}}),
    ("cgroup", {"process": {"name": "gw*", "cmdline": "logger"}, "limits": {"pids.max": 4096}}),
    ("cgroup", {"process": {"exe": "*", "cmdline": "^/opt/"}, "max_oom_kills": 0}),
    ("cgroup", {"process": {"name": "fixgw"}, "limits": {"memory.max": "8G"}}),
    ("cgroup", {"unit": "ssh", "limits": {"memory.max": "max"}}),
    ("process", {"name": "fixgw", "required": True, "cpus": {"subset_of": "2-5"},
                 "sched": {"policy": "fifo", "priority": {"ge": 50}}}),
    ("process", {"cmdline": "--venue", "seccomp": {"mode": "filter"}, "no_new_privs": True}),
]


def assert_own_request_suffices(root: Path, kind_name: str, raw: dict[str, Any]) -> None:
    """The check's verdict from a snapshot of exactly its request equals the one from all."""
    kind = KINDS[kind_name]
    spec = kind.parse(raw)
    own = kind.evaluate(spec, take(root, kind.request(spec)))
    whole = kind.evaluate(spec, take(root, EVERYTHING))
    assert "internal error" not in own.message
    assert own == whole


@pytest.mark.parametrize(("kind", "raw"), GATEWAY_CHECKS)
def test_gateway_verdicts_from_what_each_check_asks_for(
        gateway: Path, kind: str, raw: dict[str, Any]) -> None:
    assert_own_request_suffices(gateway, kind, raw)


@pytest.mark.parametrize("root", [V1, V2], ids=["v1", "v2"])
@pytest.mark.parametrize(("kind", "raw"), CGROUP_CHECKS)
def test_cgroup_host_verdicts_from_what_each_check_asks_for(
        root: Path, kind: str, raw: dict[str, Any]) -> None:
    assert_own_request_suffices(root, kind, raw)


def test_a_check_reading_a_field_it_did_not_ask_for_is_an_error(
        gateway: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The audit turns the reader's FieldNotRead into the check's error, never into a pass.
    def forgetful(spec: Any) -> SnapshotRequest:
        return SnapshotRequest(process_fields=frozenset({"exe"}))  # neither cmdline nor uid

    monkeypatch.setattr(KINDS["process"], "request", forgetful)
    path = write(gateway.parent / "forgetful.yaml", policy("forgetful", [
        check("P-1", "process", {"name": "sshd", "required": True})]))
    run = audit.run(resolve([path], TODAY), gateway, today=TODAY)
    (result,) = run.results
    assert result.status is Status.ERROR
    assert result.message.startswith("internal error: FieldNotRead: process field")
