"""``hostguard seccomp apply`` on real processes: a filter loaded mid-run, and proven.

The targets are real programs that keep working while a filter is put on them: a threaded
Python program (``apply_target.py``) and a C program with pthreads (``apply_target.c``, built
here with ``cc``). Each profile allows everything but ``mkdir``/``mkdirat`` (errno 95,
EOPNOTSUPP, which mkdir never returns on its own) and, cumulatively, a few calls nobody here
makes: applying them one after the other keeps the loaded stack equal to the newest profile.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.enforce.apply import ApplyError, apply_filter
from agent.host.seccomp_dump import dump_filters
from agent.seccomp import verify
from agent.seccomp.compile import CompiledFilter, build_filter
from agent.seccomp.profile import load_profile
from tests.live import THREADED
from tests.support import need_root, need_tool, run_cli

HERE = Path(__file__).resolve().parent
EOPNOTSUPP = errno.EOPNOTSUPP
EXTRA = ["chroot", "acct", "swapon", "swapoff", "pivot_root"]


def profile(tmp_path: Path, step: int = 0, *, nnp: bool = True) -> Path:
    """Allow all but mkdir and the first ``step`` of EXTRA (errno 95)."""
    names = ", ".join(["mkdir", "mkdirat", *EXTRA[:step]])
    path = tmp_path / f"profile-{step}{'' if nnp else '-no-nnp'}.yaml"
    path.write_text(f"""apiVersion: hostguard/v1
kind: SeccompProfile
metadata: {{name: apply-test-{step}}}
default_action: allow
no_new_privs: {'true' if nnp else 'false'}
deny:
  - syscalls: [{names}]
    action: {{errno: 95}}
""")
    return path


def compiled(path: Path) -> CompiledFilter:
    loaded = load_profile(path)
    assert not isinstance(loaded, list), loaded
    return build_filter(loaded)


class Target:
    """A running target answering one line per command."""

    def __init__(self, argv: list[str]) -> None:
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)
        self.pid = self.process.pid
        self.ready = self.read()
        assert self.ready.startswith("ready"), self.ready

    def read(self, timeout: float = 20) -> str:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        assert ready, "the target did not answer"
        line = self.process.stdout.readline()
        assert line, f"the target ended ({self.process.poll()})"
        return line.strip()

    def ask(self, command: str, timeout: float = 20) -> list[str]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.read(timeout).split()

    def status(self) -> list[tuple[int, int]]:
        words = self.ask("status")[1:]
        return [(int(words[i]), int(words[i + 1])) for i in range(0, len(words), 2)]

    def threads(self) -> dict[int, dict[str, str]]:
        found = {}
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            text = Path(f"/proc/{self.pid}/task/{tid}/status").read_text()
            found[int(tid)] = dict(line.split(":\t", 1) for line in text.splitlines()
                                   if ":\t" in line)
        return found

    def wait_blocked(self, tid: int) -> str:
        """The thread's /proc syscall line once it sleeps in a syscall."""
        for _ in range(500):
            line = Path(f"/proc/{self.pid}/task/{tid}/syscall").read_text().strip()
            state = Path(f"/proc/{self.pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1]
            if state.split()[0] == "S" and line not in ("running", "-1"):
                return line
            time.sleep(0.01)
        raise AssertionError(f"thread {tid} never blocked")

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def python_target(tmp_path: Path) -> Iterator[Target]:
    need_root()
    target = Target([sys.executable, str(HERE / "apply_target.py"), str(tmp_path)])
    yield target
    target.close()


@pytest.fixture(scope="module")
def c_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need_root()
    cc = need_tool("cc")
    binary = tmp_path_factory.mktemp("apply") / "apply_target"
    subprocess.run([cc, "-O1", "-Wall", "-Werror", "-pthread", "-o", str(binary),
                    str(HERE / "apply_target.c")], check=True)
    return binary


def c_target(program: Path, tmp_path: Path, *extra: str) -> Target:
    return Target([str(program), str(tmp_path), "30000", *extra])


def progressed(target: Target, before: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The workers' status once every one of them has run again since ``before``."""
    for _ in range(500):
        now = target.status()
        if all(n[0] > b[0] + 1 for n, b in zip(now, before, strict=True)):
            return now
        time.sleep(0.01)
    raise AssertionError(f"the workers stopped: {before} -> {now}")


def test_python_threads_get_the_filter_mid_run_and_a_signal_sent_meanwhile(
        python_target: Target, tmp_path: Path) -> None:
    target = python_target
    before = progressed(target, target.status())
    assert all(err == 0 for _, err in before)
    compiled_filter = compiled(profile(tmp_path))
    applied = apply_filter(target.pid, compiled_filter,
                           meanwhile=lambda: os.kill(target.pid, signal.SIGUSR1))
    assert (applied.outcome, applied.tid, applied.set_nnp) == ("applied", target.pid, True)
    assert applied.proof.equivalent, applied.proof.differences
    # Every thread carries it; the workers kept going and now see the profile's errno.
    for status in target.threads().values():
        assert (status["Seccomp"], status["Seccomp_filters"], status["NoNewPrivs"]) == \
            ("2", "1", "1")
    after = progressed(target, target.status())
    after = progressed(target, after)
    assert all(err == EOPNOTSUPP for _, err in after), after
    assert target.ask("new") == ["new", str(EOPNOTSUPP)]  # a thread started afterwards too
    # The SIGUSR1 sent while the main thread was held (all signals blocked) was delivered
    # once it ran again, and its read() went on: it answers.
    assert target.ask("signals") == ["signals", "1"]
    assert target.ask("release") == ["released"]  # the futex waiter was not broken
    dump = dump_filters(target.pid)
    assert verify.compare(dump.filters, compiled_filter).equivalent


def test_c_pthreads_get_the_filter_through_each_blocked_call(c_program: Path,
                                                             tmp_path: Path) -> None:
    """The C target's threads: workers in a loop, and one thread blocked in each of futex,
    nanosleep, epoll_wait and read; a filter is applied through each blocked one in turn."""
    target = c_target(c_program, tmp_path)
    try:
        blocked = {name: int(tid) for name, tid in
                   (word.split("=") for word in target.ready.split()[1:])}
        before = progressed(target, target.status())
        # epoll_wait first: once the process carries a filter, apply reads the stack first (a
        # stop of its own), which would end the epoll_wait before the apply's stop.
        for step, name in enumerate(["epoll_wait", "nanosleep", "futex", "read"]):
            tid = blocked[name]
            line = target.wait_blocked(tid)
            result = run_cli("seccomp", "apply", "--pid", str(target.pid), "--tid", str(tid),
                             "--profile", str(profile(tmp_path, step)))
            assert result.returncode == 0, result.stderr + result.stdout
            assert f"through thread {tid}" in result.stdout
            assert "equivalent to" in result.stdout
            # The thread went back into its call, same arguments, stack and instruction; a
            # nanosleep as restart_syscall (219), as after SIGSTOP/SIGCONT. epoll_wait ended
            # with EINTR (below).
            if name != "epoll_wait":
                expected = line.replace("230 ", "219 ", 1) if name == "nanosleep" else line
                assert target.wait_blocked(tid) == expected, name
        after = progressed(target, before)
        after = progressed(target, after)
        assert all(err == EOPNOTSUPP for _, err in after), after
        assert target.ask("new") == ["new", str(EOPNOTSUPP)]
        assert target.ask("release") == ["released"]
        # (the 30 s nanosleep must end first)
        results = dict(word.split("=") for word in target.ask("results", timeout=90)[1:])
        # futex and read returned normally; nanosleep was restarted (restart_syscall) and
        # slept its whole time (0, not -1/EINTR); epoll_wait is the one call the kernel ends
        # with EINTR after any stop, SIGSTOP/SIGCONT or a debugger alike (signal(7)).
        assert results == {"futex": "0", "sleep": "0/0", "epoll": f"-1/{errno.EINTR}",
                           "read": "1"}, results
        for status in target.threads().values():
            assert (status["Seccomp"], status["Seccomp_filters"]) == ("2", "4")
        verified = run_cli("seccomp", "verify", "--pid", str(target.pid), "--profile",
                           str(profile(tmp_path, 3)))
        assert verified.returncode == 0, verified.stdout
        again = run_cli("seccomp", "apply", "--pid", str(target.pid), "--profile",
                        str(profile(tmp_path, 3)))
        assert again.returncode == 0 and "left alone" in again.stdout, again.stdout
        assert target.threads()[target.pid]["Seccomp_filters"] == "4"
    finally:
        target.close()


def thread_state(pid: int, tid: int) -> tuple[str, str, bytes]:
    """What a blocked thread shows of its registers (/proc syscall: number, arguments, stack
    pointer, instruction pointer), the process's mappings, and 16 KiB below its stack pointer
    (where the program was written) and 256 bytes above."""
    syscall = Path(f"/proc/{pid}/task/{tid}/syscall").read_text()
    sp = int(syscall.split()[7], 16)
    maps = Path(f"/proc/{pid}/maps").read_text()
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        below = os.pread(mem.fileno(), 16640, sp - 16384)
    return syscall, maps, below


def test_kernel_tsync_refusal_names_the_thread_and_leaves_the_process_as_it_was(
        c_program: Path, tmp_path: Path) -> None:
    """Two threads each carry a filter of their own: the counts agree, so only the kernel
    can tell; its refusal comes after the program was written and calls were made."""
    target = c_target(c_program, tmp_path, "own")
    try:
        other = next(tid for tid in target.threads() if tid != target.pid)
        target.wait_blocked(target.pid)
        before = thread_state(target.pid, target.pid)
        result = run_cli("seccomp", "apply", "--pid", str(target.pid), "--profile",
                         str(profile(tmp_path)))
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"thread {other} carries a filter stack" in result.stderr
        assert "the process was left as it was" in result.stderr
        assert thread_state(target.pid, target.pid) == before
        assert target.ask("new") == ["new", "0"]  # it runs, and no filter denies mkdir
        assert {s["Seccomp_filters"] for s in target.threads().values()} == {"1"}
    finally:
        target.close()


def test_refused_before_any_stop(c_program: Path, tmp_path: Path) -> None:
    """A bad profile, a vanished pid, threads with different stacks: exit 2, untouched."""
    need_root()
    target = c_target(c_program, tmp_path)
    try:
        target.wait_blocked(target.pid)
        before = thread_state(target.pid, target.pid)
        bad = tmp_path / "bad.yaml"
        bad.write_text("apiVersion: hostguard/v1\nkind: SeccompProfile\nmetadata: {name: b}\n"
                       "default_action: allow\ndeny:\n  - syscalls: [mkdri]\n")
        result = run_cli("seccomp", "apply", "--pid", str(target.pid), "--profile", str(bad))
        assert result.returncode == 2 and "mkdri" in result.stderr, result.stderr
        assert thread_state(target.pid, target.pid) == before
        assert target.threads()[target.pid]["Seccomp"] == "0"
    finally:
        target.close()
    gone = run_cli("seccomp", "apply", "--pid", str(target.pid), "--profile",
                   str(profile(tmp_path)))
    assert gone.returncode == 2 and f"no process {target.pid}" in gone.stderr
    threaded = Target([sys.executable, "-c", "import sys; print('ready', flush=True);"
                       + THREADED.replace("print(tids[0], flush=True)", "print(tids[0])"),
                       "apply-threaded"])
    try:
        worker = int(threaded.read())
        with pytest.raises(ApplyError, match=f"{worker} \\(0 filter"):
            apply_filter(threaded.pid, compiled(profile(tmp_path)))
    finally:
        threaded.close()


def test_a_pid_that_names_another_process_now_is_refused(python_target: Target,
                                                         tmp_path: Path) -> None:
    """The daemon selects a process by pid and start time: a pid reused since is refused."""
    stat = Path(f"/proc/{python_target.pid}/stat").read_text()
    started = int(stat.rsplit(")", 1)[1].split()[19])
    compiled_filter = compiled(profile(tmp_path))
    with pytest.raises(ApplyError, match="is not the one selected"):
        apply_filter(python_target.pid, compiled_filter, start_time=started + 1)
    assert python_target.threads()[python_target.pid]["Seccomp"] == "0"
    applied = apply_filter(python_target.pid, compiled_filter, start_time=started)
    assert applied.outcome == "applied" and applied.start_time == started


def test_a_process_on_an_isolated_cpu_is_refused_unless_told(python_target: Target,
                                                             tmp_path: Path) -> None:
    root = tmp_path / "host"
    task = root / "proc" / str(python_target.pid) / "task" / str(python_target.pid)
    task.mkdir(parents=True)
    (task / "status").write_text("Name:\tpython\nCpus_allowed_list:\t1\n")
    (root / "proc" / "cmdline").write_text("isolcpus=1\n")
    (root / "proc" / "self").mkdir()
    (root / "proc" / "self" / "mountinfo").write_text("")
    cpu = root / "sys" / "devices" / "system" / "cpu"
    cpu.mkdir(parents=True)
    (cpu / "possible").write_text("0-1\n")
    compiled_filter = compiled(profile(tmp_path))
    with pytest.raises(ApplyError, match=r"isolated CPU\(s\) 1 \(--stop-isolated"):
        apply_filter(python_target.pid, compiled_filter, root=root)
    assert python_target.threads()[python_target.pid]["Seccomp"] == "0"
    applied = apply_filter(python_target.pid, compiled_filter, root=root, stop_isolated=True)
    assert applied.outcome == "applied" and applied.proof.equivalent


def test_without_no_new_privs_an_unprivileged_target_is_refused_by_the_kernel_untouched(
        tmp_path: Path) -> None:
    """A profile with ``no_new_privs: false`` on a target without CAP_SYS_ADMIN: the kernel
    answers EACCES to the borrowed seccomp() call, after the program was written."""
    need_root()
    setpriv = need_tool("setpriv")
    os.chmod(tmp_path, 0o777)
    target = Target([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
                     sys.executable, str(HERE / "apply_target.py"), str(tmp_path)])
    try:
        target.wait_blocked(target.pid)
        before = thread_state(target.pid, target.pid)
        with pytest.raises(ApplyError, match="EACCES") as refused:
            apply_filter(target.pid, compiled(profile(tmp_path, nnp=False)))
        assert refused.value.changed is None
        assert thread_state(target.pid, target.pid) == before
        assert target.threads()[target.pid]["Seccomp"] == "0"
        assert target.ask("signals") == ["signals", "0"]
    finally:
        target.close()
