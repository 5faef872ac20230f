"""``hostguard seccomp merge``: the replicas' union written, linted, and proven by ``diff``."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import run_cli

HEAD = """apiVersion: hostguard/v1
kind: SeccompProfile
metadata: {name: replica}
default_action: {errno: 1}
"""
ONE = HEAD + """rules:
  - syscalls: ["@basic-io", exit_group, getpid]
  - syscalls: [socket]
    args: [{index: 0, op: eq, value: 2}]
  - syscalls: [perf_event_open]
    acknowledged: "the profiler reads its own counters"
"""
TWO = HEAD + """rules:
  - syscalls: ["@basic-io", exit_group, gettid]
  - syscalls: [socket]
    args: [{index: 0, op: eq, value: 10}]
  - syscalls: [kill]
deny:
  - syscalls: [kill]
    args: [{index: 1, op: eq, value: 9}]
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_the_union_lints_clean_and_contains_every_input(tmp_path: Path) -> None:
    one, two = write(tmp_path, "one.yaml", ONE), write(tmp_path, "two.yaml", TWO)
    out = tmp_path / "gateway.yaml"
    merged = run_cli("seccomp", "merge", str(one), str(two), "-o", str(out))
    assert merged.returncode == 0, merged.stderr
    assert merged.stderr.startswith("hostguard: merged 2 profile(s) into ")
    text = out.read_text()
    assert text.startswith("# Merged by hostguard on ") and "name: gateway" in text
    linted = run_cli("lint", "--strict", str(out))
    assert linted.returncode == 0 and "0 error(s), 0 warning(s)" in linted.stdout, linted.stdout
    for source in (one, two):
        diff = json.loads(run_cli("seccomp", "diff", str(source), str(out), "--format",
                                  "json").stdout)
        assert {d["kind"] for d in diff["differences"]} == {"only_b_permits"}
    added = json.loads(run_cli("seccomp", "diff", str(one), str(out), "--format",
                               "json").stdout)["differences"]
    assert sorted((d["syscall"], d["args"] and d["args"][:2]) for d in added) == [
        ("gettid", None), ("kill", [0, 0]), ("kill", [0, 0x100000000]), ("socket", [10, 0])]


def test_conflicting_denials_are_refused_unless_a_default_is_given(tmp_path: Path) -> None:
    one = write(tmp_path, "one.yaml", ONE)
    two = write(tmp_path, "two.yaml", TWO.replace("value: 9}]", "value: 9}]\n"
                                                  "    action: kill_process"))
    refused = run_cli("seccomp", "merge", str(one), str(two))
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr == (
        f"hostguard: cannot merge: {one} and the union treat 1 call(s) differently: x86_64 "
        f"kill(0x0, 0x9, 0x0, 0x0, 0x0, 0x0) {one} errno(1), union kill_process\n")
    forced = run_cli("seccomp", "merge", str(one), str(two), "--default", "errno:1")
    assert forced.returncode == 0, forced.stderr
    assert (f"hostguard: note: {two}: 1 denied call(s) now get the default instead: x86_64 "
            f"kill(0x0, 0x9, 0x0, 0x0, 0x0, 0x0) {two} kill_process, union errno(1)"
            in forced.stderr)
    assert "kill_process" in forced.stdout  # the note is in the written profile's header


def test_bad_input_exits_2(tmp_path: Path) -> None:
    one = write(tmp_path, "one.yaml", ONE)
    bad = write(tmp_path, "bad.yaml", ONE.replace("getpid", "getpdi"))
    shown = run_cli("seccomp", "merge", str(one), str(bad))
    assert shown.returncode == 2 and f"{bad}:6:" in shown.stderr
    assert "Traceback" not in shown.stderr
    wrong = run_cli("seccomp", "merge", str(one), str(one), "--default", "allow")
    assert wrong.returncode == 2 and "--default must deny" in wrong.stderr
    junk = run_cli("seccomp", "merge", str(one), "--default", "errno:99999")
    assert junk.returncode == 2 and "--default: not an action" in junk.stderr
    enosys = write(tmp_path, "enosys.yaml", ONE.replace("{errno: 1}", "{errno: 38}"))
    differ = run_cli("seccomp", "merge", str(one), str(enosys))
    assert differ.returncode == 2
    assert f"default actions differ: {one} errno(1), {enosys} errno(38)" in differ.stderr
