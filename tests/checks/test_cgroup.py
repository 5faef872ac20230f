"""The ``cgroup`` kind: spec parsing, fixture hosts (pure v2, v1), and real cgroups on this host."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from agent.checks import KINDS
from agent.checks.base import SpecError
from agent.checks.cgroup import CgroupKind
from agent.host.cmdline import parse_cmdline
from agent.host.facts import ReadError
from agent.host.processes import read_processes
from agent.host.snapshot import SnapshotRequest, take
from agent.result import Outcome, Status
from tests.support import FIXTURES, PROJECT, need, need_root, run_cli

V2 = FIXTURES / "hosts" / "cgroup-v2-trading"
V1 = FIXTURES / "hosts" / "cgroup-v1-trading"
KIND = CgroupKind()


def run(root: Path, spec: Mapping[str, Any], **changes: Any) -> Outcome:
    parsed = KIND.parse(spec)
    snapshot = take(root, KIND.request(parsed))
    if changes:
        snapshot = replace(snapshot, **changes)
    return KIND.evaluate(parsed, snapshot)


def rows(outcome: Outcome, setting: str) -> list[dict[str, Any]]:
    return [dict(r) for r in outcome.evidence.items if r.get("setting") == setting]


def problems(spec: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], str, str]]:
    with pytest.raises(SpecError) as info:
        KIND.parse(spec)
    return [(p.path, p.message, p.rule) for p in info.value.problems]


# --- spec --------------------------------------------------------------------------------------


def test_registered() -> None:
    assert KINDS["cgroup"] is not None
    assert KIND.request(KIND.parse({"unit": "x", "max_oom_kills": 0})) == SnapshotRequest(
        cgroups=True, process_fields=frozenset({"cgroups"}))
    isolation = KIND.request(KIND.parse({"unit": "x", "isolation": {"exclusive": True}}))
    assert isolation.cmdline
    assert isolation.process_fields == {"cgroups", "cpus_allowed"}
    by_process = KIND.request(KIND.parse({"process": {"name": "x", "cmdline": "y"},
                                          "max_throttled": 0}))
    assert by_process.process_fields == {"cgroups", "cmdline"}  # name: with every process


def test_spec_problems() -> None:
    assert problems({"unit": "fixgw.service"}) == [
        ((), "a cgroup check needs limits, isolation, max_throttled or max_oom_kills", "spec")]
    assert problems({"unit": "a/b", "limits": {"pids.max": {"op": "set", "value": 3}}}) == [
        (("unit",), "invalid unit glob 'a/b': a unit name has no '/'", "invalid-glob"),
        (("limits", "pids.max", "value"), "op 'set' takes no value", "spec")]
    assert problems({"cgroup": "/x", "limits": {"memory.max": {"op": "le", "value": "max"},
                                                "memory.high": "2GB",
                                                "cpu.weight": {"op": "ge"}}}) == [
        (("limits", "memory.max", "value"), "op 'le' needs a number, not max", "spec"),
        (("limits", "memory.high", "value"),
         "memory.high: '2GB' is not a size (digits with an optional K, M, G, T, P or E)", "spec"),
        (("limits", "cpu.weight"), "op 'ge' needs a value", "spec")]
    assert problems({"process": {"cmdline": "(", "name": "fix[gw"},
                     "isolation": {"exclusive": False}}) == [
        (("process", "name"), "invalid name glob 'fix[gw': '[' at position 4 is never closed",
         "invalid-glob"),
        (("process", "cmdline"),
         "invalid regex '(': missing ), unterminated subpattern at position 0", "invalid-regex"),
        (("isolation",), "isolation asks for nothing: set cpus_isolated, nohz_full or "
                         "exclusive to true", "spec")]
    assert problems({"unit": "a", "cgroup": "/a", "limits": {"cpu.weight": {"op": "set"}}}) == [
        ((), "give exactly one of unit, cgroup or process (found unit, cgroup)", "spec"),
        (("limits", "cpu.weight", "op"),
         "op 'set' does not apply to cpu.weight (use eq, le, ge)", "spec")]
    assert problems({"max_oom_kills": 0}) == [
        ((), "give exactly one of unit, cgroup or process", "spec")]
    assert KIND.parse({"unit": "fixgw", "max_throttled": 0}).unit == "fixgw.service"


# --- pure v2 fixture --------------------------------------------------------------------------

GATEWAY_ISOLATION: dict[str, Any] = {
    "unit": "fixgw.service",
    "limits": {"memory.max": {"op": "le", "value": "8G"}, "memory.swap.max": 0,
               "pids.max": {"op": "set"}, "cpu.max": "max",
               "cpuset.cpus": {"op": "subset_of", "value": "2-5"}, "cpu.weight": 100},
    "max_throttled": 0, "max_oom_kills": 0,
    "isolation": {"cpus_isolated": True, "nohz_full": True, "exclusive": True},
}


def test_v2_gateway_isolation_reports_intruders() -> None:
    outcome = run(V2, GATEWAY_ISOLATION)
    assert outcome.status is Status.FAIL
    assert outcome.message == (
        "pid 1501 (backtest, /trading.slice/backtest.service) is allowed on CPUs 3; "
        "cgroup /trading.slice/backtest.service is configured for CPUs 3 (cgroup2)")
    assert [(r["setting"], r["value"], r["file"], r["verdict"])
            for r in outcome.evidence.items if "file" in r and "version" in r] == [
        ("memory.max", "8589934592 (8G)",
         "/sys/fs/cgroup/trading.slice/fixgw.service/memory.max", "pass"),
        ("memory.swap.max", "0", "/sys/fs/cgroup/trading.slice/fixgw.service/memory.swap.max",
         "pass"),
        ("pids.max", "64", "/sys/fs/cgroup/trading.slice/fixgw.service/pids.max", "pass"),
        ("cpu.max", "max 100000", "/sys/fs/cgroup/trading.slice/fixgw.service/cpu.max", "pass"),
        ("cpuset.cpus", "2-3",
         "/sys/fs/cgroup/trading.slice/fixgw.service/cpuset.cpus.effective", "pass"),
        ("cpu.weight", "100", "/sys/fs/cgroup/trading.slice/fixgw.service/cpu.weight", "pass"),
        ("throttled", "nr_throttled 0 throttled_usec 0",
         "/sys/fs/cgroup/trading.slice/fixgw.service/cpu.stat", "pass"),
        ("oom_kill", "oom_kill 0", "/sys/fs/cgroup/trading.slice/fixgw.service/memory.events",
         "pass"),
    ]
    assert rows(outcome, "isolated CPUs") == [{
        "setting": "isolated CPUs", "value": "2-5", "expected": "contains 2-3", "verdict": "pass",
        "source": "isolcpus (domain) 2-5; isolated partition /trading.slice 2-5"}]
    # ksoftirqd/2 (a per-CPU kernel thread) is allowed on CPU 2 only and is not an intruder;
    # kworker/u16:3 (unbound) is allowed on 0-1,6-7 and does not overlap.
    assert rows(outcome, "intruder") == [
        {"setting": "intruder", "pid": 1501, "name": "backtest",
         "cgroup": "/trading.slice/backtest.service", "cpus_allowed": "3", "overlap": "3",
         "verdict": "fail"},
        {"setting": "intruder", "cgroup": "/trading.slice/backtest.service",
         "file": "/sys/fs/cgroup/trading.slice/backtest.service/cpuset.cpus", "cpus": "3",
         "overlap": "3", "verdict": "fail"}]


def test_v2_market_data_unit_is_isolated_and_exclusive() -> None:
    outcome = run(V2, {"unit": "mdfeed.service",
                       "isolation": {"cpus_isolated": True, "exclusive": True}})
    assert outcome.status is Status.PASS, outcome.message
    assert rows(outcome, "cpus") == [{"target": "cgroup /trading.slice/mdfeed.service",
                                      "setting": "cpus", "value": "4-5",
                                      "source": "affinity of 1301"}]
    assert rows(outcome, "intruder") == []


def test_v2_gateway_with_quota_throttles_and_oom() -> None:
    outcome = run(V2, {"unit": "gateway.service",
                       "limits": {"cpu.max": "max", "memory.high": {"op": "le", "value": "2G"},
                                  "io.max": {"op": "set"}, "cpu.weight": {"op": "ge",
                                                                          "value": 200},
                                  "cpuset.cpus": {"op": "subset_of", "value": "2-5"},
                                  "memory.swap.max": {"op": "eq", "value": 0}},
                       "max_throttled": 0, "max_oom_kills": 0})
    assert outcome.status is Status.FAIL
    assert outcome.message == (
        "/system.slice/gateway.service: expected cpu.max == max, found 50000 100000 (50% of one "
        "CPU) (/sys/fs/cgroup/system.slice/gateway.service/cpu.max); "
        "/system.slice/gateway.service: expected cpuset.cpus within 2-5, found 0-1 "
        "(/sys/fs/cgroup/system.slice/gateway.service/cpuset.cpus.effective); "
        "/system.slice/gateway.service: throttled 17 > 0 "
        "(/sys/fs/cgroup/system.slice/gateway.service/cpu.stat); "
        "/system.slice/gateway.service: oom_kill 1 > 0 "
        "(/sys/fs/cgroup/system.slice/gateway.service/memory.events)")
    assert [r["value"] for r in rows(outcome, "throttled")] == [
        "nr_throttled 17 throttled_usec 912345"]


def test_v2_cpu_quota_comparisons() -> None:
    def status(limit: Any) -> Status:
        return run(V2, {"unit": "gateway.service", "limits": {"cpu.max": limit}}).status

    assert status({"op": "set"}) is Status.PASS
    assert status("50%") is Status.PASS
    assert status("50000 100000") is Status.PASS
    assert status("100000 200000") is Status.FAIL  # the same share, another period
    assert status({"op": "le", "value": "100%"}) is Status.PASS
    assert status({"op": "ge", "value": "60%"}) is Status.FAIL
    fixgw = run(V2, {"unit": "fixgw.service", "limits": {"cpu.max": {"op": "le",
                                                                     "value": "400%"}}})
    assert fixgw.status is Status.FAIL  # no quota is more than any quota


def test_v2_controller_not_enabled_means_unlimited() -> None:
    outcome = run(V2, {"unit": "cron.service",
                       "limits": {"memory.max": {"op": "set"}, "pids.max": "max"}})
    assert outcome.status is Status.FAIL
    assert rows(outcome, "memory.max") == [{
        "target": "cgroup /system.slice/cron.service", "setting": "memory.max",
        "expected": "memory.max is set (not max)", "cgroup": "/system.slice/cron.service",
        "version": 2, "file": "/sys/fs/cgroup/system.slice/cron.service", "value": "max",
        "note": "the memory controller is not enabled for this cgroup", "verdict": "fail"}]
    # cpu.weight has no "unlimited" reading: its absence is an error, never a pass.
    weight = run(V2, {"unit": "cron.service", "limits": {"cpu.weight": 100}})
    assert weight.status is Status.ERROR
    assert weight.message == ("cannot evaluate: /system.slice/cron.service: "
                              "/sys/fs/cgroup/system.slice/cron.service/cpu.weight does not exist")


def test_v2_partition_and_selection_by_path() -> None:
    partition = run(V2, {"cgroup": "/trading.slice",
                         "limits": {"cpuset.cpus.partition": "isolated", "cpuset.cpus": "2-5"}})
    assert partition.status is Status.PASS, partition.message
    children = run(V2, {"cgroup": "/trading.slice/*", "limits": {"cpuset.mems": "0"}})
    assert children.evidence.actual == ("cgroup /trading.slice/backtest.service; "
                                        "cgroup /trading.slice/fixgw.service; "
                                        "cgroup /trading.slice/mdfeed.service")
    assert children.status is Status.PASS
    member = run(V2, {"cgroup": "/trading.slice/fixgw.service",
                      "limits": {"cpuset.cpus.partition": "isolated"}})
    assert member.status is Status.FAIL


def test_v2_selection_by_process() -> None:
    outcome = run(V2, {"process": {"name": "gw*", "cmdline": "logger"},
                       "limits": {"pids.max": {"op": "le", "value": 256}}})
    assert outcome.evidence.actual == "pid 1102 gw-logger in /system.slice/gateway.service"
    assert outcome.status is Status.PASS
    both = run(V2, {"process": {"exe": "*", "cmdline": "^/opt/"},
                    "limits": {"memory.max": {"op": "set"}}})
    # exe is unknown in the fixture (no symlink) and not unreadable: nothing matches an exe glob.
    assert both.status is Status.ERROR
    assert both.message == "no cgroup matches process exe = *, cmdline ~ /^/opt//"


def test_unit_glob_and_missing() -> None:
    many = run(V2, {"unit": "*.service", "limits": {"pids.max": {"op": "set"}}})
    assert [r["cgroup"] for r in rows(many, "pids.max")] == [
        "/system.slice/cron.service", "/system.slice/gateway.service",
        "/trading.slice/backtest.service", "/trading.slice/fixgw.service",
        "/trading.slice/mdfeed.service"]
    assert many.status is Status.FAIL
    absent = run(V2, {"unit": "fixgw-b.service", "max_oom_kills": 0})
    assert (absent.status, absent.message) == (
        Status.ERROR, "no cgroup matches unit fixgw-b.service")
    failing = run(V2, {"unit": "fixgw-b.service", "max_oom_kills": 0, "missing": "fail"})
    assert failing.status is Status.FAIL


def test_a_unit_of_a_user_manager_is_not_the_system_unit(tmp_path: Path) -> None:
    """``systemd-run --user --unit fixgw`` makes a fixgw.service under user@UID.service: not
    the system's fixgw.service, which a unit selector names; the manager itself still is."""
    root = tmp_path / "host"
    shutil.copytree(V2, root, symlinks=True)
    base = root / "sys" / "fs" / "cgroup"
    manager = base / "user.slice" / "user-1000.slice" / "user@1000.service"
    shutil.copytree(base / "trading.slice" / "fixgw.service",
                    manager / "app.slice" / "mine.service")
    (manager / "pids.max").write_text("max\n", encoding="utf-8")
    (manager / "cgroup.procs").write_text("", encoding="utf-8")
    assert run(root, {"unit": "mine", "max_oom_kills": 0}).message == (
        "no cgroup matches unit mine.service")
    spec = {"unit": "*.service", "limits": {"pids.max": {"op": "set"}}}
    assert "/user.slice/user-1000.slice/user@1000.service/app.slice/mine.service" not in [
        r["cgroup"] for r in rows(run(root, spec), "pids.max")]
    assert [r["cgroup"] for r in rows(run(root, {**spec, "unit": "user@1000"}), "pids.max")] == [
        "/user.slice/user-1000.slice/user@1000.service"]


def test_isolcpus_without_domain_flag_isolates_nothing() -> None:
    # isolcpus=managed_irq,2-5 only keeps managed interrupts off 2-5; the scheduler still
    # balances onto them. Only the isolated partition makes mdfeed's CPUs isolated here.
    cmdline = parse_cmdline("isolcpus=managed_irq,2-5 nohz_full=2-5")
    outcome = run(V2, {"unit": "mdfeed.service", "isolation": {"cpus_isolated": True}},
                  cmdline=cmdline)
    assert outcome.status is Status.PASS
    assert rows(outcome, "isolated CPUs")[0]["source"] == "isolated partition /trading.slice 2-5"
    gateway = run(V2, {"unit": "gateway.service", "isolation": {"cpus_isolated": True,
                                                                "nohz_full": True}},
                  cmdline=cmdline)
    assert gateway.message == ("CPUs 0-1 of the target are not isolated (isolated: 2-5); "
                               "CPUs 0-1 of the target are not in nohz_full")


def test_unreadable_inputs_are_errors() -> None:
    outcome = run(V2, {"unit": "fixgw.service", "max_oom_kills": 0},
                  cgroups=ReadError("permission denied"))
    assert (outcome.status, outcome.message) == (
        Status.ERROR, "cannot read cgroups: permission denied")
    no_cmdline = run(V2, {"unit": "mdfeed.service", "isolation": {"cpus_isolated": True}},
                     cmdline=ReadError("no such file"))
    assert no_cmdline.status is Status.ERROR
    assert no_cmdline.message == ("cannot evaluate: cannot read the kernel command line: "
                                  "no such file")


# --- v1 fixture -------------------------------------------------------------------------------


def test_v1_maps_each_expectation_to_its_v1_file() -> None:
    outcome = run(V1, {**GATEWAY_ISOLATION, "limits": {
        **GATEWAY_ISOLATION["limits"], "memory.high": "max"}})
    assert outcome.status is Status.FAIL
    found = {r["setting"]: (r.get("cgroup"), r.get("file"), r.get("value"), r["verdict"])
             for r in outcome.evidence.items if r.get("target") and r["setting"] != "cpus"}
    assert found == {
        "memory.max": ("/system.slice/fixgw.service",
                       "/sys/fs/cgroup/memory/system.slice/fixgw.service/memory.limit_in_bytes",
                       "8589934592 (8G)", "pass"),
        "memory.swap.max": (
            "/system.slice/fixgw.service",
            "/sys/fs/cgroup/memory/system.slice/fixgw.service/memory.limit_in_bytes, "
            "/sys/fs/cgroup/memory/system.slice/fixgw.service/memory.memsw.limit_in_bytes",
            "0", "pass"),
        "pids.max": ("/system.slice/fixgw.service",
                     "/sys/fs/cgroup/pids/system.slice/fixgw.service/pids.max", "4096", "pass"),
        # No fixgw.service directory in the cpu hierarchy: the member's /proc/PID/cgroup says
        # it runs in /system.slice there, and that cgroup's files apply.
        "cpu.max": ("/system.slice",
                    "/sys/fs/cgroup/cpu,cpuacct/system.slice/cpu.cfs_quota_us, "
                    "/sys/fs/cgroup/cpu,cpuacct/system.slice/cpu.cfs_period_us",
                    "max 100000", "pass"),
        "cpuset.cpus": ("/fixgw", "/sys/fs/cgroup/cpuset/fixgw/cpuset.effective_cpus", "2-3",
                        "pass"),
        "cpu.weight": ("/system.slice", "/sys/fs/cgroup/cpu,cpuacct/system.slice/cpu.shares",
                       "cpu.shares 2048 (cpu.weight 200)", "fail"),
        "memory.high": (None, None, None, "error"),
        "throttled": ("/system.slice", "/sys/fs/cgroup/cpu,cpuacct/system.slice/cpu.stat",
                      "nr_throttled 3 throttled_time 4500000", "fail"),
        "oom_kill": ("/system.slice/fixgw.service",
                     "/sys/fs/cgroup/memory/system.slice/fixgw.service/memory.oom_control",
                     "oom_kill 2", "fail"),
    }
    assert rows(outcome, "memory.high")[0]["reason"] == (
        "memory.high: cgroup v1 has no memory.high (memory.soft_limit_in_bytes is a reclaim "
        "hint, not a throttling limit)")
    assert [(r.get("pid"), r.get("name"), r["cgroup"], r["overlap"])
            for r in rows(outcome, "intruder")] == [
        (700, "sshd", "/system.slice/ssh.service", "2-3"), (None, None, "/batch", "2")]


def test_v1_host_without_an_equivalent_is_error() -> None:
    outcome = run(V1, {"unit": "fixgw.service", "limits": {"io.max": {"op": "set"}}})
    assert outcome.status is Status.ERROR
    assert outcome.message == (
        "cannot evaluate: cgroup /system.slice/fixgw.service: io.max: cgroup v1 "
        "blkio.throttle.* files have no single io.max equivalent")


def test_v1_selection_by_name_systemd_unit_and_process() -> None:
    by_unit = run(V1, {"unit": "ssh", "limits": {"memory.max": "max"}})
    # ssh.service exists only in the name=systemd hierarchy; its process is in /system.slice
    # of the memory hierarchy, which is unlimited (the huge v1 number).
    assert by_unit.status is Status.PASS
    assert rows(by_unit, "memory.max")[0]["file"] == \
        "/sys/fs/cgroup/memory/system.slice/memory.limit_in_bytes"
    by_process = run(V1, {"process": {"name": "fixgw"},
                          "limits": {"memory.max": "8G", "pids.max": 4096}})
    assert by_process.status is Status.PASS
    assert by_process.evidence.actual == "pid 1201 fixgw in /system.slice/fixgw.service"


def test_shipped_policy_against_the_v2_fixture() -> None:
    done = run_cli("audit", "--policy", str(PROJECT / "policies" / "gateway-isolation.yaml"),
                   "--root", str(V2), "--label", "role=gateway", "--format", "json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert {r["id"]: r["status"] for r in report["results"]} == {
        "CG-001": "pass", "CG-002": "pass", "CG-003": "pass", "CG-004": "fail",
        "CG-005": "fail", "CG-006": "pass"}


# --- real cgroups on this host ----------------------------------------------------------------

V1_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class LiveCgroup:
    path: str
    pid: int
    marker: str


def _write(path: Path, text: str) -> None:
    path.write_text(text + "\n")


def _rmdir(path: Path, deadline: float = 5.0) -> None:
    end = time.monotonic() + deadline
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.01)


@pytest.fixture
def live_v1() -> Iterator[LiveCgroup]:
    """memory, pids, cpu and cpuset v1 cgroups with limits and a sleep moved into all four."""
    need_root()
    for controller in ("memory", "pids", "cpu", "cpuset"):
        need((V1_ROOT / controller / "cgroup.procs").exists(),
             f"no cgroup v1 {controller} hierarchy at {V1_ROOT / controller}")
    name = f"hg-test-{secrets.token_hex(4)}"
    marker = f"3600.{secrets.randbelow(10**6):06d}"
    child = subprocess.Popen(["sleep", marker])
    created: list[Path] = []
    try:
        for controller in ("memory", "pids", "cpu", "cpuset"):
            (V1_ROOT / controller / name).mkdir()
            created.append(V1_ROOT / controller / name)
        memory = V1_ROOT / "memory" / name
        _write(memory / "memory.limit_in_bytes", "268435456")
        if (memory / "memory.memsw.limit_in_bytes").exists():
            _write(memory / "memory.memsw.limit_in_bytes", "268435456")
        _write(V1_ROOT / "pids" / name / "pids.max", "64")
        _write(V1_ROOT / "cpu" / name / "cpu.cfs_period_us", "100000")
        _write(V1_ROOT / "cpu" / name / "cpu.cfs_quota_us", "50000")
        _write(V1_ROOT / "cpu" / name / "cpu.shares", "512")
        last_cpu = os.cpu_count() or 1
        _write(V1_ROOT / "cpuset" / name / "cpuset.cpus", str(last_cpu - 1))
        _write(V1_ROOT / "cpuset" / name / "cpuset.mems", "0")
        for directory in created:
            _write(directory / "cgroup.procs", str(child.pid))
        yield LiveCgroup(f"/{name}", child.pid, marker)
    finally:
        child.kill()
        child.wait()
        for directory in reversed(created):
            _rmdir(directory)


LIVE_LIMITS: dict[str, Any] = {"memory.max": "256M", "pids.max": 64, "cpu.max": "50000 100000",
                               "cpu.weight": 50, "cpuset.mems": "0"}


@pytest.mark.root
def test_live_v1_by_cgroup_path(live_v1: LiveCgroup) -> None:
    cpu = str((os.cpu_count() or 1) - 1)
    outcome = run(Path("/"), {"cgroup": live_v1.path,
                              "limits": {**LIVE_LIMITS, "cpuset.cpus": cpu},
                              "max_throttled": 0, "max_oom_kills": 0})
    assert outcome.status is Status.PASS, outcome.message
    name = live_v1.path
    assert {r["setting"]: (r["file"], r["value"]) for r in outcome.evidence.items} == {
        "memory.max": (f"/sys/fs/cgroup/memory{name}/memory.limit_in_bytes",
                       "268435456 (256M)"),
        "pids.max": (f"/sys/fs/cgroup/pids{name}/pids.max", "64"),
        "cpu.max": (f"/sys/fs/cgroup/cpu{name}/cpu.cfs_quota_us, "
                    f"/sys/fs/cgroup/cpu{name}/cpu.cfs_period_us",
                    "50000 100000 (50% of one CPU)"),
        "cpu.weight": (f"/sys/fs/cgroup/cpu{name}/cpu.shares", "cpu.shares 512 (cpu.weight 50)"),
        "cpuset.mems": (f"/sys/fs/cgroup/cpuset{name}/cpuset.effective_mems", "0"),
        "cpuset.cpus": (f"/sys/fs/cgroup/cpuset{name}/cpuset.effective_cpus", cpu),
        "throttled": (f"/sys/fs/cgroup/cpu{name}/cpu.stat", "nr_throttled 0 throttled_time 0"),
        "oom_kill": (f"/sys/fs/cgroup/memory{name}/memory.oom_control", "oom_kill 0"),
    }


@pytest.mark.root
def test_live_v1_by_process_cmdline(live_v1: LiveCgroup) -> None:
    spec = {"process": {"cmdline": rf"^sleep {live_v1.marker}$"}, "limits": LIVE_LIMITS}
    outcome = run(Path("/"), spec)
    assert outcome.status is Status.PASS, outcome.message
    assert outcome.evidence.actual.startswith(f"pid {live_v1.pid} sleep in ")
    assert {r["cgroup"] for r in outcome.evidence.items} == {live_v1.path}
    tighter = run(Path("/"), {**spec, "limits": {"memory.max": {"op": "le", "value": "128M"},
                                                 "pids.max": {"op": "le", "value": 32},
                                                 "cpu.max": "max"}})
    assert tighter.status is Status.FAIL
    assert tighter.message == "; ".join([
        f"{live_v1.path}: expected memory.max <= 128M, found 268435456 (256M) "
        f"(/sys/fs/cgroup/memory{live_v1.path}/memory.limit_in_bytes)",
        f"{live_v1.path}: expected pids.max <= 32, found 64 "
        f"(/sys/fs/cgroup/pids{live_v1.path}/pids.max)",
        f"{live_v1.path}: expected cpu.max == max, found 50000 100000 (50% of one CPU) "
        f"(/sys/fs/cgroup/cpu{live_v1.path}/cpu.cfs_quota_us, "
        f"/sys/fs/cgroup/cpu{live_v1.path}/cpu.cfs_period_us)"])
    swap = run(Path("/"), {**spec, "limits": {"memory.swap.max": 0, "memory.high": "max"}})
    need(Path(f"/sys/fs/cgroup/memory{live_v1.path}/memory.memsw.limit_in_bytes").exists(),
         "kernel without swap accounting")
    assert swap.status is Status.ERROR  # memory.high has no v1 file; swap.max does
    assert [r["verdict"] for r in rows(swap, "memory.swap.max") + rows(swap, "memory.high")] \
        == ["pass", "error"]


@pytest.mark.root
def test_live_isolation_names_intruders(live_v1: LiveCgroup) -> None:
    outcome = run(Path("/"), {"cgroup": live_v1.path,
                              "isolation": {"cpus_isolated": True, "exclusive": True}})
    assert outcome.status is Status.FAIL
    cpu = (os.cpu_count() or 1) - 1
    table = read_processes(Path("/"))
    isolated = rows(outcome, "isolated CPUs")[0]
    snapshot_cmdline = Path("/proc/cmdline").read_text()
    need("isolcpus" not in snapshot_cmdline, "this host isolates CPUs")
    assert isolated["value"] == "(none)" and isolated["verdict"] == "fail"
    intruders = {r["pid"]: r for r in rows(outcome, "intruder") if "pid" in r}
    me = intruders[os.getpid()]
    assert me["overlap"] == str(cpu)
    assert live_v1.pid not in intruders
    for process in table.processes.values():
        if process.kernel_thread and process.cpus_allowed == frozenset({cpu}):
            # ksoftirqd/N, migration/N, cpuhp/N ...: bound by the kernel, never intruders.
            assert process.pid not in intruders, process.name
    bound = [p for p in table.processes.values()
             if p.kernel_thread and p.cpus_allowed == frozenset({cpu})]
    need(bool(bound), "no per-CPU kernel thread found")


@pytest.fixture
def live_unified() -> Iterator[LiveCgroup]:
    need_root()
    unified = V1_ROOT / "unified"
    need((unified / "cgroup.procs").exists(), f"no hybrid cgroup2 hierarchy at {unified}")
    name = f"hg-test-{secrets.token_hex(4)}"
    marker = f"3600.{secrets.randbelow(10**6):06d}"
    child = subprocess.Popen(["sleep", marker])
    try:
        (unified / name).mkdir()
        _write(unified / name / "cgroup.procs", str(child.pid))
        yield LiveCgroup(f"/{name}", child.pid, marker)
    finally:
        child.kill()
        child.wait()
        _rmdir(unified / name)


@pytest.mark.root
def test_live_hybrid_cgroup2_membership_resolves_v1_controllers(
        live_unified: LiveCgroup) -> None:
    # The cgroup exists only in the cgroup2 hierarchy; memory is a v1 controller on this host,
    # so memory.max comes from the v1 cgroup the member process is in.
    memory_path = next(line.split(":", 2)[2] for line in
                       Path(f"/proc/{live_unified.pid}/cgroup").read_text().splitlines()
                       if line.split(":")[1] == "memory")
    raw = Path(f"/sys/fs/cgroup/memory{memory_path}/memory.limit_in_bytes").read_text().strip()
    expected = "max" if int(raw) >= (1 << 63) - (1 << 20) else raw
    outcome = run(Path("/"), {"cgroup": live_unified.path,
                              "limits": {"memory.max": expected}})
    assert outcome.status is Status.PASS, outcome.message
    [row] = rows(outcome, "memory.max")
    assert row["cgroup"] == memory_path
    assert row["file"] == f"/sys/fs/cgroup/memory{memory_path}/memory.limit_in_bytes".replace(
        "//", "/")
    assert row["version"] == 1
