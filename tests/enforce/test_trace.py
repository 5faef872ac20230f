"""The tracer behind ``hostguard seccomp record`` on real programs: every thread and child is
followed, each ABI told apart, and the program behaves as it does untraced."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.enforce.trace import Trace, run_traced
from agent.seccomp import syscalls
from agent.seccomp.recorded import by_abi
from tests.support import PROJECT, need_tool

THREADS_AND_FORK = """
import os, sys, threading
def work():
    os.times()                    # times(2): made in the thread only
t = threading.Thread(target=work); t.start(); t.join()
pid = os.fork()
if pid == 0:
    os.getppid()                  # getppid(2): made in the child only
    os._exit(0)
os.waitpid(pid, 0)
print("done")
"""


def names(trace: Trace) -> tuple[str, ...]:
    return by_abi(trace.calls).get(syscalls.native_arch(), ())


def traced(argv: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[Trace, str, str]:
    trace = run_traced(argv[0], argv)
    out, err = capfd.readouterr()
    return trace, out, err


def untraced(argv: list[str]) -> tuple[int, str, str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    return done.returncode, done.stdout, done.stderr


def test_threads_and_children_are_followed(capfd: pytest.CaptureFixture[str]) -> None:
    argv = [sys.executable, "-S", "-c", THREADS_AND_FORK]
    trace, out, err = traced(argv, capfd)
    assert (trace.status, out, err) == untraced(argv) == (0, "done\n", "")
    made = names(trace)
    assert {"times", "getppid", "execve", "wait4", "futex", "exit_group"} <= set(made)
    assert {"clone", "clone3"} & set(made)
    assert trace.processes >= 3  # the program, its thread, its child


def test_shell_pipeline_output_and_status_are_the_programs(
        capfd: pytest.CaptureFixture[str]) -> None:
    argv = ["/bin/sh", "-c", "printf 'b\\na\\n' | sort | tr a-z A-Z; echo err >&2; exit 7"]
    trace, out, err = traced(argv, capfd)
    assert (trace.status, out, err) == untraced(argv) == (7, "A\nB\n", "err\n")
    assert {"pipe2", "dup2", "wait4", "execve"} <= set(names(trace))


def test_death_by_signal_is_reported(capfd: pytest.CaptureFixture[str]) -> None:
    argv = ["/bin/sh", "-c", "echo before; kill -TERM $$; echo after"]
    trace, out, _ = traced(argv, capfd)
    assert (trace.status, out) == untraced(argv)[:2] == (-signal.SIGTERM, "before\n")
    assert "kill" in names(trace)


def test_signals_reach_the_program(capfd: pytest.CaptureFixture[str]) -> None:
    code = ("import os, signal\n"
            "signal.signal(signal.SIGUSR1, lambda *_: print('got USR1'))\n"
            "os.kill(os.getpid(), signal.SIGUSR1)\n"
            "r, w = os.pipe()\n"
            "if os.fork() == 0:\n"
            "    os.close(w); os.read(r, 1); os._exit(0)\n"   # SIGCHLD arrives while it waits
            "os.close(w); print(os.wait()[1])\n")
    argv = [sys.executable, "-S", "-c", code]
    trace, out, err = traced(argv, capfd)
    assert (trace.status, out, err) == untraced(argv) == (0, "got USR1\n0\n", "")


def test_sigpipe_kills_the_writer_as_untraced(capfd: pytest.CaptureFixture[str]) -> None:
    # Python ignores SIGPIPE; the recorded program must get the default back, as untraced.
    argv = ["/bin/sh", "-c", "yes | head -n 2; echo ${PIPESTATUS:-done}"]
    trace, out, err = traced(argv, capfd)
    assert (trace.status, out, err) == untraced(argv) == (0, "y\ny\ndone\n", "")


def test_i386_and_x32_calls_are_told_apart(tmp_path: Path,
                                           capfd: pytest.CaptureFixture[str]) -> None:
    need_tool("cc")
    source = tmp_path / "abis.c"
    source.write_text(
        "#include <unistd.h>\n#include <sys/syscall.h>\n"
        "int main(void) { long r;\n"
        "  __asm__ volatile (\"int $0x80\" : \"=a\"(r) : \"a\"(20) : \"memory\");\n"  # i386 getpid
        "  syscall(0x40000000 | 39);\n"                                                # x32 getpid
        "  return r > 0 ? 0 : 1; }\n")
    binary = tmp_path / "abis"
    subprocess.run(["cc", "-O2", "-o", str(binary), str(source)], check=True)
    trace, _, _ = traced([str(binary)], capfd)
    assert trace.status == 0
    seen = by_abi(trace.calls)
    assert seen["x86"] == ("getpid",)
    assert seen["x32"] == ("getpid",)
    assert "getpid" not in seen["x86_64"]  # the native ABI never made it


def test_calls_before_the_exec_are_not_the_programs(capfd: pytest.CaptureFixture[str]) -> None:
    trace, _, _ = traced(["/bin/true"], capfd)
    made = names(trace)
    assert made[:1] and "execve" in made
    assert "rt_sigaction" not in made  # the recorder's child resets SIGPIPE before the exec


def test_a_program_that_cannot_be_executed_exits_127(
        capfd: pytest.CaptureFixture[str]) -> None:
    trace, _, err = traced(["/nonexistent/program"], capfd)
    assert trace.status == 127
    assert "cannot execute /nonexistent/program" in err


def test_a_killed_recorder_kills_the_program(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    script = ("import sys; from agent.enforce.trace import run_traced; "
              f"run_traced('/bin/sh', ['sh', '-c', 'echo $$ > {pidfile}; exec sleep 60'])")
    recorder = subprocess.Popen([sys.executable, "-c", script], cwd=PROJECT)
    try:
        for _ in range(500):
            if pidfile.exists() and pidfile.read_text().strip():
                break
            time.sleep(0.01)
        target = int(pidfile.read_text())
    finally:
        recorder.kill()
        recorder.wait()
    for _ in range(500):  # EXITKILL: the kernel kills it; init reaps it
        if not Path(f"/proc/{target}").exists() or _zombie(target):
            return
        time.sleep(0.01)
    os.kill(target, signal.SIGKILL)
    pytest.fail("the traced program outlived its recorder")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
    except (OSError, IndexError):
        return True


def test_a_stopped_program_stays_stopped_until_continued(tmp_path: Path) -> None:
    out = tmp_path / "out"
    script = ("import sys; from agent.enforce.trace import run_traced; "
              "t = run_traced('/bin/sh', ['sh', '-c', 'echo $$; kill -STOP $$; echo resumed']); "
              "print(t.status)")
    with out.open("w") as sink:
        recorder = subprocess.Popen([sys.executable, "-c", script], cwd=PROJECT, stdout=sink)
        try:
            for _ in range(500):
                if out.read_text().strip():
                    break
                time.sleep(0.01)
            target = int(out.read_text())
            time.sleep(0.3)
            assert out.read_text() == f"{target}\n"  # still stopped: not resumed by the tracer
            os.kill(target, signal.SIGCONT)
            assert recorder.wait(timeout=30) == 0
        finally:
            recorder.kill()
            recorder.wait()
    assert out.read_text() == f"{target}\nresumed\n0\n"


def test_vfork_and_an_exec_from_a_thread_are_followed(capfd: pytest.CaptureFixture[str]) -> None:
    spawn = [sys.executable, "-S", "-c", "import subprocess; subprocess.run(['/bin/echo', 'a'])"]
    trace, out, _ = traced(spawn, capfd)
    assert (trace.status, out) == (0, "a\n")
    assert "vfork" in names(trace)  # subprocess starts its child with vfork
    from_thread = [sys.executable, "-S", "-c",
                   "import os, threading, time\n"
                   "threading.Thread(target=os.execv, args=('/bin/echo', ['echo', 'b'])).start()\n"
                   "time.sleep(30)\n"]
    trace, out, _ = traced(from_thread, capfd)
    assert (trace.status, out) == (0, "b\n")  # the exec ended the sleeping main thread
