"""``hostguard seccomp learn`` end to end: records a real log-mode filter left in the kernel
ring buffer become exactly the missing syscall, and the proposed profile runs the program under
enforce; the audit.log fixture covers selection, other ABIs and malformed lines."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from agent.seccomp.profile import load_profile
from tests.support import FIXTURES, PROJECT, need_root, run_cli

AUDIT_LOG = FIXTURES / "seccomp_log" / "audit.log"
PROFILE = ("# what the program needs\napiVersion: hostguard/v1\nkind: SeccompProfile\n"
           "metadata:\n  name: learnt\ndefault_action: {{errno: 1}}\nrules:\n"
           "  - syscalls:   # recorded\n{names}    action: allow\n")


def _profile(tmp_path: Path, names: list[str]) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(PROFILE.format(names="".join(f"      - {n}\n" for n in names)))
    return path


def _names(path: Path) -> list[str]:
    profile = load_profile(path)
    assert not isinstance(profile, list), profile
    return sorted(n for r in profile.rules for n in r.syscalls)


def test_learns_the_missing_syscall_from_kmsg(tmp_path: Path) -> None:
    need_root()
    assert "log" in Path("/proc/sys/kernel/seccomp/actions_logged").read_text().split()
    run_cli("seccomp", "record", "-o", str(tmp_path / "rec.yaml"), "--", "/bin/true", check=True)
    recorded = _names(tmp_path / "rec.yaml")
    assert "close" in recorded
    profile = _profile(tmp_path, [n for n in recorded if n != "close"])
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    for _ in range(3):  # the kernel rate-limits audit printing (10 per 5 s): try again later
        child = subprocess.Popen([sys.executable, "-m", "agent", "exec", "--mode", "log",
                                  "--profile", str(profile), "--", "/bin/true"], env=env)
        assert child.wait(60) == 0
        learnt = run_cli("seccomp", "learn", str(profile), "--since", "2m", "--pid",
                         str(child.pid), "--source", "kmsg", "-o", str(tmp_path / "new.yaml"))
        if learnt.returncode == 1:
            break
        time.sleep(5.5)
    assert learnt.returncode == 1, learnt.stderr
    assert [line for line in learnt.stdout.splitlines() if line.startswith(("+ ", "- "))] \
        == ["+      - close"]
    assert _names(tmp_path / "new.yaml") == recorded
    assert "# recorded" in (tmp_path / "new.yaml").read_text()
    assert run_cli("exec", "--profile", str(tmp_path / "new.yaml"), "--", "/bin/true"
                   ).returncode == 0


def test_fixture_selection_and_notes(tmp_path: Path) -> None:
    profile = _profile(tmp_path, ["read"])
    done = run_cli("seccomp", "learn", str(profile), "--since", "2023-11-14T00:00:00",
                   "--comm", "my app", "--source", str(AUDIT_LOG))
    assert done.returncode == 1, done.stderr
    added = [line for line in done.stdout.splitlines() if line.startswith("+ ")]
    assert added == ["+      - getuid", "+      - socket"]  # not uname (older), not ptrace
    assert "4 malformed" in done.stderr
    assert "x86 not added (the profile kills other ABIs): getpid" in done.stderr
    other = run_cli("seccomp", "learn", str(profile), "--since", "2023-11-14T00:00:00",
                    "--pid", "999", "--source", str(AUDIT_LOG))
    assert other.returncode == 1 and "+      - kill" in other.stdout
    again = run_cli("seccomp", "learn", str(profile), "--since", "2030-01-01T00:00:00Z",
                    "--source", str(AUDIT_LOG))
    assert again.returncode == 0 and again.stdout == ""


def test_invalid_input_is_exit_2(tmp_path: Path) -> None:
    profile = _profile(tmp_path, ["read"])
    bad_since = run_cli("seccomp", "learn", str(profile), "--since", "yesterday")
    assert bad_since.returncode == 2 and "--since" in bad_since.stderr
    missing = run_cli("seccomp", "learn", str(profile), "--since", "1m", "--source",
                      str(tmp_path / "none.log"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    device = run_cli("seccomp", "learn", str(profile), "--since", "1m", "--source", "/dev/zero")
    assert device.returncode == 2 and "not a regular file" in device.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [\n")
    invalid = run_cli("seccomp", "learn", str(broken), "--since", "1m")
    assert invalid.returncode == 2 and "broken.yaml:" in invalid.stderr
    fifo = tmp_path / "profile.yaml.fifo"
    os.mkfifo(fifo)  # read as text first, it blocked until a writer came
    hung = run_cli("seccomp", "learn", str(fifo), "--since", "1m", timeout=20)
    assert hung.returncode == 2 and "Traceback" not in hung.stderr
    write = run_cli("seccomp", "learn", str(profile), "--since", "2023-11-14T00:00:00",
                    "--source",
                    str(FIXTURES / "seccomp_log" / "audit.log"), "--comm", "my app",
                    "-o", str(profile / "out.yaml"))  # under a file: cannot be made
    assert write.returncode == 2 and "cannot write" in write.stderr, write.stderr
