"""Syscall resolution through libseccomp, and the @groups against systemd-analyze."""

from __future__ import annotations

import subprocess

import pytest

from agent.seccomp import syscalls
from agent.seccomp.syscalls import Resolution, Status
from tests.support import need, need_tool


def test_read_is_zero_on_x86_64() -> None:
    assert syscalls.resolve("read", "x86_64") == 0
    assert syscalls.lookup("read", "x86_64") == Resolution("read", "x86_64", Status.KNOWN, 0)


def test_socketcall_is_absent_on_x86_64_but_present_on_x86() -> None:
    assert syscalls.resolve("socketcall", "x86_64") is None
    assert syscalls.lookup("socketcall", "x86_64").status is Status.ABSENT
    assert syscalls.resolve("socketcall", "x86") == 102


def test_x32_numbers_carry_the_x32_bit() -> None:
    assert syscalls.resolve("read", "x32") == 0x40000000
    assert syscalls.resolve("open", "x32") == 0x40000002


def test_nonsense_name_is_unknown() -> None:
    assert syscalls.lookup("no_such_call", "x86_64") == Resolution(
        "no_such_call", "x86_64", Status.UNKNOWN)
    with pytest.raises(syscalls.UnknownSyscall, match="unknown syscall 'no_such_call'"):
        syscalls.resolve("no_such_call")


def test_unknown_arch_is_an_error() -> None:
    with pytest.raises(syscalls.UnknownArch, match="unknown architecture 'vax'"):
        syscalls.resolve("read", "vax")


def test_native_and_other_abis() -> None:
    need(syscalls.native_arch() == "x86_64", "the ABI expectations below are for x86_64 hosts")
    assert syscalls.canonical_arch("native") == "x86_64"
    assert syscalls.resolve("read") == 0
    assert syscalls.other_abis() == ("x86", "x32")
    assert syscalls.other_abis("aarch64") == ("arm",)
    assert syscalls.other_abis("x86") == ()


def test_name_of_number() -> None:
    assert syscalls.name_of(0, "x86_64") == "read"
    assert syscalls.name_of(3, "x86") == "read"
    assert syscalls.name_of(99999, "x86_64") is None


def test_expand_keeps_order_and_drops_duplicates() -> None:
    assert syscalls.expand(["write", "@sync", "fsync", "read"]) == (
        "write", "fdatasync", "fsync", "msync", "sync", "sync_file_range", "sync_file_range2",
        "syncfs", "read")


def test_expand_is_recursive() -> None:
    privileged = syscalls.expand(["@privileged"])
    assert privileged[:7] == syscalls.GROUPS["@chown"]  # nested @chown comes first
    assert "reboot" in privileged and "bpf" in privileged
    assert not any(name.startswith("@") for name in syscalls.expand(["@system-service"]))


def test_unknown_group_is_an_error() -> None:
    with pytest.raises(syscalls.UnknownGroup, match="unknown syscall group '@nope'"):
        syscalls.expand(["read", "@nope"])


def test_every_nested_reference_names_a_group() -> None:
    for members in syscalls.GROUPS.values():
        for member in members:
            if member.startswith("@"):
                assert member in syscalls.GROUPS


def _systemd_groups(text: str) -> dict[str, list[str]]:
    """Parse `systemd-analyze syscall-filter`: `@group` lines, indented members and comments."""
    groups: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), [])
        elif not line.strip() or line.lstrip().startswith("#"):
            continue
        elif line.startswith(" ") and current is not None:
            current.append(line.strip())
        else:  # e.g. an unindented trailer listing ungrouped syscalls: not a group member
            current = None
    return groups


def _expand_systemd(groups: dict[str, list[str]], name: str) -> set[str]:
    out: set[str] = set()
    for member in groups[name]:
        out |= _expand_systemd(groups, member) if member.startswith("@") else {member}
    return out


def test_groups_match_systemd_analyze() -> None:
    tool = need_tool("systemd-analyze")
    done = subprocess.run([tool, "syscall-filter"], capture_output=True, text=True, timeout=60,
                          check=True)
    theirs = _systemd_groups(done.stdout)
    assert "@system-service" in theirs and len(theirs) > 20
    # @known is "every syscall systemd knows of", deliberately not carried; every other group is.
    assert set(theirs) - {"@known"} == set(syscalls.GROUPS)
    for name in syscalls.GROUPS:
        assert set(syscalls.expand([name])) == _expand_systemd(theirs, name), name
        # Nested references are the same too, not only the expanded sets.
        assert sorted(m for m in syscalls.GROUPS[name] if m.startswith("@")) == sorted(
            m for m in theirs[name] if m.startswith("@")), name
