"""The process table reader: fixture /proc trees built in tmp_path, and real child processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.host.processes import (
    ALWAYS,
    PF_KTHREAD,
    CgroupMembership,
    Detail,
    FieldNotRead,
    Process,
    Thread,
    parse_cpu_list,
    read_passwd,
    read_processes,
)
from tests.support import need

LIVE = Path("/")


def stat_line(pid: int, comm: str, *, ppid: int = 1, flags: int = 0x400100, nice: int = 0,
              start: int = 4242, rt_priority: int = 0, policy: int = 0) -> str:
    """A /proc/PID/stat line with the fields proc(5) numbers 3..52 (fields 1-2: pid, comm)."""
    fields = ["0"] * 50  # fields 3..52
    fields[0] = "S"
    values = {4: ppid, 9: flags, 19: nice, 22: start, 40: rt_priority, 41: policy}
    for number, value in values.items():
        fields[number - 3] = str(value)
    return f"{pid} ({comm}) {' '.join(fields)}\n"


def status_text(name: str, *, uid: int = 1000, cap_eff: str = "0000000000000000",
                nnp: int = 0, seccomp: int = 0, filters: int = 0, cpus: str = "0-3") -> str:
    return (f"Name:\t{name}\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t{uid + 1}\t{uid}\t{uid}"
            f"\t{uid}\nGid:\t100\t100\t100\t100\nCapInh:\t0000000000000000\n"
            f"CapPrm:\t{cap_eff}\nCapEff:\t{cap_eff}\nCapBnd:\t000001ffffffffff\n"
            f"CapAmb:\t0000000000000000\nNoNewPrivs:\t{nnp}\nSeccomp:\t{seccomp}\n"
            f"Seccomp_filters:\t{filters}\nCpus_allowed:\tf\nCpus_allowed_list:\t{cpus}\n")


def make_proc(root: Path, pid: int, comm: str = "fixgw", *, status: str | None = None,
              cmdline: bytes = b"/opt/fixgw/bin/fixgw\0--venue=LSE\0",
              cgroup: str = "0::/system.slice/fixgw.service\n", exe: str | None = "/opt/x",
              **stat: int) -> Path:
    base = root / "proc" / str(pid)
    base.mkdir(parents=True)
    (base / "stat").write_text(stat_line(pid, comm, **stat), encoding="utf-8",
                               errors="surrogateescape")
    (base / "status").write_text(status if status is not None else status_text(comm),
                                 encoding="utf-8", errors="surrogateescape")
    (base / "cmdline").write_bytes(cmdline)
    (base / "cgroup").write_text(cgroup)
    if exe is not None:
        (base / "exe").symlink_to(exe)
    return base


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\n"
        "fixgw:x:1000:1000::/opt/fixgw:/usr/sbin/nologin\n"
        "toor:x:0:0:second root:/root:/bin/sh\n"
        "+::::::\n"
        "broken line without fields\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
    return tmp_path


# --- pure parsers ------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "cpus"), [
    ("0-3,8,10-11", {0, 1, 2, 3, 8, 10, 11}),
    ("5", {5}),
    ("0-1\n", {0, 1}),
    ("", set()),
    ("2-2", {2}),
])
def test_parse_cpu_list(text: str, cpus: set[int]) -> None:
    assert parse_cpu_list(text) == frozenset(cpus)


@pytest.mark.parametrize("text", ["3-1", "a", "1-", "-1", "0-70000", "1,,x"])
def test_parse_cpu_list_refuses_junk(text: str) -> None:
    with pytest.raises(ValueError):
        parse_cpu_list(text)


def test_passwd_first_name_of_a_uid_wins_and_junk_is_skipped(root: Path) -> None:
    assert read_passwd(root) == {0: "root", 1000: "fixgw", 65534: "nobody"}


def test_passwd_lines_split_only_on_newline(tmp_path: Path) -> None:
    # A GECOS field (user-editable with chfn) must not smuggle in a second entry, and a
    # non-ASCII "digit" uid must not crash the reader.
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text(
        "eve:x:1001:1001:Eve\x1cadmin:x:1002:0:fake\u2028:/home/eve:/bin/sh\n"
        "odd:x:\u00b2:1::/:/bin/sh\n"
        "svc:x:1002:1002::/:/usr/sbin/nologin\n")
    assert read_passwd(tmp_path) == {1001: "eve", 1002: "svc"}


def test_passwd_missing_is_empty(tmp_path: Path) -> None:
    assert read_passwd(tmp_path) == {}


# --- fixture trees ----------------------------------------------------------------------------


def test_a_full_process_from_a_fixture_tree(root: Path) -> None:
    make_proc(root, 300, status=status_text("fixgw", cap_eff="0000000000800400", nnp=1,
                                            seccomp=2, filters=3, cpus="2-3"),
              ppid=1, nice=-5, rt_priority=60, policy=1, start=777,
              cgroup="12:cpu,cpuacct:/trading\n11:cpuset:/gw\n0::/system.slice/fixgw.service\n")
    table = read_processes(root)
    proc = table.processes[300]
    assert (proc.pid, proc.ppid, proc.name, proc.kernel_thread, proc.start_time) == (
        300, 1, "fixgw", False, 777)
    assert proc.exe == "/opt/x"
    assert proc.cmdline == ("/opt/fixgw/bin/fixgw", "--venue=LSE")
    assert (proc.uid, proc.ruid, proc.user) == (1000, 1001, "fixgw")
    assert (proc.cap_eff, proc.cap_prm, proc.cap_bnd, proc.cap_amb) == (
        0x800400, 0x800400, 0x1FFFFFFFFFF, 0)
    assert (proc.no_new_privs, proc.seccomp, proc.seccomp_filters) == (True, 2, 3)
    assert proc.cpus_allowed == frozenset({2, 3})
    assert (proc.sched_policy, proc.sched_policy_name, proc.rt_priority, proc.nice) == (
        1, "SCHED_FIFO", 60, -5)
    assert proc.cgroups == (CgroupMembership(12, ("cpu", "cpuacct"), "/trading"),
                            CgroupMembership(11, ("cpuset",), "/gw"),
                            CgroupMembership(0, (), "/system.slice/fixgw.service"))
    assert proc.unreadable == {}
    assert proc.threads == ()  # not asked for
    assert table.users[1000] == "fixgw"
    assert table.own_netns is None  # no proc/self in a fixture tree


def test_comm_with_spaces_and_parentheses(root: Path) -> None:
    # comm runs to the LAST ')': "a) (b c)" must not shift the numbered fields.
    make_proc(root, 301, "a) (b c", status=status_text("a) (b c"), ppid=77, start=99,
              rt_priority=5, policy=2)
    proc = read_processes(root).processes[301]
    assert (proc.name, proc.ppid, proc.start_time, proc.rt_priority, proc.sched_policy_name) == (
        "a) (b c", 77, 99, 5, "SCHED_RR")


def test_name_comes_raw_from_stat_not_escaped_from_status(root: Path) -> None:
    # status escapes "\n" and "\\" and is split on "\n" only: \x1c or U+0085 in comm used to cut
    # the Name line (str.splitlines) and trailing spaces were stripped.
    comm = " a\nb\\c\x1c\x85 "
    escaped = comm.replace("\\", "\\\\").replace("\n", "\\n")
    make_proc(root, 302, comm, status=status_text(escaped, uid=0))
    proc = read_processes(root).processes[302]
    assert proc.name == comm
    assert proc.uid == 0  # the Uid line after Name still parses


def test_invalid_utf8_in_comm_is_kept_as_surrogates(root: Path) -> None:
    base = make_proc(root, 303, "x")
    (base / "stat").write_bytes(stat_line(303, "x").encode().replace(b"(x)", b"(\xff\xfe)"))
    assert read_processes(root).processes[303].name == "\udcff\udcfe"


def test_cgroup_lines(root: Path) -> None:
    make_proc(root, 320, cgroup="13:name=systemd:/user.slice\n"
                                "4:cpu,cpuacct:/a\x1cb/c:d\n"
                                "junk line\n"
                                "0::/\n")
    assert read_processes(root).processes[320].cgroups == (
        CgroupMembership(13, ("name=systemd",), "/user.slice"),
        CgroupMembership(4, ("cpu", "cpuacct"), "/a\x1cb/c:d"),
        CgroupMembership(0, (), "/"))


def test_kernel_thread_detection(root: Path) -> None:
    make_proc(root, 2, "kthreadd", cmdline=b"", exe=None, flags=PF_KTHREAD | 0x40, ppid=0,
              status=status_text("kthreadd", uid=0))
    make_proc(root, 304, "worker", flags=0x400100)
    table = read_processes(root)
    assert table.processes[2].kernel_thread is True
    assert table.processes[2].exe is None
    assert table.processes[2].cmdline == ()
    assert table.processes[2].unreadable == {}  # no exe is normal for a kernel thread
    assert table.processes[304].kernel_thread is False


@pytest.mark.parametrize("missing", ["stat", "status", "cmdline", "cgroup"])
def test_a_process_that_vanished_mid_read_is_left_out(root: Path, missing: str) -> None:
    make_proc(root, 305)
    gone = make_proc(root, 306)
    (gone / missing).unlink()
    assert list(read_processes(root).processes) == [305]


def test_non_numeric_entries_are_ignored(root: Path) -> None:
    make_proc(root, 307)
    (root / "proc" / "self").mkdir()
    (root / "proc" / "sys").mkdir()
    assert list(read_processes(root).processes) == [307]


def test_no_proc_at_all_is_an_empty_table(tmp_path: Path) -> None:
    assert read_processes(tmp_path).processes == {}


def test_unreadable_files_are_recorded_not_skipped(root: Path) -> None:
    # A directory where a file should be fails with EISDIR: not "gone", so recorded.
    base = make_proc(root, 308)
    for name in ("status", "cmdline"):
        (base / name).unlink()
        (base / name).mkdir()
    proc = read_processes(root).processes[308]
    assert proc.unreadable == {"status": "Is a directory", "cmdline": "Is a directory"}
    assert (proc.uid, proc.user, proc.cap_eff, proc.no_new_privs, proc.cpus_allowed) == (
        None, None, None, None, None)
    assert proc.name == "fixgw"  # from stat


def test_unreadable_stat_falls_back_to_the_status_name(root: Path) -> None:
    base = make_proc(root, 309, "x", status=status_text("tab\\\\name"))
    (base / "stat").unlink()
    (base / "stat").mkdir()
    proc = read_processes(root).processes[309]
    assert proc.unreadable == {"stat": "Is a directory"}
    assert (proc.name, proc.sched_policy, proc.rt_priority, proc.ppid) == (
        "tab\\name", None, None, 0)


def test_threads_from_a_fixture_tree(root: Path) -> None:
    base = make_proc(root, 310)
    for tid, status in ((310, status_text("fixgw", nnp=1, seccomp=2, filters=1, cpus="2")),
                        (311, status_text("fix\\nio", cpus="3"))):
        (base / "task" / str(tid)).mkdir(parents=True)
        (base / "task" / str(tid) / "status").write_text(status)
    (base / "task" / "312").mkdir()  # exited between listing and reading: left out
    proc = read_processes(root, threads=True).processes[310]
    assert proc.threads == (Thread(310, "fixgw", 2, 1, True, frozenset({2})),
                            Thread(311, "fix\nio", 0, 0, False, frozenset({3})))
    assert proc.unreadable == {}


def test_an_unreadable_thread_is_kept_with_unknown_fields(root: Path) -> None:
    base = make_proc(root, 313)
    (base / "task" / "313").mkdir(parents=True)
    (base / "task" / "313" / "status").write_text(status_text("fixgw"))
    (base / "task" / "314" / "status").mkdir(parents=True)
    proc = read_processes(root, threads=True).processes[313]
    assert proc.threads[1] == Thread(314, "", None, None, None, None)
    assert proc.unreadable == {"threads": "task/314/status: Is a directory"}


def test_an_unreadable_task_list_is_recorded(root: Path) -> None:
    base = make_proc(root, 315)
    (base / "task").write_text("not a directory")
    proc = read_processes(root, threads=True).processes[315]
    assert proc.threads == ()
    assert proc.unreadable == {"threads": "task: Not a directory"}


def test_a_missing_task_list_means_the_process_is_gone(root: Path) -> None:
    make_proc(root, 316)  # no task/ at all: the process exited between reads
    assert read_processes(root, threads=True).processes == {}


# --- the live host ----------------------------------------------------------------------------


@pytest.fixture
def named_child() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A child that renames itself (prctl PR_SET_NAME) to a hostile comm, then sleeps."""
    comm = "e\nv\\l\x1c )x"
    code = ("import ctypes, sys, time\n"
            "ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)\n"
            "print('ready', flush=True)\n"
            "time.sleep(60)\n")
    child = subprocess.Popen([sys.executable, "-c", code, comm, "hg-reader-test"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        yield child, comm
    finally:
        child.kill()
        child.wait()


def test_live_child_with_a_hostile_comm(named_child: tuple[subprocess.Popen[str], str]) -> None:
    child, comm = named_child
    proc = read_processes(LIVE, threads=True).processes[child.pid]
    assert proc.name == comm
    assert proc.cmdline == (sys.executable, "-c", proc.cmdline[2], comm, "hg-reader-test")
    assert proc.ppid == os.getpid()
    assert proc.uid == os.geteuid()
    assert proc.cpus_allowed == frozenset(os.sched_getaffinity(child.pid))
    assert proc.threads[0].tid == child.pid
    assert proc.threads[0].name == comm  # task status Name, unescaped
    assert proc.unreadable == {}


def test_live_own_process_and_kernel_threads() -> None:
    table = read_processes(LIVE)
    me = table.processes[os.getpid()]
    assert me.exe == os.path.realpath(sys.executable)
    assert me.kernel_thread is False
    assert me.netns is not None and me.netns == table.own_netns
    need(2 in table.processes, "no pid 2 (kthreadd) in this pid namespace")
    assert table.processes[2].name == "kthreadd"
    assert table.processes[2].kernel_thread is True


def test_live_read_is_fast_enough() -> None:
    clock = time.monotonic()
    table = read_processes(LIVE, sockets=True, threads=True)
    elapsed = time.monotonic() - clock
    assert table.processes
    assert elapsed < 5.0, f"{len(table.processes)} processes took {elapsed:.2f}s"


# --- Speculation_Store_Bypass -------------------------------------------------------------------


def test_speculation_store_bypass_of_the_process_and_each_thread(root: Path) -> None:
    status = status_text("fixgw") + "Speculation_Store_Bypass:\tthread force mitigated\n"
    base = make_proc(root, 330, status=status)
    for tid, line in ((330, "thread force mitigated"), (331, "thread vulnerable")):
        (base / "task" / str(tid)).mkdir(parents=True)
        (base / "task" / str(tid) / "status").write_text(
            status_text("fixgw") + f"Speculation_Store_Bypass:\t{line}\n")
    (base / "task" / "332").mkdir()
    (base / "task" / "332" / "status").write_text(status_text("fixgw"))  # an older kernel
    proc = read_processes(root, threads=True).processes[330]
    assert proc.speculation_store_bypass == "thread force mitigated"
    assert [t.speculation_store_bypass for t in proc.threads] == [
        "thread force mitigated", "thread vulnerable", None]
    assert proc.threads[0] == Thread(330, "fixgw", 0, 0, False, frozenset({0, 1, 2, 3}),
                                     "thread force mitigated")


def test_speculation_store_bypass_absent_or_unreadable_is_none(root: Path) -> None:
    make_proc(root, 333)  # status without the line
    base = make_proc(root, 334)
    (base / "status").unlink()
    (base / "status").mkdir()
    table = read_processes(root)
    assert table.processes[333].speculation_store_bypass is None
    assert table.processes[334].speculation_store_bypass is None
    assert table.processes[334].unreadable == {"status": "Is a directory"}


def test_speculation_store_bypass_defaults_for_hand_built_records() -> None:
    assert Thread(1, "x", 0, 0, False, frozenset()).speculation_store_bypass is None


def test_live_speculation_store_bypass_matches_status() -> None:
    lines = [line for line in Path("/proc/self/status").read_text().split("\n")
             if line.startswith("Speculation_Store_Bypass:")]
    need(bool(lines), "this kernel does not report Speculation_Store_Bypass")
    expected = lines[0].partition(":")[2].strip()
    proc = read_processes(LIVE, threads=True).processes[os.getpid()]
    assert proc.speculation_store_bypass == expected
    assert proc.threads[0].speculation_store_bypass == expected


# --- reading only the fields asked for ----------------------------------------------------------


def unreadable_files(base: Path, *names: str) -> None:
    """Make files unreadable (a folder where a file should be): reading one gets recorded."""
    for name in names:
        (base / name).unlink()
        (base / name).mkdir()


def test_only_the_fields_asked_for_are_read(root: Path) -> None:
    unreadable_files(make_proc(root, 340), "status", "cmdline", "cgroup")
    table = read_processes(root, fields={"exe"})
    proc = table.processes[340]
    assert table.fields == {"exe", *ALWAYS}
    assert (proc.pid, proc.name, proc.ppid, proc.kernel_thread, proc.exe) == (
        340, "fixgw", 1, False, "/opt/x")
    assert proc.unreadable == {}  # status, cmdline and cgroup were never opened
    for name in ("cmdline", "uid", "user", "cap_eff", "cgroups", "netns", "socket_inodes",
                 "threads", "speculation_store_bypass"):
        assert not proc.has(name)
        with pytest.raises(FieldNotRead, match=f"process field '{name}' of pid 340 was not read"):
            getattr(proc, name)
    # Not an AttributeError: a default never stands in for a field that was not read.
    with pytest.raises(FieldNotRead):
        getattr(proc, "cmdline", ())
    with pytest.raises(FieldNotRead):
        hasattr(proc, "uid")
    with pytest.raises(AttributeError):
        proc.no_such_field  # type: ignore[attr-defined]  # noqa: B018


def test_a_file_not_asked_for_does_not_make_a_process_vanish(root: Path) -> None:
    base = make_proc(root, 341)
    (base / "cmdline").unlink()  # gone: the process exited, had cmdline been read
    assert list(read_processes(root, fields=()).processes) == [341]
    assert list(read_processes(root).processes) == []


def test_partial_records_compare_and_print_by_what_was_read(root: Path) -> None:
    make_proc(root, 342)
    first = read_processes(root, fields={"cmdline"}).processes[342]
    again = read_processes(root, fields={"cmdline"}).processes[342]
    whole = read_processes(root).processes[342]
    assert first == again
    assert first != whole
    assert repr(first).startswith("Process(pid=342, ppid=1, name='fixgw'")
    assert "cmdline=('/opt/fixgw/bin/fixgw', '--venue=LSE')" in repr(first)
    assert "uid=" not in repr(first)
    with pytest.raises(TypeError):
        hash(first)


def test_unknown_fields_are_refused(root: Path) -> None:
    with pytest.raises(ValueError, match="unknown process field"):
        read_processes(root, fields={"cmdlin"})
    with pytest.raises(ValueError, match="unknown process field"):
        read_processes(root, fields=(), details=[Detail(bool, frozenset({"pid2"}))])


def fixgw_only(proc: Process) -> bool:
    return proc.name == "fixgw"


def test_a_detail_reads_more_only_for_the_processes_it_selects(root: Path) -> None:
    make_proc(root, 343, "fixgw")
    unreadable_files(make_proc(root, 344, "sshd"), "cmdline", "status")
    table = read_processes(root, fields={"exe"},
                           details=[Detail(fixgw_only, frozenset({"cmdline", "uid"}))])
    fixgw, sshd = table.processes[343], table.processes[344]
    assert fixgw.cmdline == ("/opt/fixgw/bin/fixgw", "--venue=LSE")
    assert (fixgw.uid, fixgw.user) == (1000, "fixgw")
    assert not sshd.has("cmdline") and not sshd.has("uid")
    assert sshd.unreadable == {}
    assert table.fields == {"exe", *ALWAYS}  # what every process has


def test_status_read_for_the_uids_alone_parses_only_them(root: Path) -> None:
    make_proc(root, 347, "fixgw")
    owners = Detail(fixgw_only, frozenset({"uid", "user"}))
    proc = read_processes(root, fields={"netns"}, details=[owners]).processes[347]
    assert (proc.uid, proc.ruid, proc.user) == (1000, 1001, "fixgw")
    for name in ("cap_eff", "no_new_privs", "seccomp", "cpus_allowed",
                 "speculation_store_bypass"):
        with pytest.raises(FieldNotRead):
            getattr(proc, name)
    # Another detail wanting the posture has the whole of status parsed, for both.
    posture = Detail(fixgw_only, frozenset({"cap_eff"}))
    whole = read_processes(root, fields={"netns"}, details=[owners, posture]).processes[347]
    assert whole.uid == 1000
    assert whole.cap_eff is not None
    assert whole.seccomp is not None


def broken_selector(proc: Process) -> bool:
    raise RuntimeError("bug")


def test_a_selector_that_fails_reads_more_never_less(root: Path) -> None:
    make_proc(root, 345)
    proc = read_processes(root, fields=(), details=[
        Detail(broken_selector, frozenset({"cmdline"}))]).processes[345]
    assert proc.cmdline == ("/opt/fixgw/bin/fixgw", "--venue=LSE")


def test_unreadable_stat_and_status_leave_the_name_unknown_not_empty(root: Path) -> None:
    # Even when status is not asked for, a name taken from nowhere must be marked unknown, so
    # that name selectors answer "cannot tell" (error), never "does not match" (pass).
    unreadable_files(make_proc(root, 346, "telnetd"), "stat", "status")
    proc = read_processes(root, fields=()).processes[346]
    assert proc.name == ""
    assert proc.unreadable == {"stat": "Is a directory", "status": "Is a directory"}
