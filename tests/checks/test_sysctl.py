"""``sysctl`` checks: parse, request and evaluate over hand-built snapshots."""

from __future__ import annotations

from typing import Any

import pytest

from agent.checks import KINDS, get
from agent.checks.base import SpecError, SpecProblem
from agent.checks.compare import Condition
from agent.checks.sysctl import SysctlKind
from agent.checks.valuekind import ValueSpec
from agent.host.facts import ReadError
from agent.host.snapshot import SnapshotRequest, Values
from agent.result import Status
from tests.checks.snapshots import snapshot

KIND = SysctlKind()


def verdict(raw: dict[str, Any], values: Values | None) -> tuple[Status, str]:
    spec = KIND.parse(raw)
    snap = snapshot(sysctl={} if values is None else {spec.key: values})
    outcome = KIND.evaluate(spec, snap)
    return outcome.status, outcome.message


def problems(raw: dict[str, Any]) -> list[SpecProblem]:
    with pytest.raises(SpecError) as caught:
        KIND.parse(raw)
    return caught.value.problems


def test_registered_under_its_name() -> None:
    assert isinstance(KINDS["sysctl"], SysctlKind)
    assert get("sysctl") is KINDS["sysctl"]


def test_unknown_kind_fails_loudly() -> None:
    known = ", ".join(sorted(KINDS))
    assert "sysctl" in known
    with pytest.raises(KeyError) as caught:
        get("sysctrl")
    assert caught.value.args == (f"unknown check kind 'sysctrl'; known: {known}",)


def test_parse() -> None:
    assert KIND.parse({"key": "kernel.kptr_restrict", "op": "ge", "value": 1}) == ValueSpec(
        "kernel.kptr_restrict", Condition("ge", 1), "error"
    )
    assert KIND.parse({"key": "kernel.sysrq", "value": 0, "missing": "not_applicable"}) == (
        ValueSpec("kernel.sysrq", Condition("eq", 0), "not_applicable")
    )


def test_request_names_the_key_as_written() -> None:
    for key in ("kernel.kptr_restrict", "net.ipv4.conf.*.rp_filter",
                "net/ipv4/conf/eth0.100/rp_filter"):
        spec = KIND.parse({"key": key, "value": 1})
        assert KIND.request(spec) == SnapshotRequest(sysctl=frozenset({key}))


def test_evaluate_reads_what_request_asked_for() -> None:
    spec = KIND.parse({"key": "kernel.kptr_restrict", "op": "ge", "value": 1})
    (key,) = KIND.request(spec).sysctl
    snap = snapshot(sysctl={key: {"kernel.kptr_restrict": "2"}})
    assert KIND.evaluate(spec, snap).status is Status.PASS


def test_a_key_not_in_the_snapshot_is_error() -> None:
    spec = KIND.parse({"key": "kernel.kptr_restrict", "value": 1})
    outcome = KIND.evaluate(spec, snapshot(sysctl={"kernel.dmesg_restrict": {}}))
    assert (outcome.status, outcome.message) == (Status.ERROR, "kernel.kptr_restrict was not read")


@pytest.mark.parametrize(
    ("op", "value", "actual", "status", "message"),
    [
        ("eq", 2, "2", Status.PASS, "k.x == 2 holds"),
        ("eq", 2, "1", Status.FAIL, "expected k.x == 2, found k.x = 1"),
        ("eq", "1", "1", Status.PASS, "k.x == 1 holds"),
        ("eq", 1, "1", Status.PASS, "k.x == 1 holds"),
        ("eq", "4 4 1 7", "4\t4\t1\t7", Status.PASS, "k.x == 4 4 1 7 holds"),
        ("eq", "4 4 1 7", "7\t4\t1\t7", Status.FAIL,
         "expected k.x == 4 4 1 7, found k.x = 7 4 1 7"),
        ("ne", 0, "1", Status.PASS, "k.x != 0 holds"),
        ("ne", 0, "0", Status.FAIL, "expected k.x != 0, found k.x = 0"),
        ("ge", 1, "2", Status.PASS, "k.x >= 1 holds"),
        ("ge", 1, "0", Status.FAIL, "expected k.x >= 1, found k.x = 0"),
        ("le", 10, "10", Status.PASS, "k.x <= 10 holds"),
        ("le", 10, "60", Status.FAIL, "expected k.x <= 10, found k.x = 60"),
        ("in", [1, 2], "1", Status.PASS, "k.x in [1, 2] holds"),
        ("in", [1, 2], "0", Status.FAIL, "expected k.x in [1, 2], found k.x = 0"),
        ("regex", r"\|/usr/.*", "|/usr/lib/systemd/systemd-coredump %P", Status.PASS,
         r"k.x matches \|/usr/.* holds"),
        ("regex", r"\|/usr/.*", "core", Status.FAIL,
         r"expected k.x matches \|/usr/.*, found k.x = core"),
        ("ge", 1, "yes", Status.ERROR, "cannot evaluate: k.x: value 'yes' is not an integer"),
    ],
)
def test_every_op(op: str, value: Any, actual: str, status: Status, message: str) -> None:
    assert verdict({"key": "k.x", "op": op, "value": value}, {"k.x": actual}) == (status, message)


def test_glob_every_match_must_satisfy() -> None:
    raw = {"key": "net.ipv4.conf.*.rp_filter", "op": "in", "value": [1, 2]}
    good: Values = {"net.ipv4.conf.all.rp_filter": "1", "net.ipv4.conf.default.rp_filter": "1",
                    "net/ipv4/conf/eth0.100/rp_filter": "2"}
    assert verdict(raw, good)[0] is Status.PASS
    bad = {**good, "net.ipv4.conf.lo.rp_filter": "0"}
    assert verdict(raw, bad) == (
        Status.FAIL,
        "expected net.ipv4.conf.*.rp_filter in [1, 2], found net.ipv4.conf.lo.rp_filter = 0",
    )


def test_read_error_among_matches_is_error_and_fail_dominates() -> None:
    raw = {"key": "net.ipv4.conf.*.rp_filter", "value": 1}
    denied = ReadError("permission denied: /proc/sys/net/ipv4/conf/lo/rp_filter")
    values: Values = {"net.ipv4.conf.all.rp_filter": "1", "net.ipv4.conf.lo.rp_filter": denied}
    assert verdict(raw, values) == (
        Status.ERROR,
        "cannot evaluate: net.ipv4.conf.lo.rp_filter: permission denied: "
        "/proc/sys/net/ipv4/conf/lo/rp_filter",
    )
    failing = {**values, "net.ipv4.conf.eth0.rp_filter": "0"}
    assert verdict(raw, failing) == (
        Status.FAIL,
        "expected net.ipv4.conf.*.rp_filter == 1, found net.ipv4.conf.eth0.rp_filter = 0",
    )


@pytest.mark.parametrize(
    ("missing", "status"),
    [(None, Status.ERROR), ("error", Status.ERROR), ("not_applicable", Status.NOT_APPLICABLE),
     ("fail", Status.FAIL)],
)
def test_missing_key(missing: str | None, status: Status) -> None:
    raw: dict[str, Any] = {"key": "kernel.sysrq", "value": 0}
    if missing is not None:
        raw["missing"] = missing
    assert verdict(raw, {}) == (status, "kernel.sysrq does not exist on this host")


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("../etc", "invalid sysctl key '../etc': path component '..' is not allowed"),
        ("/abs", "invalid sysctl key '/abs': path must be relative (no leading '/')"),
        ("/proc/sys/kernel/sysrq",
         "invalid sysctl key '/proc/sys/kernel/sysrq': path must be relative (no leading '/')"),
        ("a..b", "invalid sysctl key 'a..b': path component '' is not allowed"),
        ("kernel.", "invalid sysctl key 'kernel.': path component '' is not allowed"),
        ("net/ipv4//ip_forward",
         "invalid sysctl key 'net/ipv4//ip_forward': path component '' is not allowed"),
        ("net.ipv4.conf.eth[0.rp_filter",
         "invalid sysctl key 'net.ipv4.conf.eth[0.rp_filter': '[' at position 18 is never closed"),
        ("kernel.core pattern", "invalid sysctl key 'kernel.core pattern': path component "
         "'core pattern' has characters a kernel file name does not use"),
    ],
)
def test_bad_keys(key: str, message: str) -> None:
    assert problems({"key": key, "value": 1}) == [SpecProblem(("key",), message, "invalid-glob")]


def test_key_and_value_problems_are_all_reported_key_first() -> None:
    found = problems({"key": "a..b", "op": "ge", "value": "high"})
    assert [(p.path, p.rule) for p in found] == [(("key",), "invalid-glob"), (("value",), "spec")]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"key": "k.x", "op": "ge", "value": "one"},
         SpecProblem(("value",), "op 'ge' needs an integer value")),
        ({"key": "k.x", "op": "le", "value": "0x10"},
         SpecProblem(("value",), "op 'le' needs an integer value")),
        ({"key": "k.x", "op": "in", "value": 1},
         SpecProblem(("value",), "op 'in' takes a list of values")),
    ],
)
def test_value_problems(raw: dict[str, Any], problem: SpecProblem) -> None:
    assert problems(raw) == [problem]


def test_bad_regex() -> None:
    (problem,) = problems({"key": "k.x", "op": "regex", "value": "[0-9"})
    assert (problem.path, problem.rule) == (("value",), "invalid-regex")
    assert problem.message.startswith("invalid regex '[0-9': unterminated character set")


def test_slashed_keys_and_globs_are_accepted() -> None:
    for key in ("net/ipv4/conf/eth0.100/rp_filter", "net.ipv4.conf.*.rp_filter",
                "net.ipv6.conf.eth?.accept_ra", "kernel.yama.ptrace_scope"):
        assert KIND.parse({"key": key, "value": 1}).key == key
