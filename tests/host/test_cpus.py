"""CPU list formatting, the CPUs ``isolcpus=`` takes out of the scheduler, and the named CPU
sets read for a snapshot (on this host against ``cat``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agent.host.cmdline import parse_cmdline
from agent.host.cpus import CPU_SETS, format_cpus, isolcpus, read_cpu_set
from agent.host.facts import ReadError
from agent.host.processes import parse_cpu_list
from agent.host.snapshot import SnapshotRequest, take
from tests.support import FIXTURES, need_tool


@pytest.mark.parametrize(("cpus", "text"), [
    ({0, 1, 2, 5}, "0-2,5"), ({7}, "7"), (set(), "(none)"), ({1, 3, 4, 5, 9, 10}, "1,3-5,9-10")])
def test_format_cpus(cpus: set[int], text: str) -> None:
    assert format_cpus(cpus) == text


@pytest.mark.parametrize(("line", "cpus"), [
    ("isolcpus=2-5", {2, 3, 4, 5}),
    ("isolcpus=domain,managed_irq,2-3", {2, 3}),
    ("isolcpus=managed_irq,2-3", set()),          # without domain nothing leaves load balancing
    ("isolcpus=nohz,domain,1,7", {1, 7}),
    ("isolcpus=2-1", set()),                      # malformed: isolates nothing
    ("quiet", set()),
    ("isolcpus=1 isolcpus=3", {3}),               # the last occurrence is the one in force
])
def test_isolcpus(line: str, cpus: set[int]) -> None:
    assert isolcpus(parse_cmdline(line)) == frozenset(cpus)


@pytest.mark.parametrize("name", sorted(CPU_SETS))
def test_cpu_sets_of_this_host_as_cat_reads_them(name: str) -> None:
    path = f"/sys/devices/system/cpu/{CPU_SETS[name]}"
    text = subprocess.run([need_tool("cat"), path], capture_output=True, text=True, timeout=30,
                          check=True).stdout
    assert read_cpu_set(Path("/"), name) == parse_cpu_list(text)


@pytest.mark.parametrize(("text", "reason"), [
    (None, "no such file: {root}/sys/devices/system/cpu/online"),
    ("", "{root}/sys/devices/system/cpu/online is empty"),
    ("0-x\n", "{root}/sys/devices/system/cpu/online: not a CPU list: '0-x'"),
])
def test_cpu_set_unknown(tmp_path: Path, text: str | None, reason: str) -> None:
    folder = tmp_path / "sys" / "devices" / "system" / "cpu"
    folder.mkdir(parents=True)
    if text is not None:
        (folder / "online").write_text(text, encoding="utf-8")
    assert read_cpu_set(tmp_path, "online") == ReadError(reason.format(root=tmp_path))


def test_snapshot_reads_the_sets_asked_for() -> None:
    tree = FIXTURES / "hosts" / "irq-isolated"  # isolcpus=managed_irq,domain,2-5 nohz_full=2-5
    snap = take(tree, SnapshotRequest(cpu_sets=frozenset({"isolated", "online"})))
    assert snap.cpu_sets["isolated"] == frozenset({2, 3, 4, 5})
    assert isinstance(snap.cpu_sets["online"], ReadError)  # the tree has no online file
    assert snap.cmdline is None and snap.cgroups is None  # read for the set, not handed out
    assert take(tree, SnapshotRequest()).cpu_sets == {}
