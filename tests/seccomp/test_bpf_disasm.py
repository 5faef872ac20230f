"""agent/seccomp/bpf_disasm.py: the listing of hand-assembled, libseccomp-generated and broken
programs, and the names it gives syscall numbers and AUDIT_ARCH tokens."""

from __future__ import annotations

from agent.seccomp import bpf, syscalls
from agent.seccomp import compile as sc
from agent.seccomp.bpf_disasm import audit_arch_name, disassemble
from agent.seccomp.model import ALLOW, EPERM, Action, ActionKind, Profile, Rule
from tests.seccomp.bpf_programs import (
    AND,
    I386,
    JEQ,
    JSET,
    KILL_RET,
    LD,
    LD_LEN,
    RET,
    RET_A,
    RET_OK,
    ST,
    X86_64,
    X,
    arg,
    asm,
    errno_ret,
    nr_of,
)


def test_disassembly_of_a_hand_assembled_program() -> None:
    program = asm(
        (LD, 0, 0, 4),
        (JEQ, 1, 0, X86_64),
        (RET, 0, 0, KILL_RET),
        (LD, 0, 0, 0),
        (JEQ, 0, 1, 59),
        (RET, 0, 0, errno_ret(1)),
        (LD, 0, 0, 24),
        (AND, 0, 0, 0xFF),
        (JSET | X, 0, 1, 0),
        (RET, 0, 0, 0x00030005),
        (LD_LEN, 0, 0, 0),
        (ST, 0, 0, 1),
        (RET_A, 0, 0, 0),
    )
    assert disassemble(program).splitlines() == [
        "0000: ld  [4]  ; arch",
        "0001: jeq #0xc000003e (AUDIT_ARCH_X86_64)  jt 0003  jf 0002",
        "0002: ret #0x80000000  ; kill_process",
        "0003: ld  [0]  ; nr",
        "0004: jeq #0x3b (execve)  jt 0005  jf 0006",
        "0005: ret #0x50001  ; errno(1)",
        "0006: ld  [24]  ; args[1].lo",
        "0007: and #0xff",
        "0008: jset x  jt 0009  jf 0010",
        "0009: ret #0x30005  ; trap(5)",
        "0010: ld  #len  ; 64 (sizeof struct seccomp_data)",
        "0011: st  M[1]",
        "0012: ret a",
    ]


def test_disassembly_names_the_arch_from_the_argument_or_a_check() -> None:
    no_check = asm((LD, 0, 0, 0), (JEQ, 0, 1, 20), (RET, 0, 0, 0), RET_OK)
    assert "jeq #0x14  jt" in disassemble(no_check)            # no arch known: no name
    assert "jeq #0x14 (writev)" in disassemble(no_check, X86_64)
    assert "jeq #0x14 (getpid)" in disassemble(bpf.decode(no_check), I386)  # i386: 20
    x86 = asm((LD, 0, 0, 4), (JEQ, 0, 3, I386), (LD, 0, 0, 0), (JEQ, 0, 1, 20),
              (RET, 0, 0, 0), RET_OK)
    text = disassemble(x86, X86_64)  # the check says i386, whatever the argument says
    assert "jeq #0x40000003 (AUDIT_ARCH_I386)" in text and "jeq #0x14 (getpid)" in text
    x32 = asm((LD, 0, 0, 0), (JEQ, 0, 1, 0x40000000 | 0x208), (RET, 0, 0, 0), RET_OK)
    assert "(execve)" in disassemble(x32, X86_64)              # x32's execve is 520


def test_disassembly_of_a_libseccomp_program_names_syscalls_and_actions() -> None:
    profile = Profile("t", EPERM, (
        Rule(("getppid",), ALLOW), Rule(("socket",), ALLOW, (arg(0, "eq", 2),))),
        deny=(Rule(("kill",), Action(ActionKind.TRAP)),), architectures=("x86_64", "x86"))
    text = disassemble(sc.build_filter(profile).bpf())
    lines = text.splitlines()
    assert lines[0] == "0000: ld  [4]  ; arch"
    assert "(AUDIT_ARCH_X86_64)" in text and "(AUDIT_ARCH_I386)" in text
    assert f"jeq #0x{nr_of('getppid'):x} (getppid)" in text
    assert f"jeq #0x{nr_of('getppid', 'x86'):x} (getppid)" in text   # i386's number, named
    assert "(X32_SYSCALL_BIT)" in text
    assert "; args[0].lo" in text and "; args[0].hi" in text
    for action in ("allow", "errno(1)", "trap(0)", "kill_process"):
        assert any(line.endswith(f"; {action}") for line in lines), action
    assert "refuses" not in text


def test_disassembly_tolerates_a_broken_program() -> None:
    text = disassemble(asm((0xC7, 1, 2, 3), (LD, 0, 0, 64), (JEQ, 9, 0, 0)) + b"\x01")
    assert text.splitlines() == [
        "0000: .insn 0x00c7, 1, 2, 0x3  ; not a BPF instruction",
        "0001: ld  [64]",
        "0002: jeq #0x0  jt 0012  jf 0003",
        "; 1 trailing bytes (not a whole instruction)",
        "; the kernel refuses this program: instruction 0 (0x00c7 jt 1 jf 2 k 0x3): "
        "opcode 0x00c7 is not a BPF instruction",
    ]
    assert disassemble(b"") == "; the kernel refuses this program: empty program: a filter " \
                               "needs at least one instruction"


# --- names: syscall numbers per architecture, AUDIT_ARCH tokens ---------------------------------

def test_numbers_per_architecture() -> None:
    x86_64 = syscalls.numbers("x86_64")
    assert x86_64 == syscalls.numbers("native") and x86_64 == tuple(sorted(set(x86_64)))
    assert {0, nr_of("execve"), nr_of("seccomp")} <= set(x86_64)
    assert all(syscalls.name_of(n, "x86_64") for n in x86_64)
    x32 = syscalls.numbers("x32")
    assert all(n & bpf.X32_SYSCALL_BIT for n in x32) and nr_of("execve", "x32") in x32
    assert set(range(359, 374)) <= set(syscalls.numbers("x86"))  # i386's direct socket calls
    assert min(syscalls.numbers("mips")) >= 4000
    assert syscalls.arch_name(X86_64) == "x86_64" and syscalls.arch_name(I386) == "x86"
    assert syscalls.arch_name(0x1234) is None
    assert audit_arch_name(I386) == "AUDIT_ARCH_I386"
    assert audit_arch_name(syscalls.arch_token("x32")) is None
