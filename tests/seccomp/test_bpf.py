"""agent/seccomp/bpf.py: decode (the kernel's checks), emulate (one filter and a stack) and
verdicts, on hand-assembled programs and on what libseccomp generates from profiles."""

from __future__ import annotations

import errno
import itertools

import pytest

from agent.seccomp import bpf, selfcheck
from agent.seccomp import compile as sc
from agent.seccomp.bpf import Insn
from agent.seccomp.model import ALLOW, EPERM, Action, ActionKind, ArgCondition, Profile, Rule
from agent.seccomp.plan import Cond
from tests.seccomp.bpf_programs import (
    ADD,
    ALLOW_RET,
    AND,
    BAD_PROGRAMS,
    DIV,
    GOOD_PROGRAMS,
    JEQ,
    JSET,
    KILL_RET,
    LD,
    LD_IMM,
    LD_LEN,
    LDX_IMM,
    LDX_LEN,
    LDX_MEM,
    LSH,
    MUL,
    NEG,
    RET,
    RET_A,
    ST,
    STACKS,
    SUB,
    TAX,
    TXA,
    U32,
    X,
    asm,
    constant,
    data,
    errno_ret,
    nr_of,
)

# --- emulation ----------------------------------------------------------------------------------

def test_hand_assembled_program_with_alu_jset_and_scratch_memory() -> None:
    program = asm(
        (LD, 0, 0, 16),            # A = args[0].lo
        (AND, 0, 0, 0xF0),         # A &= 0xF0
        (ST, 0, 0, 3),             # M[3] = A
        (JSET, 0, 1, 0x10),        # if A & 0x10: next, else skip
        (RET, 0, 0, 0x00050001),   # ERRNO(1)
        (LDX_MEM, 0, 0, 3),        # X = M[3]
        (TXA, 0, 0, 0),            # A = X
        (JEQ, 0, 1, 0x20),         # A == 0x20 ?
        (RET, 0, 0, 0x00050002),   # ERRNO(2)
        (RET, 0, 0, ALLOW_RET),
    )
    assert bpf.emulate(program, data(0, 0x11)) == 0x00050001
    assert bpf.emulate(program, data(0, 0x2F)) == 0x00050002
    assert bpf.emulate(program, data(0, 0x4F)) == ALLOW_RET
    insns = bpf.decode(program)
    assert bpf.emulate(insns, data(0, 0x2F)) == 0x00050002


def test_the_emulator_refuses_what_it_cannot_run() -> None:
    with pytest.raises(bpf.BadProgram, match="ran off the end"):
        bpf.emulate([Insn(LD, 0, 0, 0)], data(0))
    with pytest.raises(bpf.BadProgram, match="outside seccomp_data"):
        bpf.emulate([Insn(LD, 0, 0, 64), Insn(RET, 0, 0, 0)], data(0))
    with pytest.raises(bpf.BadProgram, match="instruction 0xc7 is not valid"):
        bpf.emulate([Insn(0xC7, 0, 0, 0)], data(0))
    with pytest.raises(bpf.BadProgram, match="not a multiple of 8"):  # bytes are decoded first
        bpf.emulate(b"\x00" * 7, data(0))


def test_high_argument_halves_are_read() -> None:
    profile = Profile("t", ALLOW, deny=(Rule(("getppid",), EPERM,
                                             (ArgCondition(0, "eq", 1 << 32),)),))
    code = bpf.decode(sc.build_filter(profile).bpf())
    nr = nr_of("getppid")
    assert bpf.emulate(code, data(nr, 1 << 32)) == 0x00050000 | errno.EPERM
    assert bpf.emulate(code, data(nr, 1)) == ALLOW_RET


def test_check_reports_a_filter_that_differs_from_the_profile() -> None:
    said = Profile("t", EPERM, (Rule(("getppid",), ALLOW),))
    compiled = sc.build_filter(said)
    other: dict[str, list[tuple[Action, list[Cond]]]] = {
        "getppid": [(Action(ActionKind.ERRNO, 13), [])]}
    assert selfcheck.check(compiled.bpf(), compiled.arches, other, EPERM,
                           Action(ActionKind.KILL_PROCESS)) == (
        "getppid: on x86_64 with arguments [0, 0, 0, 0, 0, 0] the generated filter returns "
        "0x7fff0000, the profile says 0x0005000d")


def test_kernel_arithmetic_edge_cases() -> None:
    # division by X == 0 returns 0 (kill_thread), as the kernel's cBPF conversion does
    div = asm((LD, 0, 0, 16), (TAX, 0, 0, 0), (LD_IMM, 0, 0, 100), (DIV | X, 0, 0, 0),
              (RET_A, 0, 0, 0))
    assert bpf.emulate(div, data(0, 0)) == 0
    assert bpf.emulate(div, data(0, 7)) == 14
    # shifts by X use X & 31; neg, sub and mul wrap at 32 bits; ld len is 64
    shift = asm((LDX_IMM, 0, 0, 33), (LD_IMM, 0, 0, 1), (LSH | X, 0, 0, 0), (RET_A, 0, 0, 0))
    assert bpf.emulate(shift, data(0)) == 2
    wrap = asm((LD_IMM, 0, 0, 5), (NEG, 0, 0, 0), (SUB, 0, 0, 0xFFFFFFFF), (MUL, 0, 0, 3),
               (RET_A, 0, 0, 0))
    assert bpf.emulate(wrap, data(0)) == ((-5 - 0xFFFFFFFF) * 3) & U32
    length = asm((LD_LEN, 0, 0, 0), (LDX_LEN, 0, 0, 0), (ADD | X, 0, 0, 0), (RET_A, 0, 0, 0))
    assert bpf.emulate(length, data(0)) == 128
    assert bpf.decode(length)[0] == Insn(LD_IMM, 0, 0, 64)  # what the kernel rewrites it to
    assert bpf.decode(length)[1] == Insn(LDX_IMM, 0, 0, 64)



# --- decode: what the kernel refuses ------------------------------------------------------------

@pytest.mark.parametrize(("label", "program", "message"), BAD_PROGRAMS,
                         ids=[b[0] for b in BAD_PROGRAMS])
def test_decode_refuses_what_the_kernel_refuses(label: str, program: bytes, message: str) -> None:
    with pytest.raises(bpf.BadProgram, match=message):
        bpf.decode(program)


@pytest.mark.parametrize(("label", "program"), GOOD_PROGRAMS, ids=[g[0] for g in GOOD_PROGRAMS])
def test_decode_accepts_what_the_kernel_accepts(label: str, program: bytes) -> None:
    assert len(bpf.decode(program)) == len(program) // 8


def test_decode_refuses_a_partial_instruction() -> None:
    with pytest.raises(bpf.BadProgram, match="program length 7 is not a multiple of 8 bytes"):
        bpf.decode(b"\x00" * 7)


# --- verdicts and the stack ---------------------------------------------------------------------

@pytest.mark.parametrize(("ret", "action", "data_", "text"), [
    (0x80000000, "kill_process", 0, "kill_process"),
    (0x00000000, "kill_thread", 0, "kill_thread"),
    (0x00030005, "trap", 5, "trap(5)"),
    (0x00050001, "errno", 1, "errno(1)"),
    (0x7FC00000, "user_notif", 0, "user_notif"),
    (0x7FF00007, "trace", 7, "trace(7)"),
    (0x7FFC0000, "log", 0, "log"),
    (0x7FFF0000, "allow", 0, "allow"),
    (0x00010002, "unknown", 2, "unknown(0x00010002)"),
    (0x7FFE0000, "unknown", 0, "unknown(0x7ffe0000)"),
])
def test_verdict_of_every_action(ret: int, action: str, data_: int, text: str) -> None:
    found = bpf.verdict(ret)
    assert (found.action, found.data, str(found)) == (action, data_, text)
    assert found.ret == ret
    assert found.kills == (action in ("kill_process", "kill_thread", "unknown"))
    if action != "unknown":
        assert found == bpf.Verdict(action, data_)


def test_precedence_is_the_kernels_signed_order() -> None:
    ordered = sorted(bpf.ACTIONS, key=bpf.precedence)
    assert [bpf.ACTIONS[b] for b in ordered] == list(bpf.ACTION_ORDER) == [
        "kill_process", "kill_thread", "trap", "errno", "user_notif", "trace", "log", "allow"]
    assert [bpf.verdict_rank(a) for a in bpf.ACTION_ORDER] == list(range(8))
    assert bpf.verdict_rank("unknown") == 0
    # an unknown action sorts by its value: 0x00010000 lies between kill_thread and trap
    assert bpf.precedence(0) < bpf.precedence(0x00010000) < bpf.precedence(0x00030000)
    assert bpf.verdict(0x80000000).restrictiveness < bpf.verdict(0).restrictiveness



@pytest.mark.parametrize(("stack", "expected"), STACKS)
def test_emulate_stack_keeps_the_most_restrictive(stack: list[int], expected: int) -> None:
    assert bpf.emulate_stack([constant(r) for r in stack], data(0)) == expected


def test_combine_matches_the_stack() -> None:
    values = [0, KILL_RET, 0x30001, errno_ret(4), errno_ret(5), 0x7FC00000, 0x7FF00000,
              0x7FFC0000, ALLOW_RET, ALLOW_RET | 3, 0x00010000]
    for newer, older in itertools.product(values, repeat=2):
        assert bpf.combine(newer, older) == bpf.emulate_stack(
            [constant(newer), constant(older)], data(0))
