"""``irq`` checks: IRQs on the isolated CPUs of the fixture tree, allowed names, irqbalance's
bans, fail-closed reads; and on this host, with a CPU the policy names, against the
``/proc/interrupts`` counters the host reader's test reads by a separate script."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from agent.checks import KINDS
from agent.checks.base import SpecError
from agent.checks.irq import IrqKind, IrqSpec
from agent.host.snapshot import Snapshot, SnapshotRequest, take
from agent.result import Status
from tests.authoring import check, policy, write
from tests.checks.snapshots import FACTS
from tests.host.irq_oracle import delivered
from tests.support import FIXTURES, need, run_cli

KIND = IrqKind()
TREE = FIXTURES / "hosts" / "irq-isolated"


def judge(raw: dict[str, Any], root: Path = TREE) -> tuple[Status, str, list[dict[str, Any]]]:
    spec = KIND.parse(raw)
    outcome = KIND.evaluate(spec, take(root, KIND.request(spec)))
    return outcome.status, outcome.message, [dict(r) for r in outcome.evidence.items]


def test_registered_parse_and_request() -> None:
    assert isinstance(KINDS["irq"], IrqKind)
    spec = KIND.parse({"allow": ["mlx5_comp*"], "cpus": "2-5,7"})
    assert spec == IrqSpec(("mlx5_comp*",), frozenset({2, 3, 4, 5, 7}), True, "error")
    assert KIND.request(spec) == SnapshotRequest(irqs=True)
    assert KIND.parse({}) == IrqSpec((), None, True, "error")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"allow": ["mlx5_[comp"]}, "invalid glob 'mlx5_[comp': '[' at position 6 is never closed"),
        ({"cpus": "2-x"}, "invalid CPU list '2-x'"),
        ({"cpus": ","}, "invalid CPU list ','"),
    ],
)
def test_spec_problems(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as caught:
        KIND.parse(raw)
    assert [p.message for p in caught.value.problems] == [message]


def test_fixture_offenders_named_with_their_cpus() -> None:
    status, message, rows = judge({"allow": ["mlx5_comp*"]})
    assert status is Status.FAIL
    assert message == (
        "IRQ 26 (nvme0q1) on isolated CPUs 2-5 (smp_affinity_list 0-7, effective_affinity_list "
        "6); IRQ 27 (eth1-TxRx-0) on isolated CPUs 3 (smp_affinity_list 0-1, "
        "effective_affinity_list 3); irqbalance (pid 812) does not ban CPUs 5 (it bans 2-4: "
        "IRQBALANCE_BANNED_CPULIST=2-4)")
    assert [(r.get("irq"), r["verdict"]) for r in rows] == [
        (25, "pass"), (26, "fail"), (27, "fail"), (None, "pass"), (None, "fail")]
    assert rows[0]["finding"].endswith("allowed by 'mlx5_comp*'")
    assert rows[3]["finding"] == "4 IRQs off CPUs 2-5; 1 without a handler not judged"


def test_fixture_passes_with_every_offender_allowed() -> None:
    status, message, _ = judge({"allow": ["mlx5_comp*", "nvme*", "eth1-*"], "irqbalance": False})
    assert (status, message) == (Status.PASS, "no IRQ delivered to isolated CPUs 2-5 holds")
    # the policy's own CPUs instead of the host's
    assert judge({"cpus": "0"})[1].startswith("IRQ 0 (timer) on isolated CPUs 0 ")


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    shutil.copytree(TREE, root, symlinks=True)
    return root


def test_unreadable_is_an_error(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / "proc/irq/28/smp_affinity_list").unlink()
    (root / "proc/irq/28/smp_affinity_list").mkdir()
    status, message, _ = judge({"allow": ["*"], "irqbalance": False}, root)
    assert status is Status.ERROR
    assert message == ("cannot evaluate: IRQ 28 (i8042, ehci_hcd:usb1): is a directory: "
                       f"{root}/proc/irq/28/smp_affinity_list")
    (root / "sys/devices/system/cpu/isolated").write_text("2-x\n")
    status, message, _ = judge({}, root)
    assert status is Status.ERROR and message.startswith(
        "cannot evaluate: the isolated CPUs are unknown: cannot parse")
    (root / "proc/interrupts").unlink()
    status, message, _ = judge({"cpus": "2"}, root)
    # irqbalance bans CPU 2: that row passes, the IRQs cannot be judged
    assert (status, message) == (Status.ERROR, "cannot evaluate: no such file: "
                                 f"{root}/proc/interrupts")


def test_no_isolated_cpu(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / "proc/cmdline").write_text("ro quiet\n")
    for name in ("isolated", "nohz_full"):
        (root / "sys/devices/system/cpu" / name).write_text("\n")
    assert judge({}, root)[:2] == (Status.ERROR, "this host isolates no CPU")
    assert judge({"missing": "not_applicable"}, root)[0] is Status.NOT_APPLICABLE


def test_not_read_is_an_error() -> None:
    outcome = KIND.evaluate(KIND.parse({}), Snapshot(root="/x", facts=FACTS))
    assert (outcome.status, outcome.message) == (Status.ERROR, "the IRQs were not read")


def test_live_offenders_include_every_irq_delivered_to_the_cpu(tmp_path: Path) -> None:
    grown, _ = delivered()
    need(bool(grown), "no device interrupt was delivered during disk I/O")
    for cpu in sorted({cpu for _, cpu in grown}):
        path = write(tmp_path / f"p{cpu}.yaml", policy("irq", [
            check("IRQ-1", "irq", {"cpus": str(cpu), "irqbalance": False})]))
        done = run_cli("audit", "--policy", str(path), "--format", "json")
        (result,) = json.loads(done.stdout)["results"]
        assert result["status"] == "fail", result
        flagged = {row["irq"] for row in result["evidence"]["items"] if row.get("irq") is not None
                   and row["verdict"] == "fail"}
        assert {irq for irq, on in grown if on == cpu} <= flagged
