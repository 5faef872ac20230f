"""``hostguard seccomp diff``: profiles compared by what their compiled filters do."""

from __future__ import annotations

import json
from pathlib import Path

from tests.seccomp.gateway import netlink_17
from tests.support import PROJECT, run_cli

GATEWAY = PROJECT / "policies/seccomp/trading-gateway.yaml"
HEAD = """apiVersion: hostguard/v1
kind: SeccompProfile
metadata: {name: p}
default_action: {errno: 1}
"""
BY_GROUP = HEAD + """rules:
  - syscalls: ["@basic-io", exit_group]
"""
BY_NAME = HEAD + """rules:
  - syscalls: [exit_group]
  - syscalls: [close, close_range, dup, dup2, dup3, lseek, pread64, preadv, preadv2, pwrite64,
               pwritev, pwritev2, read, readv, write, writev, _llseek]
deny:
  - syscalls: [ptrace]     # denied anyway: the default does the same
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_texts_that_compile_to_the_same_filter_are_equal(tmp_path: Path) -> None:
    a, b = write(tmp_path, "a.yaml", BY_GROUP), write(tmp_path, "b.yaml", BY_NAME)
    same = run_cli("seccomp", "diff", str(a), str(b))
    assert same.returncode == 0, same.stdout + same.stderr
    assert same.stdout.splitlines()[-1] == (
        "A and B: equal (3072 syscall numbers on x86_64, x86, x32)")


def test_every_difference_with_its_witness(tmp_path: Path) -> None:
    changed = netlink_17(tmp_path)
    shown = run_cli("seccomp", "diff", str(GATEWAY), str(changed))
    assert shown.returncode == 1, shown.stderr
    assert shown.stdout.splitlines() == [
        f"A: {GATEWAY}", f"B: {changed}",
        "x86_64 socket(0x10, 0x0, 0x0, 0x0, 0x0, 0x0): A allow, B errno(1)",
        "x86_64 socket(0x11, 0x0, 0x0, 0x0, 0x0, 0x0): A errno(1), B allow",
        "A and B: 2 difference(s) (3072 syscall numbers on x86_64, x86, x32)"]
    as_json = json.loads(run_cli("seccomp", "diff", str(changed), str(GATEWAY), "--format",
                                 "json").stdout)
    assert not as_json["equal"]
    assert [(d["kind"], d["args"][0], d["a"], d["b"]) for d in as_json["differences"]] == [
        ("only_a_permits", 17, "allow", "errno(1)"), ("only_b_permits", 16, "errno(1)", "allow")]


def test_a_different_action_and_no_new_privs(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", BY_GROUP)
    b = write(tmp_path, "b.yaml", BY_GROUP.replace("{errno: 1}", "{errno: 38}")
              + "no_new_privs: false\n")
    shown = run_cli("seccomp", "diff", str(a), str(b), "--format", "json")
    assert shown.returncode == 1
    found = json.loads(shown.stdout)
    assert found["no_new_privs"] == {"a": True, "b": False}
    getpid = [d for d in found["differences"] if (d["arch"], d["syscall"]) == ("x86_64",
                                                                                "getpid")]
    assert getpid == [{"kind": "action_differs", "arch": "x86_64", "syscall": "getpid",
                       "nr": 39, "a": "errno(1)", "b": "errno(38)", "count": 1, "args": None,
                       "instruction_pointer": None}]
    text = run_cli("seccomp", "diff", str(a), str(b)).stdout.splitlines()
    assert "no_new_privs: A true, B false" in text


def test_invalid_input_exits_2_naming_the_place(tmp_path: Path) -> None:
    good = write(tmp_path, "a.yaml", BY_GROUP)
    bad = write(tmp_path, "bad.yaml", BY_GROUP.replace("exit_group", "exit_grup"))
    shown = run_cli("seccomp", "diff", str(good), str(bad))
    assert shown.returncode == 2 and shown.stdout == ""
    assert f"{bad}:6:" in shown.stderr and "Traceback" not in shown.stderr
    missing = run_cli("seccomp", "diff", str(tmp_path / "none.yaml"), str(good))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_an_abi_only_one_profile_handles_is_one_difference(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", BY_GROUP)
    b = write(tmp_path, "b.yaml", BY_GROUP + "architectures: [native, aarch64]\n")
    shown = run_cli("seccomp", "diff", str(a), str(b))
    assert shown.returncode == 1, shown.stderr
    assert shown.stdout.splitlines()[2:] == [
        "aarch64: only B handles this ABI, A kills every aarch64 syscall (1024 syscall "
        "number(s) differ)",
        "A and B: 1 difference(s) (4096 syscall numbers on x86_64, x86, x32, aarch64)"]
    back = json.loads(run_cli("seccomp", "diff", str(b), str(a), "--format", "json").stdout)
    assert [(d["kind"], d["arch"], d["count"]) for d in back["differences"]] == [
        ("abi_only_in_a", "aarch64", 1024)]


def test_an_unusable_profile_is_named_and_exit_2(tmp_path: Path) -> None:
    broken = write(tmp_path, "broken.yaml", "apiVersion: hostguard/v1\nkind: SeccompProfile\n")
    for args in (("diff", str(broken), str(GATEWAY)), ("diff", str(GATEWAY), str(broken)),
                 ("merge", str(GATEWAY), str(broken))):
        done = run_cli("seccomp", *args)
        assert done.returncode == 2, done.stderr
        assert f"hostguard: invalid profile {broken}" in done.stderr
        assert "Traceback" not in done.stderr
