"""``hostguard exec`` end to end: the target runs under the filter, or does not run at all."""

from __future__ import annotations

import errno
import signal
import sys
from pathlib import Path

from agent.enforce import exec as enforce
from agent.seccomp.model import EPERM, Profile, Rule
from tests.support import run_cli

HEAD = "apiVersion: hostguard/v1\nkind: SeccompProfile\nmetadata: {name: t}\n"
SERVICE = HEAD + """default_action: {errno: 1}
rules:
  - syscalls: ["@system-service", execve]
deny:
  - syscalls: [getppid]
    action: {errno: 13}
"""
PROBE = ("import ctypes, sys; libc = ctypes.CDLL(None, use_errno=True); "
         "r = libc.syscall(110); print(r, ctypes.get_errno())")
"""Prints what getppid (x86_64 number 110) returned and the errno."""


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_target_runs_filtered_with_no_new_privs(tmp_path: Path) -> None:
    done = run_cli("exec", "--profile", write(tmp_path, SERVICE), "--", "cat", "/proc/self/status")
    assert (done.returncode, done.stderr) == (0, "")
    status = done.stdout.splitlines()
    assert "Seccomp:\t2" in status
    assert "NoNewPrivs:\t1" in status
    assert "Seccomp_filters:\t1" in status


def test_denied_syscall_in_the_target_fails_with_the_errno(tmp_path: Path) -> None:
    done = run_cli("exec", "--profile", write(tmp_path, SERVICE), "--",
                   sys.executable, "-c", PROBE)
    assert (done.returncode, done.stdout) == (0, f"-1 {errno.EACCES}\n")


def test_exit_status_is_the_targets_own(tmp_path: Path) -> None:
    done = run_cli("exec", "--profile", write(tmp_path, SERVICE), "--", "sh", "-c", "exit 7")
    assert (done.returncode, done.stderr) == (7, "")


def test_the_target_gets_the_default_sigpipe(tmp_path: Path) -> None:
    # Python ignores SIGPIPE; unreset, `yes` would complain of a broken pipe instead of dying.
    done = run_cli("exec", "--profile", write(tmp_path, SERVICE), "--", "sh", "-c",
                   "yes | head -n 1")
    assert (done.returncode, done.stdout, done.stderr) == (0, "y\n", "")


def test_kill_action_kills_the_target_and_log_mode_lets_it_run(tmp_path: Path) -> None:
    profile = write(tmp_path, SERVICE.replace("action: {errno: 13}", "action: kill_process"))
    killed = run_cli("exec", "--profile", profile, "--", sys.executable, "-c", PROBE)
    assert killed.returncode == -signal.SIGSYS  # the exec'd target itself died of SIGSYS
    assert killed.stdout == ""
    logged = run_cli("exec", "--profile", profile, "--mode", "log", "--",
                     sys.executable, "-c", PROBE)
    assert logged.returncode == 0
    reported, err = logged.stdout.split()
    assert int(reported) > 1 and err == "0"  # getppid succeeded: SECCOMP_RET_LOG allows


def _not_started(tmp_path: Path, *args: str) -> tuple[int, str]:
    marker = tmp_path / "started"
    done = run_cli("exec", *args, "--", "touch", str(marker))
    assert not marker.exists()
    assert done.stdout == ""
    return done.returncode, done.stderr


def test_broken_profile_means_the_target_never_starts(tmp_path: Path) -> None:
    broken = write(tmp_path, HEAD + "default_action: {errno: 1}\nrules:\n  - syscalls: [read]\n"
                   "    action: sometimes\n")
    status, stderr = _not_started(tmp_path, "--profile", broken)
    assert status == 126
    assert stderr.startswith(f"{broken}:")
    assert stderr.endswith("hostguard exec: invalid profile; the command was not run\n")


def test_unknown_syscall_means_the_target_never_starts(tmp_path: Path) -> None:
    profile = write(tmp_path, HEAD + "default_action: {errno: 1}\nrules:\n"
                    "  - syscalls: [read, no_such_call]\n")
    status, stderr = _not_started(tmp_path, "--profile", profile)
    assert status == 126
    assert "no_such_call" in stderr
    assert stderr.endswith("; the command was not run\n")


def test_missing_profile_file_and_usage_errors_exit_126(tmp_path: Path) -> None:
    status, stderr = _not_started(tmp_path, "--profile", str(tmp_path / "absent.yaml"))
    assert status == 126 and "absent.yaml" in stderr
    status, stderr = _not_started(tmp_path)
    assert (status, stderr) == (126, "hostguard exec: --profile is required; the command was "
                                "not run\n")
    status, stderr = _not_started(tmp_path, "--profile", write(tmp_path, SERVICE), "--mode",
                                  "audit")
    assert (status, stderr) == (126, "hostguard exec: --mode must be enforce or log, not "
                                "'audit'; the command was not run\n")


def test_command_not_found_exits_127_before_loading(tmp_path: Path) -> None:
    done = run_cli("exec", "--profile", write(tmp_path, SERVICE), "--", "no-such-command-xyz")
    assert (done.returncode, done.stderr) == (127, "hostguard exec: no-such-command-xyz: command "
                                              "not found; the command was not run\n")
    done = run_cli("exec", "--profile", write(tmp_path, SERVICE), "--")
    assert done.returncode == 126
    assert "no command given" in done.stderr


def test_execve_denied_by_the_filter_itself_exits_126(tmp_path: Path) -> None:
    no_exec = write(tmp_path, HEAD + "default_action: {errno: 1}\nrules:\n"
                    "  - syscalls: ['@default', '@basic-io', '@signal', '@file-system']\n"
                    "deny:\n  - syscalls: [execve]\n")
    status, stderr = _not_started(tmp_path, "--profile", no_exec)
    assert status == 126
    assert stderr.endswith("/touch under the filter: Operation not permitted; the command was "
                           "not run\n")


def test_prepare_refuses_before_anything_changes() -> None:
    bad = Profile("t", EPERM, (Rule(("read", "no_such_call"), EPERM),))
    for profile, argv, message, status in [
        (bad, ["true"], "cannot compile the profile: unknown syscall 'no_such_call'", 126),
        (Profile("t", EPERM), [], "no command given", 126),
        (Profile("t", EPERM), ["/nonexistent/x"], "/nonexistent/x: no such file", 127),
        (Profile("t", EPERM), ["/etc"], "/etc: not an executable file", 126),
    ]:
        try:
            enforce.prepare(profile, argv)
        except enforce.ExecError as err:
            assert err.message.startswith(message)
            assert err.status == status
        else:
            raise AssertionError(f"prepare accepted {argv}")
