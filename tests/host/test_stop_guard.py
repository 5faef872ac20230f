"""The isolated-CPU guard of the deep seccomp read, against host trees built under tmp_path.

Each tree is read the way the snapshot reads it: ``proc/cmdline`` through :func:`read_cmdline`,
the cgroups through :func:`read_cgroups`, and ``sys/devices/system/cpu`` by
:func:`isolated_cpus` itself under ``root``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.host.cgroups import CgroupNode, CgroupTree, Hierarchy, read_cgroups
from agent.host.cpus import format_cpus
from agent.host.facts import ReadError
from agent.host.loaded_filters import read_loaded
from agent.host.processes import Process, ProcessTable, Thread
from agent.host.procfs import read_cmdline
from agent.host.snapshot import DumpRequest
from agent.host.stop_guard import isolated_cpus, refuse_stop

V2_MOUNT = "30 24 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n"
V1_MOUNT = "35 30 0:35 / /sys/fs/cgroup/cpuset rw,nosuid - cgroup cgroup rw,cpuset\n"


def host(tmp_path: Path, cmdline: str = "ro quiet", *, possible: str | None = "0-15",
         cpu_files: dict[str, str] | None = None, mountinfo: str = V2_MOUNT,
         cgroups: dict[str, dict[str, str]] | None = None) -> Path:
    """A host tree: the boot line, ``sys/devices/system/cpu`` files, one cgroup hierarchy.

    ``cgroups`` maps a directory under the mount point ("" for the top) to its files.
    """
    root = tmp_path / "host"
    (root / "proc" / "self").mkdir(parents=True)
    (root / "proc" / "cmdline").write_text(cmdline + "\n")
    (root / "proc" / "self" / "mountinfo").write_text(mountinfo)
    cpu = root / "sys" / "devices" / "system" / "cpu"
    cpu.mkdir(parents=True)
    files = {"isolated": "", **({"possible": possible} if possible is not None else {}),
             **(cpu_files or {})}
    for name, text in files.items():
        (cpu / name).write_text(text + "\n")
    mount_point = mountinfo.partition(" - ")[0].split()[4]
    top = root / mount_point.lstrip("/")
    top.mkdir(parents=True, exist_ok=True)
    if mountinfo == V2_MOUNT:
        (top / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    for directory, texts in (cgroups or {}).items():
        (top / directory).mkdir(parents=True, exist_ok=True)
        for name, text in texts.items():
            (top / directory / name).write_text(text + "\n")
    return root


def isolated(root: Path) -> frozenset[int] | ReadError:
    """What the snapshot hands :func:`read_loaded` for the tree under ``root``."""
    return isolated_cpus(read_cmdline(root), read_cgroups(root), root=root)


def cpus_of(root: Path) -> str:
    found = isolated(root)
    assert not isinstance(found, ReadError), found
    return format_cpus(found)


def error_of(root: Path) -> str:
    found = isolated(root)
    assert isinstance(found, ReadError), format_cpus(found)
    return found.reason


# --- the boot line ----------------------------------------------------------------------------


@pytest.mark.parametrize(("cmdline", "expected"), [
    # The review's bypasses: each was read as "no isolated CPU".
    ("isolcpus=2-N", "2-15"),
    ("isolcpus=domain,2-15:1/2", "2,4,6,8,10,12,14"),
    ("isolcpus=nohz,managed_irq,2-7", "2-7"),
    ("isolcpus=managed_irq,5", "5"),
    # The kernel's list syntax (lib/bitmap-str.c, bitmap_parselist()).
    ("isolcpus=N", "15"),
    ("nohz_full=all", "0-15"),
    ("nohz_full=0-15:2/8", "0-1,8-9"),
    ("nohz_full=8-N:1/4", "8,12"),
    ("isolcpus=2,,4 nohz_full=6-7,", "2,4,6-7"),
    ("isolcpus=Domain,2-3", "2-3"),  # an unknown flag is skipped, as the kernel skips it
    ("isolcpus=domain,all", "0-15"),  # the kernel would skip "all" as a flag: counted here
    # Every occurrence counts: the kernel handles each (none simply wins); "-" == "_".
    ("isolcpus=2-3 isolcpus=6 nohz_full=4 nohz-full=5", "2-6"),
    ("isolcpus=managed_irq,domain,2-5 nohz_full=2-5 rcu_nocbs=2-5", "2-5"),
    # Past the host's CPUs: the kernel refuses the list (ERANGE); the CPUs it has still count.
    ("isolcpus=12-300", "12-15"),
    ("isolcpus=2-3 -- nohz_full=4", "2-3"),  # after "--" it is init's argument
    ("isolcpus", "(none)"),  # bare: the "isolcpus=" handler never sees it
    ("isolcpus= quiet", "(none)"),
])
def test_boot_line(tmp_path: Path, cmdline: str, expected: str) -> None:
    assert cpus_of(host(tmp_path, cmdline)) == expected


def test_n_without_the_possible_cpus_reaches_the_ceiling(tmp_path: Path) -> None:
    found = isolated(host(tmp_path, "isolcpus=domain,60-N", possible=None))
    assert isinstance(found, frozenset)
    assert (min(found), max(found), len(found)) == (60, 65535, 65476)


@pytest.mark.parametrize(("cmdline", "reason"), [
    ("nohz_full=junk", "cannot parse nohz_full='junk' on the kernel command line: "
                       "bad CPU list region 'junk'"),
    ("isolcpus=dom@in,2-3", "cannot parse isolcpus='dom@in,2-3' on the kernel command line: "
                            "invalid flag 'dom@in'"),
    ("isolcpus=5:1/2", "cannot parse isolcpus='5:1/2' on the kernel command line: "
                       "bad CPU list region '5:1/2'"),
    ("isolcpus=2-7:3/2", "cannot parse isolcpus='2-7:3/2' on the kernel command line: "
                         "bad CPU list region '2-7:3/2'"),
    ("isolcpus=7-2", "cannot parse isolcpus='7-2' on the kernel command line: "
                     "bad CPU list region '7-2'"),
    ("nohz_full=0-4294967296", "cannot parse nohz_full='0-4294967296' on the kernel command "
                               "line: number out of range in '0-4294967296'"),
])
def test_an_unparsable_boot_list_is_an_error(tmp_path: Path, cmdline: str, reason: str) -> None:
    assert error_of(host(tmp_path, f"isolcpus=2 {cmdline}")) == reason


def test_an_unread_boot_line_is_an_error(tmp_path: Path) -> None:
    root = host(tmp_path)
    tree = read_cgroups(root)
    assert isolated_cpus(ReadError("permission denied: /proc/cmdline"), tree, root=root) == \
        ReadError("cannot read the kernel command line: permission denied: /proc/cmdline")
    assert isolated_cpus(None, tree, root=root) == \
        ReadError("cannot read the kernel command line: not read")


# --- sys/devices/system/cpu -------------------------------------------------------------------


def test_sysfs_isolated_and_nohz_full(tmp_path: Path) -> None:
    files = {"isolated": "8-9", "nohz_full": "11"}
    assert cpus_of(host(tmp_path, "isolcpus=2", cpu_files=files)) == "2,8-9,11"


def test_sysfs_nohz_full_null_and_absent_files(tmp_path: Path) -> None:
    # Older kernels print "(null)" when nohz_full= is not given; a missing file is no source.
    root = host(tmp_path, cpu_files={"nohz_full": "(null)"})
    assert cpus_of(root) == "(none)"
    (root / "sys" / "devices" / "system" / "cpu" / "isolated").unlink()
    assert cpus_of(root) == "(none)"


def test_sysfs_unreadable_or_unparsable_is_an_error(tmp_path: Path) -> None:
    root = host(tmp_path, cpu_files={"nohz_full": "2-x"})
    cpu = root / "sys" / "devices" / "system" / "cpu"
    (cpu / "isolated").unlink()
    (cpu / "isolated").mkdir()  # an error root cannot read past (mode bits would not stop it)
    assert error_of(root) == (f"is a directory: {cpu}/isolated; "
                              f"cannot parse {cpu}/nohz_full: '2-x'")


# --- cgroup2 partitions -----------------------------------------------------------------------


def partition(state: str, cpus: str, effective: str | None = None) -> dict[str, str]:
    return {"cpuset.cpus.partition": state, "cpuset.cpus": cpus,
            "cpuset.cpus.effective": cpus if effective is None else effective}


def test_partitions_in_any_state_but_member(tmp_path: Path) -> None:
    root = host(tmp_path, cgroups={
        "": {"cpuset.cpus.effective": "0-15"},
        "system.slice": partition("member", "", "0-1,12-15"),
        "system.slice/gateway.service": partition("member", "0-1"),
        "trading.slice": partition("isolated", "2-5"),
        "trading.slice/fixgw.service": partition("member", "2-3"),
        "md.slice": partition("root", "6-7"),
        # Refused by the kernel (its tasks run on the parent's CPUs): still meant to be pinned.
        "risk.slice": partition("isolated invalid (Parent is not a partition root)", "8",
                                "0-1,8-9"),
        "old.slice": partition("root invalid", "10"),
    })
    assert cpus_of(root) == "0-10"


def test_a_host_without_isolation(tmp_path: Path) -> None:
    root = host(tmp_path, cgroups={"system.slice": partition("member", "", "0-15")})
    assert isolated(root) == frozenset()


def test_an_unreadable_partition_file_is_an_error(tmp_path: Path) -> None:
    root = host(tmp_path, cgroups={"trading.slice": partition("member", "2-5")})
    slice_dir = root / "sys" / "fs" / "cgroup" / "trading.slice"
    (slice_dir / "cpuset.cpus.partition").unlink()
    (slice_dir / "cpuset.cpus.partition").symlink_to("cpuset.cpus")  # never followed
    assert error_of(root) == ("Too many levels of symbolic links: "
                              f"{slice_dir}/cpuset.cpus.partition")


@pytest.mark.parametrize(("files", "reason"), [
    (partition("isolated", "2-5", "2-x"),
     "cannot parse /sys/fs/cgroup/trading.slice/cpuset.cpus.effective: '2-x'"),
    (partition("isolcpus", "2-5"),
     "unknown partition state in /sys/fs/cgroup/trading.slice/cpuset.cpus.partition: "
     "'isolcpus'"),
    ({"cpuset.cpus.partition": "root", "cpuset.cpus": "2-5"},
     "no such file: /sys/fs/cgroup/trading.slice/cpuset.cpus.effective"),
])
def test_an_unparsable_partition_is_an_error(tmp_path: Path, files: dict[str, str],
                                             reason: str) -> None:
    assert error_of(host(tmp_path, cgroups={"trading.slice": files})) == reason


def test_unlisted_cgroups_are_an_error_where_cpuset_is_enabled() -> None:
    def tree(controllers: str) -> CgroupTree:
        top = CgroupNode("/", {"cgroup.controllers": controllers})
        unified = Hierarchy(2, frozenset(controllers.split()), "/sys/fs/cgroup", "/",
                            {"/": top}, ("Permission denied: /sys/fs/cgroup/locked",))
        return CgroupTree((unified,), "/proc/self/mountinfo")

    root = Path("/nonexistent-host")
    assert isolated_cpus(None, tree("cpuset memory"), root=root) == ReadError(
        "cannot read the kernel command line: not read; "
        "cgroup2: Permission denied: /sys/fs/cgroup/locked")
    assert isolated_cpus(None, tree("memory"), root=root) == ReadError(
        "cannot read the kernel command line: not read")  # no cpuset: no partition hides there


def test_unread_cgroups_are_an_error(tmp_path: Path) -> None:
    root = host(tmp_path)
    cmdline = read_cmdline(root)
    assert isolated_cpus(cmdline, ReadError("no mount table"), root=root) == \
        ReadError("cgroups: no mount table")
    assert isolated_cpus(cmdline, None, root=root) == ReadError("cgroups: not read")


# --- cgroup v1 cpusets ------------------------------------------------------------------------


def cpuset(cpus: str, *, balance: str = "1", exclusive: str = "0",
           effective: bool = True) -> dict[str, str]:
    return {"cpuset.cpus": cpus, **({"cpuset.effective_cpus": cpus} if effective else {}),
            "cpuset.sched_load_balance": balance, "cpuset.cpu_exclusive": exclusive}


@pytest.mark.parametrize("effective", [True, False])  # no cpuset.effective_cpus before 3.17
def test_v1_top_cpuset_without_load_balancing(tmp_path: Path, effective: bool) -> None:
    # Only the CPUs of cpusets that balance are balanced (cgroup-v1/cpusets.rst).
    root = host(tmp_path, mountinfo=V1_MOUNT, cgroups={
        "": cpuset("0-7", balance="0", exclusive="1", effective=effective),
        "system": cpuset("0-1", effective=effective),
        "system/sshd": cpuset("1", balance="0", effective=effective),  # balanced by system
        "rt": cpuset("2-3", balance="0", exclusive="1", effective=effective),
        "batch": cpuset("4-5", balance="0", effective=effective),
        "empty": cpuset("", effective=effective),
    })
    assert cpus_of(root) == "2-7"


def test_v1_a_cpuset_removed_meanwhile_is_skipped(tmp_path: Path) -> None:
    root = host(tmp_path, mountinfo=V1_MOUNT, cgroups={
        "": cpuset("0-7", exclusive="1"), "rt": cpuset("2-3", balance="0", exclusive="1")})
    cmdline, tree = read_cmdline(root), read_cgroups(root)
    rt = root / "sys" / "fs" / "cgroup" / "cpuset" / "rt"
    for file in rt.iterdir():
        file.unlink()
    rt.rmdir()
    assert isolated_cpus(cmdline, tree, root=root) == frozenset()


def test_v1_exclusive_unbalanced_cpusets_under_a_balancing_top(tmp_path: Path) -> None:
    root = host(tmp_path, mountinfo=V1_MOUNT, cgroups={
        "": cpuset("0-7", exclusive="1"),
        "rt": cpuset("2-3", balance="0", exclusive="1"),
        "batch": cpuset("4-5", balance="0"),  # balanced by the top cpuset after all
        "fixgw": cpuset("6", exclusive="1"),
    })
    assert cpus_of(root) == "2-3"


def test_v1_host_without_isolation(tmp_path: Path) -> None:
    root = host(tmp_path, mountinfo=V1_MOUNT, cgroups={
        "": cpuset("0-7", exclusive="1"), "docker": cpuset("0-7"), "docker/abc": cpuset("0-3")})
    assert isolated(root) == frozenset()


@pytest.mark.parametrize(("where", "name", "text", "reason"), [
    ("", "cpuset.sched_load_balance", "yes",
     "cannot parse /sys/fs/cgroup/cpuset/cpuset.sched_load_balance: 'yes'"),
    ("rt", "cpuset.sched_load_balance", "2",
     "cannot parse /sys/fs/cgroup/cpuset/rt/cpuset.sched_load_balance: '2'"),
    ("rt", "cpuset.cpu_exclusive", "",
     "cannot parse /sys/fs/cgroup/cpuset/rt/cpuset.cpu_exclusive: ''"),
    ("rt", "cpuset.cpus", "2-",
     "cannot parse /sys/fs/cgroup/cpuset/rt/cpuset.cpus: '2-'"),
    ("rt", "cpuset.sched_load_balance", None,
     "no such file: /sys/fs/cgroup/cpuset/rt/cpuset.sched_load_balance"),
])
def test_v1_unparsable_or_missing_is_an_error(tmp_path: Path, where: str, name: str,
                                              text: str | None, reason: str) -> None:
    root = host(tmp_path, mountinfo=V1_MOUNT, cgroups={
        "": cpuset("0-7", exclusive="1"), "rt": cpuset("2-3", balance="0", exclusive="1")})
    path = root / "sys" / "fs" / "cgroup" / "cpuset" / where / name
    if text is None:
        path.unlink()
    else:
        path.write_text(text + "\n")
    assert error_of(root) == reason


def test_v1_unreadable_flag_is_an_error(tmp_path: Path) -> None:
    root = host(tmp_path, mountinfo=V1_MOUNT, cgroups={
        "": cpuset("0-7", exclusive="1"), "rt": cpuset("2-3", balance="0", exclusive="1")})
    rt = root / "sys" / "fs" / "cgroup" / "cpuset" / "rt"
    (rt / "cpuset.sched_load_balance").unlink()
    (rt / "cpuset.sched_load_balance").symlink_to("cpuset.cpus")
    assert error_of(root) == ("Too many levels of symbolic links: "
                              f"{rt}/cpuset.sched_load_balance")


def test_v1_subtree_mount_is_an_error(tmp_path: Path) -> None:
    root = host(tmp_path, mountinfo=V1_MOUNT.replace(" / /sys", " /docker/abc /sys"),
                cgroups={"": cpuset("2-3", exclusive="1")})
    assert error_of(root) == (
        "cgroup v1 (cpuset): only /docker/abc is mounted at /sys/fs/cgroup/cpuset, so the top "
        "cpuset's load balancing is unknown")


# --- the guard itself -------------------------------------------------------------------------


def pinned_process(cpus: frozenset[int]) -> ProcessTable:
    """A process on CPUs 0-1 with one thread pinned to ``cpus``; no test can stop it: its pid is
    beyond pid_max."""
    pid = 1 << 23
    proc = Process(
        pid=pid, ppid=1, name="fixgw", kernel_thread=False, start_time=1, exe="/opt/fixgw",
        cmdline=("/opt/fixgw",), uid=1000, ruid=1000, user="trader", cap_eff=0, cap_prm=0,
        cap_bnd=0, cap_amb=0, no_new_privs=True, seccomp=2, seccomp_filters=1,
        cpus_allowed=frozenset({0, 1}), sched_policy=1, rt_priority=50, nice=0, cgroups=(),
        netns=None, threads=(Thread(pid, "fixgw", 2, 1, True, frozenset({0, 1})),
                             Thread(pid + 1, "hot", 2, 1, True, cpus)))
    return ProcessTable({pid: proc}, own_netns=None, users={})


@pytest.mark.parametrize("cmdline", ["isolcpus=2-N", "isolcpus=domain,2-15:1/2",
                                     "isolcpus=nohz,managed_irq,2-7"])
def test_a_thread_on_a_cpu_the_review_found_is_not_stopped(tmp_path: Path, cmdline: str) -> None:
    root = host(tmp_path, cmdline)
    table = pinned_process(frozenset({4}))
    [result] = read_loaded(root, table, [DumpRequest(lambda _: True)],
                                  isolated(root)).values()
    assert result == ReadError("not stopped to read its filters: it may run on isolated CPU(s) "
                               "4 (a seccomp check may allow it with stop_isolated: true)")


def test_unknown_isolation_stops_nothing(tmp_path: Path) -> None:
    root = host(tmp_path, "nohz_full=junk")
    table = pinned_process(frozenset({4}))
    [result] = read_loaded(root, table, [DumpRequest(lambda _: True)],
                                  isolated(root)).values()
    assert isinstance(result, ReadError)
    assert result.reason.startswith(
        "not stopped to read its filters: the host's isolated CPUs are unknown (cannot parse "
        "nohz_full='junk'")


@pytest.mark.parametrize(("allowed", "expected"), [
    ("0-15", "it may run on isolated CPU(s) 2-3"),
    ("4-7", None),
    ("junk", "its CPU affinity cannot be read"),  # fail closed, not a traceback
    ("0-99999999", "its CPU affinity cannot be read"),
])
def test_refuse_stop_by_any_threads_affinity(tmp_path: Path, allowed: str,
                                             expected: str | None) -> None:
    root = host(tmp_path, "isolcpus=2-3", cgroups={"system.slice": partition("member", "",
                                                                            "0-15")})
    for tid, cpus in ((4242, "4-7"), (4243, allowed)):
        task = root / "proc" / "4242" / "task" / str(tid)
        task.mkdir(parents=True)
        (task / "status").write_text(f"Name:\tgw\nCpus_allowed_list:\t{cpus}\n")
    assert refuse_stop(4242, root=root) == expected
    assert refuse_stop(4343, root=root) == ("its threads cannot be listed (No such file or "
                                            "directory)")
