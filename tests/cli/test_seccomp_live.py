"""agent/cli/seccomp_live.py without a live target: ``seccomp dump --file`` and the error exits."""

from __future__ import annotations

import json
from pathlib import Path

from agent.seccomp.compile import build_filter
from agent.seccomp.model import ALLOW, EPERM, Profile, Rule
from tests.support import run_cli

PROFILE = """apiVersion: hostguard/v1
kind: SeccompProfile
metadata: {name: loose}
default_action: allow
deny:
  - syscalls: [ptrace]
"""


def test_dump_a_program_file(tmp_path: Path) -> None:
    program = tmp_path / "p.bpf"
    program.write_bytes(build_filter(Profile("p", EPERM, rules=(Rule(("read", "write"),
                                                                     ALLOW),))).bpf())
    shown = run_cli("seccomp", "dump", "--file", str(program))
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == f"file {program}"
    assert "  allow (2): read write" in lines
    as_json = json.loads(run_cli("seccomp", "dump", "--file", str(program), "--format",
                                 "json").stdout)
    rows = {row["name"]: row["action"] for row in as_json["table"]["x86_64"] if row["name"]}
    assert (rows["read"], rows["getpid"]) == ("allow", "errno(1)")
    assert len(as_json["table"]["x86_64"]) == 1024


def test_errors_exit_2_with_the_reason(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bpf"
    junk.write_bytes(b"\x06\x00\x00\x00\x00\x00\xff")  # 7 bytes: not whole instructions
    bad = run_cli("seccomp", "dump", "--file", str(junk))
    assert bad.returncode == 2 and "hostguard: not a valid seccomp program" in bad.stderr
    missing = run_cli("seccomp", "dump", "--file", str(tmp_path / "none.bpf"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    both = run_cli("seccomp", "dump", "--file", str(junk), "--tid", "1")
    assert both.returncode == 2 and "--tid goes with --pid" in both.stderr
    profile = tmp_path / "bad.yaml"
    profile.write_text(PROFILE.replace("ptrace", "ptrac"))
    invalid = run_cli("seccomp", "verify", "--pid", "1", "--profile", str(profile))
    assert invalid.returncode == 2 and f"invalid profile {profile}" in invalid.stderr
    assert f"{profile}:6:" in invalid.stderr
