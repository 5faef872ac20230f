"""``timesync`` checks: adjtimex state and error bounds, clocksource and PTP clocks; hand-built
clock readings for the verdicts, the fixture tree for sysfs, the live host against the
``adjtimex`` tool."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.checks import KINDS
from agent.checks.base import SpecError
from agent.checks.timesync import CLOCKSOURCE, PTP_CLOCKS, TimesyncKind, TimesyncSpec
from agent.host.clock import KernelClock
from agent.host.facts import ReadError
from agent.host.snapshot import Snapshot, SnapshotRequest, take
from agent.result import Status
from tests.authoring import check, policy, write
from tests.checks.snapshots import FACTS
from tests.support import FIXTURES, need_tool, run_cli

KIND = TimesyncKind()
TREE = FIXTURES / "hosts" / "timesync-ptp"
LOCKED = KernelClock(state=0, status=0x2001, maxerror=37, esterror=2, offset=-120, freq=-4000)
UNSYNC = KernelClock(state=5, status=0x40, maxerror=16000000, esterror=16000000, offset=0,
                     freq=0)


def judge(raw: dict[str, Any], clock: KernelClock | ReadError | None,
          sysfs: dict[str, Any] | None = None) -> tuple[Status, str, list[dict[str, Any]]]:
    spec = KIND.parse(raw)
    snap = Snapshot(root="/x", facts=FACTS, sysfs=dict(sysfs or {}), clock=clock)
    outcome = KIND.evaluate(spec, snap)
    return outcome.status, outcome.message, [dict(r) for r in outcome.evidence.items]


def test_registered_parse_and_request() -> None:
    assert isinstance(KINDS["timesync"], TimesyncKind)
    spec = KIND.parse({"synchronized": True, "maxerror_us": 100, "clocksource": "tsc"})
    assert spec == TimesyncSpec(True, 100, None, ("tsc",), False)
    assert KIND.request(spec) == SnapshotRequest(clock=True, sysfs=frozenset({CLOCKSOURCE}))
    ptp = KIND.parse({"ptp": True})
    assert KIND.request(ptp) == SnapshotRequest(sysfs=frozenset({PTP_CLOCKS}))
    with pytest.raises(SpecError, match="timesync check expects nothing"):
        KIND.parse({"clocksource": []})


def test_docstring_examples() -> None:
    sysfs = {CLOCKSOURCE: {CLOCKSOURCE: "tsc"},
             PTP_CLOCKS: {"class/ptp/ptp0/clock_name": "mlx5_ptp"}}
    status, message, rows = judge({"synchronized": True, "maxerror_us": 100, "clocksource": "tsc",
                                   "ptp": True}, LOCKED, sysfs)
    assert status is Status.PASS, message
    assert [r["finding"] for r in rows] == [
        "adjtimex status 0x2001 (STA_PLL, STA_NANO), clock state TIME_OK", "maxerror 37 us",
        "clocksource tsc", "PTP clocks ptp0 (mlx5_ptp)"]
    status, message, _ = judge({"synchronized": True, "maxerror_us": 1000}, UNSYNC)
    assert status is Status.FAIL
    assert message == ("adjtimex status 0x40 (STA_UNSYNC), clock state TIME_ERROR; "
                       "maxerror 16000000 us")


@pytest.mark.parametrize(
    ("clock", "bound", "status"),
    [
        (LOCKED, {"maxerror_us": 37}, Status.PASS),
        (LOCKED, {"maxerror_us": 36}, Status.FAIL),
        (LOCKED, {"esterror_us": 1}, Status.FAIL),
        (LOCKED, {"esterror_us": 2}, Status.PASS),
        # a leap second pending: synchronized, but the state is not TIME_OK
        (KernelClock(1, 0x11, 10, 1, 0, 0), {"synchronized": True}, Status.FAIL),
        (KernelClock(0, 0x41, 10, 1, 0, 0), {"synchronized": True}, Status.FAIL),
    ],
)
def test_bounds_and_state(clock: KernelClock, bound: dict[str, Any], status: Status) -> None:
    assert judge(bound, clock)[0] is status


def test_unreadable_is_an_error() -> None:
    status, message, _ = judge({"synchronized": True, "clocksource": "tsc"}, None)
    assert status is Status.ERROR
    assert message == ("cannot evaluate: the kernel clock was not read; "
                       f"/sys/{CLOCKSOURCE} was not found")
    status, message, _ = judge({"ptp": True}, None,
                               {PTP_CLOCKS: {"class/ptp": ReadError("permission denied: x")}})
    assert (status, message) == (Status.ERROR, "cannot evaluate: permission denied: x")


def test_fixture_tree_reads_sysfs_and_refuses_the_clock() -> None:
    spec = KIND.parse({"synchronized": True, "clocksource": ["tsc"], "ptp": True})
    outcome = KIND.evaluate(spec, take(TREE, KIND.request(spec)))
    # the clocksource fails (hpet): a failure outweighs the clock that cannot be read here
    assert outcome.status is Status.FAIL
    assert [r["verdict"] for r in outcome.evidence.items] == ["error", "fail", "pass"]
    assert outcome.evidence.items[0]["finding"] == (
        f"the kernel clock (adjtimex) is only read on the live host, not under --root {TREE}")
    assert outcome.evidence.items[2]["finding"] == (
        "PTP clocks ptp0 (e1000e), ptp1 (KVM virtual PTP)")
    assert KIND.evaluate(KIND.parse({"synchronized": True}),
                         take(TREE, SnapshotRequest(clock=True))).status is Status.ERROR
    none = KIND.evaluate(KIND.parse({"ptp": True}), take(FIXTURES / "hosts" / "kmod-debian",
                                                         SnapshotRequest(sysfs=frozenset(
                                                             {PTP_CLOCKS}))))
    assert (none.status, none.message) == (Status.FAIL, "no PTP hardware clock in /sys/class/ptp")


def test_live_verdict_is_what_adjtimex_says(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", policy("clock", [
        check("TIME-1", "timesync", {"synchronized": True})]))
    done = run_cli("audit", "--policy", str(path), "--format", "json")
    (result,) = json.loads(done.stdout)["results"]
    tool = subprocess.run([need_tool("adjtimex"), "--print"], capture_output=True, text=True,
                          timeout=60, check=True).stdout
    status = int(re.search(r"status:\s*(\d+)", tool).group(1))  # type: ignore[union-attr]
    state = int(re.search(r"return value = (\d+)", tool).group(1))  # type: ignore[union-attr]
    synced = not status & 64 and state == 0
    assert result["status"] == ("pass" if synced else "fail"), result
    live = Path("/sys") / CLOCKSOURCE
    clocksource = run_cli("audit", "--policy", str(write(tmp_path / "c.yaml", policy("cs", [
        check("TIME-2", "timesync", {"clocksource": live.read_text().strip()})]))),
        "--format", "json")
    assert clocksource.returncode == 0, clocksource.stdout


def test_a_filtered_adjtimex_is_an_error_naming_the_filter(tmp_path: Path) -> None:
    # What the shipped unit's ProtectClock= does: adjtimex refused with EPERM by a filter.
    profile = tmp_path / "no-clock.yaml"
    profile.write_text("apiVersion: hostguard/v1\nkind: SeccompProfile\nmetadata: {name: t}\n"
                       "default_action: allow\ndeny:\n  - syscalls: [adjtimex, clock_adjtime]\n")
    path = write(tmp_path / "p.yaml", policy("clock", [
        check("TIME-1", "timesync", {"synchronized": True})]))
    done = run_cli("exec", "--profile", str(profile), "--", sys.executable, "-m", "agent",
                   "audit", "--policy", str(path), "--format", "json")
    (result,) = json.loads(done.stdout)["results"]
    assert (done.returncode, result["status"]) == (3, "error"), done.stderr
    assert result["message"] == ("cannot evaluate: adjtimex: operation not permitted (a system "
                                 "call filter refuses it, e.g. systemd's ProtectClock=; under "
                                 "hostguard.service: install-service --clock-read)")
