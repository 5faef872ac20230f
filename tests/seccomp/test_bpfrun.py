"""agent/seccomp/bpfrun.py: runs hand-assembled and libseccomp programs, refuses bad ones."""

from __future__ import annotations

import errno
import struct

import pytest

from agent.seccomp import bpfrun, syscalls
from agent.seccomp import compile as sc
from agent.seccomp.model import ALLOW, EPERM, Action, ActionKind, ArgCondition, Profile, Rule

X86_64 = 0xC000003E


def asm(*insns: tuple[int, int, int, int]) -> bytes:
    return b"".join(struct.pack("=HBBI", *i) for i in insns)


def test_hand_assembled_program_with_alu_jset_and_scratch_memory() -> None:
    program = asm(
        (0x20, 0, 0, 16),          # A = args[0].lo
        (0x54, 0, 0, 0xF0),        # A &= 0xF0
        (0x02, 0, 0, 3),           # M[3] = A
        (0x45, 0, 1, 0x10),        # if A & 0x10: next, else skip
        (0x06, 0, 0, 0x00050001),  # ERRNO(1)
        (0x61, 0, 0, 3),           # X = M[3]
        (0x87, 0, 0, 0),           # A = X
        (0x15, 0, 1, 0x20),        # A == 0x20 ?
        (0x06, 0, 0, 0x00050002),  # ERRNO(2)
        (0x06, 0, 0, 0x7FFF0000),  # ALLOW
    )
    run = bpfrun.run
    assert run(program, bpfrun.SeccompData(0, X86_64, (0x11,))) == 0x00050001
    assert run(program, bpfrun.SeccompData(0, X86_64, (0x2F,))) == 0x00050002
    assert run(program, bpfrun.SeccompData(0, X86_64, (0x4F,))) == 0x7FFF0000


def test_bad_programs_are_refused() -> None:
    with pytest.raises(bpfrun.BadProgram, match="not a multiple of 8"):
        bpfrun.decode(b"\x00" * 7)
    with pytest.raises(bpfrun.BadProgram, match="ran off the end"):
        bpfrun.run(asm((0x20, 0, 0, 0)), bpfrun.SeccompData(0, X86_64))
    with pytest.raises(bpfrun.BadProgram, match="outside seccomp_data"):
        bpfrun.run(asm((0x20, 0, 0, 64), (0x06, 0, 0, 0)), bpfrun.SeccompData(0, X86_64))
    with pytest.raises(bpfrun.BadProgram, match="instruction 0xc7 is not valid"):
        bpfrun.run(asm((0xC7, 0, 0, 0)), bpfrun.SeccompData(0, X86_64))


def test_high_argument_halves_are_read() -> None:
    profile = Profile("t", ALLOW, deny=(Rule(("getppid",), EPERM,
                                             (ArgCondition(0, "eq", 1 << 32),)),))
    code = bpfrun.decode(sc.build_filter(profile).bpf())
    nr = syscalls.resolve("getppid")
    assert nr is not None
    assert bpfrun.run(code, bpfrun.SeccompData(nr, X86_64, (1 << 32,))) == 0x00050000 | errno.EPERM
    assert bpfrun.run(code, bpfrun.SeccompData(nr, X86_64, (1,))) == 0x7FFF0000


def test_check_reports_a_filter_that_differs_from_the_profile() -> None:
    said = Profile("t", EPERM, (Rule(("getppid",), ALLOW),))
    compiled = sc.build_filter(said)
    other: dict[str, list[tuple[Action, list[sc.Cond]]]] = {
        "getppid": [(Action(ActionKind.ERRNO, 13), [])]}
    assert sc.check(compiled, other, EPERM, Action(ActionKind.KILL_PROCESS)) == (
        "getppid: on x86_64 with arguments [0, 0, 0, 0, 0, 0] the generated filter returns "
        "0x7fff0000, the profile says 0x0005000d")
