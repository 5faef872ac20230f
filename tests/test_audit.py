"""audit.run: statuses, host selection, waivers, exit codes, one snapshot, digests, JSON."""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
import re
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from agent import __version__, audit
from agent.checks import KINDS
from agent.checks.valuekind import ValueSpec
from agent.host import procfs
from agent.host import snapshot as snapshot_module
from agent.host.snapshot import Snapshot, SnapshotRequest
from agent.policy.resolve import PolicySet, resolve
from agent.report import json as json_report
from agent.result import AuditRun, Outcome, Result, Status
from tests.authoring import TRADING_ROOT, check, policy, sysctl, write
from tests.support import PROJECT, need

TODAY = dt.date(2026, 6, 1)
BASELINE = PROJECT / "policies" / "trading-baseline.yaml"


def load(*paths: Path, today: dt.date = TODAY) -> PolicySet:
    policy_set = resolve(list(paths), today)
    assert policy_set.diagnostics == [], [str(d) for d in policy_set.diagnostics]
    return policy_set


def audit_of(*paths: Path, root: Path = TRADING_ROOT, labels: Mapping[str, str] | None = None,
             today: dt.date = TODAY) -> AuditRun:
    return audit.run(load(*paths), root, labels, today)


def by_id(run: AuditRun) -> dict[str, Result]:
    return {r.check.id: r for r in run.results}


def table(run: AuditRun) -> list[tuple[str, Status, str]]:
    return [(r.check.id, r.status, r.message) for r in run.results]


def waiver(check_id: str, expires: str = "2026-12-31", hosts: Sequence[str] = (),
           reason: str = "CHG-1 vendor NIC driver") -> dict[str, Any]:
    entry: dict[str, Any] = {"check": check_id, "reason": reason, "expires": expires}
    if hosts:
        entry["hosts"] = list(hosts)
    return entry


# --- statuses ----------------------------------------------------------------------------------


def test_every_status(tmp_path: Path) -> None:
    main = write(tmp_path / "main.yaml", policy("main", [
        sysctl("KRN-001", "kernel.kptr_restrict", "ge", 1),
        sysctl("LAT-001", "vm.swappiness", "eq", 10),
        sysctl("KRN-002", "kernel.sysrq", "eq", 0),
        sysctl("KRN-003", "kernel.unprivileged_bpf_disabled", "eq", 1, missing="not_applicable"),
        sysctl("KRN-004", "kernel.dmesg_restrict", "eq", 0),
    ], waivers=[waiver("KRN-004")]))
    staging = write(tmp_path / "staging.yaml", policy(
        "staging", [sysctl("STG-001", "kernel.kptr_restrict", "eq", 0)],
        hosts={"hostnames": ["stg-*"]},
    ))
    run = audit_of(main, staging)
    assert table(run) == [
        ("KRN-001", Status.PASS, "kernel.kptr_restrict >= 1 holds"),
        ("LAT-001", Status.FAIL, "expected vm.swappiness == 10, found vm.swappiness = 1"),
        ("KRN-002", Status.ERROR, "kernel.sysrq does not exist on this host"),
        ("KRN-003", Status.NOT_APPLICABLE,
         "kernel.unprivileged_bpf_disabled does not exist on this host"),
        ("KRN-004", Status.WAIVED, "waived until 2026-12-31: CHG-1 vendor NIC driver"),
        ("STG-001", Status.NOT_APPLICABLE,
         f"policy 'staging' ({staging}:8:3) does not select host 'trd-gw-01': hostname "
         "'trd-gw-01' matches none of stg-*"),
    ]
    assert run.counts == {"pass": 1, "fail": 1, "error": 1, "waived": 1, "not_applicable": 2}
    waived = by_id(run)["KRN-004"]
    assert waived.waived_status is Status.FAIL
    assert waived.waiver is not None and waived.waiver.reason == "CHG-1 vendor NIC driver"
    assert waived.evidence.actual == "kernel.dmesg_restrict = 1"  # the real verdict is kept
    assert run.host.hostname == "trd-gw-01"
    assert run.root == str(TRADING_ROOT)
    assert run.tool_version == __version__


def test_every_kind_against_the_fixture_host(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", policy("kinds", [
        check("THP-1", "sysfs", {"path": "kernel/mm/transparent_hugepage/enabled",
                                 "value": "never"}),
        check("GOV-1", "sysfs", {"path": "devices/system/cpu/cpu*/cpufreq/scaling_governor",
                                 "value": "performance"}),
        check("BOOT-1", "kernel_cmdline", {"present": ["nohz_full", "isolcpus"],
                                           "absent": ["nokaslr"]}),
        check("BOOT-2", "kernel_cmdline", {"values": {"mitigations": {"op": "ne",
                                                                      "value": "off"}}}),
        sysctl("NET-1", "net.ipv4.conf.*.rp_filter", "in", [1, 2]),
        sysctl("NET-2", "net/ipv4/conf/eth0.100/rp_filter", "eq", 2),
        sysctl("LOG-1", "kernel.printk", "eq", "4 4 1 7"),
    ]))
    assert table(audit_of(path)) == [
        ("THP-1", Status.PASS, "kernel/mm/transparent_hugepage/enabled == never holds"),
        ("GOV-1", Status.FAIL, "expected devices/system/cpu/cpu*/cpufreq/scaling_governor == "
         "performance, found devices/system/cpu/cpu2/cpufreq/scaling_governor = powersave"),
        ("BOOT-1", Status.PASS, "kernel command line satisfies nohz_full present, isolcpus "
         "present, nokaslr absent"),
        ("BOOT-2", Status.FAIL, "expected mitigations != off, found mitigations=off"),
        ("NET-1", Status.FAIL, "expected net.ipv4.conf.*.rp_filter in [1, 2], found "
         "net.ipv4.conf.lo.rp_filter = 0"),
        ("NET-2", Status.PASS, "net/ipv4/conf/eth0.100/rp_filter == 2 holds"),
        ("LOG-1", Status.PASS, "kernel.printk == 4 4 1 7 holds"),
    ]


# --- host selection ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hosts", "labels", "applies"),
    [
        ({"hostnames": ["trd-*"]}, {}, True),
        ({"hostnames": ["trd-gw-0[0-9]"]}, {}, True),
        ({"hostnames": ["stg-*", "trd-gw-01"]}, {}, True),
        ({"hostnames": ["stg-*"]}, {}, False),
        ({"hostnames": ["TRD-*"]}, {}, False),  # hostname globs are case-sensitive
        ({"labels": {"role": "gateway"}}, {"role": "gateway"}, True),
        ({"labels": {"role": "gateway"}}, {"role": "gateway", "site": "ld4"}, True),
        ({"labels": {"role": "gateway"}}, {"role": "md"}, False),
        ({"labels": {"role": "gateway"}}, {}, False),
        ({"labels": {"role": "gateway", "site": "ld4"}}, {"role": "gateway"}, False),
        ({"hostnames": ["trd-*"], "labels": {"role": "gateway"}}, {"role": "gateway"}, True),
        ({"hostnames": ["stg-*"], "labels": {"role": "gateway"}}, {"role": "gateway"}, False),
        ({"hostnames": ["trd-*"], "labels": {"role": "gateway"}}, {}, False),
    ],
)
def test_host_selector(
    tmp_path: Path, hosts: dict[str, Any], labels: dict[str, str], applies: bool
) -> None:
    path = write(tmp_path / "p.yaml", policy(
        "gw", [sysctl("KRN-001", "kernel.kptr_restrict", "eq", 2)], hosts=hosts))
    (result,) = audit_of(path, labels=labels).results
    if applies:
        assert (result.status, result.message) == (Status.PASS, "kernel.kptr_restrict == 2 holds")
    else:
        assert result.status is Status.NOT_APPLICABLE
        assert result.message.startswith(
            f"policy 'gw' ({path}:8:3) does not select host 'trd-gw-01': "), result.message


def test_root_selector_gates_inherited_checks(tmp_path: Path) -> None:
    write(tmp_path / "base.yaml", policy("base", [sysctl("KRN-001", "kernel.kptr_restrict",
                                                         "eq", 0)]))
    staging = write(tmp_path / "staging.yaml", policy("staging", extends=["base.yaml"],
                                                      hosts={"hostnames": ["stg-*"]}))
    trading = write(tmp_path / "trading.yaml", policy("trading", extends=["base.yaml"],
                                                      hosts={"hostnames": ["trd-*"]}))
    (only_staging,) = audit_of(staging).results
    assert only_staging.status is Status.NOT_APPLICABLE
    # The same check brought in by a root that does select the host applies.
    (both,) = audit_of(staging, trading).results
    assert (both.status, both.message) == (
        Status.FAIL, "expected kernel.kptr_restrict == 0, found kernel.kptr_restrict = 2")


def test_not_applicable_names_the_selector_that_decided(tmp_path: Path) -> None:
    # A site policy extends the shipped baseline (which selects every host) for gateways only:
    # the site policy's selector excluded the host, not the baseline.
    site = tmp_path / "site.yaml"
    site.write_text(f"""apiVersion: hostguard/v1
kind: Policy
metadata:
  name: site-gateways
extends:
  - {os.path.relpath(BASELINE, tmp_path)}
hosts:
  labels: {{role: gateway}}
""", encoding="utf-8")
    run = audit_of(site, labels={"role": "md"})
    assert run.results and run.not_evaluated and audit.exit_code(run) == 5
    assert {r.message for r in run.results} == {
        f"policy 'site-gateways' ({site}:7:1) does not select host 'trd-gw-01': it needs label "
        "role=gateway, the host has role=md"}
    assert {r.check.policy for r in run.results} == {"trading-baseline"}
    # The defining policy's own selector, when it is the one that excludes, is named instead.
    own = write(tmp_path / "own.yaml", policy(
        "own", [sysctl("KRN-001", "kernel.kptr_restrict", "eq", 2)],
        hosts={"hostnames": ["stg-*", "dev-*"]}))
    (result,) = audit_of(own).results
    assert result.message == (f"policy 'own' ({own}:8:3) does not select host 'trd-gw-01': "
                              "hostname 'trd-gw-01' matches none of stg-*, dev-*")


# --- waivers -----------------------------------------------------------------------------------


def test_waiver_covers_fail_and_error_only(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", policy("w", [
        sysctl("OK-1", "kernel.kptr_restrict", "eq", 2),
        sysctl("FAIL-1", "kernel.kptr_restrict", "eq", 0),
        sysctl("ERR-1", "kernel.sysrq", "eq", 0),
        sysctl("NA-1", "kernel.sysrq", "eq", 0, missing="not_applicable"),
    ], waivers=[waiver(c) for c in ("OK-1", "FAIL-1", "ERR-1", "NA-1")]))
    results = by_id(audit_of(path))
    assert (results["OK-1"].status, results["OK-1"].message) == (
        Status.PASS, "kernel.kptr_restrict == 2 holds")
    assert results["OK-1"].waiver is None and results["OK-1"].waived_status is None
    assert results["NA-1"].status is Status.NOT_APPLICABLE and results["NA-1"].waiver is None
    assert results["FAIL-1"].status is Status.WAIVED
    assert results["FAIL-1"].waived_status is Status.FAIL
    assert results["ERR-1"].status is Status.WAIVED
    assert results["ERR-1"].waived_status is Status.ERROR


def test_expired_waiver_is_not_applied_and_is_mentioned(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", policy(
        "w", [sysctl("FAIL-1", "vm.swappiness", "eq", 10)],
        waivers=[waiver("FAIL-1", expires="2026-06-30")]))
    policy_set = load(path)  # valid when loaded ...
    on_expiry_day = audit.run(policy_set, TRADING_ROOT, today=dt.date(2026, 6, 30))
    assert on_expiry_day.results[0].status is Status.WAIVED  # the expiry day is still covered
    day_after = audit.run(policy_set, TRADING_ROOT, today=dt.date(2026, 7, 1))  # ... not now
    (result,) = day_after.results
    assert (result.status, result.message) == (
        Status.FAIL, "expected vm.swappiness == 10, found vm.swappiness = 1 "
        "(waiver expired on 2026-06-30)")
    assert result.waiver is None
    assert audit.exit_code(day_after) == 1


@pytest.mark.parametrize(
    ("hosts", "waived"),
    [((), True), (("trd-*",), True), (("stg-*", "trd-gw-0?"), True), (("stg-*",), False),
     (("trd-gw-1*",), False)],
)
def test_waiver_hosts_glob(tmp_path: Path, hosts: tuple[str, ...], waived: bool) -> None:
    path = write(tmp_path / "p.yaml", policy(
        "w", [sysctl("FAIL-1", "vm.swappiness", "eq", 10)],
        waivers=[waiver("FAIL-1", hosts=hosts)]))
    (result,) = audit_of(path).results
    if waived:
        assert result.status is Status.WAIVED
    else:
        assert (result.status, result.message) == (
            Status.FAIL, "expected vm.swappiness == 10, found vm.swappiness = 1")


def test_expired_waiver_for_other_hosts_is_not_mentioned(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", policy(
        "w", [sysctl("FAIL-1", "vm.swappiness", "eq", 10)],
        waivers=[waiver("FAIL-1", expires="2026-06-30", hosts=["stg-*"])]))
    (result,) = audit.run(load(path), TRADING_ROOT, today=dt.date(2026, 7, 1)).results
    assert result.message == "expected vm.swappiness == 10, found vm.swappiness = 1"


@pytest.mark.parametrize(
    ("labels", "status"),
    [({"env": "staging"}, Status.WAIVED), ({}, Status.FAIL), ({"env": "prod"}, Status.FAIL)],
)
def test_waiver_stays_within_the_hosts_of_its_policy(
    tmp_path: Path, labels: dict[str, str], status: Status
) -> None:
    # staging.yaml waives LAT-001 for the hosts it selects; trading.yaml brings the same check
    # to every host. Audited together, the staging waiver must not cover other hosts.
    write(tmp_path / "base.yaml", policy("base", [sysctl("LAT-001", "vm.swappiness", "eq", 10)]))
    staging = write(tmp_path / "staging.yaml", policy(
        "staging", extends=["base.yaml"], hosts={"labels": {"env": "staging"}},
        waivers=[waiver("LAT-001", reason="staging only")]))
    trading = write(tmp_path / "trading.yaml", policy("trading", extends=["base.yaml"]))
    (result,) = audit_of(staging, trading, labels=labels).results
    assert result.status is status
    if status is Status.FAIL:
        assert result.message == "expected vm.swappiness == 10, found vm.swappiness = 1"


def test_waiver_in_an_extending_policy(tmp_path: Path) -> None:
    write(tmp_path / "base.yaml", policy("base", [sysctl("LAT-001", "vm.swappiness", "eq", 10)]))
    site = write(tmp_path / "site.yaml", policy(
        "site", extends=["base.yaml"], waivers=[waiver("LAT-001", hosts=["trd-*"])]))
    (result,) = audit_of(site).results
    assert result.status is Status.WAIVED
    assert result.check.policy == "base"


# --- exit codes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("checks", "code"),
    [
        ([sysctl("A", "kernel.kptr_restrict", "eq", 2)], 0),
        ([sysctl("A", "kernel.kptr_restrict", "eq", 2),
          sysctl("B", "kernel.sysrq", "eq", 0, missing="not_applicable")], 0),
        ([sysctl("A", "kernel.kptr_restrict", "eq", 0)], 1),
        ([sysctl("A", "kernel.kptr_restrict", "eq", 0), sysctl("B", "kernel.sysrq", "eq", 0)], 1),
        ([sysctl("A", "kernel.kptr_restrict", "eq", 2), sysctl("B", "kernel.sysrq", "eq", 0)], 3),
        ([], 0),
    ],
)
def test_exit_code(tmp_path: Path, checks: list[dict[str, Any]], code: int) -> None:
    path = write(tmp_path / "p.yaml", policy("x", checks))
    assert audit.exit_code(audit_of(path)) == code


def test_waived_failures_and_errors_are_compliant(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", policy(
        "x", [sysctl("A", "kernel.kptr_restrict", "eq", 0), sysctl("B", "kernel.sysrq", "eq", 0)],
        waivers=[waiver("A"), waiver("B")]))
    run = audit_of(path)
    assert [r.status for r in run.results] == [Status.WAIVED, Status.WAIVED]
    assert audit.exit_code(run) == 0


# --- isolation and the single snapshot ---------------------------------------------------------


def test_a_kind_that_raises_errors_that_check_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kind = KINDS["sysctl"]
    real = kind.evaluate

    def flaky(spec: ValueSpec, snap: Snapshot) -> Outcome:
        if spec.key == "vm.swappiness":
            raise ZeroDivisionError("division by zero")
        return real(spec, snap)

    monkeypatch.setattr(kind, "evaluate", flaky)
    path = write(tmp_path / "p.yaml", policy("x", [
        sysctl("A", "kernel.kptr_restrict", "eq", 2),
        sysctl("B", "vm.swappiness", "eq", 1),
        sysctl("C", "kernel.dmesg_restrict", "eq", 0),
    ]))
    run = audit_of(path)
    assert table(run) == [
        ("A", Status.PASS, "kernel.kptr_restrict == 2 holds"),
        ("B", Status.ERROR, "internal error: ZeroDivisionError: division by zero"),
        ("C", Status.FAIL, "expected kernel.dmesg_restrict == 0, found kernel.dmesg_restrict = 1"),
    ]
    assert audit.exit_code(run) == 1


def test_the_host_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    takes: list[SnapshotRequest] = []
    real_take = snapshot_module.take

    def counting_take(root: Path, request: SnapshotRequest, cache: Any = None,
                      fd_walk: Any = None) -> Snapshot:
        takes.append(request)
        return real_take(root, request, cache, fd_walk)

    # audit.py imported the name, so both the module attribute and audit's binding are wrapped.
    monkeypatch.setattr(snapshot_module, "take", counting_take)
    monkeypatch.setattr(audit, "take", counting_take)
    reads: list[tuple[str, str]] = []
    for name in ("read_sysctl", "read_sysfs"):
        real_read = getattr(procfs, name)

        def counting_read(root: Path, pattern: str, _name: str = name,
                          _real: Any = real_read) -> Any:
            reads.append((_name, pattern))
            return _real(root, pattern)

        monkeypatch.setattr(procfs, name, counting_read)
    real_cmdline = procfs.read_cmdline

    def counting_cmdline(root: Path) -> Any:
        reads.append(("read_cmdline", ""))
        return real_cmdline(root)

    monkeypatch.setattr(procfs, "read_cmdline", counting_cmdline)

    thp = "kernel/mm/transparent_hugepage/enabled"
    path = write(tmp_path / "p.yaml", policy("x", [
        sysctl("A", "kernel.kptr_restrict", "ge", 1),
        sysctl("B", "kernel.kptr_restrict", "le", 2),
        sysctl("C", "net.ipv4.conf.*.rp_filter", "in", [0, 1, 2]),
        check("D", "sysfs", {"path": thp, "value": "never"}),
        check("E", "sysfs", {"path": thp, "op": "ne", "value": "always"}),
        check("F", "kernel_cmdline", {"present": ["quiet"]}),
        check("G", "kernel_cmdline", {"absent": ["nokaslr"]}),
    ]))
    run = audit_of(path)
    assert [r.status for r in run.results] == [Status.PASS] * 7
    assert takes == [SnapshotRequest(
        sysctl=frozenset({"kernel.kptr_restrict", "net.ipv4.conf.*.rp_filter"}),
        sysfs=frozenset({thp}), cmdline=True)]
    # Host facts are read too (kernel.hostname ...); the checks' own keys must be read once each.
    wanted = {"kernel.kptr_restrict", "net.ipv4.conf.*.rp_filter", thp, ""}
    checked = [r for r in reads if r[1] in wanted]
    assert sorted(checked) == [("read_cmdline", ""), ("read_sysctl", "kernel.kptr_restrict"),
                               ("read_sysctl", "net.ipv4.conf.*.rp_filter"),
                               ("read_sysfs", thp)]


def test_no_cmdline_read_when_no_check_needs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(root: Path) -> Any:
        raise AssertionError("read_cmdline called")

    monkeypatch.setattr(procfs, "read_cmdline", refuse)
    path = write(tmp_path / "p.yaml", policy("x", [sysctl("A", "kernel.kptr_restrict", "eq", 2)]))
    assert audit_of(path).results[0].status is Status.PASS


# --- digest and JSON ---------------------------------------------------------------------------


def test_policy_digest(tmp_path: Path) -> None:
    base = write(tmp_path / "base.yaml", policy("base", [sysctl("A", "kernel.kptr_restrict",
                                                                "eq", 2)]))
    root = write(tmp_path / "root.yaml", policy("root", [sysctl("B", "vm.swappiness", "eq", 1)],
                                               extends=["base.yaml"]))
    first = audit_of(root)
    again = audit_of(root)
    assert re.fullmatch("[0-9a-f]{64}", first.policy_digest)
    assert first.policy_digest == again.policy_digest
    assert [f.name for f in first.policies] == ["root", "base"]
    assert first.policy_digest == audit.policy_digest(first.policies)
    # A change to any file, even one only reached through extends, changes the digest.
    base.write_text(base.read_text().replace('"version": "1"', '"version": "2"'))
    changed = audit_of(root)
    assert changed.policy_digest != first.policy_digest
    assert [f.version for f in changed.policies] == ["1", "2"]
    # So does a change that leaves every check as it was (comments, formatting).
    root.write_text(root.read_text() + "# reviewed\n")
    assert audit_of(root).policy_digest not in (first.policy_digest, changed.policy_digest)


def _without_timing(data: dict[str, Any]) -> dict[str, Any]:
    data = {k: v for k, v in data.items() if k not in ("started", "duration_ms")}
    data["results"] = [{k: v for k, v in r.items() if k != "duration_ms"}
                       for r in data["results"]]
    return data


def test_json_report(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", policy("main", [
        sysctl("KRN-001", "kernel.kptr_restrict", "ge", 1),
        sysctl("LAT-001", "vm.swappiness", "eq", 10),
        sysctl("KRN-004", "kernel.dmesg_restrict", "eq", 0),
    ], waivers=[waiver("KRN-004")]))
    texts = [json_report.render(audit_of(path, labels={"site": "ld4", "role": "gw"}))
             for _ in range(2)]
    first, second = (json.loads(t) for t in texts)
    assert _without_timing(first) == _without_timing(second)
    assert texts[0].endswith("}\n")
    assert list(first) == ["schema", "tool", "host", "policy", "started", "duration_ms",
                           "summary", "results"]
    assert first["schema"] == "hostguard/result/v1"
    assert first["tool"] == {"name": "hostguard", "version": __version__}
    assert first["host"] == {
        "hostname": "trd-gw-01", "kernel_release": "6.1.0-18-amd64",
        "kernel_version": "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)",
        "boot_id": "6f1c1b0e-2c8a-4f5e-9d55-0c3a6d1e7b42",
        "machine_id": "8f2e4c6a1b3d4e5f9a7c0b1d2e3f4a5b", "arch": "x86_64",
        "os_name": "Debian GNU/Linux 12 (bookworm)", "root": str(TRADING_ROOT),
        "labels": {"role": "gw", "site": "ld4"},
    }
    assert list(first["host"]["labels"]) == ["role", "site"]  # sorted, whatever the input order
    assert first["policy"]["digest"] == audit_of(path).policy_digest
    (file_entry,) = first["policy"]["files"]
    assert set(file_entry) == {"path", "name", "version", "sha256"}
    assert (file_entry["name"], file_entry["version"]) == ("main", "1")
    assert dt.datetime.fromisoformat(first["started"].replace("Z", "+00:00")).tzinfo is not None
    assert first["started"].endswith("Z")
    assert isinstance(first["duration_ms"], float | int) and first["duration_ms"] >= 0
    assert first["summary"] == {"total": 3, "pass": 1, "fail": 1, "error": 0, "waived": 1,
                                "not_applicable": 0, "failed_by_severity": {"high": 1}}
    results = first["results"]
    assert [r["id"] for r in results] == ["KRN-001", "LAT-001", "KRN-004"]
    assert list(results[0]) == ["id", "kind", "title", "severity", "status", "message", "policy",
                                "location", "overridden_at", "hosts", "roots", "evidence",
                                "waiver", "rationale", "remediation", "references", "spec",
                                "duration_ms"]
    assert results[1]["evidence"] == {
        "expected": "vm.swappiness == 10", "actual": "vm.swappiness = 1",
        "items": [{"key": "vm.swappiness", "value": "1", "verdict": "fail"}]}
    assert results[1]["spec"] == {"key": "vm.swappiness", "op": "eq", "value": 10}
    assert results[1]["location"]["path"] == file_entry["path"]
    assert results[1]["waiver"] is None
    waived = results[2]["waiver"]
    assert waived["status"] == "fail"
    assert (waived["reason"], waived["expires"], waived["hosts"]) == (
        "CHG-1 vendor NIC driver", "2026-12-31", [])


# --- the live host -----------------------------------------------------------------------------

INLINE = policy("live", [
    sysctl("LIVE-1", "kernel.osrelease", "eq", os.uname().release),
    sysctl("LIVE-2", "kernel.randomize_va_space", "in", [0, 1, 2]),
    check("LIVE-3", "sysfs", {"path": "kernel/mm/transparent_hugepage/enabled",
                              "op": "in", "value": ["always", "madvise", "never"]}),
])


def _readable(pattern: str, base: str, dotted: bool) -> bool | None:
    """Whether every file ``pattern`` names under ``base`` can be read; None when none exists."""
    parts = pattern.split("/") if not dotted or "/" in pattern else pattern.split(".")
    paths = glob.glob(os.path.join(base, *parts))
    if not paths:
        return None
    for path in paths:
        try:
            with open(path, "rb") as handle:
                handle.read(1 << 16)
        except OSError:
            return False
    return True


@pytest.mark.parametrize("source", ["baseline", "inline"])
def test_audit_of_the_live_host(tmp_path: Path, source: str) -> None:
    if source == "baseline":
        need(BASELINE.is_file(), "policies/trading-baseline.yaml is not written yet")
        path = BASELINE
    else:
        path = write(tmp_path / "live.yaml", INLINE)
    today = dt.datetime.now(dt.UTC).date()
    policy_set = load(path, today=today)
    run = audit.run(policy_set, Path("/"), {}, today)
    assert len(run.results) == len(policy_set.checks) > 0
    assert all(r.status in Status for r in run.results)
    assert sum(run.counts.values()) == len(run.results)
    cmdline = Path("/proc/cmdline").read_text(encoding="utf-8", errors="replace")
    for result in run.results:
        spec = result.check.raw_spec
        if result.check.kind == "sysctl":
            readable = _readable(spec["key"], "/proc/sys", dotted=True)
        elif result.check.kind == "sysfs":
            readable = _readable(spec["path"], "/sys", dotted=False)
        else:
            assert result.status is not Status.ERROR, result.message
            assert result.evidence.actual == cmdline.rstrip("\n")
            continue
        where = f"{result.check.id}: {result.message}"
        if readable:
            assert result.status is not Status.ERROR, where
        elif readable is None and result.status is Status.ERROR:
            assert result.message.endswith("does not exist on this host"), where
    if source == "inline":
        assert by_id(run)["LIVE-1"].status is Status.PASS
    host = run.host
    assert host.hostname == socket.gethostname()
    assert host.kernel_release == os.uname().release
    assert host.kernel_version == os.uname().version
    assert host.arch == os.uname().machine
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert host.boot_id == boot_id
    machine_id = Path("/etc/machine-id")
    if machine_id.is_file():
        assert host.machine_id == (machine_id.read_text().strip() or None)
    assert run.root == "/"
