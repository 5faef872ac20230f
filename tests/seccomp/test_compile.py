"""agent/seccomp/compile.py (plan, assembly and self-check together) against the real kernel: a
forked child loads the compiled filter, makes the syscalls through ctypes ``syscall()``, and the
test asserts exactly what happened."""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import signal
import socket
import struct
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.enforce.load import load_filter
from agent.seccomp import bpf, syscalls
from agent.seccomp import compile as sc
from agent.seccomp.model import (
    ALLOW,
    EPERM,
    KILL_PROCESS,
    Action,
    ActionKind,
    ArgCondition,
    Profile,
    Rule,
)
from agent.seccomp.plan import CompileError
from tests.seccomp.kernel import Call, in_child, run_filtered, with_runtime
from tests.seccomp.rules import arg, native_x86_64, prof, rule
from tests.support import need

EACCES = Action(ActionKind.ERRNO, errno.EACCES)
F_GETFD, F_GETFL = 1, 3
X32 = 0x40000000
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
I386_GETPID, I386_GETPPID, I386_DUP = 20, 64, 41


# --- actions ------------------------------------------------------------------------------------

def test_allowed_and_default_errno_are_exact() -> None:
    done = run_filtered(prof(EACCES, (rule("getppid"),)), [Call("getppid"), Call("getuid")])
    assert done.exit_code == 0
    assert done.results == ((os.getpid(), 0), (-1, errno.EACCES))


def test_errno_rule_returns_its_own_number() -> None:
    done = run_filtered(prof(EPERM, (rule("getuid", Action(ActionKind.ERRNO, errno.ENOSYS)),)),
                        [Call("getuid"), Call("getgid")])
    assert done.errnos == [errno.ENOSYS, errno.EPERM]


def test_kill_process_default_kills_with_sigsys() -> None:
    done = run_filtered(prof(KILL_PROCESS, (rule("getppid"),)),
                        [Call("getppid"), Call("getuid"), Call("getppid")])
    assert done.signal == signal.SIGSYS
    assert done.results == ((os.getpid(), 0),)  # nothing after the killing call ran


def test_kill_thread_rule_kills_the_single_threaded_child() -> None:
    done = run_filtered(prof(EPERM, (rule("getuid", Action(ActionKind.KILL_THREAD)),)),
                        [Call("getgid"), Call("getuid")])
    assert done.signal == signal.SIGSYS
    assert done.results == ((-1, errno.EPERM),)


def test_trap_delivers_sigsys_to_a_handler() -> None:
    done = run_filtered(prof(EPERM, (rule("getuid", Action(ActionKind.TRAP)),)),
                        [Call("getuid"), Call("getgid")], catch_sigsys=True)
    assert done.exit_code == 0
    assert done.trapped
    # not made: the kernel rolled the registers back, so rax still holds the syscall number
    assert done.results == ((syscalls.resolve("getuid"), 0), (-1, errno.EPERM))


def test_trap_without_handler_dies_of_sigsys() -> None:
    done = run_filtered(prof(EPERM, (rule("getuid", Action(ActionKind.TRAP)),)), [Call("getuid")])
    assert done.signal == signal.SIGSYS
    assert done.results == ()


def test_log_mode_allows_and_logs_what_would_be_denied() -> None:
    profile = prof(KILL_PROCESS, (rule("getppid"),), (rule("getgid", EACCES),))
    calls = [Call("getuid"), Call("getgid"), Call("getppid")]
    done = run_filtered(profile, calls, mode="log")
    assert done.exit_code == 0
    assert done.results == ((os.getuid(), 0), (os.getgid(), 0), (os.getpid(), 0))
    pfc = sc.export_pfc(profile, "log")
    assert "action LOG;" in pfc and "KILL" not in pfc and "ERRNO" not in pfc
    # the same profile enforced kills at the first call
    assert run_filtered(profile, calls).signal == signal.SIGSYS


def test_profile_mode_log_is_used_unless_overridden() -> None:
    profile = prof(KILL_PROCESS, (rule("getppid"),), mode="log")
    assert run_filtered(profile, [Call("getuid")]).results == ((os.getuid(), 0),)
    assert run_filtered(profile, [Call("getuid")], mode="enforce").signal == signal.SIGSYS


# --- arguments ----------------------------------------------------------------------------------

def test_socket_af_inet_allowed_af_packet_denied() -> None:
    profile = prof(EPERM, (rule("socket", ALLOW, arg(0, "eq", socket.AF_INET)),))
    done = run_filtered(profile, [Call("socket", (socket.AF_INET, socket.SOCK_DGRAM, 0)),
                                  Call("socket", (socket.AF_PACKET, socket.SOCK_DGRAM, 0))])
    (fd, err), packet = done.results
    assert fd >= 0 and err == 0
    assert packet == (-1, errno.EPERM)


def test_deny_with_condition_wins_over_an_unconditional_allow() -> None:
    # libseccomp alone would let the unconditional allow swallow the conditional errno rule
    profile = prof(KILL_PROCESS, (rule("socket"),),
                   (rule("socket", EPERM, arg(0, "eq", socket.AF_PACKET)),))
    done = run_filtered(profile, [Call("socket", (socket.AF_PACKET, socket.SOCK_DGRAM, 0)),
                                  Call("socket", (socket.AF_UNIX, socket.SOCK_DGRAM, 0))])
    assert done.exit_code == 0
    assert done.results[0] == (-1, errno.EPERM)
    assert done.results[1][0] >= 0


def test_unconditional_deny_wins_over_allow_of_the_same_syscall() -> None:
    # libseccomp alone silently keeps the first of two unconditional rules
    profile = prof(KILL_PROCESS, (rule("getuid"), rule("getgid", ALLOW, arg(0, "eq", 0))),
                   (rule("getuid", EACCES), rule("getgid", EACCES)))
    done = run_filtered(profile, [Call("getuid"), Call("getgid", (0,)), Call("getgid", (1,))])
    assert done.results == ((-1, errno.EACCES),) * 3


def test_first_matching_rule_decides_within_rules() -> None:
    profile = prof(EPERM, (rule("getppid", EACCES, arg(0, "ge", 10)),
                           rule("getppid", Action(ActionKind.ERRNO, errno.ENOSYS), arg(1, "eq", 7)),
                           rule("getppid")))
    done = run_filtered(profile, [Call("getppid", (10, 7)), Call("getppid", (9, 7)),
                                  Call("getppid", (9, 8)), Call("getppid", (11, 0))])
    assert done.results == ((-1, errno.EACCES), (-1, errno.ENOSYS), (os.getpid(), 0),
                            (-1, errno.EACCES))


def test_rule_with_the_default_action_still_shadows_later_rules() -> None:
    profile = prof(EPERM, (rule("getppid", EPERM, arg(0, "eq", 1)), rule("getppid")))
    done = run_filtered(profile, [Call("getppid", (1,)), Call("getppid", (2,))])
    assert done.results == ((-1, errno.EPERM), (os.getpid(), 0))


@pytest.mark.parametrize(("op", "matches"), [
    ("eq", (False, True, False)), ("ne", (True, False, True)), ("lt", (True, False, False)),
    ("le", (True, True, False)), ("gt", (False, False, True)), ("ge", (False, True, True)),
])
def test_each_comparison_operator(op: str, matches: tuple[bool, bool, bool]) -> None:
    profile = prof(ALLOW, deny=(rule("getppid", EACCES, arg(1, op, 5)),))
    done = run_filtered(profile, [Call("getppid", (0, v)) for v in (4, 5, 6)])
    expected = tuple((-1, errno.EACCES) if m else (os.getpid(), 0) for m in matches)
    assert done.results == expected


def test_masked_eq_takes_mask_then_value() -> None:
    profile = prof(ALLOW, deny=(rule("fcntl", EACCES, arg(2, "masked_eq", 0x05, mask=0x0F)),))
    assert "$a2.lo32 & 0x0000000f == 5" in sc.export_pfc(profile)
    calls = [Call("fcntl", (-1, F_GETFD, v)) for v in (0x15, 0x05, 0x16, 0x0F)]
    done = run_filtered(profile, calls)
    assert done.results == ((-1, errno.EACCES), (-1, errno.EACCES), (-1, errno.EBADF),
                            (-1, errno.EBADF))


def test_masked_eq_excluded_from_a_later_rule_bit_by_bit() -> None:
    # deny when (arg2 & 0x3) == 0x1, else allow: the allow rule is split per mask bit
    profile = prof(EPERM, (rule("fcntl"),), (rule("fcntl", EACCES, arg(2, "masked_eq", 1, 3)),))
    done = run_filtered(profile, [Call("fcntl", (-1, F_GETFL, v)) for v in (1, 5, 0, 2, 3, 7)])
    assert done.errnos == [errno.EACCES, errno.EACCES, errno.EBADF, errno.EBADF, errno.EBADF,
                           errno.EBADF]


def test_negative_values_are_twos_complement() -> None:
    profile = prof(ALLOW, deny=(rule("fcntl", EACCES, arg(0, "eq", -1)),))
    done = run_filtered(profile, [Call("fcntl", (-1, F_GETFD)), Call("fcntl", (-2, F_GETFD))])
    assert done.errnos == [errno.EACCES, errno.EBADF]


# --- architectures ------------------------------------------------------------------------------

def test_x32_numbers_are_killed_even_for_an_allowed_syscall() -> None:
    native_x86_64()
    number = syscalls.resolve("getppid")
    assert number is not None
    done = run_filtered(prof(EPERM, (rule("getppid"),)),
                        [Call("getppid"), Call(number | X32)])
    assert done.signal == signal.SIGSYS
    assert done.results == ((os.getpid(), 0),)


def test_x32_numbers_are_killed_under_an_allow_everything_filter() -> None:
    native_x86_64()
    done = run_filtered(prof(ALLOW, deny=(rule("kexec_load", EPERM),)),
                        [Call("getuid"), Call(0x40000000 | 102)])
    assert done.signal == signal.SIGSYS
    assert done.results == ((os.getuid(), 0),)


def _int80(nr: int, rbx: int = 0) -> int:
    """i386 syscall ``nr`` with first argument register ``rbx`` (all 64 bits), from 64-bit code.

    ``push rbx; mov rbx, imm64; mov eax, nr; int 0x80; pop rbx; ret``: eax comes back (-errno).
    """
    code = (bytes([0x53, 0x48, 0xBB]) + struct.pack("<Q", rbx) + b"\xb8" + struct.pack("<I", nr)
            + bytes([0xCD, 0x80, 0x5B, 0xC3]))
    page = mmap.mmap(-1, mmap.PAGESIZE,
                     prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(code)
    address = ctypes.addressof(ctypes.c_char.from_buffer(page))
    return int(ctypes.CFUNCTYPE(ctypes.c_int)(address)())


def _int80_getpid() -> int:
    """getpid through the i386 entry."""
    return _int80(I386_GETPID)


def _need_ia32() -> None:
    native_x86_64()
    _, status = in_child(lambda out: 0 if _int80_getpid() == os.getpid() else 1)
    need(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0,
         "this kernel has no ia32 emulation (int 0x80 does not reach getpid)")


def _int80_filtered(compiled: sc.CompiledFilter, calls: list[tuple[int, int]]) -> list[int]:
    """Load ``compiled`` in a forked child, make each i386 call ``(nr, rbx)``, return eax each."""
    def child(out: int) -> None:
        load_filter(compiled)
        results = [_int80(nr, rbx) for nr, rbx in calls]
        os.write(out, " ".join(map(str, results)).encode())

    written, status = in_child(child)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    return [int(v) for v in written.split()]


def test_i386_entry_is_killed() -> None:
    _need_ia32()
    compiled = sc.build_filter(prof(ALLOW, deny=(rule("kexec_load", EPERM),)))

    def child(out: int) -> None:
        load_filter(compiled)
        _int80_getpid()

    _, status = in_child(child)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS


def test_int80_arguments_reach_the_filter_with_their_high_half() -> None:
    # What NARROW_ARGS rests on: seccomp_data.args of an i386 call is the whole 64-bit register
    # (int 0x80 from 64-bit code), while the syscall itself gets the low 32 bits only.
    _need_ia32()
    high_to_errno = b"".join(struct.pack("=HBBI", *insn) for insn in (
        (0x20, 0, 0, 4), (0x15, 0, 6, AUDIT_ARCH_I386),   # arch == i386, else allow
        (0x20, 0, 0, 0), (0x15, 0, 4, I386_GETPID),       # nr == getpid, else allow
        (0x20, 0, 0, 20),                                 # A = high half of args[0]
        (0x04, 0, 0, 100), (0x44, 0, 0, 0x50000),         # errno(100 + A)
        (0x16, 0, 0, 0), (0x06, 0, 0, 0x7FFF0000)))
    compiled = replace(sc.build_filter(prof(ALLOW)), program=high_to_errno)
    assert _int80_filtered(compiled, [(I386_GETPID, 3), (I386_GETPID, 7 << 32 | 3)]) == \
        [-100, -107]
    read_end, write_end = os.pipe()
    try:  # dup(2**32 + write_end) duplicates write_end: the high half never reaches the call
        fd = _int80(I386_DUP, 1 << 32 | write_end)
        assert fd >= 0 and os.path.sameopenfile(fd, write_end)
        os.close(fd)
    finally:
        os.close(read_end)
        os.close(write_end)


def test_i386_arguments_are_decided_on_their_low_half_by_the_kernel() -> None:
    _need_ia32()
    profile = prof(EPERM, (rule("getppid", ALLOW, arg(0, "gt", 5)),),
                   architectures=("native", "x86"))
    compiled = sc.build_filter(with_runtime(profile))
    ppid = os.getpid()  # the child's parent
    calls = [(I386_GETPPID, v) for v in (6, 5, 1 << 32 | 5, 1 << 32 | 6, 1 << 32)]
    assert _int80_filtered(compiled, calls) == [ppid, -errno.EPERM, -errno.EPERM, ppid,
                                                -errno.EPERM]
    # the x86_64 half of the same filter compares all 64 bits
    done = run_filtered(profile, [Call("getppid", (v,)) for v in (6, 5, 1 << 32)])
    assert done.results == ((ppid, 0), (-1, errno.EPERM), (ppid, 0))


def test_multi_arch_argument_conditions_on_x86_compile() -> None:
    # the check used to feed x86 arguments of 2**32 and more, compared as 64-bit values
    profile = prof(EPERM, (rule("dup", ALLOW, arg(0, "gt", 5)),
                           rule("openat", ALLOW, arg(0, "eq", -100))),
                   architectures=("x86_64", "x86"))
    code = sc.build_filter(profile).bpf()
    x86, x86_64 = 0x40000003, AUDIT_ARCH_X86_64
    dup, dup32 = syscalls.resolve("dup", "x86_64"), syscalls.resolve("dup", "x86")
    openat, openat32 = syscalls.resolve("openat", "x86_64"), syscalls.resolve("openat", "x86")
    allowed, denied = 0x7FFF0000, 0x00050001

    def run(nr: int | None, arch: int, value: int) -> int:
        assert nr is not None
        return bpf.emulate(code, bpf.SeccompData(nr, arch, (value,)))

    assert [run(dup32, x86, v) for v in (6, 5, 1 << 32 | 5, 1 << 32 | 6, 1 << 32)] == \
        [allowed, denied, denied, allowed, denied]
    assert [run(dup, x86_64, v) for v in (6, 5, 1 << 32)] == [allowed, denied, allowed]
    # -100 (AT_FDCWD) is 0xffffff9c to an x86 syscall, 0xffffffffffffff9c to an x86_64 one
    assert [run(openat32, x86, v) for v in (0xFFFFFF9C, 0xFFFFFFFF_FFFFFF9C, 0x9C)] == \
        [allowed, allowed, denied]
    assert [run(openat, x86_64, v) for v in (0xFFFFFFFF_FFFFFF9C, 0xFFFFFF9C)] == \
        [allowed, denied]


def test_foreign_32_bit_arguments_compile() -> None:
    profile = prof(EPERM, (rule("dup", ALLOW, arg(0, "gt", 5)),),
                   architectures=("aarch64", "arm"))
    code = sc.build_filter(profile).bpf()
    nr = syscalls.resolve("dup", "arm")
    assert nr is not None
    arm = syscalls.arch_token("arm")
    assert [bpf.emulate(code, bpf.SeccompData(nr, arm, (v,))) for v in (6, 1 << 32 | 5)] == \
        [0x7FFF0000, 0x00050001]
    assert bpf.emulate(code, bpf.SeccompData(0, AUDIT_ARCH_X86_64)) == 0x80000000


def test_a_value_no_32_bit_argument_has_is_refused_on_x86() -> None:
    profile = prof(EPERM, (rule("dup", ALLOW, arg(0, "eq", 1 << 32 | 3), line=4),),
                   architectures=("x86_64", "x86"))
    with pytest.raises(CompileError) as raised:  # libseccomp would compare 3
        sc.build_filter(profile)
    assert str(raised.value).startswith("p.yaml:4:5: dup: on x86 with arguments [3, ")
    assert str(raised.value).endswith("(dup gets 32-bit arguments on x86: 0x100000003 in arg0 eq "
                                      "4294967299 does not fit in 32 bits (use -2147483648 to "
                                      "4294967295))")


def test_x32_profiles_compile_with_the_kernels_view_of_x32() -> None:
    # x32 syscalls reach a filter as AUDIT_ARCH_X86_64 with nr | 0x40000000, never with
    # libseccomp's own x32 token 0x4000003e: checked that way, such profiles used to be refused
    getppid, getuid = syscalls.resolve("getppid", "x86_64"), syscalls.resolve("getuid", "x86_64")
    assert getppid is not None and getuid is not None
    both = sc.build_filter(prof(EPERM, (rule("getppid"),), architectures=("native", "x32")))
    only = sc.build_filter(prof(EPERM, (rule("getppid"),), architectures=("x32",)))
    assert both.arches == ("x86_64", "x32") and only.arches == ("x32",)

    def run(code: bytes, nr: int, arch: int = AUDIT_ARCH_X86_64) -> int:
        return bpf.emulate(code, bpf.SeccompData(nr, arch))

    assert [run(both.bpf(), n) for n in (getppid, X32 | getppid, getuid, X32 | getuid)] == \
        [0x7FFF0000, 0x7FFF0000, 0x00050001, 0x00050001]
    assert [run(only.bpf(), n) for n in (getppid, X32 | getppid, X32 | getuid)] == \
        [0x80000000, 0x7FFF0000, 0x00050001]
    assert run(both.bpf(), getppid, 0x4000003E) == 0x80000000  # libseccomp's token is foreign


def test_x32_runs_its_filter_in_the_kernel() -> None:
    native_x86_64()
    getppid, getuid = syscalls.resolve("getppid"), syscalls.resolve("getuid")
    assert getppid is not None and getuid is not None
    profile = prof(EPERM, (rule("getppid"),), architectures=("native", "x32"))
    done = run_filtered(profile, [Call("getppid"), Call(X32 | getppid), Call(X32 | getuid)])
    assert done.exit_code == 0
    native, x32_allowed, x32_denied = done.results
    assert native == (os.getpid(), 0)
    # allowed: the kernel runs it, or says ENOSYS when x32 is off (syscall.x32=n, the default)
    assert x32_allowed in ((os.getpid(), 0), (-1, errno.ENOSYS))
    assert x32_denied == (-1, errno.EPERM)


def test_x32_argument_conditions_on_the_high_half_are_refused() -> None:
    # libseccomp 2.5 compares only the low 32 bits of x32 arguments; x32 syscalls get 64 bits
    profile = prof(EPERM, (rule("lseek", ALLOW, arg(1, "lt", 10)),), architectures=("x32",))
    with pytest.raises(CompileError, match=r"lseek: on x32 with arguments \[0, 4294967296, .*"
                       r"compares only the low 32 bits of x32 arguments"):
        sc.build_filter(profile)
    low = prof(EPERM, (rule("lseek", ALLOW, arg(2, "masked_eq", 1, mask=3)),),
               architectures=("x32",))
    assert sc.build_filter(low).arches == ("x32",)  # depends on the low half only: exact


def _bpf(program: bytes) -> list[tuple[int, int, int, int]]:
    return [struct.unpack("=HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]


def test_bpf_checks_the_arch_and_the_x32_bit_first() -> None:
    native_x86_64()
    compiled = sc.build_filter(prof(EPERM, (rule("getppid"),)))
    code = _bpf(compiled.bpf())
    ld_abs, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    assert code[0] == (ld_abs, 0, 0, 4)              # A = seccomp_data.arch
    assert code[1][0] == jeq and code[1][3] == AUDIT_ARCH_X86_64
    bad = 1 + 1 + code[1][2]                          # where a foreign arch jumps
    assert code[bad] == (ret, 0, 0, 0x80000000)       # SECCOMP_RET_KILL_PROCESS
    assert code[2] == (ld_abs, 0, 0, 0)               # A = seccomp_data.nr
    assert code[3][0] == jge and code[3][3] == X32    # nr >= 0x40000000 -> bad arch
    pfc = compiled.pfc()
    assert "# invalid architecture action\naction KILL_PROCESS;" in pfc
    assert pfc.count("# filter for arch") == 1


def test_absent_names_are_skipped_per_arch_and_kept_where_they_exist() -> None:
    native_x86_64()
    profile = prof(EPERM, (rule("socketcall getppid arch_prctl"),),
                   architectures=("native", "x86"))
    compiled = sc.build_filter(profile)
    assert compiled.arches == ("x86_64", "x86")
    assert compiled.skipped == (sc.Skipped("socketcall", "x86_64", "absent"),)
    pfc = compiled.pfc()
    x86_64, x86 = pfc.split("# filter for arch x86 ")
    assert '"socketcall"' not in x86_64 and '"socketcall" (102)' in x86
    assert '"getppid" (110)' in x86_64 and '"getppid" (64)' in x86
    assert '"arch_prctl" (158)' in x86_64 and '"arch_prctl" (384)' in x86


def test_unknown_name_written_by_hand_is_a_located_error() -> None:
    with pytest.raises(CompileError) as raised:
        sc.build_filter(prof(EPERM, (rule("getppid"), rule("getpid no_such_call", line=7))))
    assert str(raised.value) == "p.yaml:7:5: unknown syscall 'no_such_call'"


def test_unknown_name_from_a_group_is_skipped() -> None:
    from_group = Rule(("getppid", "uretprobe"), ALLOW, written=("@default",))
    compiled = sc.build_filter(prof(EPERM, (from_group,)))
    assert sc.Skipped("uretprobe", "x86_64", "unknown") in compiled.skipped
    assert [r.syscall for r in compiled.rules] == ["getppid", "uretprobe"]
    assert '"uretprobe"' not in compiled.pfc()


def test_unknown_architecture_and_mode_are_errors() -> None:
    with pytest.raises(CompileError, match="unknown architecture 'vax'"):
        sc.build_filter(prof(EPERM, architectures=("vax",)))
    with pytest.raises(CompileError, match="mode must be enforce or log, not 'audit'"):
        sc.build_filter(prof(EPERM), "audit")


def test_bad_conditions_and_actions_are_located_errors() -> None:
    for bad, message in [(arg(6, "eq", 1), "argument index must be 0-5, not 6"),
                         (arg(0, "like", 1), "unknown argument op 'like'"),
                         (arg(0, "masked_eq", 1), "masked_eq needs a mask"),
                         (arg(0, "eq", 1 << 64), "value 18446744073709551616 does not fit"),
                         (arg(0, "eq", 1, mask=3), "a mask only goes with masked_eq, not eq")]:
        with pytest.raises(CompileError) as raised:
            sc.build_filter(prof(EPERM, (rule("getppid", ALLOW, bad, line=3),)))
        assert str(raised.value).startswith(f"p.yaml:3:5: {message}")
    with pytest.raises(CompileError, match="errno action needs an error number 0-65535"):
        sc.build_filter(prof(Action(ActionKind.ERRNO, 70000)))


# --- the plan against the kernel, for random rule lists -----------------------------------------

_DOMAIN = range(8)
_ACTIONS = [ALLOW, *(Action(ActionKind.ERRNO, n) for n in (20, 21, 22))]


def _matches(cond: ArgCondition, values: tuple[int, int]) -> bool:
    x = values[cond.index]
    if cond.op == "masked_eq":
        assert cond.mask is not None
        return x & cond.mask == cond.value
    return {"eq": x == cond.value, "ne": x != cond.value, "lt": x < cond.value,
            "le": x <= cond.value, "gt": x > cond.value, "ge": x >= cond.value}[cond.op]


def _expected(profile: Profile, values: tuple[int, int]) -> Action:
    for r in (*profile.deny, *profile.rules):
        if "getppid" in r.syscalls and all(_matches(c, values) for c in r.args):
            return r.action
    return profile.default_action


_conds = st.builds(
    lambda index, op, value, mask: ArgCondition(index, op, value,
                                                mask if op == "masked_eq" else None),
    st.integers(0, 1), st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge", "masked_eq"]),
    st.sampled_from(list(_DOMAIN)), st.sampled_from([1, 2, 3, 4, 6, 7]))
_rules = st.lists(st.builds(lambda action, conds: Rule(("getppid",), action, tuple(conds)),
                            st.sampled_from(_ACTIONS), st.lists(_conds, max_size=2)),
                  max_size=4)


@settings(max_examples=60, deadline=None)
@given(rules=_rules, deny=_rules, default=st.sampled_from(_ACTIONS))
def test_compiled_filter_decides_like_the_ordered_rules(rules: list[Rule], deny: list[Rule],
                                                        default: Action) -> None:
    profile = prof(default, tuple(rules), tuple(deny))
    try:
        sc.build_filter(profile)
    except CompileError as err:  # refused, never miscompiled
        assert any(why in str(err) for why in ("libseccomp 2.5 cannot take", "refusing a filter",
                                               "did not finish building"))
        return
    grid = [(x, y) for x in _DOMAIN for y in _DOMAIN]
    done = run_filtered(profile, [Call("getppid", g) for g in grid])
    assert done.exit_code == 0
    got = [ALLOW if err == 0 else Action(ActionKind.ERRNO, err) for _, err in done.results]
    assert got == [_expected(profile, g) for g in grid]


# --- libseccomp's own bugs ----------------------------------------------------------------------

E20 = Action(ActionKind.ERRNO, 20)


def test_a_rule_libseccomp_loses_is_caught_and_built_another_way() -> None:
    # In plan order libseccomp 2.5.4 drops "errno 20 if a0 == 0 and a1 == 0" (checked in BPF)
    profile = prof(ALLOW, (rule("getppid", ALLOW, arg(1, "eq", 0)), rule("getppid", E20)),
                   (rule("getppid", E20, arg(0, "eq", 0), arg(1, "eq", 0)),))
    compiled = sc.build_filter(profile)
    assert compiled.strategy != "planned/planned"
    done = run_filtered(profile, [Call("getppid", a) for a in ((0, 0), (0, 1), (1, 0), (1, 1))])
    assert done.errnos == [20, 20, 0, 20]
