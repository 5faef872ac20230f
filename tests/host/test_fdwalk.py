"""agent.host.fdwalk: the fd tables of many processes walked by helper processes as well.

Real processes hold real sockets; whatever the helpers do (finish, fail, hang, get cancelled),
the result must be the serial walk's.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.host import fdwalk, fdwalk_helper
from agent.host.fdwalk import FdTable, Walk, socket_inodes
from agent.host.processes import read_processes
from tests.support import need_root, need_tool

SLEEP = shutil.which("sleep") or "/bin/sleep"
HOLDERS = 40


@pytest.fixture(scope="module")
def holders() -> Iterator[dict[int, int]]:
    """pid -> inode of the one socket it holds, for HOLDERS sleeping processes."""
    held: dict[int, int] = {}
    children: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(HOLDERS):
            mine, theirs = socket.socketpair()
            with mine, theirs:
                child = subprocess.Popen([SLEEP, "600"], pass_fds=[theirs.fileno()])
                children.append(child)
                held[child.pid] = os.fstat(theirs.fileno()).st_ino
        yield held
    finally:
        for child in children:
            child.kill()
            child.wait()


def serial(pids: list[int]) -> dict[int, FdTable]:
    return {pid: socket_inodes(f"/proc/{pid}") for pid in pids}


def test_the_serial_walk_finds_each_socket(holders: dict[int, int]) -> None:
    for pid, inode in holders.items():
        assert socket_inodes(f"/proc/{pid}") == FdTable(frozenset({inode}))
    assert socket_inodes("/proc/0") == FdTable(frozenset())  # gone (never was): holds nothing


@pytest.mark.parametrize("helpers", [1, 2, 3])
def test_helpers_find_what_the_serial_walk_finds(holders: dict[int, int], helpers: int) -> None:
    pids = sorted(holders)
    walk = fdwalk.walk("/proc", pids, helpers)
    assert len(walk.helpers) == helpers
    found = walk.finish()
    assert found == serial(pids)
    assert {pid: t.inodes for pid, t in found.items()} == {
        pid: frozenset({inode}) for pid, inode in holders.items()}
    assert walk.helpers == [] and walk.tokens == -1


def test_helpers_do_take_chunks(holders: dict[int, int]) -> None:
    """A stamped walk is the helpers' alone until the caller joins: given time, they walk
    every chunk, each process with its start time."""
    pids = sorted(holders)
    walk = fdwalk.walk("/proc", pids, 2, stamped=True)
    for pid, _ in walk.helpers:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # both done, not yet reaped
    found = walk.finish()
    assert set(found) == set(pids)
    for pid in pids:
        started = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19])
        assert found[pid] == FdTable(frozenset({holders[pid]}), 0, started)


def test_a_helper_that_fails_leaves_its_share_to_the_caller(
        holders: dict[int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", shutil.which("false") or "/bin/false")
    pids = sorted(holders)
    walk = fdwalk.walk("/proc", pids, 2)
    assert len(walk.helpers) == 2
    assert walk.finish() == serial(pids)


def test_a_helper_that_hangs_is_killed_and_its_share_walked(
        holders: dict[int, int], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    stuck = tmp_path / "stuck"
    # Takes every token, then never answers.
    stuck.write_text(f"#!{sys.executable}\nimport os, time\n"
                     "while os.read(3, 4): pass\ntime.sleep(600)\n")
    stuck.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(stuck))
    monkeypatch.setattr(fdwalk, "HELPER_TIMEOUT", 0.5)
    pids = sorted(holders)
    walk = fdwalk.walk("/proc", pids, 1)
    (helper_pid, _), = walk.helpers
    clock = time.monotonic()
    assert walk.finish() == serial(pids)
    assert time.monotonic() - clock < 5
    with pytest.raises(ChildProcessError):
        os.waitpid(helper_pid, os.WNOHANG)  # killed and reaped


def test_cancel_stops_and_reaps_the_helpers(holders: dict[int, int],
                                            monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    slow = tmp_path / "slow"
    slow.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(600)\n")
    slow.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(slow))
    walk = fdwalk.walk("/proc", sorted(holders), 2)
    pids = [pid for pid, _ in walk.helpers]
    walk.cancel()
    assert walk.helpers == [] and walk.tokens == -1
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def test_no_helpers_is_the_serial_walk(holders: dict[int, int]) -> None:
    pids = sorted(holders)
    walk = fdwalk.walk("/proc", pids, 0)
    assert walk.helpers == [] and walk.tokens == -1
    assert walk.finish() == serial(pids)


def test_helpers_for_counts_cpus_and_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert fdwalk.helpers_for(100) == 0  # too few to pay off
    assert fdwalk.helpers_for(2 * fdwalk.MIN_PER_HELPER) == 2
    assert fdwalk.helpers_for(100_000) == fdwalk.MAX_HELPERS
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3})
    assert fdwalk.helpers_for(100_000) == 0  # one CPU: nobody to walk meanwhile


def test_estimate_counts_without_listing(tmp_path: Path) -> None:
    visible = sum(1 for name in os.listdir("/proc") if name.isdigit())
    assert fdwalk.estimate("/proc") >= visible // 2  # procfs: every process, all namespaces
    for name in ("1", "2", "net"):
        (tmp_path / name).mkdir()
    (tmp_path / "self").symlink_to("1")
    assert fdwalk.estimate(str(tmp_path)) == 3  # a fixture: its folders
    assert fdwalk.estimate(str(tmp_path / "missing")) == 0


def test_an_unreadable_fd_table_is_reported_by_helpers_too(holders: dict[int, int]) -> None:
    """Without capabilities, root may list another root process's fds but not read the links
    (the kernel's ptrace check wants the target's capabilities): EACCES, never 'no sockets',
    from the caller's share and from the helpers' alike."""
    need_root()
    setpriv = need_tool("setpriv")
    code = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from agent.host import fdwalk
        pids = {sorted(holders)!r}
        for helpers in (0, 2):
            walk = fdwalk.walk("/proc", pids, helpers)
            started = len(walk.helpers)
            for pid, _ in walk.helpers:  # the helpers walk every chunk
                os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
            found = walk.finish()
            print(started, sorted({{(tuple(t.inodes), t.error) for t in found.values()}}))
    """)
    done = subprocess.run([setpriv, "--bounding-set=-all", "--inh-caps=-all", sys.executable,
                           "-I", "-c", code], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["0 [((), 'Permission denied')]",
                                        "2 [((), 'Permission denied')]"]


def test_encode_decode_round_trip_and_refuse_damage() -> None:
    found: dict[int, fdwalk_helper.Record] = {
        7: (frozenset({1, 2, 3}), 0, 123), 9: (frozenset(), 13, None), 11: (frozenset(), 0, 0)}
    raw = fdwalk_helper.encode(found)
    assert fdwalk_helper.decode(raw) == found
    assert fdwalk_helper.decode(raw[:-8]) is None  # no trailer: cut short
    assert fdwalk_helper.decode(raw[:-1]) is None  # not whole words
    assert fdwalk_helper.decode(b"") is None
    lying = bytearray(raw)
    lying[24:32] = (10**6).to_bytes(8, "little", signed=True)  # pid 7 "holds a million"
    assert fdwalk_helper.decode(bytes(lying)) is None


def test_the_helper_script_needs_no_site_and_no_agent() -> None:
    source = Path(fdwalk_helper.__file__).read_text(encoding="utf-8")
    assert "import agent" not in source and "from agent" not in source
    assert stat.S_ISREG(os.stat(fdwalk_helper.__file__).st_mode)


def test_a_prefetched_walk_tells_a_reused_pid(tmp_path: Path) -> None:
    """In a pid namespace of its own, a process holding socket A is walked (stamped), exits,
    and its pid goes to a new process holding socket B (ns_last_pid): the process table must
    show B's socket under that pid, never A's."""
    need_root()
    unshare = need_tool("unshare")
    script = tmp_path / "reuse.py"
    script.write_text(textwrap.dedent(f"""
        import os, socket, subprocess, sys, time
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from agent.host import fdwalk
        from agent.host.processes import read_processes

        def holder():
            mine, theirs = socket.socketpair()
            child = subprocess.Popen([{SLEEP!r}, "600"], pass_fds=[theirs.fileno()])
            inode = os.fstat(theirs.fileno()).st_ino
            mine.close(); theirs.close()
            return child, inode

        first, first_inode = holder()
        pids = sorted(int(n) for n in os.listdir("/proc") if n.isdigit())
        walk = fdwalk.walk("/proc", pids, 1, stamped=True)
        (helper, _), = walk.helpers
        os.waitid(os.P_PID, helper, os.WEXITED | os.WNOWAIT)  # it walked first's fds
        time.sleep(0.05)  # start times count clock ticks: the next process starts later
        first.kill(); first.wait()
        Path("/proc/sys/kernel/ns_last_pid").write_text(str(first.pid - 1))
        second, second_inode = holder()
        assert second.pid == first.pid, (second.pid, first.pid)
        table = read_processes(Path("/"), fields={{"socket_inodes"}}, prefetched=walk)
        print(table.processes[second.pid].socket_inodes == {{second_inode}},
              table.processes[second.pid].socket_inodes == {{first_inode}})
        second.kill()
    """))
    done = subprocess.run([unshare, "--pid", "--fork", "--mount-proc", sys.executable,
                           str(script)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]


def test_a_prefetched_walk_of_another_proc_or_unstamped_is_not_used(
        holders: dict[int, int], tmp_path: Path) -> None:
    pids = sorted(holders)
    for walk in (Walk("/proc", pids, 1, stamped=False),
                 Walk(str(tmp_path / "proc"), pids, 1, stamped=True)):
        table = read_processes(Path("/"), fields={"socket_inodes"}, prefetched=walk)
        assert walk.helpers == [] and walk.tokens == -1  # cancelled
        for pid, inode in holders.items():
            assert table.processes[pid].socket_inodes == {inode}


def test_the_process_table_with_helpers_equals_the_serial_one(holders: dict[int, int]) -> None:
    fields = {"socket_inodes", "netns", "exe", "uid"}
    parallel = read_processes(Path("/"), fields=fields, helpers=2).processes
    alone = read_processes(Path("/"), fields=fields, helpers=0).processes
    assert [parallel[pid] for pid in holders] == [alone[pid] for pid in holders]
    assert {parallel[pid].socket_inodes for pid in holders} == {
        frozenset({inode}) for inode in holders.values()}
