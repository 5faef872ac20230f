"""``hostguard seccomp record`` end to end: the recorded profile lints clean and, loaded by
``hostguard exec``, runs the same program with the same output while what it never did is
denied."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from agent.seccomp.profile import load_profile
from tests.support import PROJECT, run_cli

PROGRAM = """
import ctypes, os, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
lines = []
def work(n):
    lines.append(f"thread {n}: {len(os.listdir('/proc/self/fd')) > 0}")
threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
for t in threads: t.start()
for t in threads: t.join()
pid = os.fork()
if pid == 0:
    print("child", os.getppid() > 1, flush=True)
    os._exit(0)
os.waitpid(pid, 0)
print(*sorted(lines), sep="\\n")
if sys.argv[1:] == ["probe"]:      # getpriority(2), x86_64 number 140: never made when recorded
    print("probe", libc.syscall(140, 0, 0), ctypes.get_errno())
sys.exit(5)
"""
EXPECTED = "child True\nthread 0: True\nthread 1: True\nthread 2: True\n"


def record(tmp_path: Path, *argv: str) -> tuple[Path, int, str, str]:
    profile = tmp_path / "recorded.yaml"
    done = run_cli("seccomp", "record", "-o", str(profile), "--", *argv)
    return profile, done.returncode, done.stdout, done.stderr


def test_round_trip_threads_fork_and_exit_status(tmp_path: Path) -> None:
    argv = [sys.executable, "-S", "-c", PROGRAM]
    profile, status, out, err = record(tmp_path, *argv)
    assert (status, out, err) == (5, EXPECTED, "")
    text = profile.read_text()
    assert text.startswith(f"# Recorded by hostguard seccomp record from: {sys.executable} -S")
    header = " ".join(text.replace("\n#", " ").split())  # comments are wrapped
    assert f"on Linux {os.uname().release}; the command exited with status 5." in header
    linted = run_cli("lint", str(profile))
    assert (linted.returncode, linted.stdout.splitlines()[-1]) == (
        0, "1 file(s) checked: 0 error(s), 0 warning(s)")
    loaded = load_profile(profile)
    assert not isinstance(loaded, list)
    allowed = list(loaded.rules[0].written)
    assert allowed == sorted(allowed, key=lambda n: (not n.startswith("@"), n))
    assert {"execve", "wait4", "futex", "getppid", "getdents64"} <= set(loaded.rules[0].syscalls)
    assert "getpriority" not in loaded.rules[0].syscalls

    again = run_cli("exec", "--profile", str(profile), "--", *argv)
    assert (again.returncode, again.stdout, again.stderr) == (5, EXPECTED, "")
    probed = run_cli("exec", "--profile", str(profile), "--", *argv, "probe")
    assert probed.returncode == 5
    assert probed.stdout == f"{EXPECTED}probe -1 {errno.EPERM}\n"


def test_round_trip_shell_pipeline(tmp_path: Path) -> None:
    argv = ["sh", "-c", "printf 'b\\na\\n' | sort | tr a-z A-Z"]
    profile, status, out, err = record(tmp_path, *argv)
    assert (status, out, err) == (0, "A\nB\n", "")
    again = run_cli("exec", "--profile", str(profile), "--", *argv)
    assert (again.returncode, again.stdout, again.stderr) == (0, "A\nB\n", "")
    # a command the pipeline never ran needs what the profile denies
    other = run_cli("exec", "--profile", str(profile), "--", "sh", "-c", "ls -l / >/dev/null")
    assert other.returncode != 0


def test_a_command_killed_by_a_signal_kills_the_recorder_alike(tmp_path: Path) -> None:
    profile, status, out, _ = record(tmp_path, "sh", "-c", "echo before; kill -TERM $$")
    assert (status, out) == (-signal.SIGTERM, "before\n")
    header = " ".join(profile.read_text().replace("\n#", " ").split())  # comments are wrapped
    assert "the command was killed by signal 15 (SIGTERM)." in header
    assert "kill" in profile.read_text()


def test_without_output_the_profile_follows_the_commands_output(tmp_path: Path) -> None:
    done = run_cli("seccomp", "record", "--", "sh", "-c", "echo hello")
    assert done.returncode == 0
    assert done.stdout.startswith("hello\n# Recorded by hostguard seccomp record from: ")
    assert "kind: SeccompProfile" in done.stdout


def test_commands_that_cannot_run_are_not_recorded(tmp_path: Path) -> None:
    missing = run_cli("seccomp", "record", "-o", str(tmp_path / "p"), "--", "no-such-command-x")
    assert missing.returncode == 127
    assert missing.stderr == ("hostguard seccomp record: no-such-command-x: command not found; "
                              "the command was not run\n")
    nothing = run_cli("seccomp", "record", "-o", str(tmp_path / "p"))
    assert nothing.returncode == 126
    assert nothing.stderr.endswith("no command given (hostguard seccomp record -- CMD ...); the "
                                   "command was not run\n")
    assert not (tmp_path / "p").exists()


def test_an_unwritable_output_exits_125_after_the_run(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    done = run_cli("seccomp", "record", "-o", str(tmp_path / "file" / "p.yaml"), "--",
                   "sh", "-c", "echo ran")
    assert (done.returncode, done.stdout) == (125, "ran\n")
    assert done.stderr.startswith(f"hostguard seccomp record: cannot write {tmp_path}/file/p.yaml")


SOCKETS = """
import socket, sys
for family, kind in ((socket.AF_INET, socket.SOCK_STREAM), (socket.AF_UNIX, socket.SOCK_DGRAM)):
    socket.socket(family, kind).close()
if sys.argv[1:] == ["probe"]:
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close()
        print("inet6 allowed")
    except OSError as exc:
        print("inet6", exc.errno)
print("done")
"""


def test_args_allows_only_the_socket_families_used(tmp_path: Path) -> None:
    argv = [sys.executable, "-S", "-c", SOCKETS]
    done = run_cli("seccomp", "record", "--args", "-o", str(tmp_path / "p.yaml"), "--", *argv)
    assert (done.returncode, done.stdout, done.stderr) == (0, "done\n", "")
    linted = run_cli("lint", str(tmp_path / "p.yaml"))
    assert linted.stdout.splitlines()[-1] == "1 file(s) checked: 0 error(s), 0 warning(s)"
    loaded = load_profile(tmp_path / "p.yaml")
    assert not isinstance(loaded, list)
    assert "socket" not in loaded.rules[0].syscalls  # never allowed whatever the family
    families = [(r.args[0].value, r.args[0].mask) for r in loaded.rules
                if r.syscalls == ("socket",)]
    assert families == [(1, 0xFFFF_FFFF), (2, 0xFFFF_FFFF)]  # AF_UNIX, AF_INET
    assert "With --args: socket arg0" in (tmp_path / "p.yaml").read_text()

    same = run_cli("exec", "--profile", str(tmp_path / "p.yaml"), "--", *argv)
    assert (same.returncode, same.stdout, same.stderr) == (0, "done\n", "")
    probed = run_cli("exec", "--profile", str(tmp_path / "p.yaml"), "--", *argv, "probe")
    assert (probed.returncode, probed.stdout) == (0, f"inet6 {errno.EPERM}\ndone\n")


RUNNING = """
import os, signal, sys, threading, time
signal.signal(signal.SIGUSR1, lambda *_: print("usr1", flush=True))
def tick():
    while True:
        os.getppid()                  # made by a thread only
        time.sleep(0.01)
threading.Thread(target=tick, daemon=True).start()
print("ready", flush=True)
while True:
    print("tick", flush=True)
    time.sleep(0.02)
"""


def start_running(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    out = tmp_path / "out"
    with out.open("wb") as sink:
        target = subprocess.Popen([sys.executable, "-S", "-c", RUNNING], stdout=sink)
    for _ in range(1500):
        if out.read_text().startswith("ready"):
            return target, out
        time.sleep(0.01)
    target.kill()
    raise AssertionError("the target did not start")


def tracer_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("TracerPid:")[1].split()[0])


def state_of(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def still_ticking(out: Path) -> bool:
    before = out.read_text().count("tick")
    time.sleep(0.3)
    return out.read_text().count("tick") > before


def test_attach_records_every_thread_and_lets_the_process_go(tmp_path: Path) -> None:
    target, out = start_running(tmp_path)
    try:
        recorder = subprocess.Popen(
            [sys.executable, "-m", "agent", "seccomp", "record", "-o", str(tmp_path / "p.yaml"),
             "--pid", str(target.pid), "--duration", "1.5"],
            cwd=PROJECT, env={**os.environ, "PYTHONPATH": str(PROJECT)},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(1500):  # the recorder's start-up, on a loaded CI machine
            if tracer_of(target.pid) == recorder.pid:
                break
            time.sleep(0.01)
        target.send_signal(signal.SIGUSR1)  # delivered while traced
        stdout, stderr = recorder.communicate(timeout=60)
        assert (recorder.returncode, stdout, stderr) == (0, "", "")
        assert tracer_of(target.pid) == 0
        assert state_of(target.pid) in "RS"
        assert still_ticking(out)
        assert "usr1" in out.read_text()
    finally:
        target.kill()
        target.wait()
    text = (tmp_path / "p.yaml").read_text()
    assert f"by attaching to pid {target.pid} ({os.path.realpath(sys.executable)}) for 1.5 s" \
        in " ".join(text.replace("\n#", " ").split())
    assert "it was released, still running." in text
    loaded = load_profile(tmp_path / "p.yaml")
    assert not isinstance(loaded, list)
    assert {"getppid", "clock_nanosleep", "write", "rt_sigreturn"} <= set(
        loaded.rules[0].syscalls)
    linted = run_cli("lint", str(tmp_path / "p.yaml"))
    assert linted.stdout.splitlines()[-1] == "1 file(s) checked: 0 error(s), 0 warning(s)"


def test_a_killed_attaching_recorder_leaves_the_process_running(tmp_path: Path) -> None:
    target, out = start_running(tmp_path)
    try:
        recorder = subprocess.Popen(
            [sys.executable, "-m", "agent", "seccomp", "record", "-o", str(tmp_path / "p.yaml"),
             "--pid", str(target.pid), "--duration", "60"],
            cwd=PROJECT, env={**os.environ, "PYTHONPATH": str(PROJECT)})
        for _ in range(1500):  # the recorder's start-up, on a loaded CI machine
            if tracer_of(target.pid) == recorder.pid:
                break
            time.sleep(0.01)
        assert tracer_of(target.pid) == recorder.pid
        recorder.kill()
        recorder.wait()
        for _ in range(100):
            if tracer_of(target.pid) == 0:
                break
            time.sleep(0.01)
        assert tracer_of(target.pid) == 0
        assert still_ticking(out)
    finally:
        target.kill()
        target.wait()
    assert not (tmp_path / "p.yaml").exists()


def test_attach_refusals(tmp_path: Path) -> None:
    def record_(*words: str) -> tuple[int, str]:
        done = run_cli("seccomp", "record", "-o", str(tmp_path / "p"), *words)
        return done.returncode, done.stderr
    assert record_("--pid", "1") == (
        2, "hostguard seccomp record: --pid needs --duration SECONDS (more than 0)\n")
    assert record_("--pid", "1", "--duration", "1", "--", "true") == (
        2, "hostguard seccomp record: --pid and a command exclude each other\n")
    assert record_("--duration", "1", "--", "true")[0] == 126
    code, err = record_("--pid", "999999999", "--duration", "1")
    assert code == 2
    assert err.startswith("hostguard seccomp record: not attaching to 999999999: its threads "
                          "cannot be listed")
    assert not (tmp_path / "p").exists()


def test_a_stopped_process_stays_stopped_after_the_attach(tmp_path: Path) -> None:
    target, out = start_running(tmp_path)
    try:
        target.send_signal(signal.SIGSTOP)
        for _ in range(100):
            if state_of(target.pid) == "T":
                break
            time.sleep(0.01)
        done = run_cli("seccomp", "record", "-o", str(tmp_path / "p.yaml"), "--pid",
                       str(target.pid), "--duration", "0.3")
        assert (done.returncode, done.stderr) == (0, "")
        assert (state_of(target.pid), tracer_of(target.pid)) == ("T", 0)
        assert not still_ticking(out)
        target.send_signal(signal.SIGCONT)
        assert still_ticking(out)
    finally:
        target.kill()
        target.wait()
