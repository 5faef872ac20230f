"""Dumping loaded seccomp filters with ptrace: real kernel, real target processes, no mocks.

Targets are ``tests/host/seccomp_target.py`` processes that load filters they are told to load;
after every test each thread of the target must be running (not in a stop) and answer a ping.
"""

from __future__ import annotations

import errno
import json
import os
import select
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.host import seccomp_dump
from agent.host.dump_cache import DumpCache
from agent.host.seccomp_dump import (
    GRACE,
    DumpError,
    FilterDump,
    dump_filters,
    measure_stop,
    read_stack,
    stopped,
)
from agent.seccomp.compile import build_filter
from agent.seccomp.model import ALLOW, EPERM, Profile, Rule
from agent.seccomp.oci import load_oci
from tests.support import PROJECT, need, need_root, need_tool

TARGET = Path(__file__).resolve().parent / "seccomp_target.py"
ENV = {**os.environ, "PYTHONPATH": str(PROJECT)}

ALLOW_ALL = struct.pack("<HBBI", 0x06, 0, 0, 0x7FFF0000)
"""``ret SECCOMP_RET_ALLOW``: the smallest filter there is."""
LOAD_NR_ALLOW = struct.pack("<HBBI", 0x20, 0, 0, 0) + ALLOW_ALL
"""``ld [nr]; ret ALLOW``: another allow-all, told apart from the first by its bytes."""
DENIED = ("kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
          "mount", "umount2", "pivot_root", "swapon", "swapoff", "reboot", "acct", "bpf",
          "perf_event_open", "process_vm_readv", "process_vm_writev", "userfaultfd",
          "open_by_handle_at", "iopl", "ioperm", "settimeofday", "clock_settime", "adjtimex",
          "quotactl", "add_key", "request_key", "keyctl", "fsopen", "fsmount", "move_mount",
          "open_tree", "fspick", "syslog", "vhangup", "uselib")


def denylist_program() -> bytes:
    """A real compiled filter (~100 instructions): allow by default, EPERM for ``DENIED``."""
    profile = Profile("dump-test", ALLOW, deny=(Rule(DENIED, EPERM),), no_new_privs=False,
                      architectures=("x86_64", "x86"))
    return build_filter(profile).bpf()


class Target:
    """A running ``seccomp_target.py``, commanded line by line."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(TARGET)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1, env=ENV)
        self.pid = self.proc.pid
        self.expect_stopped = False

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def reply(self, timeout: float = 10.0) -> str | None:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline().strip() if ready else None

    def ask(self, line: str) -> str:
        self.send(line)
        answer = self.reply()
        assert answer is not None, f"no answer to {line!r}"
        return answer

    def load(self, program: bytes, tsync: bool = True) -> int:
        answer = self.ask(f"load {program.hex()}{' tsync' if tsync else ''}")
        assert answer.startswith("ok "), answer
        return int(answer.split()[1])

    def tids(self) -> list[int]:
        return sorted(int(t) for t in os.listdir(f"/proc/{self.pid}/task"))

    def state(self, tid: int | None = None) -> str:
        return thread_state(tid or self.pid)

    def assert_running(self) -> None:
        """No thread is in a stop (t: ptrace-stop, T: group stop) and the main one answers."""
        for tid in self.tids():
            assert thread_state(tid) not in ("t", "T"), f"thread {tid} left stopped"
        assert tracer_of(self.pid) == 0
        assert self.ask("ping") == "pong"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def thread_state(tid: int) -> str:
    with open(f"/proc/{tid}/stat") as handle:
        return handle.read().rpartition(")")[2].split()[0]


def tracer_of(tid: int) -> int:
    with open(f"/proc/{tid}/status") as handle:
        for line in handle:
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    raise AssertionError("no TracerPid line")


def wait_for(predicate: object, timeout: float = 5.0) -> None:
    assert callable(predicate)
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "condition not reached in time"
        time.sleep(0.005)


@pytest.fixture
def target() -> Iterator[Target]:
    need_root()
    running = Target()
    try:
        assert running.ask("ping") == "pong"
        yield running
        if not running.expect_stopped:
            running.assert_running()
    finally:
        running.close()


def run_python(code: str, *prefix: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True, text=True,
                          env=ENV, timeout=timeout, check=False)


REPORT = """
import json, sys
from agent.host.seccomp_dump import DumpError, dump_filters, read_stack
def report(call):
    try:
        got = call()
        print(json.dumps({"ok": len(got.filters)}))
    except DumpError as exc:
        print(json.dumps({"reason": exc.reason, "errno": exc.errno}))
"""


# --- reading what was loaded ---------------------------------------------------------------

def test_dump_returns_exactly_the_loaded_programs_newest_first(target: Target) -> None:
    compiled = denylist_program()
    assert 80 <= len(compiled) // 8 <= 160
    assert target.load(ALLOW_ALL) == 1
    assert target.load(LOAD_NR_ALLOW) == 2
    assert target.load(compiled) == 3
    dump = dump_filters(target.pid)
    assert dump.filters == (compiled, LOAD_NR_ALLOW, ALLOW_ALL)
    assert dump.tid == target.pid
    assert not dump.cached
    assert 0 < dump.stop_ns < 50_000_000  # a sanity bound only; the benchmark has the figures
    with open(f"/proc/{target.pid}/stat") as handle:
        assert dump.start_time == int(handle.read().rpartition(")")[2].split()[19])
    read = read_stack(target.pid, 3)
    assert read.filters == dump.filters
    assert (read.stop, read.signal) == ("interrupt", signal.SIGTRAP)
    assert 0 < read.held_ns <= read.stop_ns


def test_docker_default_filter_roundtrips(target: Target) -> None:
    docker = PROJECT.parent / "shared" / "fixtures" / "seccomp" / "docker-default.json"
    need(docker.exists(), "../shared/fixtures/seccomp/docker-default.json is not present")
    profile, _ = load_oci(docker)
    program = build_filter(profile).bpf()
    target.load(program)
    assert dump_filters(target.pid).filters == (program,)


def test_thread_without_filter_is_not_stopped(target: Target) -> None:
    dump = dump_filters(target.pid)
    assert dump == FilterDump(target.pid, dump.start_time, (), 0, cached=False)


def test_thread_created_before_a_filter_loaded_without_tsync_has_none(target: Target) -> None:
    answer = target.ask("thread")
    early = int(answer.split()[1])
    assert early != target.pid
    assert target.load(ALLOW_ALL, tsync=False) == 1
    main, other = dump_filters(target.pid), dump_filters(early)
    assert main.filters == (ALLOW_ALL,)
    assert (other.tid, other.filters, other.stop_ns) == (early, (), 0)
    # TSYNC now gives the early thread the whole stack (its empty one is an ancestor).
    target.load(LOAD_NR_ALLOW, tsync=True)
    assert dump_filters(early).filters == (LOAD_NR_ALLOW, ALLOW_ALL)
    assert thread_state(early) not in ("t", "T")


def test_group_stopped_target_is_read_and_stays_stopped(target: Target) -> None:
    target.load(ALLOW_ALL)
    os.kill(target.pid, signal.SIGSTOP)
    wait_for(lambda: target.state() == "T")
    try:
        read = read_stack(target.pid, 1, timeout=1.0)
        assert read.filters == (ALLOW_ALL,)
        assert read.stop == "group-stop"
        assert read.signal == signal.SIGSTOP
        time.sleep(0.05)
        assert target.state() == "T"  # the detach left it in its group stop, as it was
        assert tracer_of(target.pid) == 0
    finally:
        os.kill(target.pid, signal.SIGCONT)
    wait_for(lambda: target.state() != "T")


def test_signals_arriving_around_the_stop_are_not_lost(target: Target) -> None:
    """The target signals itself non-stop while being dumped over and over.

    A signal dequeued between the seize and the interrupt shows up as a signal-delivery-stop
    instead of the interrupt stop; the detach must hand it back. Every SIGUSR1 sent is counted
    by the target's handler, so a swallowed one shows. Batches go on until such a stop was seen.
    """
    target.load(ALLOW_ALL)
    assert target.proc.stdout is not None
    kinds: dict[str, int] = {}
    for _ in range(10):
        sent = 100_000
        target.send(f"signals {sent}")
        answer = None
        end = time.monotonic() + 60
        while answer is None and time.monotonic() < end:
            read = read_stack(target.pid, 1, timeout=1.0)
            assert read.filters == (ALLOW_ALL,)
            kinds[read.stop] = kinds.get(read.stop, 0) + 1
            if read.stop == "signal":
                assert read.signal == signal.SIGUSR1
            ready, _, _ = select.select([target.proc.stdout], [], [], 0)
            if ready:
                answer = target.proc.stdout.readline().strip()
        assert answer == f"signals {sent} {sent}", kinds  # every SIGUSR1 was handled
        if kinds.get("signal"):
            break
    assert kinds.get("signal", 0) > 0, f"no signal-delivery-stop happened: {kinds}"
    assert kinds.get("interrupt", 0) > 0


# --- with a cache (the file itself: test_dump_cache.py) ----------------------------------

def test_cache_serves_an_unchanged_thread_and_a_new_filter_invalidates(target: Target) -> None:
    cache = DumpCache()
    target.load(ALLOW_ALL)
    first = dump_filters(target.pid, cache=cache)
    assert (first.cached, first.filters) == (False, (ALLOW_ALL,))
    assert first.stop_ns > 0
    again = dump_filters(target.pid, cache=cache)
    assert (again.cached, again.stop_ns, again.filters) == (True, 0, (ALLOW_ALL,))
    target.load(LOAD_NR_ALLOW)
    grown = dump_filters(target.pid, cache=cache)
    assert (grown.cached, grown.filters) == (False, (LOAD_NR_ALLOW, ALLOW_ALL))
    assert dump_filters(target.pid, cache=cache).cached
    assert len(cache) == 2
    cache.retain([(target.pid, first.start_time)])
    assert len(cache) == 2
    cache.retain([])
    assert len(cache) == 0


def test_cached_dump_does_not_touch_the_thread(target: Target) -> None:
    """Served from the cache even while another tracer holds the thread (no ptrace at all)."""
    cache = DumpCache()
    target.load(ALLOW_ALL)
    dump_filters(target.pid, cache=cache)
    with other_tracer(target.pid):
        assert dump_filters(target.pid, cache=cache).cached
        with pytest.raises(DumpError, match="already traced"):
            dump_filters(target.pid)


def test_cache_persists_across_instances(target: Target, tmp_path: Path) -> None:
    path = tmp_path / "state" / "filters.json"
    cache = DumpCache(path)
    target.load(denylist_program())
    target.load(ALLOW_ALL)
    dump = dump_filters(target.pid, cache=cache)
    cache.save()
    assert path.stat().st_mode & 0o777 == 0o600
    reloaded = DumpCache(path)
    assert reloaded.ignored is None
    assert reloaded.get((target.pid, dump.start_time, 2)) == dump.filters
    served = dump_filters(target.pid, cache=reloaded)
    assert (served.cached, served.filters) == (True, dump.filters)


# --- errors -------------------------------------------------------------------------------

def test_vanished_thread() -> None:
    need_root()
    gone = subprocess.Popen(["true"])
    gone.wait()
    with pytest.raises(DumpError) as caught:
        dump_filters(gone.pid)
    assert caught.value.errno == errno.ESRCH
    assert "does not exist" in caught.value.reason
    with pytest.raises(DumpError) as direct:
        read_stack(gone.pid)
    assert direct.value.errno == errno.ESRCH


def test_zombie_is_refused_without_a_stop(target: Target) -> None:
    target.load(ALLOW_ALL)
    target.send("exit")
    wait_for(lambda: target.state() == "Z")
    target.expect_stopped = True  # nothing left to run
    with pytest.raises(DumpError, match="zombie"):
        dump_filters(target.pid)
    with pytest.raises(DumpError, match="zombie") as direct:
        read_stack(target.pid)  # the kernel's EPERM, explained
    assert direct.value.errno == errno.EPERM


def test_already_traced_thread(target: Target) -> None:
    target.load(ALLOW_ALL)
    with other_tracer(target.pid) as tracer:
        with pytest.raises(DumpError, match=f"already traced by pid {tracer}") as caught:
            dump_filters(target.pid)
        assert caught.value.errno == errno.EPERM
        with pytest.raises(DumpError, match=f"already traced by pid {tracer}") as direct:
            read_stack(target.pid)  # SEIZE itself fails with EPERM
        assert direct.value.errno == errno.EPERM
        assert target.ask("ping") == "pong"


class other_tracer:
    """Another process that PTRACE_SEIZEs ``tid`` (without stopping it) until the block ends."""

    CODE = """
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
if libc.ptrace(0x4206, int(sys.argv[1]), None, None) != 0:
    print("error", ctypes.get_errno(), flush=True)
else:
    print("seized", flush=True)
sys.stdin.read()
"""

    def __init__(self, tid: int) -> None:
        self.tid = tid

    def __enter__(self) -> int:
        self.proc = subprocess.Popen([sys.executable, "-c", self.CODE, str(self.tid)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "seized"
        return self.proc.pid

    def __exit__(self, *exc: object) -> None:
        self.proc.communicate(timeout=10)
        wait_for(lambda: tracer_of(self.tid) == 0)


def test_caller_without_cap_sys_admin(target: Target) -> None:
    setpriv = need_tool("setpriv")
    target.load(ALLOW_ALL)
    drop = [setpriv, "--bounding-set=-sys_admin", "--inh-caps=-sys_admin", "--"]
    code = REPORT + f"report(lambda: dump_filters({target.pid}))\n" \
                    f"report(lambda: read_stack({target.pid}))\n"
    done = run_python(code, *drop)
    assert done.returncode == 0, done.stderr
    checked, kernel = (json.loads(line) for line in done.stdout.splitlines())
    # dump_filters refuses before stopping anything; read_stack stops it and the kernel says no.
    assert checked == {"reason": "reading seccomp filters needs CAP_SYS_ADMIN, which this "
                                 "process lacks", "errno": errno.EACCES}
    assert kernel["errno"] == errno.EACCES
    assert "lacks CAP_SYS_ADMIN" in kernel["reason"]


def test_caller_without_any_capability_cannot_attach(target: Target) -> None:
    setpriv = need_tool("setpriv")
    target.load(ALLOW_ALL)
    drop = [setpriv, "--bounding-set=-all", "--inh-caps=-all", "--"]
    code = REPORT + f"report(lambda: read_stack({target.pid}))\n"
    done = run_python(code, *drop)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["errno"] == errno.EPERM
    assert "lacks CAP_SYS_PTRACE" in result["reason"]


def test_caller_under_seccomp_is_refused(target: Target) -> None:
    target.load(ALLOW_ALL)
    code = (f"import sys; sys.path.insert(0, {str(TARGET.parent)!r})\n"
            "from seccomp_target import load\n"
            f"load(bytes.fromhex({ALLOW_ALL.hex()!r}), True)\n" + REPORT
            + f"report(lambda: dump_filters({target.pid}))\n"
              f"report(lambda: read_stack({target.pid}))\n")
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    checked, kernel = (json.loads(line) for line in done.stdout.splitlines())
    assert checked["errno"] == kernel["errno"] == errno.EACCES
    assert "runs under seccomp itself" in checked["reason"]
    assert "runs under seccomp itself" in kernel["reason"]


def test_own_threads_are_refused() -> None:
    need_root()
    code = ("import sys, threading, time\n"
            f"sys.path.insert(0, {str(TARGET.parent)!r})\n"
            "from seccomp_target import load\n" + REPORT + """
tids = []
def confined():
    load(bytes.fromhex(sys.argv[1]), False)  # this thread only
    tids.append(threading.get_native_id())
    time.sleep(30)
threading.Thread(target=confined, daemon=True).start()
while not tids:
    time.sleep(0.01)
report(lambda: dump_filters(tids[0]))
report(lambda: read_stack(tids[0]))
""")
    done = subprocess.run([sys.executable, "-c", code, ALLOW_ALL.hex()], capture_output=True,
                          text=True, env=ENV, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    checked, kernel = (json.loads(line) for line in done.stdout.splitlines())
    assert "belongs to this process" in checked["reason"]
    assert "belongs to this process" in kernel["reason"]
    assert kernel["errno"] == errno.EPERM


def test_thread_that_cannot_stop_times_out_and_is_released(target: Target,
                                                           tmp_path: Path) -> None:
    """A killable vfork wait ignores the interrupt: give up in time, never stop it later."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    target.load(ALLOW_ALL)
    target.send(f"block {fifo}")
    assert target.reply() == "blocking"
    try:
        wait_for(lambda: target.state() == "D")
        started = time.monotonic()
        with pytest.raises(DumpError, match="did not stop within 100 ms") as caught:
            dump_filters(target.pid, timeout=0.1)
        took = time.monotonic() - started
        assert caught.value.errno == errno.ETIMEDOUT
        assert 0.1 <= took < 0.1 + GRACE
        assert tracer_of(target.pid) == 0  # the tracer thread is gone, and its seize with it
        with pytest.raises(DumpError, match="did not stop within 50 ms"), \
                stopped(target.pid, 0.05):
            pytest.fail("the body must not run")
        assert tracer_of(target.pid) == 0
    finally:
        release(fifo)  # lets the vfork child open it: the wait ends (even if the test failed)
    assert target.reply() == "unblocked"
    time.sleep(0.05)
    assert target.state() not in ("t", "T")  # the interrupt left pending did not fire
    assert dump_filters(target.pid).filters == (ALLOW_ALL,)


def release(fifo: Path) -> None:
    """Open ``fifo`` for writing if its reader is waiting (never blocks)."""
    end = time.monotonic() + 5
    while time.monotonic() < end:
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            return
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader (yet)
                raise
            time.sleep(0.01)


def test_tiny_timeout_leaves_the_thread_running(target: Target) -> None:
    target.load(ALLOW_ALL)
    for _ in range(20):
        try:
            dump_filters(target.pid, timeout=1e-9)
        except DumpError as exc:
            assert exc.errno == errno.ETIMEDOUT
    wait_for(lambda: tracer_of(target.pid) == 0, timeout=1.0)
    assert target.state() not in ("t", "T")


def test_killing_the_dumper_while_the_target_is_stopped_releases_it(target: Target) -> None:
    target.load(ALLOW_ALL)
    code = ("import sys, time\nfrom agent.host.seccomp_dump import stopped\n"
            f"with stopped({target.pid}, 1.0):\n"
            "    print('stopped', flush=True)\n"
            "    time.sleep(120)\n")
    dumper = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env=ENV)
    try:
        assert dumper.stdout is not None
        assert dumper.stdout.readline().strip() == "stopped"
        assert target.state() == "t"  # in a ptrace-stop
        target.send("ping")
        assert target.reply(timeout=0.3) is None  # really stopped: no answer
    finally:
        dumper.kill()
        dumper.wait()
    assert target.reply() == "pong"  # the queued ping is answered once released
    wait_for(lambda: target.state() not in ("t", "T"), timeout=1.0)


def test_stopped_holds_the_thread_and_detaches_on_exit(target: Target) -> None:
    target.load(ALLOW_ALL)
    with stopped(target.pid, 1.0):
        assert target.state() == "t"
        assert tracer_of(target.pid) != 0
    wait_for(lambda: tracer_of(target.pid) == 0, timeout=1.0)
    with pytest.raises(RuntimeError, match="body failed"), stopped(target.pid, 1.0):
        raise RuntimeError("body failed")


def test_measure_stop(target: Target) -> None:
    early = int(target.ask("thread").split()[1])
    target.load(denylist_program(), tsync=False)
    times = measure_stop(target.pid, 20)
    assert len(times) == 20
    assert all(0 < t < 50_000_000 for t in times)
    with pytest.raises(DumpError, match="no seccomp filter"):
        measure_stop(early, 1)


# --- fixture trees (no ptrace) -------------------------------------------------------------

def fixture_thread(root: Path, tid: int, seccomp: int, filters: int = 0) -> None:
    base = root / "proc" / str(tid)
    base.mkdir(parents=True)
    fields = ["S"] + ["0"] * 49
    fields[19] = "1234"  # field 22: start time
    (base / "stat").write_text(f"{tid} (a (b) c) {' '.join(fields)}\n")
    (base / "status").write_text(f"Name:\tx\nTgid:\t{tid}\nTracerPid:\t0\nSeccomp:\t{seccomp}\n"
                                 f"Seccomp_filters:\t{filters}\n")


def test_fixture_tree_without_filter(tmp_path: Path) -> None:
    fixture_thread(tmp_path, 4_000_000, 0)
    assert dump_filters(4_000_000, root=tmp_path) == FilterDump(4_000_000, 1234, (), 0, False)


def test_fixture_tree_strict_mode(tmp_path: Path) -> None:
    fixture_thread(tmp_path, 4_000_001, 1)
    with pytest.raises(DumpError, match="strict seccomp mode"):
        dump_filters(4_000_001, root=tmp_path)


def test_fixture_tree_with_filter_is_not_stopped(tmp_path: Path) -> None:
    fixture_thread(tmp_path, 4_000_002, 2, 1)
    with pytest.raises(DumpError, match="read from the running kernel only"):
        dump_filters(4_000_002, root=tmp_path)
    cache = DumpCache(boot_id="b")
    cache.put((4_000_002, 1234, 1), (ALLOW_ALL,))
    assert dump_filters(4_000_002, root=tmp_path, cache=cache).cached


def test_nonsense_tids() -> None:
    for tid in (0, -1):
        with pytest.raises(DumpError, match="not a thread id"):
            dump_filters(tid)


def test_module_docstring_names_the_api() -> None:
    doc = seccomp_dump.__doc__ or ""
    for name in ("dump_filters", "DumpCache", "stopped", "DumpError"):
        assert name in doc
