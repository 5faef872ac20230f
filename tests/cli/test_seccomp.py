"""``hostguard seccomp compile PROFILE --format bpf|pfc|oci|systemd [-o FILE]``."""

from __future__ import annotations

import json
from pathlib import Path

from agent.seccomp.compile import build_filter
from agent.seccomp.model import Profile
from agent.seccomp.profile import load_profile
from tests.support import PROJECT, run_cli

GATEWAY = PROJECT / "policies" / "seccomp" / "trading-gateway.yaml"
HEAD = "apiVersion: hostguard/v1\nkind: SeccompProfile\nmetadata: {name: t}\n"


def _profile(path: Path) -> Profile:
    loaded = load_profile(path)
    assert isinstance(loaded, Profile), loaded
    return loaded


def test_bpf_to_a_file_is_the_checked_program(tmp_path: Path) -> None:
    out = tmp_path / "gateway.bpf"
    done = run_cli("seccomp", "compile", str(GATEWAY), "--format", "bpf", "-o", str(out))
    assert (done.returncode, done.stdout, done.stderr) == (0, f"wrote {out}\n", "")
    program = out.read_bytes()
    assert len(program) % 8 == 0
    assert program == build_filter(_profile(GATEWAY)).bpf()


def test_pfc_shows_arch_check_tree_and_argument_rules() -> None:
    done = run_cli("seccomp", "compile", str(GATEWAY), "--format", "pfc")
    assert done.returncode == 0
    assert done.stdout.count("# filter for arch") == 1
    assert "# filter for arch x86_64 (3221225534)" in done.stdout
    assert "if ($syscall > " in done.stdout  # binary tree: well over a handful of syscalls
    assert '# filter for syscall "socket" (41)' in done.stdout
    assert "# invalid architecture action\naction KILL_PROCESS;" in done.stdout


def test_log_mode_override(tmp_path: Path) -> None:
    done = run_cli("seccomp", "compile", str(GATEWAY), "--mode", "log")
    assert done.returncode == 0
    assert "ERRNO" not in done.stdout and "action LOG;" in done.stdout


def test_log_mode_override_reaches_the_systemd_lines() -> None:
    done = run_cli("seccomp", "compile", str(GATEWAY), "--format", "systemd", "--mode", "log",
                   "--lossy")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("SystemCallLog=~") and "SystemCallFilter=" not in done.stdout
    assert "RestrictAddressFamilies=" not in done.stdout  # it would refuse, not log
    assert ("hostguard: loss: socket: argument conditions (arg0 eq 2; arg0 eq 10; arg0 eq 1; "
            "arg0 eq 16) cannot be expressed; socket gets log in every case\n") in done.stderr


def test_oci_and_systemd_output() -> None:
    oci = run_cli("seccomp", "compile", str(GATEWAY), "--format", "oci")
    assert oci.returncode == 0
    data = json.loads(oci.stdout)
    assert (data["defaultAction"], data["defaultErrnoRet"]) == ("SCMP_ACT_ERRNO", 1)
    loss = ("socket(): address families other than AF_UNIX AF_INET AF_INET6 AF_NETLINK fail "
            "with EAFNOSUPPORT (RestrictAddressFamilies=), the profile gives errno(1)")
    refused = run_cli("seccomp", "compile", str(GATEWAY), "--format", "systemd")
    assert refused.returncode == 2 and refused.stdout == ""
    assert f"hostguard: cannot express: {loss}\n" in refused.stderr
    systemd = run_cli("seccomp", "compile", str(GATEWAY), "--format", "systemd", "--lossy")
    assert systemd.returncode == 0
    assert systemd.stdout.startswith("SystemCallFilter=")
    assert "\nRestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK\n" in systemd.stdout
    assert systemd.stderr == f"hostguard: loss: {loss}\n"


def test_hand_written_names_absent_here_are_noted(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(HEAD + "default_action: {errno: 1}\nrules:\n"
                    "  - syscalls: [read, socketcall, '@default']\n")
    done = run_cli("seccomp", "compile", str(path))
    assert done.returncode == 0
    assert done.stderr == "hostguard: note: not syscalls on x86_64, left out there: socketcall\n"


def test_profiles_that_cannot_compile_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(HEAD + "default_action: {errno: 1}\nrules:\n"
                    "  - syscalls: [socket]\n    args: [{index: 0, op: ne, value: 17}]\n"
                    "deny:\n  - syscalls: [socket]\n    args: [{index: 0, op: eq, value: 40}]\n")
    done = run_cli("seccomp", "compile", str(path), "--format", "bpf", "-o",
                   str(tmp_path / "x.bpf"))
    assert done.returncode == 2
    assert done.stderr.startswith(f"hostguard: {path}:6:5: socket: excluding what the earlier ")
    assert "arg0 ne 17 and arg0 ne 40" in done.stderr
    assert not (tmp_path / "x.bpf").exists()
    path.write_text(HEAD + "default_action: {errno: 1}\nrules: [{syscalls: [nope_call]}]\n")
    done = run_cli("seccomp", "compile", str(path))
    assert done.returncode == 2
    assert "nope_call" in done.stderr
