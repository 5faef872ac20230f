"""agent/seccomp/verify.py: loaded stacks vs compiled profiles, must_deny — the cases sampling
argument values misses (masks, high words, numbers newer than libseccomp, the instruction
pointer, i386 multiplexers), each difference backed by a call both filters are run on."""

from __future__ import annotations

from pathlib import Path

from agent.seccomp import bpf, verify
from agent.seccomp.compile import CompiledFilter, build_filter
from agent.seccomp.model import ALLOW, EPERM, ArgCondition, Profile, Rule
from agent.seccomp.profile import load_profile
from tests.seccomp.bpf_programs import (
    ADD,
    ALLOW_RET,
    I386,
    JEQ,
    LD,
    RET,
    X86_64,
    asm,
    constant,
    errno_ret,
    nr_of,
)
from tests.seccomp.gateway import netlink_17
from tests.support import PROJECT

SOCKET = nr_of("socket")
BASICS = ("exit_group", "exit", "read", "write", "close", "brk", "mmap", "munmap")


def allow_socket(*conditions: ArgCondition) -> CompiledFilter:
    """Default EPERM; a few basics; socket() under ``conditions``."""
    return build_filter(Profile("p", EPERM, rules=(Rule(BASICS, ALLOW),
                                                   Rule(("socket",), ALLOW, conditions))))


def on(result: verify.Comparison, arch: str, syscall: str) -> list[verify.Difference]:
    return [d for d in result.differences if (d.arch, d.syscall) == (arch, syscall)]


def test_identical_filters_are_equivalent() -> None:
    declared = allow_socket(ArgCondition(0, "masked_eq", 0, 0xFF00))
    result = verify.compare([declared.bpf()], declared)
    assert result.equivalent and result.arches == ("x86_64", "x86", "x32")
    assert result.syscalls == 3 * 1024


def test_masks_that_differ_in_bits_no_constant_names() -> None:
    declared = allow_socket(ArgCondition(0, "masked_eq", 0, 0xFF00))
    loaded = allow_socket(ArgCondition(0, "masked_eq", 0, 0xF000))
    [diff] = on(verify.compare([loaded.bpf()], declared), "x86_64", "socket")
    assert (diff.kind, diff.loaded, diff.declared) == ("allowed_extra", "allow", "errno(1)")
    assert diff.args is not None and diff.args[0] & 0x0F00 and not diff.args[0] & 0xF000
    call = bpf.SeccompData(SOCKET, X86_64, diff.args)
    assert bpf.emulate(loaded.bpf(), call) == ALLOW_RET
    assert bpf.emulate(declared.bpf(), call) == errno_ret(1)


def test_a_filter_reading_only_the_low_word() -> None:
    declared = allow_socket(ArgCondition(0, "eq", 2))  # all 64 bits
    loaded = asm((LD, 0, 0, 0), (JEQ, 0, 3, SOCKET), (LD, 0, 0, 16), (JEQ, 0, 1, 2),
                 (RET, 0, 0, ALLOW_RET), (RET, 0, 0, errno_ret(1)))
    [diff] = on(verify.compare([loaded], declared), "x86_64", "socket")
    assert diff.kind == "allowed_extra"
    assert diff.args is not None and diff.args[0] & 0xFFFFFFFF == 2 and diff.args[0] >> 32


def test_numbers_newer_than_libseccomp() -> None:
    declared = allow_socket()
    backdoor = asm((LD, 0, 0, 0), (JEQ, 0, 1, 465), (RET, 0, 0, ALLOW_RET)) + declared.bpf()
    found = [d for d in verify.compare([backdoor], declared).differences
             if d.arch == "x86_64"]
    assert [(d.kind, d.nr, d.loaded) for d in found] == [("allowed_extra", 465, "allow")]


def test_instruction_pointer_bypass() -> None:
    declared = allow_socket()
    backdoor = asm((LD, 0, 0, 8), (JEQ, 0, 1, 0x1234), (RET, 0, 0, ALLOW_RET)) + declared.bpf()
    [diff] = on(verify.compare([backdoor], declared), "x86_64", "getppid")
    assert (diff.kind, diff.instruction_pointer) == ("allowed_extra", 0x1234)
    assert "at ip 0x1234" in str(diff)


def test_a_laxer_newer_filter_changes_nothing() -> None:
    declared = allow_socket()
    assert verify.compare([constant(ALLOW_RET), declared.bpf()], declared).equivalent


def test_arithmetic_on_arguments_is_undecided_not_equal() -> None:
    declared = build_filter(Profile("all", ALLOW))
    loaded = asm((LD, 0, 0, 4), (JEQ, 0, 7, X86_64), (LD, 0, 0, 0), (JEQ, 0, 4, SOCKET),
                 (LD, 0, 0, 16), (ADD, 0, 0, 1), (JEQ, 0, 1, 3), (RET, 0, 0, errno_ret(1)),
                 (RET, 0, 0, ALLOW_RET), (RET, 0, 0, 0x80000000))
    result = verify.compare([loaded], declared)
    assert [(d.arch, d.syscall) for d in result.differences if d.kind == "undecided"] == [
        ("x86_64", "socket")]
    assert not result.equivalent


def test_an_open_abi_is_one_finding() -> None:
    declared = allow_socket()
    no_arch_check = asm((LD, 0, 0, 0), (JEQ, 0, 1, 101), (RET, 0, 0, errno_ret(1)),
                        (RET, 0, 0, ALLOW_RET))  # ptrace denied by number only
    result = verify.compare([no_arch_check], declared)
    opened = [d for d in result.differences if d.kind == "arch_open"]
    assert sorted(d.arch for d in opened) == ["x32", "x86"]
    assert all(d.count > 300 for d in opened)


def test_same_action_ignores_data_the_kernel_ignores() -> None:
    assert verify.same_action(ALLOW_RET | 5, ALLOW_RET)
    assert verify.same_action(0x80000000 | 7, 0x80000000)
    assert verify.same_action(errno_ret(5000), errno_ret(4095))  # the kernel caps errno
    assert not verify.same_action(errno_ret(1), errno_ret(38))
    assert not verify.same_action(0x00030001, 0x00030002)  # trap data reaches si_errno
    assert not verify.same_action(0x7FF00001, 0x7FF00002)  # trace data reaches the tracer


def test_must_deny_follows_i386_multiplexers() -> None:
    # i386: socketcall(SYS_SOCKET) denied, the direct socket syscall (359) left open.
    program = asm((LD, 0, 0, 4), (JEQ, 0, 5, I386), (LD, 0, 0, 0), (JEQ, 0, 3, 102),
                  (LD, 0, 0, 16), (JEQ, 0, 1, 1), (RET, 0, 0, errno_ret(1)),
                  (RET, 0, 0, ALLOW_RET))
    found, unchecked = verify.must_deny([program], ["socket"])
    assert unchecked == []
    assert [(p.arch, p.how) for p in found] == [("x86_64", "allow"), ("x86", "allow"),
                                                ("x32", "allow")]
    everything, _ = verify.must_deny([constant(ALLOW_RET)], ["socket", "shmget"])
    i386 = [p.how for p in everything if p.arch == "x86"]
    assert i386 == ["allow", "allow for socketcall(0x1, 0x0, 0x0, 0x0, 0x0, 0x0)",
                    "allow", "allow for ipc(0x17, 0x0, 0x0, 0x0, 0x0, 0x0)"]


def test_must_deny_reports_conditions_and_undecided() -> None:
    declared = allow_socket(ArgCondition(0, "eq", 10))
    [x86_64, *_] = verify.must_deny([declared.bpf()], ["socket"])[0]
    assert (x86_64.arch, x86_64.how) == ("x86_64", "allow for socket(0xa, 0x0, 0x0, 0x0, "
                                                   "0x0, 0x0)")
    arithmetic = asm((LD, 0, 0, 16), (ADD, 0, 0, 1), (JEQ, 0, 1, 3),
                     (RET, 0, 0, ALLOW_RET), (RET, 0, 0, errno_ret(1)))
    found, _ = verify.must_deny([arithmetic], ["ptrace"])
    assert found and all(p.undecided for p in found)


def test_a_missing_high_bit_restriction_is_critical_not_undecided() -> None:
    # The profile allows clone only without CLONE_NEWUSER (0x10000000); the loaded filter
    # allows it always: a witness must set that bit, which an upward search from 0 never does.
    declared = build_filter(Profile("p", EPERM, rules=(
        Rule(BASICS, ALLOW), Rule(("clone",), ALLOW, (ArgCondition(0, "masked_eq", 0,
                                                                   0x10000000),)))))
    loaded = build_filter(Profile("p", EPERM, rules=(Rule(BASICS, ALLOW),
                                                     Rule(("clone",), ALLOW))))
    [diff] = on(verify.compare([loaded.bpf()], declared), "x86_64", "clone")
    assert diff.kind == "allowed_extra"
    assert diff.args is not None and diff.args[0] & 0x10000000


def test_every_difference_of_a_syscall_is_reported_worst_first() -> None:
    # Profile: clone allowed unless args[0] == 0x5412; loaded: unless 0x5413. Both an "allows
    # more" (0x5412) and a "denies more" (0x5413) exist: both are shown, the critical first.
    def unless(value: int) -> CompiledFilter:
        return build_filter(Profile("p", EPERM, rules=(
            Rule(BASICS, ALLOW), Rule(("clone",), ALLOW, (ArgCondition(0, "ne", value),)))))

    found = on(verify.compare([unless(0x5413).bpf()], unless(0x5412)), "x86_64", "clone")
    assert [(d.kind, d.args and d.args[0]) for d in found] == [("allowed_extra", 0x5412),
                                                               ("denied_extra", 0x5413)]


def test_an_abi_open_only_for_some_arguments_is_still_open() -> None:
    declared = allow_socket()
    # i386: errno when args[0].lo == 0, allow otherwise; x86_64 and x32: the profile.
    loaded = asm((LD, 0, 0, 4), (JEQ, 0, 4, I386), (LD, 0, 0, 16), (JEQ, 0, 1, 0),
                 (RET, 0, 0, errno_ret(1)), (RET, 0, 0, ALLOW_RET)) + declared.bpf()
    opened = [d for d in verify.compare([loaded], declared).differences if d.arch == "x86"]
    assert [(d.kind, d.count) for d in opened] == [("arch_open", 1024)]


def test_a_moved_socket_family_is_two_differences(tmp_path: Path) -> None:
    shipped = load_profile(PROJECT / "policies/seccomp/trading-gateway.yaml")
    changed = load_profile(netlink_17(tmp_path))
    assert isinstance(shipped, Profile) and isinstance(changed, Profile)
    result = verify.compare([build_filter(shipped).bpf()], build_filter(changed))
    assert [(d.kind, d.call, d.loaded, d.declared) for d in result.differences] == [
        ("allowed_extra", "x86_64 socket(0x10, 0x0, 0x0, 0x0, 0x0, 0x0)", "allow", "errno(1)"),
        ("denied_extra", "x86_64 socket(0x11, 0x0, 0x0, 0x0, 0x0, 0x0)", "errno(1)", "allow")]
    for diff in result.differences:  # each witness, run on both filters, shows its difference
        assert diff.args is not None
        call = bpf.SeccompData(SOCKET, X86_64, diff.args)
        assert str(bpf.verdict(bpf.emulate(build_filter(shipped).bpf(), call))) == diff.loaded
        assert str(bpf.verdict(bpf.emulate(build_filter(changed).bpf(), call))) == diff.declared


def test_single_bit_masks_that_cover_everything_are_proven_equal() -> None:
    # getpid allowed when arg0 & 3 == 0, or bit 0 set, or bit 1 set: always, as a profile
    # that allows it outright. The denying path (bit 1 clear, bit 0 clear, arg0 & 3 != 0) is
    # impossible, and must be proven so, not left undecided.
    always = build_filter(Profile("p", EPERM, rules=(Rule(("getpid",), ALLOW),)))
    pieces = build_filter(Profile("p", EPERM, rules=(
        Rule(("getpid",), ALLOW, (ArgCondition(0, "masked_eq", 0, 3),)),
        Rule(("getpid",), ALLOW, (ArgCondition(0, "masked_eq", 1, 1),)),
        Rule(("getpid",), ALLOW, (ArgCondition(0, "masked_eq", 2, 2),)))))
    assert verify.compare([always.bpf()], pieces).equivalent
    assert verify.compare([pieces.bpf()], always).equivalent
