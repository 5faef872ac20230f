"""Seccomp programs and inputs shared by the tests of agent/seccomp/bpf*.py.

Opcodes spelled out once, :func:`asm` to assemble ``struct sock_filter`` bytes, programs the
kernel refuses or accepts (``test_bpf.py`` decodes them, ``test_bpf_kernel.py`` loads them),
random valid programs and arguments, argument values around each condition of a profile
(:func:`points`) and a profile with every action and comparison (:data:`EVERY_OP`)::

    program = asm((LD, 0, 0, 0), (JEQ, 0, 1, 39), (RET, 0, 0, errno_ret(1)), RET_OK)
    bpf.emulate(program, data(39))              # 0x00050001
"""

from __future__ import annotations

import errno
import itertools
import random
import struct
from collections.abc import Sequence

from agent.seccomp import bpf, syscalls
from agent.seccomp.bpf import Insn, SeccompData
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
from agent.seccomp.plan import Cond

X86_64 = bpf.AUDIT_ARCH_X86_64
I386 = bpf.AUDIT_ARCH_I386
U32 = 0xFFFFFFFF
U64 = (1 << 64) - 1
ALLOW_RET, KILL_RET = 0x7FFF0000, 0x80000000
DOCKER = "fixtures/seccomp/docker-default.json"

# opcodes, spelled out once
LD, LD_IMM, LDX_IMM, LD_MEM, LDX_MEM, LD_LEN, LDX_LEN = (
    0x20, 0x00, 0x01, 0x60, 0x61, 0x80, 0x81)
ST, STX, TAX, TXA, RET, RET_A = 0x02, 0x03, 0x07, 0x87, 0x06, 0x16
ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, NEG, MOD, XOR = (
    0x04, 0x14, 0x24, 0x34, 0x44, 0x54, 0x64, 0x74, 0x84, 0x94, 0xA4)
X = 0x08  # source X instead of k
JA, JEQ, JGT, JGE, JSET = 0x05, 0x15, 0x25, 0x35, 0x45


def errno_ret(number: int) -> int:
    return 0x00050000 | number


def asm(*insns: tuple[int, int, int, int] | Insn) -> bytes:
    """``struct sock_filter`` bytes of ``(code, jt, jf, k)`` tuples or instructions."""
    return b"".join(struct.pack("=HBBI", *((i.code, i.jt, i.jf, i.k) if isinstance(i, Insn)
                                           else i)) for i in insns)


def constant(ret: int) -> bytes:
    """A program that returns ``ret`` whatever the call."""
    return asm((RET, 0, 0, ret))


def data(nr: int, *args: int, arch: int = X86_64, ip: int = 0) -> SeccompData:
    return SeccompData(nr, arch, tuple(args) + (0,) * (6 - len(args)), ip)


def arg(index: int, op: str, value: int, mask: int | None = None) -> ArgCondition:
    return ArgCondition(index, op, value, mask)


def nr_of(name: str, arch: str = "x86_64") -> int:
    found = syscalls.resolve(name, arch)
    assert found is not None, name
    return found


STACKS: list[tuple[list[int], int]] = [  # newest first
    ([], ALLOW_RET),
    ([ALLOW_RET | 5], ALLOW_RET),                              # an allow's data never survives
    ([errno_ret(1), 0x00000000], 0x00000000),                 # kill_thread beats errno
    ([0x00000000, KILL_RET], KILL_RET),                       # kill_process beats kill_thread
    ([KILL_RET | 3, 0x00000000], KILL_RET | 3),
    ([ALLOW_RET, 0x00030002], 0x00030002),                    # older trap wins over newer allow
    ([errno_ret(1), errno_ret(2)], errno_ret(1)),             # tie: the newest filter's value
    ([errno_ret(2), errno_ret(1), errno_ret(3)], errno_ret(2)),
    ([0x7FFC0000, ALLOW_RET], 0x7FFC0000),                    # log beats allow
    ([0x7FF00001, 0x7FC00000], 0x7FC00000),                   # user_notif beats trace
    ([0x00030001, 0x00010000], 0x00010000),                   # unknown action by its value
]
"""Stacks of :func:`constant` programs (what each returns) and what the kernel acts on."""


# --- programs the kernel refuses or accepts -----------------------------------------------------

RET_OK = (RET, 0, 0, ALLOW_RET)
BAD_PROGRAMS: list[tuple[str, bytes, str]] = [  # test_bpf_kernel.py loads these: only allows
    ("empty", b"", "empty program"),
    ("too long", asm(*[RET_OK] * 4097), "4097 instructions: the kernel takes at most 4096"),
    ("unknown opcode", asm((0xC7, 0, 0, 0), RET_OK),
     r"instruction 0 \(0x00c7 .*\): opcode 0x00c7 is not a BPF instruction"),
    ("halfword load", asm((0x28, 0, 0, 0), RET_OK),
     r"instruction 0 .*ldh \[k\] is not allowed in a seccomp filter"),
    ("indirect load", asm((0x40, 0, 0, 0), RET_OK),
     r"instruction 0 .*ld \[x\+k\] is not allowed in a seccomp filter"),
    ("msh load", asm((0xB1, 0, 0, 0), RET_OK),
     r"instruction 0 .*ldx 4\*\(\[k\]&0xf\) is not allowed in a seccomp filter"),
    ("modulo", asm((LD_IMM, 0, 0, 5), (MOD, 0, 0, 3), RET_OK),
     r"instruction 1 .*mod is not allowed in a seccomp filter"),
    ("misaligned load", asm((LD, 0, 0, 2), RET_OK), r"instruction 0 .*ld \[2\] is misaligned"),
    ("load past seccomp_data", asm((LD, 0, 0, 64), RET_OK),
     r"instruction 0 .*ld \[64\] is outside struct seccomp_data"),
    ("ancillary load", asm((LD, 0, 0, 0xFFFFF000), RET_OK),
     r"instruction 0 .*outside struct seccomp_data"),
    ("division by constant 0", asm((DIV, 0, 0, 0), RET_OK),
     r"instruction 0 .*division by the constant 0"),
    ("shift by 32", asm((LSH, 0, 0, 32), RET_OK), r"instruction 0 .*shift by the constant 32"),
    ("scratch cell 16", asm((ST, 0, 0, 16), RET_OK),
     r"instruction 0 .*scratch cell M\[16\] does not exist"),
    ("ja past the end", asm((JA, 0, 0, 1), RET_OK),
     r"instruction 0 .*ja 1 jumps to 2, past the last instruction 1"),
    ("jt past the end", asm((JEQ, 1, 0, 0), RET_OK),
     r"instruction 0 .*jt 1 jumps to 2, past the last instruction 1"),
    ("jf past the end", asm((JGT, 0, 5, 0), RET_OK), r"instruction 0 .*jf 5 jumps to 6"),
    ("no return last", asm(RET_OK, (LD, 0, 0, 0)),
     r"instruction 1 .*the last instruction is not a return"),
    ("scratch read before store", asm((LD_MEM, 0, 0, 2), RET_OK),
     r"instruction 0 .*M\[2\] is read before every path to it stored it"),
    ("scratch stored on one path only",
     asm((LD, 0, 0, 0), (JEQ, 0, 1, 1), (ST, 0, 0, 4), (LDX_MEM, 0, 0, 4), RET_OK),
     r"instruction 3 .*M\[4\] is read before every path"),
]
GOOD_PROGRAMS: list[tuple[str, bytes]] = [  # every return allows: harmless once loaded
    ("every seccomp instruction", asm(
        (LD, 0, 0, 0), (LD, 0, 0, 60), (LD_LEN, 0, 0, 0), (LDX_LEN, 0, 0, 0), (LD_IMM, 0, 0, 1),
        (LDX_IMM, 0, 0, 2), (ST, 0, 0, 0), (STX, 0, 0, 15), (LD_MEM, 0, 0, 0),
        (LDX_MEM, 0, 0, 15), *[(op, 0, 0, 3) for op in (ADD, SUB, MUL, DIV, OR, AND, LSH, RSH,
                                                        XOR)],
        *[(op | X, 0, 0, 0) for op in (ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, XOR)],
        (NEG, 0, 0, 0), (TAX, 0, 0, 0), (TXA, 0, 0, 0), (JA, 0, 0, 0),
        *[(op | src, 0, 0, 1) for op in (JEQ, JGT, JGE, JSET) for src in (0, X)],
        (LD_IMM, 0, 0, ALLOW_RET), (RET_A, 0, 0, 0), RET_OK)),
    ("4096 instructions", asm(*[RET_OK] * 4096)),
    ("shift by 31, ja to the last", asm((LSH, 0, 0, 31), (JA, 0, 0, 0), RET_OK)),
    ("scratch stored on both paths",
     asm((LD, 0, 0, 0), (JEQ, 0, 2, 1), (ST, 0, 0, 4), (JA, 0, 0, 1), (ST, 0, 0, 4),
         (LDX_MEM, 0, 0, 4), RET_OK)),
]



# --- random programs and arguments --------------------------------------------------------------

CONSTANTS = (0, 1, 2, 3, 5, 0x10, 0xFF, 0x100, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)
RETS = (ALLOW_RET, ALLOW_RET | 5, errno_ret(1), errno_ret(2), errno_ret(0x1234), 0x00030003,
        0x00000000, KILL_RET, 0x7FFC0000, 0x7FF00007, 0x7FC00000, 0x00010000)
NUMBERS = (0, 1, 2, 3, 5, 16, 17, 255)


WORDS = (0, 4, 8, 12, 16, 16, 20, 20, 24, 28, 32, 40, 52)
"""Offsets the random programs load (nr, arch, instruction pointer and argument words)."""


def random_program(rng: random.Random, rets: Sequence[int] = RETS,
                   numbers: Sequence[int] = NUMBERS, words: Sequence[int] = WORDS) -> list[Insn]:
    """A valid seccomp program built to reach many paths (loads, masks, jumps, some ALU)."""
    length = rng.randint(4, 30)
    stored = rng.sample(range(16), rng.randint(0, 3))
    out = [Insn(ST, 0, 0, i) for i in stored]

    def const() -> int:
        return rng.choice((*CONSTANTS, *numbers, rng.getrandbits(32)))

    while len(out) < length - 1:
        left = length - 1 - len(out)  # instructions after this one, the last ret included
        kind = rng.choices(("ld", "alu", "jump", "ret", "misc", "mem"), (3, 2, 10, 5, 1, 1))[0]
        if kind == "ld":
            offset = rng.choice(words)
            out.append(Insn(LD, 0, 0, offset) if rng.random() < 0.8 else
                       Insn(rng.choice((LD_IMM, LDX_IMM, LD_LEN, LDX_LEN)), 0, 0, const()))
        elif kind == "alu":
            op = rng.choices((AND, ADD, SUB, MUL, DIV, OR, XOR, LSH, RSH, NEG), (9, 1, 1, 1, 1, 1,
                                                                                 1, 1, 1, 1))[0]
            k = const()
            if op in (LSH, RSH):
                k &= 31
            if op == DIV and k == 0:
                k = 3
            out.append(Insn(op | (X if rng.random() < 0.15 and op != NEG else 0), 0, 0, k))
        elif kind == "jump":
            if left > 2 and rng.random() < 0.6:  # mostly a test of a fresh word
                out.append(Insn(LD, 0, 0, rng.choice([w for w in words if w != 4])))
                left -= 1
            op = rng.choice((JEQ, JEQ, JGT, JGE, JSET))
            src = X if rng.random() < 0.1 else 0
            out.append(Insn(op | src, rng.randint(0, min(left - 1, 3)),
                            rng.randint(0, min(left - 1, 5)), const()))
        elif kind == "ret":
            out.append(Insn(RET_A, 0, 0, 0) if rng.random() < 0.05 else
                       Insn(RET, 0, 0, rng.choice(rets)))
        elif kind == "misc":
            out.append(Insn(rng.choice((TAX, TXA)), 0, 0, 0) if rng.random() < 0.7 else
                       Insn(JA, 0, 0, rng.randint(0, min(left - 1, 4))))
        elif stored:
            out.append(Insn(rng.choice((LD_MEM, LDX_MEM, ST, STX)), 0, 0, rng.choice(stored)))
    out.append(Insn(RET, 0, 0, rng.choice(rets)))
    bpf.check(out)
    return out


def random_args(rng: random.Random) -> tuple[int, ...]:
    def half() -> int:
        near = rng.choice(CONSTANTS) + rng.choice((-1, 0, 0, 1))
        return rng.choice((near & U32, rng.getrandbits(32)))
    return tuple((half() << 32 | half()) if rng.random() < 0.3 else half() for _ in range(6))



# --- profiles and argument values around their conditions ---------------------------------------

def candidates(conds: Sequence[Cond]) -> list[int]:
    """The constants named, their neighbours (both words), and the mask edges.

    Chosen for the table's joining of the two 32-bit words: more values than
    :func:`agent.seccomp.selfcheck.check` tries (1, 0xffffffff, one word lower, the neighbours of a
    mask and of its complement).
    """
    out = {0, 1, U32, 1 << 32, U64}
    for cond in conds:
        values = [cond.b, (cond.b | ~cond.a) & U64, cond.a] if cond.op == "masked_eq" else \
            [cond.a]
        for v in values:
            out.update(x & U64 for x in (v - 1, v, v + 1, v + (1 << 32), v - (1 << 32),
                                         v ^ (1 << 63)))
        if cond.op == "masked_eq":
            out.update(cond.b ^ (1 << bit) for bit in range(64) if cond.a >> bit & 1)
    return sorted(out)


def points(conds: Sequence[Cond]) -> list[tuple[int, ...]]:
    indexes = sorted({c.index for c in conds})
    per_index = [candidates([c for c in conds if c.index == i]) for i in indexes]
    combos: list[tuple[int, ...]] = list(itertools.islice(itertools.product(*per_index), 3000))
    out = []
    for combo in combos:
        args = [0] * 6
        for index, value in zip(indexes, combo, strict=True):
            args[index] = value
        out.append(tuple(args))
    return out or [(0,) * 6]


TRAP, LOG = Action(ActionKind.TRAP), Action(ActionKind.LOG)
KILL_THREAD = Action(ActionKind.KILL_THREAD)
EACCES = Action(ActionKind.ERRNO, errno.EACCES)

EVERY_OP = Profile("ops", EPERM, rules=(
    Rule(("getppid",), ALLOW),
    Rule(("dup",), ALLOW, (arg(0, "eq", 3),)),
    Rule(("dup",), EACCES, (arg(0, "gt", (1 << 33) + 7),)),
    Rule(("dup2",), ALLOW, (arg(1, "ne", 7),)),
    Rule(("fcntl",), ALLOW, (arg(1, "lt", 5),)),
    Rule(("lseek",), ALLOW, (arg(2, "le", 2),)),
    Rule(("read",), ALLOW, (arg(2, "ge", 1 << 32 | 5),)),
    Rule(("write",), ALLOW, (arg(0, "masked_eq", 0x2, 0xFF0F),)),
    Rule(("umask",), ALLOW, (arg(0, "masked_eq", 1 << 40, 1 << 40 | 0x10),)),
    Rule(("socket",), ALLOW, (arg(0, "eq", 2), arg(1, "eq", 1))),
    Rule(("personality",), ALLOW, (arg(0, "eq", -1),)),
    Rule(("kill",), LOG),
    Rule(("tkill",), TRAP),
    Rule(("tgkill",), KILL_THREAD),
    Rule(("reboot",), KILL_PROCESS),
), deny=(Rule(("getpriority",), EACCES, (arg(0, "ge", 2),)),))
