"""Self-placement: housekeeping CPUs from the kernel command line and cpuset partitions."""

from __future__ import annotations

from pathlib import Path

from agent.daemon.placement import housekeeping_cpus
from agent.host.cpus import format_cpus
from tests.authoring import TRADING_ROOT

MOUNTINFO = ("30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 "
             "cgroup2 rw,nsdelegate\n")


def host(root: Path, cmdline: str, online: str = "0-7") -> Path:
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/cmdline").write_text(cmdline + "\n")
    (root / "proc/self/mountinfo").write_text(MOUNTINFO)
    cpu = root / "sys/devices/system/cpu"
    cpu.mkdir(parents=True)
    (cpu / "online").write_text(online + "\n")
    (root / "sys/fs/cgroup").mkdir(parents=True)
    (root / "sys/fs/cgroup/cgroup.controllers").write_text("cpuset cpu memory pids\n")
    return root


def partition(root: Path, name: str, state: str, cpus: str) -> None:
    folder = root / "sys/fs/cgroup" / name
    folder.mkdir()
    (folder / "cpuset.cpus.partition").write_text(state + "\n")
    (folder / "cpuset.cpus.effective").write_text(cpus + "\n")


def test_isolcpus_nohz_full_and_isolated_partitions_are_excluded(tmp_path: Path) -> None:
    root = host(tmp_path, "ro isolcpus=managed_irq,domain,2-3 nohz_full=4 quiet")
    partition(root, "trading.slice", "isolated", "6-7")
    partition(root, "batch.slice", "root", "5")  # a root partition is not isolated
    house = housekeeping_cpus(root)
    assert house.cpus == frozenset({0, 1, 5})
    assert house.online == frozenset(range(8))
    assert house.excluded == ("isolcpus (domain) 2-3", "nohz_full 4",
                              "isolated partition /trading.slice 6-7")
    assert house.problems == ()


def test_managed_irq_alone_isolates_nothing(tmp_path: Path) -> None:
    house = housekeeping_cpus(host(tmp_path, "isolcpus=managed_irq,2-3", online="0-3"))
    assert (house.cpus, house.excluded) == (frozenset(range(4)), ())


def test_unreadable_parts_are_reported(tmp_path: Path) -> None:
    root = host(tmp_path, "nohz_full=junk")
    (root / "sys/devices/system/cpu/online").unlink()
    house = housekeeping_cpus(root)
    assert house.problems[0].startswith("cannot read online CPUs: ")
    assert house.problems[1] == "cannot parse nohz_full='junk'"


def test_the_trading_fixture_keeps_cpus_0_and_1() -> None:
    house = housekeeping_cpus(TRADING_ROOT)
    assert house.excluded == ("isolcpus (domain) 2-15", "nohz_full 2-15")
    assert house.cpus == house.online - frozenset(range(2, 16))


def test_format_cpus() -> None:
    assert format_cpus({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8"
    assert format_cpus(set()) == "(none)"


def test_an_invalid_isolated_partition_isolates_nothing(tmp_path: Path) -> None:
    # The kernel marks a partition it refused "isolated invalid (...)": its CPUs stay shared.
    from agent.host.cgroups import CgroupNode, CgroupTree, Hierarchy  # noqa: PLC0415
    from agent.host.cmdline import parse_cmdline  # noqa: PLC0415
    from agent.host.isolation import host_isolation  # noqa: PLC0415

    def tree(state: str) -> CgroupTree:
        node = CgroupNode("/trading.slice", {"cpuset.cpus.partition": state,
                                             "cpuset.cpus.effective": "6-7"})
        unified = Hierarchy(2, frozenset({"cpuset"}), "/sys/fs/cgroup", "/",
                            {"/trading.slice": node})
        return CgroupTree((unified,), "mountinfo")

    cmdline = parse_cmdline("quiet")
    assert host_isolation(cmdline, tree("isolated")).isolated == frozenset({6, 7})
    assert host_isolation(cmdline, tree("isolated invalid (Parent is not a partition root)")
                          ).isolated == frozenset()
