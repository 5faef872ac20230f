"""The shipped ``trading-host`` policy audited: on the isolated fixture tree (the IRQs it names,
the clock it cannot read there, the trading units it selects) and on this host (its clock as the
``adjtimex`` tool says)."""

from __future__ import annotations

import json
import re
import subprocess

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
        "IRQ-001": "fail", "UNIT-001": "pass", "UNIT-002": "pass", "UNIT-003": "pass",
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
