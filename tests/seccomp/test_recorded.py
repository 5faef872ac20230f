"""Recorded calls -> names per ABI and a minimal profile (:mod:`agent.seccomp.recorded`)."""

from __future__ import annotations

from agent.seccomp import syscalls
from agent.seccomp.recorded import by_abi, groups_for, header, record_profile, watch

X86_64 = syscalls.arch_token("x86_64")
I386 = syscalls.arch_token("x86")


def native_members(group: str) -> list[str]:
    return [m for m in syscalls.expand([group])
            if syscalls.lookup(m).status is syscalls.Status.KNOWN]


def test_numbers_become_names_per_abi() -> None:
    calls = [(X86_64, 0), (X86_64, 1), (X86_64, 0x4000_0000 | 39), (I386, 20), (X86_64, 999)]
    assert by_abi(calls) == {"x32": ("getpid",), "x86": ("getpid",),
                             "x86_64": ("#999", "read", "write")}


def test_a_group_is_written_only_when_every_member_was_made() -> None:
    chown = native_members("@chown")
    assert groups_for([*chown, "read"]) == ("@chown", "read")
    assert groups_for([*chown[1:], "read"]) == tuple(sorted([*chown[1:], "read"]))


def test_a_group_inside_a_larger_one_is_not_written_twice() -> None:
    service = native_members("@system-service")
    written = groups_for([*service, "ptrace"])
    assert written == ("@system-service", "ptrace")
    assert set(syscalls.expand(written)) >= set(service)


def test_the_profile_allows_the_native_calls_sorted_and_notes_the_rest() -> None:
    calls = [(X86_64, 1), (X86_64, 0), (I386, 20), (X86_64, 999)]
    result = record_profile(["/usr/bin/my-gateway", "--flag"], calls)
    profile = result.profile
    assert profile.name == "my-gateway"
    assert str(profile.default_action) == "errno(1)"
    assert profile.architectures == ("native",)
    assert [r.written for r in profile.rules] == [("read", "write")]
    assert result.notes == (
        "1 syscall(s) through the x86 ABI, which the profile kills (it lists only x86_64): "
        "getpid",
        "syscall number(s) libseccomp has no name for on x86_64, left out (denied): #999")


def test_the_header_says_what_ran_when_where_and_how_it_ended() -> None:
    lines = header("from: sh -c 'exit 3'", "2026-01-02T03:04:05+00:00", "6.1.0", -15, ["n"])
    assert lines[0] == "Recorded by hostguard seccomp record from: sh -c 'exit 3'"
    assert lines[1] == ("at 2026-01-02T03:04:05+00:00 on Linux 6.1.0; the command was killed "
                        "by signal 15 (SIGTERM).")
    assert lines[-1] == "Note: n"
    attached = header("by attaching to pid 7 (gw) for 5 s", "t", "6.1.0", None, [])
    assert attached[:2] == (
        "Recorded by hostguard seccomp record by attaching to pid 7 (gw) for 5 s",
        "at t on Linux 6.1.0; it was released, still running.")


def test_args_refine_to_the_values_seen_masked() -> None:
    socket_nr, ioctl_nr, clone_nr = (syscalls.resolve(n) for n in ("socket", "ioctl", "clone"))
    assert socket_nr is not None and ioctl_nr is not None and clone_nr is not None
    assert watch()[(X86_64, socket_nr)] == (0,)
    calls = [(X86_64, 0), (X86_64, socket_nr), (X86_64, ioctl_nr), (X86_64, clone_nr)]
    values = [(X86_64, socket_nr, 0, 2), (X86_64, socket_nr, 0, 0xFFFF_FFFF_0000_0001),
              (X86_64, ioctl_nr, 1, 0x5401), (X86_64, clone_nr, 0, 0x01200011),
              (X86_64, clone_nr, 0, 0x003D0F00), (I386, 359, 0, 10)]
    rules = record_profile(["x"], calls, values).profile.rules
    assert rules[0].written == ("read",)
    assert [(r.syscalls, str(r.args[0])) for r in rules[1:]] == [
        (("clone",), "arg0 & 0x7e020000 == 0x0"),  # a fork and a thread: no namespace flag
        (("ioctl",), "arg1 & 0xffffffff == 0x5401"),
        (("socket",), "arg0 & 0xffffffff == 0x1"),  # the upper half is not the kernel's
        (("socket",), "arg0 & 0xffffffff == 0x2")]
    assert record_profile(["x"], calls).profile.rules[0].written == (
        "clone", "ioctl", "read", "socket")  # without values: names only
