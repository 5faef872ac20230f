"""agent.host.fdwalk: the fd tables of many processes walked by helper processes as well.

Real processes hold real sockets; whatever the helpers do (finish, fail, hang, get cancelled,
get interrupted), the result must be the serial walk's, and nothing may outlive the walk: no
helper process, no descriptor.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.host import fdwalk, fdwalk_helper
from agent.host.fdwalk import FdTable, FdWalk, Walk, read_one, socket_inodes
from agent.host.processes import ProcessTable, read_processes
from agent.host.sockets import OWNER_DETAIL, PROCESS_FIELDS
from tests.support import need_root, need_tool

SLEEP = shutil.which("sleep") or "/bin/sleep"
SLEEP_EXE = os.path.realpath(SLEEP)
HOLDERS = 40
PROJECT = Path(__file__).resolve().parents[2]


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


def started(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19])


def expected(holders: dict[int, int]) -> dict[int, FdTable]:
    return {pid: FdTable(frozenset({inode}), 0, started(pid)) for pid, inode in holders.items()}


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def children_of_mine(holders: dict[int, int]) -> list[int]:
    """Pids whose parent is this process (helpers left behind, zombies included), but the
    socket holders."""
    me = str(os.getpid())
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if (Path(f"/proc/{name}/stat").read_text().rpartition(")")[2].split()[1] == me
                        and int(name) not in holders):
                    found.append(int(name))
            except (OSError, IndexError):
                pass
    return found


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)
    return str(path)


def test_each_process_with_its_start_time(holders: dict[int, int]) -> None:
    for pid, table in expected(holders).items():
        assert read_one("/proc", pid) == table
        assert socket_inodes(f"/proc/{pid}") == table._replace(start_time=None)
    assert read_one("/proc", 0) is None  # gone (never was)
    assert socket_inodes("/proc/0") == FdTable(frozenset())


@pytest.mark.parametrize("helpers", [0, 1, 2, 3])
def test_helpers_find_what_the_serial_walk_finds(holders: dict[int, int], helpers: int) -> None:
    walk = fdwalk.walk("/proc", sorted(holders), helpers)
    assert len(walk.helpers) == helpers
    assert walk.finish() == expected(holders)
    assert walk.helpers == [] and walk.tokens == -1


def test_helpers_do_take_chunks(holders: dict[int, int]) -> None:
    """Given time, the helpers walk every chunk before the caller joins."""
    walk = fdwalk.walk("/proc", sorted(holders), 2)
    for child in walk.helpers:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # both done, not yet reaped
    assert walk.tokens >= 0 and os.read(walk.tokens, 4) == b""  # no chunk left for the caller
    assert walk.finish() == expected(holders)


def test_ready_gives_what_the_helpers_walked_and_finish_the_rest(
        holders: dict[int, int]) -> None:
    walk = fdwalk.walk("/proc", sorted(holders), 2)
    for child in walk.helpers:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # both done, not yet reaped
    early = walk.ready()
    assert early == expected(holders)  # every chunk was theirs
    assert walk.ready() == {}  # nothing is given twice
    assert walk.finish() == {}


def test_ready_while_the_helpers_walk_misses_and_repeats_nothing(
        holders: dict[int, int]) -> None:
    early = 0
    for step in range(25):  # the caller catches the helpers at different points
        walk = fdwalk.walk("/proc", sorted(holders), 2)
        rounds = []
        for _ in range(3):
            time.sleep(step * 0.002)
            rounds.append(walk.ready())
        if step == 24:  # on a loaded machine the helpers may not have started yet: the last
            for child in walk.helpers:  # round waits for them, so something comes early
                os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
            rounds.append(walk.ready())
        rest = walk.finish()
        given = [set(tables) for tables in [*rounds, rest]]
        assert sum(map(len, given)) == len(set().union(*given))  # no pid twice
        assert {pid: t for tables in [*rounds, rest] for pid, t in tables.items()} == expected(
            holders)
        early += sum(map(len, rounds))
    assert early  # some were given before the end


def test_a_helper_cut_short_after_ready_leaves_the_rest_to_the_caller(
        holders: dict[int, int], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Writes one whole record of its first chunk, half of the next, then fails: no trailer.
    body = textwrap.dedent(f"""\
        import os, sys
        sys.path.insert(0, {str(PROJECT / "agent" / "host")!r})
        import fdwalk_helper as h
        token = os.read(3, 4)
        size, pids = h._orders(0)
        while os.read(3, 4):
            pass  # every other chunk is taken too, and never walked
        start = int.from_bytes(token, "little") * size
        first, second = (h.encode({{pid: h.read_process(sys.argv[-1], pid)}})
                         for pid in pids[start:start + 2])
        os.write(4, first + second[:20])
        sys.exit(1)
        """)
    monkeypatch.setattr(sys, "executable", script(tmp_path, "short", body))
    walk = fdwalk.walk("/proc", sorted(holders), 1)
    os.waitid(os.P_PID, walk.helpers[0].pid, os.WEXITED | os.WNOWAIT)
    early = walk.ready()
    assert len(early) == 1
    rest = walk.finish()
    assert not set(early) & set(rest)
    assert {**early, **rest} == expected(holders)


def test_a_helper_that_fails_leaves_its_share_to_the_caller(
        holders: dict[int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", shutil.which("false") or "/bin/false")
    walk = fdwalk.walk("/proc", sorted(holders), 2)
    assert len(walk.helpers) == 2
    assert walk.finish() == expected(holders)


def test_a_helper_that_hangs_is_killed_and_its_share_walked(
        holders: dict[int, int], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Takes every token, then never answers.
    monkeypatch.setattr(sys, "executable", script(
        tmp_path, "stuck", "import os, time\nwhile os.read(3, 4): pass\ntime.sleep(600)\n"))
    monkeypatch.setattr(fdwalk, "HELPER_TIMEOUT", 0.5)
    walk = fdwalk.walk("/proc", sorted(holders), 2)
    clock = time.monotonic()
    assert walk.finish() == expected(holders)
    assert time.monotonic() - clock < 3  # one deadline for all helpers, not one each
    assert children_of_mine(holders) == []


def test_without_pidfd_the_wait_polls_and_keeps_its_deadline(
        holders: dict[int, int], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An old kernel or no descriptor left: pidfd_open fails, the helpers are polled for."""
    def no_pidfd(pid: int, flags: int = 0) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    monkeypatch.setattr(fdwalk, "HELPER_TIMEOUT", 0.5)
    assert fdwalk.walk("/proc", sorted(holders), 2).finish() == expected(holders)  # they exit
    monkeypatch.setattr(sys, "executable", script(
        tmp_path, "stuck", "import os, time\nwhile os.read(3, 4): pass\ntime.sleep(600)\n"))
    walk = fdwalk.walk("/proc", sorted(holders), 2)
    clock = time.monotonic()
    assert walk.finish() == expected(holders)
    assert time.monotonic() - clock < 3
    assert children_of_mine(holders) == []


def test_no_memfd_means_no_helpers(holders: dict[int, int],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def no_memfd(name: str, flags: int = 0) -> int:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(os, "memfd_create", no_memfd)
    before = open_fds()
    walk = fdwalk.walk("/proc", sorted(holders), 2)
    assert walk.helpers == [] and walk.tokens == -1 and open_fds() == before
    assert walk.finish() == expected(holders)


def test_cancel_stops_and_reaps_the_helpers(holders: dict[int, int],
                                            monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "executable", script(tmp_path, "slow",
                                                  "import time\ntime.sleep(600)\n"))
    before = open_fds()
    walk = fdwalk.walk("/proc", sorted(holders), 2)
    walk.cancel()
    walk.cancel()  # twice: nothing left to do
    assert walk.helpers == [] and walk.tokens == -1
    assert children_of_mine(holders) == [] and open_fds() == before


def test_an_interrupted_finish_leaves_nothing_behind(
        holders: dict[int, int], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A signal while the caller waits for a helper (Ctrl-C, the daemon's stop): the exception
    goes on, every helper is killed and reaped once, every descriptor closed once, and a
    cancel() afterwards (snapshot.take, the CLI) touches nothing that is not the walk's."""
    monkeypatch.setattr(sys, "executable", script(
        tmp_path, "stuck", "import os, time\nwhile os.read(3, 4): pass\ntime.sleep(600)\n"))

    class Interrupted(Exception):
        pass

    def interrupt(signum: int, frame: Any) -> None:
        raise Interrupted

    before = open_fds()
    walk = fdwalk.walk("/proc", sorted(holders), 2)
    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(Interrupted):
            walk.finish()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert walk.helpers == [] and walk.tokens == -1
    bystander = os.open("/dev/null", os.O_RDONLY)  # may take a number the walk used
    try:
        walk.cancel()
        os.fstat(bystander)  # still open
    finally:
        os.close(bystander)
    assert children_of_mine(holders) == [] and open_fds() == before


def test_a_reaped_helper_is_never_signalled(holders: dict[int, int],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A helper that failed was reaped when its exit was read: its pid may belong to any other
    process by now, so nothing may be sent to it afterwards."""
    monkeypatch.setattr(sys, "executable", shutil.which("false") or "/bin/false")
    sent: list[tuple[int, int]] = []
    real_kill = os.kill

    def kill(pid: int, sig: int) -> None:
        sent.append((pid, sig))
        real_kill(pid, sig)

    monkeypatch.setattr(os, "kill", kill)
    walk = fdwalk.walk("/proc", sorted(holders), 2)
    for child in walk.helpers:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    assert walk.finish() == expected(holders)
    walk.cancel()
    assert sent == []


def test_when_the_orders_cannot_be_written_the_caller_walks_alone(
        holders: dict[int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    def no_memory(fd: int, data: bytes, offset: int) -> int:
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(os, "pwrite", no_memory)
    walk = fdwalk.walk("/proc", sorted(holders), 2)
    assert walk.helpers == [] and walk.tokens == -1
    assert walk.finish() == expected(holders)
    assert children_of_mine(holders) == []


def test_a_zombie_leader_s_sockets_are_its_threads(tmp_path: Path) -> None:
    """The main thread exits (SYS_exit), another thread lives on holding a listener: the
    leader's fd/ is empty, its threads' are not; both walks find the socket."""
    code = textwrap.dedent("""
        import ctypes, os, socket, sys, threading, time
        sock = socket.socket(); sock.bind(("127.0.0.1", 0)); sock.listen()
        print(os.fstat(sock.fileno()).st_ino, flush=True)
        threading.Thread(target=time.sleep, args=(600,)).start()
        ctypes.CDLL(None).syscall(60, 0)  # exit(2) of the main thread alone (x86_64)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        inode = int(child.stdout.readline())
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert os.listdir(f"/proc/{child.pid}/fd") == []
        assert read_one("/proc", child.pid) == FdTable(frozenset({inode}), 0, started(child.pid))
        assert socket_inodes(f"/proc/{child.pid}").inodes == {inode}
    finally:
        child.kill()
        child.wait()


def test_the_helpers_are_not_in_the_process_table(holders: dict[int, int],
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    """A walk started before the process table lists /proc (hostguard audit's): its helpers
    are alive then, and hostguard's own."""
    monkeypatch.setattr(sys, "executable", script(
        tmp_path, "slow", "import os, time\ntime.sleep(0.5)\nos.write(4, b'')\n"))
    walk = fdwalk.walk("/proc", None, 2)
    mine = walk.own
    assert len(mine) == 2
    table = read_processes(Path("/"), fields={"socket_inodes"}, fd_walk=FdWalk(early=walk))
    assert not mine & set(table.processes)
    assert {pid: table.processes[pid].socket_inodes for pid in holders} == {
        pid: frozenset({inode}) for pid, inode in holders.items()}


def test_a_linked_fd_folder_in_a_fixture_reads_alike(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, 40)
    target = tmp_path / "elsewhere"
    (proc / "14" / "fd").rename(target)
    (proc / "14" / "fd").symlink_to(target)
    for helpers in (0, 2):
        assert fdwalk.walk(str(proc), list(range(1, 41)), helpers).finish()[14] == FdTable(
            frozenset({1014}), 0, 77)


def test_no_descriptor_or_helper_outlives_many_walks(holders: dict[int, int]) -> None:
    before = open_fds()
    for number in range(30):
        walk = fdwalk.walk("/proc", sorted(holders), 1 + number % 3)
        if number % 2:
            walk.cancel()
        else:
            walk.finish()
    assert open_fds() == before and children_of_mine(holders) == []


def test_a_failure_while_starting_leaves_nothing_behind(
        holders: dict[int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(proc: str) -> list[int]:
        raise ValueError("listing failed")

    monkeypatch.setattr(fdwalk, "pids_in", broken)
    before = open_fds()
    with pytest.raises(ValueError, match="listing failed"):
        fdwalk.walk("/proc", None, 2)
    assert open_fds() == before and children_of_mine(holders) == []


def fake_proc(root: Path, count: int) -> Path:
    """``count`` processes that hold socket ``1000 + pid`` each, as a tree."""
    proc = root / "proc"
    proc.mkdir()
    rest = " ".join(["S"] + ["0"] * 18 + ["77"] + ["0"] * 30)
    for pid in range(1, count + 1):
        (proc / str(pid) / "fd").mkdir(parents=True)
        (proc / str(pid) / "stat").write_text(f"{pid} (p) {rest}\n")
        (proc / str(pid) / "fd" / "3").symlink_to(f"socket:[{1000 + pid}]")
    (proc / "²").mkdir()  # a digit to str.isdigit and int(), not a pid
    return proc


def test_more_pids_than_a_small_pipe_has_tokens_for(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A one-page token pipe (an unprivileged user over pipe-user-pages-soft gets such) holds
    1024 tokens: the chunks grow so that all fit, rather than the caller blocking on them."""
    real_pipe2 = os.pipe2

    def small_pipe(flags: int) -> tuple[int, int]:
        read_end, write_end = real_pipe2(flags)
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
        return read_end, write_end

    monkeypatch.setattr(os, "pipe2", small_pipe)
    proc = fake_proc(tmp_path, 9000)
    walk = fdwalk.walk(str(proc), None, 2)
    assert len(walk.pids) == 9000 and walk.size * 1024 >= 9000
    found = walk.finish()
    assert found == {pid: FdTable(frozenset({1000 + pid}), 0, 77) for pid in range(1, 9001)}


def test_a_process_without_an_fd_folder_holds_nothing_and_a_vanished_one_is_left_out(
        tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, 40)
    shutil.rmtree(proc / "7" / "fd")  # a fixture tree may have none
    shutil.rmtree(proc / "8")  # gone since it was listed
    for helpers in (0, 2):
        found = fdwalk.walk(str(proc), list(range(1, 41)), helpers).finish()
        assert found[7] == FdTable(frozenset(), 0, 77)
        assert 8 not in found and found[9] == FdTable(frozenset({1009}), 0, 77)


def test_helpers_descriptors_never_clash_with_a_closed_stdin(holders: dict[int, int]) -> None:
    """Started with 0 and 1 closed, the walk's own descriptors would sit where the helper's
    are put; they are moved out of the way first, so the helpers still do their share."""
    code = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(PROJECT)!r})
        os.close(0); os.close(1)
        from agent.host import fdwalk
        walk = fdwalk.walk("/proc", {sorted(holders)!r}, 2)
        assert min([walk.tokens, *(h.out for h in walk.helpers)]) >= 5
        for child in walk.helpers:
            os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
        assert os.read(walk.tokens, 4) == b"", "the helpers took no chunk"
        found = walk.finish()
        sys.stderr.write(repr(sorted(found)))
    """)
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == repr(sorted(holders))


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
        sys.path.insert(0, {str(PROJECT)!r})
        from agent.host import fdwalk
        pids = {sorted(holders)!r}
        for helpers in (0, 2):
            walk = fdwalk.walk("/proc", pids, helpers)
            started = len(walk.helpers)
            for child in walk.helpers:  # the helpers walk every chunk
                os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
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
    raw = fdwalk_helper.encode(found) + fdwalk_helper.TRAILER_BYTES
    assert fdwalk_helper.decode(raw) == found
    assert fdwalk_helper.decode(raw[:-8]) is None  # no trailer: cut short
    assert fdwalk_helper.decode(raw[:-1]) is None  # not whole words
    assert fdwalk_helper.decode(b"") is None
    assert fdwalk_helper.decode(raw + raw[-8:]) is None  # something after the trailer
    lying = bytearray(raw)
    lying[24:32] = (10**6).to_bytes(8, "little", signed=True)  # pid 7 "holds a million"
    assert fdwalk_helper.decode(bytes(lying)) is None


def test_a_prefix_of_the_results_gives_its_whole_records() -> None:
    chunks: list[dict[int, fdwalk_helper.Record]] = [
        {7: (frozenset({1, 2, 3}), 0, 123), 9: (frozenset(), 13, None)},
        {11: (frozenset({4}), 0, 0)}]
    raw = b"".join(map(fdwalk_helper.encode, chunks)) + fdwalk_helper.TRAILER_BYTES
    first = len(fdwalk_helper.encode({7: chunks[0][7]}))
    for cut in range(len(raw) + 1):  # every point a reader may catch the writer at
        records, used = fdwalk_helper.decode_prefix(raw[:cut])
        whole = [pid for pid, end in ((7, first), (9, first + 32), (11, first + 72))
                 if end <= cut]
        assert list(records) == whole
        assert used == {0: 0, 1: first, 2: first + 32, 3: first + 72}[len(whole)]
        assert all(records[pid] == {**chunks[0], **chunks[1]}[pid] for pid in records)


def test_the_helper_script_needs_no_site_and_no_agent() -> None:
    source = Path(fdwalk_helper.__file__).read_text(encoding="utf-8")
    assert "import agent" not in source and "from agent" not in source


def test_a_prefetched_walk_tells_a_reused_pid(tmp_path: Path) -> None:
    """In a pid namespace of its own, a process holding socket A is walked, exits, and its pid
    goes to a new process holding socket B (ns_last_pid): the process table must show B's
    socket under that pid, never A's."""
    need_root()
    unshare = need_tool("unshare")
    path = tmp_path / "reuse.py"
    path.write_text(textwrap.dedent(f"""
        import os, socket, subprocess, sys, time
        from pathlib import Path
        sys.path.insert(0, {str(PROJECT)!r})
        from agent.host import fdwalk
        from agent.host.processes import ProcessTable, read_processes

        def holder():
            mine, theirs = socket.socketpair()
            child = subprocess.Popen([{SLEEP!r}, "600"], pass_fds=[theirs.fileno()])
            inode = os.fstat(theirs.fileno()).st_ino
            mine.close(); theirs.close()
            return child, inode

        first, first_inode = holder()
        walk = fdwalk.walk("/proc", None, 1)
        (helper,) = walk.helpers
        os.waitid(os.P_PID, helper.pid, os.WEXITED | os.WNOWAIT)  # it walked first's fds
        time.sleep(0.05)  # start times count clock ticks: the next process starts later
        first.kill(); first.wait()
        Path("/proc/sys/kernel/ns_last_pid").write_text(str(first.pid - 1))
        second, second_inode = holder()
        assert second.pid == first.pid, (second.pid, first.pid)
        table = read_processes(Path("/"), fields={{"socket_inodes"}},
                               fd_walk=fdwalk.FdWalk(early=walk))
        print(table.processes[second.pid].socket_inodes == {{second_inode}},
              table.processes[second.pid].socket_inodes == {{first_inode}})
        second.kill()
    """))
    done = subprocess.run([unshare, "--pid", "--fork", "--mount-proc", sys.executable,
                           str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]


def test_a_prefetched_walk_of_another_proc_is_not_used(holders: dict[int, int],
                                                      tmp_path: Path) -> None:
    walk = Walk(str(tmp_path / "proc"), sorted(holders), 1)
    table = read_processes(Path("/"), fields={"socket_inodes"}, fd_walk=FdWalk(early=walk))
    assert walk.helpers == [] and walk.tokens == -1  # cancelled
    for pid, inode in holders.items():
        assert table.processes[pid].socket_inodes == {inode}


def test_tables_merged_before_the_join_get_their_owners_details(
        holders: dict[int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    given: list[int] = []
    real_ready = Walk.ready

    def ready(walk: Walk) -> dict[int, FdTable]:
        tables = real_ready(walk)
        given.extend(tables)
        return tables

    monkeypatch.setattr(Walk, "ready", ready)
    fields = PROCESS_FIELDS
    walk = fdwalk.walk("/proc", None, 2)
    for child in walk.helpers:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # every chunk walked
    early = read_processes(Path("/"), fields=fields, details=[OWNER_DETAIL],
                           fd_walk=FdWalk(early=walk))
    assert set(holders) <= set(given)  # each holder merged from what ready() gave
    alone = read_processes(Path("/"), fields=fields, details=[OWNER_DETAIL],
                           fd_walk=FdWalk.serial())
    for pid in holders:
        assert early.processes[pid] == alone.processes[pid]
        assert early.processes[pid].exe == alone.processes[pid].exe == SLEEP_EXE
        assert early.processes[pid].uid == os.geteuid()


def test_an_interrupted_merge_leaves_nothing_behind(
        holders: dict[int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    before = open_fds()
    walk = fdwalk.walk("/proc", sorted(holders), 2)

    def interrupted(walk: Walk) -> dict[int, FdTable]:
        raise KeyboardInterrupt

    monkeypatch.setattr(Walk, "ready", interrupted)
    with pytest.raises(KeyboardInterrupt):
        read_processes(Path("/"), fields=PROCESS_FIELDS, details=[OWNER_DETAIL],
                       fd_walk=FdWalk(early=walk))
    assert walk.helpers == [] and walk.tokens == -1
    assert children_of_mine(holders) == [] and open_fds() == before


def test_the_process_table_with_helpers_equals_the_serial_one(holders: dict[int, int]) -> None:
    fields = {"socket_inodes", "netns", "exe", "uid"}
    parallel = read_processes(Path("/"), fields=fields, fd_walk=FdWalk(helpers=2)).processes
    alone = read_processes(Path("/"), fields=fields, fd_walk=FdWalk.serial()).processes
    assert [parallel[pid] for pid in holders] == [alone[pid] for pid in holders]
    assert {parallel[pid].socket_inodes for pid in holders} == {
        frozenset({inode}) for inode in holders.values()}
    assert all(isinstance(pid, int) for pid in parallel)


# --- the walk object callers hand down ---------------------------------------------------------


def test_a_serial_walk_starts_no_helper(holders: dict[int, int],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fdwalk, "helpers_for", lambda count: 3)  # would pay off, by default
    pids = sorted(holders)
    assert FdWalk.serial().share("/proc", pids) == (pids, None)
    given, shared = FdWalk().share("/proc", pids)
    assert given == pids and shared is not None and len(shared.helpers) == 3
    shared.cancel()


def test_an_early_walk_is_taken_over_once_and_its_helpers_left_out(
        holders: dict[int, int]) -> None:
    early = fdwalk.walk("/proc", None, 1)
    plan = FdWalk(early=early)
    assert plan.early is early
    (helper,) = early.own
    given, shared = plan.share("/proc", [*sorted(holders), helper])
    assert shared is early and given == sorted(holders)  # its own helper is not the host's
    assert plan.early is None
    plan.cancel()  # taken over: not the plan's to stop any more
    assert early.helpers != []
    assert early.finish().keys() >= holders.keys()


def test_an_early_walk_nobody_takes_is_cancelled(holders: dict[int, int]) -> None:
    early = fdwalk.walk("/proc", sorted(holders), 1)
    plan = FdWalk(early=early)
    plan.cancel()
    assert early.helpers == [] and early.tokens == -1 and plan.early is None
    unused = fdwalk.walk("/proc", sorted(holders), 1)
    table = read_processes(Path("/"), fields={"netns"}, fd_walk=FdWalk(early=unused))
    assert unused.helpers == [] and unused.tokens == -1  # no fd table read: cancelled
    assert set(holders) <= set(table.processes)


def test_work_meanwhile_sees_the_table_before_its_fd_tables(holders: dict[int, int]) -> None:
    seen: list[tuple[str, frozenset[str], bool]] = []

    def note(name: str) -> Callable[[ProcessTable], None]:
        def work(table: ProcessTable) -> None:
            seen.append((name, table.fields, table.processes[min(holders)].has("socket_inodes")))
        return work

    plan = FdWalk(helpers=1)
    plan.meanwhile(note("first"))
    plan.meanwhile(note("second"))
    table = read_processes(Path("/"), fields={"socket_inodes", "netns"}, fd_walk=plan)
    partial = frozenset({"netns"}) | table.fields - {"socket_inodes"}
    assert seen == [("first", partial, False), ("second", partial, False)]
    assert table.processes[min(holders)].socket_inodes == {holders[min(holders)]}
