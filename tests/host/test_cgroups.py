"""The cgroup reader against fixture trees (pure v2, v1 with name=systemd) and real cgroups."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.host.cgroups import (
    V1_UNLIMITED,
    CgroupNode,
    CgroupTree,
    Hierarchy,
    Reading,
    cpu_shares_to_weight,
    cpu_weight_to_shares,
    flat_keyed,
    own_cpuset,
    parse_io,
    parse_quota,
    parse_size,
    read_cgroups,
    read_counter,
    read_setting,
    setting_hierarchy,
    show_size,
)
from agent.host.facts import ReadError
from agent.host.processes import CgroupMembership, read_processes
from tests.support import FIXTURES, need, need_root

V2 = FIXTURES / "hosts" / "cgroup-v2-trading"
V1 = FIXTURES / "hosts" / "cgroup-v1-trading"
LIVE = Path("/")


def tree_of(root: Path) -> CgroupTree:
    tree = read_cgroups(root)
    assert isinstance(tree, CgroupTree), tree
    return tree


# --- pure v2 ----------------------------------------------------------------------------------


def test_pure_v2_layout() -> None:
    tree = tree_of(V2)
    assert tree.source == "/proc/self/mountinfo"
    assert [(h.version, h.mount_point, h.mount_root) for h in tree.hierarchies] == [
        (2, "/sys/fs/cgroup", "/")]
    unified = tree.unified
    assert unified is not None
    assert unified.controllers == {"cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma",
                                   "misc"}
    assert list(unified.nodes) == [
        "/", "/init.scope", "/system.slice", "/system.slice/cron.service",
        "/system.slice/gateway.service", "/trading.slice", "/trading.slice/backtest.service",
        "/trading.slice/fixgw.service", "/trading.slice/mdfeed.service"]
    assert unified.errors == ()
    for controller in ("memory", "cpu", "cpuset", "pids", "io"):
        assert tree.for_controller(controller) is unified
    assert tree.for_controller("blkio") is None


def test_v2_files_are_raw_text() -> None:
    unified = tree_of(V2).unified
    assert unified is not None
    gateway = unified.nodes["/system.slice/gateway.service"]
    assert gateway.files["memory.max"] == "2147483648"
    assert gateway.files["cpu.max"] == "50000 100000"
    assert gateway.files["io.max"] == "8:0 rbps=max wbps=10485760 riops=max wiops=max"
    assert flat_keyed(str(gateway.files["cpu.stat"]))["nr_throttled"] == 17
    assert flat_keyed(str(gateway.files["memory.events"]))["oom_kill"] == 1
    assert gateway.procs() == frozenset({1101, 1102})
    # Only the files of interest are kept: cgroup.subtree_control is not one of them.
    assert "cgroup.subtree_control" not in unified.nodes["/system.slice"].files
    # A cgroup where only pids is enabled has no memory.max at all.
    assert sorted(unified.nodes["/system.slice/cron.service"].files) == [
        "cgroup.controllers", "cgroup.procs", "pids.max"]
    assert unified.nodes["/trading.slice"].files["cpuset.cpus.partition"] == "isolated"
    assert unified.host_path("/trading.slice/fixgw.service", "cpu.max") == \
        "/sys/fs/cgroup/trading.slice/fixgw.service/cpu.max"
    assert unified.host_path("/", "cgroup.procs") == "/sys/fs/cgroup/cgroup.procs"


# --- v1 ---------------------------------------------------------------------------------------


def test_v1_hierarchies_per_controller() -> None:
    tree = tree_of(V1)
    assert tree.unified is None
    assert [(h.label, h.mount_point) for h in tree.hierarchies] == [
        ("cgroup v1 (blkio)", "/sys/fs/cgroup/blkio"),
        ("cgroup v1 (cpu,cpuacct)", "/sys/fs/cgroup/cpu,cpuacct"),
        ("cgroup v1 (cpuset)", "/sys/fs/cgroup/cpuset"),
        ("cgroup v1 (memory)", "/sys/fs/cgroup/memory"),
        ("cgroup v1 (pids)", "/sys/fs/cgroup/pids"),
        ("cgroup v1 (name=systemd)", "/sys/fs/cgroup/systemd"),
    ]
    systemd = tree.hierarchies[-1]
    # "xattr" is a mount option, not a controller; name=systemd is kept as the hierarchy's name.
    assert systemd.controllers == {"name=systemd"}
    assert list(systemd.nodes) == ["/", "/system.slice", "/system.slice/fixgw.service",
                                   "/system.slice/ssh.service"]
    memory = tree.for_controller("memory")
    assert memory is not None and memory.mount_point == "/sys/fs/cgroup/memory"
    assert memory.nodes["/system.slice/fixgw.service"].files["memory.limit_in_bytes"] == \
        "8589934592"
    cpu = tree.for_controller("cpuacct")
    assert cpu is not None and cpu.controllers == {"cpu", "cpuacct"}
    assert "/system.slice/fixgw.service" not in cpu.nodes


def test_v1_memberships_name_their_hierarchy() -> None:
    tree = tree_of(V1)
    table = read_processes(V1)
    fixgw = table.processes[1201]
    by_label = {h.label: tree.membership(h, fixgw.cgroups) for h in tree.hierarchies}
    assert by_label == {
        "cgroup v1 (blkio)": "/system.slice",
        "cgroup v1 (cpu,cpuacct)": "/system.slice",
        "cgroup v1 (cpuset)": "/fixgw",
        "cgroup v1 (memory)": "/system.slice/fixgw.service",
        "cgroup v1 (pids)": "/system.slice/fixgw.service",
        "cgroup v1 (name=systemd)": "/system.slice/fixgw.service",
    }
    cpu = tree.for_controller("cpu")
    assert cpu is not None
    assert not cpu.matches(CgroupMembership(4, ("cpu",), "/"))  # a different hierarchy
    assert cpu.matches(CgroupMembership(4, ("cpuacct", "cpu"), "/"))


# --- mount tables -----------------------------------------------------------------------------


def test_proc_mounts_fallback(tmp_path: Path) -> None:
    root = tmp_path / "host"
    shutil.copytree(V1, root)
    (root / "proc" / "self" / "mountinfo").unlink()
    (root / "proc" / "mounts").write_text(
        "sysfs /sys sysfs rw 0 0\n"
        "cgroup /sys/fs/cgroup/memory cgroup rw,nosuid,memory 0 0\n"
        "cgroup /sys/fs/cgroup/systemd cgroup rw,xattr,name=systemd 0 0\n")
    tree = tree_of(root)
    assert tree.source == "/proc/mounts"
    assert [(h.label, h.mount_root) for h in tree.hierarchies] == [
        ("cgroup v1 (memory)", "/"), ("cgroup v1 (name=systemd)", "/")]


def test_no_mount_table(tmp_path: Path) -> None:
    result = read_cgroups(tmp_path)
    assert isinstance(result, ReadError)
    assert result.reason == ("cannot find cgroup mounts: no such file: "
                             f"{tmp_path}/proc/self/mountinfo")


def test_escaped_mount_point_subtree_root_and_bind_mount(tmp_path: Path) -> None:
    (tmp_path / "proc" / "self").mkdir(parents=True)
    # A mount point with a space (escaped \040), a mount showing only a subtree of the
    # hierarchy (as inside a container), and the same hierarchy bind-mounted a second time.
    (tmp_path / "proc" / "self" / "mountinfo").write_text(
        "40 30 0:40 /docker/abc /cg\\040two rw - cgroup2 cgroup2 rw\n"
        "41 30 0:40 /docker/abc /again rw - cgroup2 cgroup2 rw\n")
    top = tmp_path / "cg two"
    (top / "app").mkdir(parents=True)
    (top / "cgroup.controllers").write_text("memory pids\n")
    (top / "app" / "memory.max").write_text("1048576\n")
    tree = tree_of(tmp_path)
    assert len(tree.hierarchies) == 1
    unified = tree.hierarchies[0]
    assert (unified.mount_point, unified.mount_root) == ("/cg two", "/docker/abc")
    assert list(unified.nodes) == ["/docker/abc", "/docker/abc/app"]
    assert unified.nodes["/docker/abc/app"].files == {"memory.max": "1048576"}
    assert unified.host_path("/docker/abc/app", "memory.max") == "/cg two/app/memory.max"


def test_unreadable_file_and_missing_mount_point(tmp_path: Path) -> None:
    (tmp_path / "proc" / "self").mkdir(parents=True)
    (tmp_path / "proc" / "self" / "mountinfo").write_text(
        "32 31 0:29 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
        "33 31 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n")
    pids = tmp_path / "sys" / "fs" / "cgroup" / "pids"
    pids.mkdir(parents=True)
    (pids / "elsewhere").write_text("64\n")
    (pids / "pids.max").symlink_to("elsewhere")  # never followed
    tree = tree_of(tmp_path)
    memory, pids_h = tree.hierarchies
    assert memory.errors == (
        f"mount point is not a directory: {tmp_path}/sys/fs/cgroup/memory",)
    value = pids_h.nodes["/"].files["pids.max"]
    assert isinstance(value, ReadError)
    assert value.reason == f"Too many levels of symbolic links: {pids}/pids.max"


# --- values -----------------------------------------------------------------------------------


def test_sizes_quotas_and_weights() -> None:
    assert parse_size("512M") == 536870912
    assert parse_size("2G") == 2147483648
    assert parse_size("4096") == 4096
    assert parse_size("max") is None
    with pytest.raises(ValueError):
        parse_size("2GB")
    assert show_size(8589934592) == "8589934592 (8G)"
    assert show_size(1000) == "1000"
    assert parse_quota("max 100000") == (None, 100000)
    assert parse_quota("50000 200000") == (50000, 200000)
    assert parse_quota("150%") == (150000, 100000)
    with pytest.raises(ValueError):
        parse_quota("50000 0")
    assert parse_io("8:0 rbps=max wbps=10485760\n8:16 rbps=max") == {"8:0": {"wbps": "10485760"}}
    with pytest.raises(ValueError):
        parse_io("sda wbps=1")
    # systemd: CPUWeight=100 <-> CPUShares=1024, clamped to the v1/v2 ranges.
    assert [cpu_weight_to_shares(w) for w in (1, 50, 100, 10000)] == [10, 512, 1024, 102400]
    assert [cpu_shares_to_weight(s) for s in (2, 512, 1024, 262144)] == [1, 50, 100, 10000]


def reading(h: Hierarchy, node: CgroupNode, setting: str) -> Reading:
    found = read_setting(h, node, setting)
    assert isinstance(found, Reading), found
    return found


def _v2_hierarchy() -> Hierarchy:
    unified = tree_of(V2).unified
    assert unified is not None
    return unified


def test_v2_settings_read_from_their_files() -> None:
    h = _v2_hierarchy()
    gateway = h.nodes["/system.slice/gateway.service"]
    at = "/sys/fs/cgroup/system.slice/gateway.service/"
    assert read_setting(h, gateway, "memory.max") == Reading(
        2147483648, "2147483648 (2G)", (at + "memory.max",), 2)
    assert read_setting(h, gateway, "cpu.max") == Reading(
        (50000, 100000), "50000 100000 (50% of one CPU)", (at + "cpu.max",), 2)
    assert read_setting(h, gateway, "io.max") == Reading(
        {"8:0": {"wbps": "10485760"}}, "8:0 rbps=max wbps=10485760 riops=max wiops=max",
        (at + "io.max",), 2)
    assert read_setting(h, gateway, "cpuset.cpus") == Reading(
        frozenset({0, 1}), "0-1", (at + "cpuset.cpus.effective",), 2,
        "configured cpuset.cpus = 0-1")
    assert reading(h, h.nodes["/trading.slice"], "cpuset.cpus.partition").value == \
        "isolated"
    assert reading(h, h.nodes["/trading.slice/fixgw.service"], "memory.high").value is None


def test_v2_missing_files_that_mean_max_and_those_that_do_not() -> None:
    h = _v2_hierarchy()
    cron = h.nodes["/system.slice/cron.service"]  # only pids enabled
    assert read_setting(h, cron, "memory.max") == Reading(
        None, "max", ("/sys/fs/cgroup/system.slice/cron.service",), 2,
        "the memory controller is not enabled for this cgroup")
    assert reading(h, cron, "cpu.max").value == (None, 100000)
    assert reading(h, h.nodes["/"], "pids.max").note == "the root cgroup has no limit"
    # Weights have no "max": a missing file is missing.
    assert read_setting(h, cron, "cpu.weight") == \
        "/sys/fs/cgroup/system.slice/cron.service/cpu.weight does not exist"
    # A cgroup without the cpuset controller runs on its nearest ancestor's CPUs.
    assert read_setting(h, cron, "cpuset.cpus") == Reading(
        frozenset({0, 1, 6, 7}), "0-1,6-7", ("/sys/fs/cgroup/system.slice/cpuset.cpus.effective",),
        2, "inherited from /system.slice")


def _v1(files: dict[str, str | ReadError], controllers: str = "memory") -> tuple[Hierarchy,
                                                                                  CgroupNode]:
    node = CgroupNode("/app", files)
    hierarchy = Hierarchy(1, frozenset(controllers.split(",")), f"/sys/fs/cgroup/{controllers}",
                          "/", {"/": CgroupNode("/", {}), "/app": node})
    return hierarchy, node


def test_v1_memory_limits_and_swap() -> None:
    h, node = _v1({"memory.limit_in_bytes": "8589934592",
                   "memory.memsw.limit_in_bytes": "9663676416"})
    at = "/sys/fs/cgroup/memory/app/"
    assert read_setting(h, node, "memory.max") == Reading(
        8589934592, "8589934592 (8G)", (at + "memory.limit_in_bytes",), 1)
    assert read_setting(h, node, "memory.swap.max") == Reading(
        1 << 30, "1073741824 (1G)",
        (at + "memory.limit_in_bytes", at + "memory.memsw.limit_in_bytes"), 1,
        "memory.memsw.limit_in_bytes - memory.limit_in_bytes")
    huge = str(V1_UNLIMITED + 4096)  # PAGE_COUNTER_MAX pages: unlimited
    h, node = _v1({"memory.limit_in_bytes": huge, "memory.memsw.limit_in_bytes": huge})
    assert reading(h, node, "memory.max").value is None
    assert reading(h, node, "memory.swap.max").note == "memory+swap is unlimited"
    h, node = _v1({"memory.limit_in_bytes": "4096"})
    assert read_setting(h, node, "memory.swap.max") == (
        "/sys/fs/cgroup/memory/app/memory.memsw.limit_in_bytes does not exist (kernel without "
        "swap accounting: boot with swapaccount=1)")
    h, node = _v1({"memory.limit_in_bytes": "lots"})
    assert read_setting(h, node, "memory.max") == (
        "/sys/fs/cgroup/memory/app/memory.limit_in_bytes: unexpected content 'lots'")
    h, node = _v1({"memory.limit_in_bytes": ReadError("Permission denied")})
    assert read_setting(h, node, "memory.max") == "Permission denied"


def test_v1_cpu_quota_weight_and_cpuset() -> None:
    h, node = _v1({"cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "100000",
                   "cpu.shares": "2048"}, "cpu,cpuacct")
    assert read_setting(h, node, "cpu.max") == Reading(
        (None, 100000), "max 100000", ("/sys/fs/cgroup/cpu,cpuacct/app/cpu.cfs_quota_us",
                                       "/sys/fs/cgroup/cpu,cpuacct/app/cpu.cfs_period_us"),
        1, "cfs_quota_us -1 is max")
    weight = read_setting(h, node, "cpu.weight")
    assert isinstance(weight, Reading)
    assert (weight.value, weight.shown) == (("shares", 2048), "cpu.shares 2048 (cpu.weight 200)")
    h, node = _v1({"cpuset.cpus": "2-3"}, "cpuset")  # before Linux 3.17: no effective list
    assert read_setting(h, node, "cpuset.cpus") == Reading(
        frozenset({2, 3}), "2-3", ("/sys/fs/cgroup/cpuset/app/cpuset.cpus",), 1)
    h, node = _v1({"pids.max": "max"}, "pids")
    assert read_setting(h, node, "pids.max") == Reading(
        None, "max", ("/sys/fs/cgroup/pids/app/pids.max",), 1)


def test_the_hierarchy_each_setting_is_read_from() -> None:
    v2, v1 = tree_of(V2), tree_of(V1)
    assert setting_hierarchy(v2, "io.max") is v2.unified
    memory = setting_hierarchy(v1, "memory.max")
    assert isinstance(memory, Hierarchy) and memory.label == "cgroup v1 (memory)"
    assert setting_hierarchy(v1, "io.max") == (
        "io.max: cgroup v1 blkio.throttle.* files have no single io.max equivalent")
    assert setting_hierarchy(CgroupTree((), "/proc/self/mountinfo"), "pids.max") == (
        "the pids controller is not mounted on this host")


def test_counters() -> None:
    h = _v2_hierarchy()
    gateway = h.nodes["/system.slice/gateway.service"]
    assert read_counter(h, gateway, "throttled") == (
        17, "nr_throttled 17 throttled_usec 912345",
        "/sys/fs/cgroup/system.slice/gateway.service/cpu.stat")
    assert read_counter(h, gateway, "oom_kill")[:2] == (1, "oom_kill 1")
    assert read_counter(h, h.nodes["/"], "oom_kill") == \
        "/sys/fs/cgroup/memory.events does not exist"
    old, node = _v1({"memory.oom_control": "oom_kill_disable 0\nunder_oom 0",
                     "memory.failcnt": "3"})
    assert read_counter(old, node, "oom_kill") == (
        "/sys/fs/cgroup/memory/app/memory.oom_control has no oom_kill (kernel before 4.13; "
        "memory.failcnt = 3)")


def test_own_cpuset() -> None:
    h = _v2_hierarchy()
    assert own_cpuset(h, h.nodes["/trading.slice"]) == ("2-5", frozenset({2, 3, 4, 5}))
    assert own_cpuset(h, h.nodes["/system.slice/cron.service"]) is None  # inherits
    v1, node = _v1({"cpuset.cpus": "1-2", "cpuset.effective_cpus": "2"}, "cpuset")
    assert own_cpuset(v1, node) == ("1-2", frozenset({2}))  # what the kernel grants
    v1, node = _v1({"cpuset.cpus": "x"}, "cpuset")
    assert own_cpuset(v1, node) == "/sys/fs/cgroup/cpuset/app: unreadable cpuset"


# --- the live host: real cgroups --------------------------------------------------------------


def _wait_gone(path: Path, deadline: float = 5.0) -> None:
    """rmdir a cgroup, retrying while the kernel finishes releasing a killed member."""
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
def unified_child() -> Iterator[tuple[str, int]]:
    """A sleep moved into a new cgroup of the live cgroup2 hierarchy (hybrid: .../unified)."""
    need_root()
    tree = read_cgroups(LIVE)
    unified = tree.unified if isinstance(tree, CgroupTree) else None
    need(unified is not None, "no cgroup2 hierarchy mounted")
    assert unified is not None
    name = f"hg-test-{secrets.token_hex(4)}"
    directory = Path(unified.mount_point) / name
    child = subprocess.Popen(["sleep", "60"])
    try:
        directory.mkdir()
        (directory / "cgroup.procs").write_text(f"{child.pid}\n")
        yield f"/{name}", child.pid
    finally:
        child.kill()
        child.wait()
        _wait_gone(directory)


@pytest.mark.root
def test_live_unified_cgroup_membership(unified_child: tuple[str, int]) -> None:
    path, pid = unified_child
    tree = tree_of(LIVE)
    unified = tree.unified
    assert unified is not None
    node = unified.nodes[path]
    assert node.procs() == frozenset({pid})
    # A child offers exactly the controllers its parent enables for it.
    enabled = (Path(unified.mount_point) / "cgroup.subtree_control").read_text().strip()
    assert node.files["cgroup.controllers"] == enabled
    process = read_processes(LIVE).processes[pid]
    assert tree.membership(unified, process.cgroups) == path
    assert CgroupMembership(0, (), path) in process.cgroups


@pytest.fixture
def v1_memory_child() -> Iterator[tuple[str, int]]:
    need_root()
    base = Path("/sys/fs/cgroup/memory")
    need((base / "memory.limit_in_bytes").exists(), "no cgroup v1 memory hierarchy")
    name = f"hg-test-{secrets.token_hex(4)}"
    child = subprocess.Popen(["sleep", "60"])
    try:
        (base / name).mkdir()
        (base / name / "memory.limit_in_bytes").write_text("268435456\n")
        (base / name / "cgroup.procs").write_text(f"{child.pid}\n")
        yield f"/{name}", child.pid
    finally:
        child.kill()
        child.wait()
        _wait_gone(base / name)


@pytest.mark.root
def test_live_v1_memory_cgroup(v1_memory_child: tuple[str, int]) -> None:
    path, pid = v1_memory_child
    tree = tree_of(LIVE)
    memory = tree.for_controller("memory")
    assert memory is not None and memory.version == 1
    node = memory.nodes[path]
    assert node.files["memory.limit_in_bytes"] == "268435456"
    assert node.procs() == frozenset({pid})
    assert memory.host_path(path, "memory.limit_in_bytes") == \
        f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"
    assert flat_keyed(str(node.files["memory.oom_control"]))["oom_kill"] == 0


def test_live_read_is_quick() -> None:
    need(os.path.exists("/proc/self/mountinfo"), "no /proc")
    start = time.perf_counter()
    tree = tree_of(LIVE)
    elapsed = time.perf_counter() - start
    assert tree.hierarchies
    assert elapsed < 2.0, f"reading every cgroup took {elapsed:.3f}s"


def test_hierarchy_label() -> None:
    assert Hierarchy(2, frozenset(), "/x", "/", {}).label == "cgroup2"
