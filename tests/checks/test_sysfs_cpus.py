"""``sysfs`` per CPU (``{cpus}``, ``cpus:``) and ``where:``: spec problems, a full
``/sys/devices/system/cpu`` tree under ``tmp_path`` (:func:`tests.host.cpu_tree.power_tree`:
eight CPUs, cpufreq, cpuidle states with latencies, CPUs 2-5 isolated), and this host's CPUs
against ``cat`` reading the same files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agent.checks.base import SpecError
from agent.checks.compare import Condition
from agent.checks.sysfs import SysfsKind
from agent.checks.valuekind import Where
from agent.host.processes import parse_cpu_list
from agent.host.snapshot import SnapshotRequest, take
from agent.result import Outcome, Status
from tests.host.cpu_tree import power_tree, put
from tests.support import need_tool

KIND = SysfsKind()
GOVERNOR = "devices/system/cpu/cpu{cpus}/cpufreq/scaling_governor"
IDLE = "devices/system/cpu/cpu{cpus}/cpuidle/state*/disable"
DEEP = {"file": "latency", "op": "ge", "value": 11}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return power_tree(tmp_path / "host")


def judge(raw: dict[str, Any], root: Path) -> Outcome:
    spec = KIND.parse(raw)
    return KIND.evaluate(spec, take(root, KIND.request(spec)))


def keys(outcome: Outcome) -> list[tuple[Any, ...]]:
    return [(r.get("cpu"), r["key"], r["value"], r["verdict"]) for r in outcome.evidence.items]


def test_parse_and_request() -> None:
    spec = KIND.parse({"path": IDLE, "cpus": "isolated", "where": DEEP, "value": 1})
    assert (spec.cpus, spec.where) == ("isolated", Where("latency", Condition("ge", 11)))
    assert KIND.request(spec) == SnapshotRequest(
        sysfs=frozenset({"devices/system/cpu/cpu[0-9]*/cpuidle/state*/disable",
                         "devices/system/cpu/cpu[0-9]*/cpuidle/state*/latency"}),
        cpu_sets=frozenset({"isolated"}))
    listed = KIND.parse({"path": GOVERNOR, "cpus": "2-5,8", "value": "performance"})
    assert listed.cpus == frozenset({2, 3, 4, 5, 8})
    assert KIND.request(listed).cpu_sets == frozenset()


@pytest.mark.parametrize(("raw", "problems"), [
    ({"path": GOVERNOR, "value": "performance"},
     [(("path",), "the path has {cpus} but no 'cpus' says which CPUs")]),
    ({"path": "devices/system/cpu/smt/control", "cpus": "all", "value": "off"},
     [(("cpus",), "'cpus' stands for {cpus} in the path, and the path has none")]),
    ({"path": GOVERNOR, "cpus": "housekeeping", "value": "performance"},
     [(("cpus",), "invalid 'cpus' 'housekeeping': not isolated, online, all nor a CPU list "
       "such as 2-5,8")]),
    ({"path": GOVERNOR, "cpus": "5-2", "value": "performance"},
     [(("cpus",), "invalid 'cpus' '5-2': not isolated, online, all nor a CPU list such as "
       "2-5,8")]),
    ({"path": "devices/system/cpu/cpu*{cpus}/online", "cpus": "all", "value": 1},
     [(("path",), "invalid sysfs path 'devices/system/cpu/cpu*{cpus}/online': path component "
       "'cpu*{cpus}' mixes {cpus} with a glob")]),
    ({"path": "devices/system/cpu/cpu{cpus}/x{cpus}", "cpus": "all", "value": 1},
     [(("path",), "invalid sysfs path 'devices/system/cpu/cpu{cpus}/x{cpus}': {cpus} may "
       "appear once")]),
    ({"path": IDLE, "cpus": "all", "where": {"file": "../latency", "value": 1}, "value": 1},
     [(("where", "file"), "'where' file '../latency' must be one file name in the folder of "
       "each match (no '/', no glob)")]),
    ({"path": IDLE, "cpus": "all", "where": {"file": "latency", "op": "ge", "value": "x"},
      "value": 1},
     [(("where", "value"), "op 'ge' needs an integer value")]),
])
def test_spec_problems(raw: dict[str, Any], problems: list[tuple[Any, str]]) -> None:
    with pytest.raises(SpecError) as caught:
        KIND.parse(raw)
    assert [(p.path, p.message) for p in caught.value.problems] == problems


def test_governor_on_the_isolated_cpus_each_shown(tree: Path) -> None:
    outcome = judge({"path": GOVERNOR, "cpus": "isolated", "value": "performance"}, tree)
    assert (outcome.status, outcome.message) == (
        Status.PASS, f"{GOVERNOR} == performance for isolated CPUs 2-5 holds")
    assert keys(outcome) == [
        (n, f"devices/system/cpu/cpu{n}/cpufreq/scaling_governor", "performance", "pass")
        for n in range(2, 6)]


def test_governor_on_every_cpu_names_the_housekeeping_ones(tree: Path) -> None:
    outcome = judge({"path": GOVERNOR, "cpus": "all", "value": "performance"}, tree)
    assert (outcome.status, outcome.message) == (
        Status.FAIL, f"expected {GOVERNOR} == performance for all CPUs 0-7, found "
        + ", ".join(f"devices/system/cpu/cpu{n}/cpufreq/scaling_governor = powersave"
                    for n in (0, 1, 6, 7)))
    assert len(outcome.evidence.items) == 8


@pytest.mark.parametrize(("missing", "status"), [
    ("error", Status.ERROR), ("fail", Status.FAIL), ("not_applicable", Status.PASS)])
def test_a_cpu_without_the_file(tree: Path, missing: str, status: Status) -> None:
    shutil.rmtree(tree / "sys/devices/system/cpu/cpu4/cpufreq")
    raw = {"path": GOVERNOR, "cpus": "isolated", "value": "performance", "missing": missing}
    outcome = judge(raw, tree)
    assert outcome.status is status
    row = (4, "devices/system/cpu/cpu4/cpufreq/scaling_governor", None, missing)
    assert keys(outcome)[2] == row
    if status is not Status.PASS:
        assert "devices/system/cpu/cpu4/cpufreq/scaling_governor: no such file" in outcome.message


def test_listed_cpus_include_one_the_host_lacks(tree: Path) -> None:
    outcome = judge({"path": GOVERNOR, "cpus": "2-3,9", "value": "performance"}, tree)
    assert (outcome.status, outcome.message) == (
        Status.ERROR, "cannot evaluate: devices/system/cpu/cpu9/cpufreq/scaling_governor: "
        "no such file")


def test_no_cpufreq_anywhere_is_not_applicable_only_when_said(tree: Path) -> None:
    for n in range(8):
        shutil.rmtree(tree / f"sys/devices/system/cpu/cpu{n}/cpufreq")
    raw = {"path": GOVERNOR, "cpus": "online", "value": "performance"}
    assert judge(raw, tree).status is Status.ERROR
    outcome = judge({**raw, "missing": "not_applicable"}, tree)
    assert (outcome.status, outcome.message) == (
        Status.NOT_APPLICABLE, f"{GOVERNOR} does not exist for any of the online CPUs 0-7")


def test_isolated_cpus_unknown_or_none(tree: Path) -> None:
    put(tree / "sys/devices/system/cpu/isolated", "2-x")
    raw = {"path": GOVERNOR, "cpus": "isolated", "value": "performance"}
    outcome = judge(raw, tree)
    assert outcome.status is Status.ERROR
    assert outcome.message.startswith("cannot evaluate: the isolated CPUs are unknown: ")
    for name in ("isolated", "nohz_full"):
        put(tree / "sys/devices/system/cpu" / name, "")
    put(tree / "proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro")
    assert (judge(raw, tree).status, judge(raw, tree).message) == (
        Status.ERROR, "this host has no isolated CPUs")
    assert judge({**raw, "missing": "not_applicable"}, tree).status is Status.NOT_APPLICABLE


def test_deep_idle_states_disabled_on_isolated_cpus(tree: Path) -> None:
    raw = {"path": IDLE, "cpus": "isolated", "where": DEEP, "value": 1}
    outcome = judge(raw, tree)
    assert (outcome.status, outcome.message) == (
        Status.PASS, f"{IDLE} == 1 where latency >= 11 for isolated CPUs 2-5 holds")
    # only C6 (133 us) is judged: POLL, C1 and C1E are within the bound
    assert [(r["key"], r["where"]) for r in outcome.evidence.items] == [
        (f"devices/system/cpu/cpu{n}/cpuidle/state3/disable", "latency = 133")
        for n in range(2, 6)]
    put(tree / "sys/devices/system/cpu/cpu3/cpuidle/state3/disable", "0")
    failed = judge(raw, tree)
    assert (failed.status, failed.message) == (
        Status.FAIL, f"expected {IDLE} == 1 where latency >= 11 for isolated CPUs 2-5, found "
        "devices/system/cpu/cpu3/cpuidle/state3/disable = 0")
    housekeeping = judge({**raw, "cpus": "0-1"}, tree)
    assert housekeeping.status is Status.FAIL
    assert housekeeping.message.endswith("cpu0/cpuidle/state3/disable = 0, "
                                         "devices/system/cpu/cpu1/cpuidle/state3/disable = 0")


def test_where_with_no_deep_state_and_with_no_latency(tree: Path) -> None:
    shutil.rmtree(tree / "sys/devices/system/cpu/cpu2/cpuidle/state3")  # max_cstate=1-like
    raw = {"path": IDLE, "cpus": "2", "where": DEEP, "value": 1}
    outcome = judge(raw, tree)
    assert outcome.status is Status.PASS
    assert keys(outcome) == [(2, "devices/system/cpu/cpu2/cpuidle/state*/disable", None, "pass")]
    assert outcome.evidence.items[0]["reason"] == "none of 3 matches has latency >= 11"
    (tree / "sys/devices/system/cpu/cpu2/cpuidle/state1/latency").unlink()
    broken = judge(raw, tree)
    assert (broken.status, broken.message) == (
        Status.ERROR, "cannot evaluate: devices/system/cpu/cpu2/cpuidle/state1/disable: no "
        "devices/system/cpu/cpu2/cpuidle/state1/latency beside it")


def test_where_without_cpus(tree: Path) -> None:
    raw = {"path": "devices/system/cpu/cpu*/cpuidle/state*/disable",
           "where": {"file": "name", "value": "C6"}, "value": 1}
    outcome = judge(raw, tree)
    assert outcome.status is Status.FAIL
    assert [r["key"].split("/")[3] for r in outcome.evidence.items
            if r["verdict"] == "fail"] == ["cpu0", "cpu1", "cpu6", "cpu7"]


def cat(path: str) -> str | None:
    """What ``cat`` prints for ``path``, None when it has no such file."""
    done = subprocess.run([need_tool("cat"), path], capture_output=True, text=True, timeout=30,
                          check=False)
    if done.returncode != 0:
        assert "No such file or directory" in done.stderr, done.stderr
        return None
    return done.stdout.strip()


def test_this_host_governor_as_cat_reads_it() -> None:
    present = cat("/sys/devices/system/cpu/present")
    assert present is not None
    outcome = judge({"path": GOVERNOR, "cpus": "all", "value": "performance"}, Path("/"))
    rows = outcome.evidence.items
    assert [r["cpu"] for r in rows] == sorted(parse_cpu_list(present))
    for row in rows:
        text = cat(f"/sys/{row['key']}")
        assert row["value"] == text
        if text is None:  # no cpufreq driver (a VM): said, and never a pass
            assert (row["reason"], row["verdict"]) == ("no such file", "error")
    if any(cat(f"/sys/{r['key']}") is None for r in rows):
        assert outcome.status is Status.ERROR
        assert "no such file" in outcome.message
    else:
        assert outcome.status is (Status.PASS if all(cat(f"/sys/{r['key']}") == "performance"
                                                     for r in rows) else Status.FAIL)


def test_this_host_idle_states_as_cat_reads_them() -> None:
    outcome = judge({"path": IDLE, "cpus": "online", "where": DEEP, "value": 1}, Path("/"))
    online = cat("/sys/devices/system/cpu/online")
    assert online is not None
    for cpu in sorted(parse_cpu_list(online)):
        rows = [r for r in outcome.evidence.items if r["cpu"] == cpu]
        folder = f"/sys/devices/system/cpu/cpu{cpu}/cpuidle"
        if cat(f"{folder}/state0/latency") is None:  # no cpuidle driver: said, not passed
            assert rows == [{"cpu": cpu, "key": IDLE.replace("{cpus}", str(cpu)), "value": None,
                             "reason": "no such file", "verdict": "error"}]
            assert outcome.status is not Status.PASS
            continue
        deep = [r["key"] for r in rows if "where" in r]
        states = sorted(Path(folder).glob("state*"))
        assert deep == [f"devices/system/cpu/cpu{cpu}/cpuidle/{s.name}/disable" for s in states
                        if int(cat(f"{s}/latency") or "-1") >= 11]
        for row in rows:
            if "where" in row:
                assert row["value"] == cat(f"/sys/{row['key']}")


def test_this_host_smt_as_cat_reads_it() -> None:
    control = cat("/sys/devices/system/cpu/smt/control")
    outcome = judge({"path": "devices/system/cpu/smt/control", "op": "in",
                     "value": ["off", "forceoff", "notsupported"]}, Path("/"))
    if control is None:
        assert outcome.status is Status.ERROR
    else:
        assert outcome.evidence.items[0]["value"] == control
        assert outcome.status is (Status.PASS if control in ("off", "forceoff", "notsupported")
                                  else Status.FAIL)
