"""Classic seccomp BPF as the kernel runs it: decode and validate, emulate, name the verdicts.

A seccomp filter is a classic BPF program (``struct sock_filter`` array) run over
``struct seccomp_data`` (nr, arch, instruction pointer, six 64-bit arguments; 64 bytes). This
module reads such programs the way the kernel does:

* :func:`decode` validates like ``bpf_check_classic`` (``net/core/filter.c``) followed by
  ``seccomp_check_filter`` (``kernel/seccomp.c``) and raises :class:`BadProgram` (what and at
  which instruction) for anything the kernel refuses with EINVAL;
* :func:`emulate` runs one program, :func:`emulate_stack` a stack of them (newest first, as
  ``PTRACE_SECCOMP_GET_FILTER`` numbers them) with the kernel's precedence;
* :func:`verdict` names a return value (:class:`Verdict`).

Listing a program is :mod:`agent.seccomp.bpf_disasm`'s job; the effective table of a stack (what
it decides per syscall number and argument) is :mod:`agent.seccomp.bpf_table`'s.

Kernel semantics kept here: division by ``X == 0`` makes the filter return 0 (kill_thread);
shifts by ``X`` use ``X & 31``; an errno above 4095 reaches the caller as 4095
(:data:`~agent.seccomp.model.MAX_ERRNO`); an unknown action is handled as kill_process. The
64-bit fields are read as two 32-bit words, the low word at the lower offset (a little-endian
host such as x86_64)::

    insns = decode(program)                             # BadProgram if the kernel would refuse
    emulate(insns, SeccompData(nr=39, arch=AUDIT_ARCH_X86_64))      # 0x7fff0000
    emulate_stack([newest, older], SeccompData(39, AUDIT_ARCH_X86_64))  # the kernel's choice
    str(verdict(0x00050001))                            # "errno(1)"
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

from agent.core.record import record

U32 = 0xFFFFFFFF
U64 = (1 << 64) - 1
INSN = struct.Struct("=HBBI")
"""``struct sock_filter``: code, jt, jf, k (host byte order)."""
MAX_INSNS = 4096
"""``BPF_MAXINSNS``: the longest program the kernel takes."""
MEMWORDS = 16
"""``BPF_MEMWORDS``: scratch memory cells ``M[0]``..``M[15]``."""
SECCOMP_DATA_SIZE = 64
"""``sizeof(struct seccomp_data)``: what ``ld len`` loads."""

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
X32_SYSCALL_BIT = 0x40000000
"""x32 syscalls arrive as ``AUDIT_ARCH_X86_64`` with this bit set in ``nr``."""

ACTION_FULL = 0xFFFF0000
"""``SECCOMP_RET_ACTION_FULL``: the action bits of a return value."""
RET_DATA = 0x0000FFFF
"""``SECCOMP_RET_DATA``: the data bits (errno, trap/trace value)."""
RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_USER_NOTIF = 0x7FC00000
RET_TRACE = 0x7FF00000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000

ACTIONS: dict[int, str] = {
    RET_KILL_PROCESS: "kill_process", RET_KILL_THREAD: "kill_thread", RET_TRAP: "trap",
    RET_ERRNO: "errno", RET_USER_NOTIF: "user_notif", RET_TRACE: "trace", RET_LOG: "log",
    RET_ALLOW: "allow",
}
"""Action bits -> name, most restrictive first."""
ACTION_BITS: dict[str, int] = {name: bits for bits, name in ACTIONS.items()}
ACTION_ORDER: tuple[str, ...] = tuple(ACTIONS.values())
"""Action names, most restrictive first (the kernel's order for stacked filters)."""

# Opcode fields (linux/bpf_common.h, linux/filter.h): class (code & 0x07), ALU op or jump test
# (code & 0xf0), source X instead of k (code & 0x08).
BPF_LD, BPF_LDX, BPF_ST, BPF_STX, BPF_ALU, BPF_JMP, BPF_RET, BPF_MISC = range(8)
BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_OR, BPF_AND, BPF_LSH, BPF_RSH = (
    0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70)
BPF_NEG, BPF_MOD, BPF_XOR = 0x80, 0x90, 0xA0
BPF_JA, BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET = 0x00, 0x10, 0x20, 0x30, 0x40
_JUMP_TESTS = (BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET)
BPF_X = 0x08
LD_ABS = 0x20
LD_LEN = 0x80
LDX_LEN = 0x81
LD_IMM = 0x00
LDX_IMM = 0x01

_ALU_OPS = (BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_MOD, BPF_AND, BPF_OR, BPF_XOR, BPF_LSH,
            BPF_RSH)
_COND_JUMPS = frozenset(BPF_JMP | op | src for op in _JUMP_TESTS for src in (0, BPF_X))
_CLASSIC = frozenset({
    *(BPF_ALU | op | src for op in _ALU_OPS for src in (0, BPF_X)), BPF_ALU | BPF_NEG,
    0x20, 0x28, 0x30, 0x80, 0x40, 0x48, 0x50, 0x00, 0x60,  # ld: abs w/h/b, len, ind w/h/b, imm, mem
    0x81, 0xB1, 0x01, 0x61,                                # ldx: len, msh, imm, mem
    BPF_ST, BPF_STX, 0x07, 0x87, 0x06, 0x16, BPF_JMP | BPF_JA, *_COND_JUMPS,
})
"""What ``chk_code_allowed`` accepts (any classic socket filter)."""
_NOT_SECCOMP = frozenset({0x28, 0x30, 0x40, 0x48, 0x50, 0xB1, BPF_ALU | BPF_MOD,
                          BPF_ALU | BPF_MOD | BPF_X})
"""Classic instructions ``seccomp_check_filter`` refuses: packet loads other than ``ld [k]``
(halfword/byte, indirect, ``ldx 4*([k]&0xf)``) and modulo."""
_SECCOMP = _CLASSIC - _NOT_SECCOMP


class BadProgram(ValueError):
    """A program the kernel would refuse (EINVAL), or one the emulator cannot run."""


@dataclass(frozen=True, slots=True)
class Insn:
    """One ``struct sock_filter``."""

    code: int
    """Opcode (class | size/op | mode/source)."""
    jt: int
    """Conditional jumps: instructions to skip when the condition holds."""
    jf: int
    """Conditional jumps: instructions to skip when it does not."""
    k: int
    """The constant operand (offset, immediate, jump distance for ``ja``, return value)."""

    def __str__(self) -> str:
        return f"0x{self.code:04x} jt {self.jt} jf {self.jf} k 0x{self.k:x}"


# --- decoding and validation --------------------------------------------------------------------

def parse(program: bytes) -> tuple[Insn, ...]:
    """The instructions of ``program`` as they are, without any check but the length."""
    if len(program) % INSN.size:
        raise BadProgram(f"program length {len(program)} is not a multiple of {INSN.size} bytes")
    return tuple(Insn(*INSN.unpack_from(program, i)) for i in range(0, len(program), INSN.size))


def decode(program: bytes) -> tuple[Insn, ...]:
    """The instructions the kernel would run for ``program``; :class:`BadProgram` if it refuses.

    Checks what ``bpf_check_classic`` and ``seccomp_check_filter`` check: 1 to 4096 instructions,
    only the opcodes seccomp accepts, ``ld [k]`` aligned and inside ``struct seccomp_data``,
    jumps inside the program, a return last, no division by the constant 0, no constant shift by
    32 or more, scratch cells 0-15 and none read before every path to it stored it. ``ld len`` and
    ``ldx len`` come back as the ``ld #64``/``ldx #64`` the kernel rewrites them to.
    """
    insns = parse(program)
    check(insns)
    return tuple(_rewrite(i) for i in insns)


def _rewrite(insn: Insn) -> Insn:
    if insn.code == LD_LEN:
        return Insn(LD_IMM, 0, 0, SECCOMP_DATA_SIZE)
    if insn.code == LDX_LEN:
        return Insn(LDX_IMM, 0, 0, SECCOMP_DATA_SIZE)
    return insn


def check(insns: Sequence[Insn]) -> None:
    """Raise :class:`BadProgram` when the kernel would refuse ``insns`` (see :func:`decode`)."""
    count = len(insns)
    if count == 0:
        raise BadProgram("empty program: a filter needs at least one instruction")
    if count > MAX_INSNS:
        raise BadProgram(f"{count} instructions: the kernel takes at most {MAX_INSNS}")
    for pc, insn in enumerate(insns):  # bpf_check_classic
        code, k = insn.code, insn.k
        if code not in _CLASSIC:
            _refuse(pc, insn, f"opcode 0x{code:04x} is not a BPF instruction")
        if code in (BPF_ALU | BPF_DIV, BPF_ALU | BPF_MOD) and k == 0:
            _refuse(pc, insn, "division by the constant 0")
        if code in (BPF_ALU | BPF_LSH, BPF_ALU | BPF_RSH) and k >= 32:
            _refuse(pc, insn, f"shift by the constant {k} (32 or more)")
        if code in (0x60, 0x61, BPF_ST, BPF_STX) and k >= MEMWORDS:
            _refuse(pc, insn, f"scratch cell M[{k}] does not exist (M[0]..M[{MEMWORDS - 1}])")
        if code == BPF_JMP | BPF_JA and k >= count - pc - 1:
            _refuse(pc, insn, f"ja {k} jumps to {pc + 1 + k}, past the last instruction "
                              f"{count - 1}")
        if code in _COND_JUMPS:
            for label, skip in (("jt", insn.jt), ("jf", insn.jf)):
                if pc + skip + 1 >= count:
                    _refuse(pc, insn, f"{label} {skip} jumps to {pc + 1 + skip}, past the last "
                                      f"instruction {count - 1}")
    if insns[-1].code not in (0x06, 0x16):
        _refuse(count - 1, insns[-1], "the last instruction is not a return")
    _check_scratch(insns)
    for pc, insn in enumerate(insns):  # seccomp_check_filter
        code, k = insn.code, insn.k
        if code not in _SECCOMP:
            _refuse(pc, insn, f"{_mnemonic(code)} is not allowed in a seccomp filter")
        if code == LD_ABS and (k >= SECCOMP_DATA_SIZE or k & 3):
            where = "misaligned" if k < SECCOMP_DATA_SIZE else "outside struct seccomp_data"
            _refuse(pc, insn, f"ld [{k}] is {where} (aligned offsets 0-60)")


def _check_scratch(insns: Sequence[Insn]) -> None:
    """``check_load_and_stores``: no ``M[k]`` read unless stored on every path to the read."""
    masks = [0xFFFF] * len(insns)
    valid = 0
    for pc, insn in enumerate(insns):
        valid &= masks[pc]
        code, k = insn.code, insn.k
        if code in (BPF_ST, BPF_STX):
            valid |= 1 << k
        elif code in (0x60, 0x61):
            if not valid >> k & 1:
                _refuse(pc, insn, f"M[{k}] is read before every path to it stored it")
        elif code == BPF_JMP | BPF_JA:
            masks[pc + 1 + k] &= valid
            valid = 0xFFFF
        elif code in _COND_JUMPS:
            masks[pc + 1 + insn.jt] &= valid
            masks[pc + 1 + insn.jf] &= valid
            valid = 0xFFFF


def _refuse(pc: int, insn: Insn, why: str) -> NoReturn:
    raise BadProgram(f"instruction {pc} ({insn}): {why}")




# --- emulation ----------------------------------------------------------------------------------

@record
class SeccompData:
    """What the kernel hands a seccomp filter (``struct seccomp_data``)."""

    nr: int
    """Syscall number (x32: with :data:`X32_SYSCALL_BIT`)."""
    arch: int
    """``AUDIT_ARCH_*`` of the calling ABI."""
    args: tuple[int, ...] = (0, 0, 0, 0, 0, 0)
    """The six arguments, 64-bit (missing ones are 0)."""
    instruction_pointer: int = 0

    def word(self, offset: int) -> int:
        """The 32-bit word at ``offset`` (little-endian halves of the 64-bit fields)."""
        if offset == 0:
            return self.nr & U32
        if offset == 4:
            return self.arch & U32
        if offset in (8, 12):
            return (self.instruction_pointer >> (32 if offset == 12 else 0)) & U32
        index, half = divmod(offset - 16, 8)
        if offset % 4 or not 0 <= index < 6:
            raise BadProgram(f"load from offset {offset} outside seccomp_data")
        args = (*self.args, 0, 0, 0, 0, 0, 0)[:6]
        return (args[index] >> (32 if half else 0)) & U32


def emulate(program: bytes | Sequence[Insn], data: SeccompData) -> int:
    """The raw 32-bit value ``program`` returns for ``data``.

    Bytes are decoded (and validated) first; a sequence of :class:`Insn` is run as given, and an
    instruction the emulator cannot run raises :class:`BadProgram`.
    """
    insns = decode(bytes(program)) if isinstance(program, bytes | bytearray | memoryview) \
        else program
    a = x = 0
    mem = [0] * MEMWORDS
    pc = 0
    count = len(insns)
    while pc < count:
        insn = insns[pc]
        code = insn.code
        pc += 1
        cls = code & 0x07
        if cls == BPF_JMP:
            op = code & 0xF0
            if op == BPF_JA:
                pc += insn.k
            elif op in _JUMP_TESTS:
                pc += insn.jt if jumps(op, a, x if code & BPF_X else insn.k) else insn.jf
            else:
                _cannot_run(code)
        elif code == LD_ABS:
            a = data.word(insn.k)
        elif cls == BPF_RET:
            if code == 0x06:
                return insn.k & U32
            if code != 0x16:
                _cannot_run(code)
            return a
        else:
            try:
                a, x = _execute(insn, a, x, mem)
            except ZeroDivisionError:
                return 0  # the kernel's cBPF conversion returns 0 on a division by zero
    raise BadProgram("ran off the end of the program")


def _execute(insn: Insn, a: int, x: int, mem: list[int]) -> tuple[int, int]:
    """A and X after one load, store, ALU or misc instruction (``mem`` updated in place)."""
    code, k = insn.code, insn.k
    cls = code & 0x07
    if cls == BPF_ALU:
        op = code & 0xF0
        src = x if code & BPF_X else k
        if op in (BPF_DIV, BPF_MOD) and src == 0:
            raise ZeroDivisionError
        return alu(op, a, src, code), x
    if code == LD_IMM:
        return k, x
    if code == 0x60:
        return mem[k & 15], x
    if code == LD_LEN:
        return SECCOMP_DATA_SIZE, x
    if code == LDX_IMM:
        return a, k
    if code == 0x61:
        return a, mem[k & 15]
    if code == LDX_LEN:
        return a, SECCOMP_DATA_SIZE
    if code in (BPF_ST, BPF_STX):
        mem[k & 15] = a if code == BPF_ST else x
        return a, x
    if code == 0x07:  # tax
        return a, a
    if code == 0x87:  # txa
        return x, x
    _cannot_run(code)


def alu(op: int, a: int, v: int, code: int) -> int:
    """``a op v`` in 32 bits as the kernel computes it (``BPF_ADD`` ...; ``v`` not 0 for
    ``BPF_DIV``/``BPF_MOD``); ``code`` is the instruction, named if ``op`` is no ALU op."""
    if op == BPF_ADD:
        return (a + v) & U32
    if op == BPF_SUB:
        return (a - v) & U32
    if op == BPF_MUL:
        return (a * v) & U32
    if op == BPF_DIV:
        return a // v
    if op == BPF_MOD:
        return a % v
    if op == BPF_AND:
        return a & v
    if op == BPF_OR:
        return a | v
    if op == BPF_XOR:
        return a ^ v
    if op == BPF_LSH:
        return (a << (v & 31)) & U32  # eBPF masks shift counts: x86 shl/shr do the same
    if op == BPF_RSH:
        return a >> (v & 31)
    if op == BPF_NEG:
        return -a & U32
    _cannot_run(code)


def jumps(op: int, a: int, b: int) -> bool:
    """Whether a conditional jump with test ``op`` (``BPF_JEQ`` ...) is taken for ``a``, ``b``."""
    if op == BPF_JEQ:
        return a == b
    if op == BPF_JGT:
        return a > b
    if op == BPF_JGE:
        return a >= b
    return a & b != 0


def _cannot_run(code: int) -> NoReturn:
    raise BadProgram(f"instruction 0x{code:02x} is not valid in a seccomp filter")


def precedence(ret: int) -> int:
    """The kernel's ordering key for a return value: ``ACTION_ONLY(ret)``, lower wins.

    ``(s32)(ret & SECCOMP_RET_ACTION_FULL)``: kill_process (0x80000000) is the lowest, then
    kill_thread, trap, errno, user_notif, trace, log, allow; an unknown action sorts by its value.
    """
    bits = ret & ACTION_FULL
    return bits - (1 << 32) if bits & 0x80000000 else bits


def combine(newer: int, older: int) -> int:
    """What the kernel acts on when two stacked filters return ``newer`` and ``older``: the more
    restrictive action, the newer filter's value on a tie (allow: always 0x7fff0000)."""
    ret = RET_ALLOW
    for current in (newer, older):
        if precedence(current) < precedence(ret):
            ret = current
    return ret


def emulate_stack(programs: Sequence[bytes | Sequence[Insn]], data: SeccompData) -> int:
    """What the kernel acts on when ``programs`` (newest first) are all loaded.

    ``seccomp_run_filters``: start from allow (0x7fff0000), walk newest to oldest and keep a
    filter's value when its action is strictly more restrictive; so an allow's data bits never
    come through and on a tie the newest filter's value stays.
    """
    ret = RET_ALLOW
    for program in programs:
        current = emulate(program, data)
        if precedence(current) < precedence(ret):
            ret = current
    return ret


# --- verdicts -----------------------------------------------------------------------------------

@record
class Verdict:
    """A return value, named: ``errno(1)``, ``allow``, ``kill_process`` ...

    ``unknown`` is an action value the kernel does not define; the kernel handles it as
    kill_process (``__seccomp_filter``'s default case). ``errno`` data above 4095 reaches the
    caller as 4095.
    """

    action: str
    """One of :data:`ACTION_ORDER`, or ``unknown``."""
    data: int = 0
    """``ret & 0xffff``: the errno, the trap/trace value (ignored for the other actions)."""
    raw_action: int = 0
    """The action bits of an ``unknown`` action (0 for every known action)."""

    @classmethod
    def of(cls, ret: int) -> Verdict:
        """The verdict of a raw return value."""
        bits = ret & ACTION_FULL
        name = ACTIONS.get(bits)
        if name is None:
            return cls("unknown", ret & RET_DATA, bits)
        return cls(name, ret & RET_DATA)

    @property
    def ret(self) -> int:
        """The raw return value again."""
        bits = self.raw_action if self.action == "unknown" else ACTION_BITS[self.action]
        return bits | self.data

    @property
    def restrictiveness(self) -> int:
        """:func:`precedence` of the action: lower is more restrictive (kernel order)."""
        return precedence(self.ret)

    @property
    def kills(self) -> bool:
        """True when the kernel kills the thread or process (unknown actions included)."""
        return self.action in ("kill_process", "kill_thread", "unknown")

    def __str__(self) -> str:
        if self.action in ("errno", "trap", "trace"):
            return f"{self.action}({self.data})"
        if self.action == "unknown":
            return f"unknown(0x{self.ret:08x})"
        return self.action


def verdict(ret: int) -> Verdict:
    """``Verdict.of(ret)``."""
    return Verdict.of(ret)


def verdict_rank(action: str) -> int:
    """Position of an action name in :data:`ACTION_ORDER` (0: kill_process, most restrictive).

    ``unknown`` ranks with kill_process (what the kernel does with it); any other name ranks
    after allow.
    """
    if action == "unknown":
        return 0
    try:
        return ACTION_ORDER.index(action)
    except ValueError:
        return len(ACTION_ORDER)


# --- names: instructions and seccomp_data words -------------------------------------------------

MNEMONICS: dict[int, str] = {
    0x20: "ld", 0x28: "ldh", 0x30: "ldb", 0x40: "ld", 0x48: "ldh", 0x50: "ldb", 0x00: "ld",
    0x60: "ld", 0x80: "ld", 0x01: "ldx", 0x61: "ldx", 0x81: "ldx", 0xB1: "ldx",
    BPF_ST: "st", BPF_STX: "stx", 0x06: "ret", 0x16: "ret", 0x07: "tax", 0x87: "txa",
    BPF_JMP | BPF_JA: "ja", BPF_ALU | BPF_NEG: "neg",
    **{BPF_ALU | op | src: name
       for op, name in ((BPF_ADD, "add"), (BPF_SUB, "sub"), (BPF_MUL, "mul"), (BPF_DIV, "div"),
                        (BPF_MOD, "mod"), (BPF_AND, "and"), (BPF_OR, "or"), (BPF_XOR, "xor"),
                        (BPF_LSH, "lsh"), (BPF_RSH, "rsh"))
       for src in (0, BPF_X)},
    **{BPF_JMP | op | src: name
       for op, name in ((BPF_JEQ, "jeq"), (BPF_JGT, "jgt"), (BPF_JGE, "jge"), (BPF_JSET, "jset"))
       for src in (0, BPF_X)},
}
"""Opcode -> mnemonic, for every classic BPF instruction (seccomp's or not)."""


def _mnemonic(code: int) -> str:
    name = MNEMONICS.get(code)
    if name is None:
        return f"opcode 0x{code:04x}"
    if code in (0x28, 0x30):
        return f"{name} [k]"
    if code in (0x40, 0x48, 0x50):
        return f"{name} [x+k]"
    if code == 0xB1:
        return "ldx 4*([k]&0xf)"
    return name


def field_name(offset: int) -> str | None:
    """The ``seccomp_data`` word at ``offset``: ``nr``, ``arch``, ``args[1].hi`` ..."""
    if offset == 0:
        return "nr"
    if offset == 4:
        return "arch"
    if offset % 4 or not 8 <= offset < SECCOMP_DATA_SIZE:
        return None
    if offset < 16:
        return f"instruction_pointer.{'hi' if offset == 12 else 'lo'}"
    index, half = divmod(offset - 16, 8)
    return f"args[{index}].{'hi' if half else 'lo'}"
