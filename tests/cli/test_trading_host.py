"""The shipped ``trading-host`` policy audited: on the isolated fixture tree (the IRQs it names,
the clock it cannot read there, the CPU power files it lacks, then has, the trading units it
selects), and on this host (its clock as the ``adjtimex`` tool says, its CPU power files as
``cat`` reads them)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from tests.host.cpu_tree import power_tree, put
from tests.support import FIXTURES, PROJECT, need_tool, run_cli

POLICY = PROJECT / "policies" / "trading-host.yaml"


def _results(*args: str) -> tuple[int, dict[str, dict[str, object]]]:
    done = run_cli("audit", "--policy", str(POLICY), "--format", "json", *args)
    return done.returncode, {r["id"]: r for r in json.loads(done.stdout)["results"]}


def test_fixture_tree() -> None:
    code, results = _results("--label", "role=gateway", "--root",
                             str(FIXTURES / "hosts" / "irq-isolated"))
    assert code == 1
    assert {cid: r["status"] for cid, r in results.items()} == {
        "TIME-001": "error", "TIME-002": "error", "TIME-003": "error", "TIME-004": "fail",
        "IRQ-001": "fail", "CPU-001": "error", "CPU-002": "error", "CPU-003": "error",
        "HUGE-001": "pass", "UNIT-001": "pass", "UNIT-002": "pass", "UNIT-003": "pass",
        "UNIT-004": "fail", "UNIT-005": "fail"}
    assert "only read on the live host" in str(results["TIME-001"]["message"])
    irqs = re.findall(r"IRQ (\d+) \(", str(results["IRQ-001"]["message"]))
    assert irqs == ["25", "26", "27"]
    # The trading units: fixgw (vendor file, the site's drop-in) and mdfeed (in /etc); chrony,
    # in no trading slice, is not one of them.
    units = {row["unit"] for cid, r in results.items() if cid.startswith("UNIT-")
             for row in r["evidence"]["items"]}  # type: ignore[index]
    assert units == {"fixgw.service", "mdfeed.service"}
    assert results["UNIT-004"]["message"] == (
        "mdfeed.service: LimitMEMLOCK=64M (/etc/systemd/system/mdfeed.service:11)")
    assert re.match(r"fixgw\.service: exposure 9\.\d UNSAFE > 2\.5; most: ",
                    str(results["UNIT-005"]["message"]))
    # the tree has no cpuN folders: each isolated CPU's missing file is named
    assert results["CPU-001"]["message"] == "cannot evaluate: " + "; ".join(
        f"devices/system/cpu/cpu{n}/cpufreq/scaling_governor: no such file" for n in range(2, 6))


def test_huge_pages_of_another_size_or_none(tmp_path: Path) -> None:
    root = tmp_path / "host"
    shutil.copytree(FIXTURES / "hosts" / "irq-isolated", root, symlinks=True)
    table = root / "proc" / "1" / "mountinfo"
    table.write_text(table.read_text().replace("pagesize=1024M", "pagesize=2M"))
    _, results = _results("--label", "role=gateway", "--root", str(root))
    assert results["HUGE-001"]["status"] == "fail"
    assert results["HUGE-001"]["message"] == "/dev/hugepages: pagesize=1G not set"
    table.write_text("".join(line for line in table.read_text().splitlines(keepends=True)
                             if "hugetlbfs" not in line))
    _, results = _results("--label", "role=gateway", "--root", str(root))
    assert results["HUGE-001"]["status"] == "fail"


def test_cpu_power_on_a_full_cpu_tree(tmp_path: Path) -> None:
    root = power_tree(tmp_path / "host")
    args = ("--label", "role=gateway", "--root", str(root))
    _, results = _results(*args)
    assert {cid: results[cid]["status"] for cid in ("CPU-001", "CPU-002", "CPU-003")} == {
        "CPU-001": "pass", "CPU-002": "pass", "CPU-003": "pass"}
    cpu = root / "sys" / "devices" / "system" / "cpu"
    put(cpu / "cpu4" / "cpufreq" / "scaling_governor", "powersave")
    put(cpu / "cpu5" / "cpuidle" / "state3" / "disable", "0")
    put(cpu / "smt" / "control", "on")
    _, results = _results(*args)
    assert {cid: results[cid]["status"] for cid in ("CPU-001", "CPU-002", "CPU-003")} == {
        "CPU-001": "fail", "CPU-002": "fail", "CPU-003": "fail"}
    assert str(results["CPU-001"]["message"]).endswith(
        "found devices/system/cpu/cpu4/cpufreq/scaling_governor = powersave")
    assert str(results["CPU-002"]["message"]).endswith(
        "found devices/system/cpu/cpu5/cpuidle/state3/disable = 0")


def test_live_cpu_power_never_passes_without_the_files() -> None:
    # This host's isolated CPUs (often none: then error, as the policy's missing says).
    _, results = _results("--label", "role=gateway")
    cat = need_tool("cat")
    for cid in ("CPU-001", "CPU-002"):
        rows = results[cid]["evidence"]["items"]  # type: ignore[index]
        for row in rows:
            if row["verdict"] == "pass" and row["value"] is None:
                continue  # "none of N matches has latency >= 11": no one file to read
            done = subprocess.run([cat, f"/sys/{row['key']}"], capture_output=True, text=True,
                                  timeout=30, check=False)
            if done.returncode != 0:
                assert row["verdict"] == "error" and results[cid]["status"] != "pass"
            else:
                assert row["value"] == done.stdout.strip()
        if not rows:
            assert results[cid]["status"] == "error"


def test_only_gateways_are_held_to_it() -> None:
    code, results = _results()
    assert code == 5  # nothing evaluated: said loudly, never read as compliant
    assert {r["status"] for r in results.values()} == {"not_applicable"}


def test_live_clock_as_adjtimex_prints_it() -> None:
    tool = subprocess.run([need_tool("adjtimex"), "--print"], capture_output=True, text=True,
                          timeout=60, check=True).stdout
    status = int(re.search(r"status:\s*(\d+)", tool).group(1))  # type: ignore[union-attr]
    state = int(re.search(r"return value = (\d+)", tool).group(1))  # type: ignore[union-attr]
    _, results = _results("--label", "role=gateway")
    synced = not status & 64 and state == 0
    assert results["TIME-001"]["status"] == ("pass" if synced else "fail")
