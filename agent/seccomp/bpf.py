"""Classic seccomp BPF: decode, disassemble, emulate, and tabulate what a filter (stack) decides.

A seccomp filter is a classic BPF program (``struct sock_filter`` array) run over
``struct seccomp_data`` (nr, arch, instruction pointer, six 64-bit arguments; 64 bytes). This
module reads such programs the way the kernel does:

* :func:`decode` validates like ``bpf_check_classic`` (``net/core/filter.c``) followed by
  ``seccomp_check_filter`` (``kernel/seccomp.c``) and raises :class:`BadProgram` (what and at
  which instruction) for anything the kernel refuses with EINVAL;
* :func:`emulate` runs one program, :func:`emulate_stack` a stack of them (newest first, as
  ``PTRACE_SECCOMP_GET_FILTER`` numbers them) with the kernel's precedence;
* :func:`verdict` names a return value (:class:`Verdict`), :func:`disassemble` lists a program;
* :func:`table` is the effective table of a stack for one architecture: per syscall number the
  return value, or the argument conditions under which each return value is reached.

Kernel semantics kept here: division by ``X == 0`` makes the filter return 0 (kill_thread);
shifts by ``X`` use ``X & 31``; an errno above 4095 reaches the caller as 4095 (``MAX_ERRNO``);
an unknown action is handled as kill_process. The 64-bit fields are read as two 32-bit words,
the low word at the lower offset (a little-endian host such as x86_64)::

    insns = decode(program)                             # BadProgram if the kernel would refuse
    emulate(insns, SeccompData(nr=39, arch=AUDIT_ARCH_X86_64))      # 0x7fff0000
    str(verdict(0x00050001))                            # "errno(1)"
    print(disassemble(program))                         # "0001: jeq #0xc000003e ..."
    entries = table([program], AUDIT_ARCH_X86_64, syscalls.numbers("x86_64"))
    entries[41].ret                                     # None: depends on the arguments
    [str(b) for b in entries[41].branches]              # ["args[0] == 0x2 -> allow", ...]
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import NoReturn

from agent.seccomp import syscalls

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
MAX_ERRNO = 4095
"""The largest errno a filter's ``errno`` action passes on (larger data is capped to it)."""
MAX_PATHS = 4096
"""Paths per syscall number :func:`table` follows before it gives up (``Entry.undecided``)."""

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

# Opcode fields (linux/bpf_common.h, linux/filter.h).
_LD, _LDX, _ST, _STX, _ALU, _JMP, _RET, _MISC = range(8)
_ADD, _SUB, _MUL, _DIV, _OR, _AND, _LSH, _RSH, _NEG, _MOD, _XOR = (
    0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xA0)
_JA, _JEQ, _JGT, _JGE, _JSET = 0x00, 0x10, 0x20, 0x30, 0x40
_JUMP_TESTS = (_JEQ, _JGT, _JGE, _JSET)
_SRC_X = 0x08
LD_ABS = 0x20
LD_LEN = 0x80
LDX_LEN = 0x81
LD_IMM = 0x00
LDX_IMM = 0x01

_ALU_OPS = (_ADD, _SUB, _MUL, _DIV, _MOD, _AND, _OR, _XOR, _LSH, _RSH)
_COND_JUMPS = frozenset(_JMP | op | src for op in (_JEQ, _JGT, _JGE, _JSET) for src in (0, _SRC_X))
_CLASSIC = frozenset({
    *(_ALU | op | src for op in _ALU_OPS for src in (0, _SRC_X)), _ALU | _NEG,
    0x20, 0x28, 0x30, 0x80, 0x40, 0x48, 0x50, 0x00, 0x60,  # ld: abs w/h/b, len, ind w/h/b, imm, mem
    0x81, 0xB1, 0x01, 0x61,                                # ldx: len, msh, imm, mem
    _ST, _STX, 0x07, 0x87, 0x06, 0x16, _JMP | _JA, *_COND_JUMPS,
})
"""What ``chk_code_allowed`` accepts (any classic socket filter)."""
_NOT_SECCOMP = frozenset({0x28, 0x30, 0x40, 0x48, 0x50, 0xB1, _ALU | _MOD, _ALU | _MOD | _SRC_X})
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
        if code in (_ALU | _DIV, _ALU | _MOD) and k == 0:
            _refuse(pc, insn, "division by the constant 0")
        if code in (_ALU | _LSH, _ALU | _RSH) and k >= 32:
            _refuse(pc, insn, f"shift by the constant {k} (32 or more)")
        if code in (0x60, 0x61, _ST, _STX) and k >= MEMWORDS:
            _refuse(pc, insn, f"scratch cell M[{k}] does not exist (M[0]..M[{MEMWORDS - 1}])")
        if code == _JMP | _JA and k >= count - pc - 1:
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
        if code in (_ST, _STX):
            valid |= 1 << k
        elif code in (0x60, 0x61):
            if not valid >> k & 1:
                _refuse(pc, insn, f"M[{k}] is read before every path to it stored it")
        elif code == _JMP | _JA:
            masks[pc + 1 + k] &= valid
            valid = 0xFFFF
        elif code in _COND_JUMPS:
            masks[pc + 1 + insn.jt] &= valid
            masks[pc + 1 + insn.jf] &= valid
            valid = 0xFFFF


def _refuse(pc: int, insn: Insn, why: str) -> NoReturn:
    raise BadProgram(f"instruction {pc} ({insn}): {why}")


def _programs(programs: Sequence[bytes | Sequence[Insn]]) -> list[Sequence[Insn]]:
    out: list[Sequence[Insn]] = []
    for program in programs:
        if isinstance(program, bytes | bytearray | memoryview):
            out.append(decode(bytes(program)))
        else:
            check(program)
            out.append(program)
    return out


# --- emulation ----------------------------------------------------------------------------------

@dataclass(frozen=True)
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
        if cls == _JMP:
            op = code & 0xF0
            if op == _JA:
                pc += insn.k
            elif op in _JUMP_TESTS:
                pc += insn.jt if _jump(op, a, x if code & _SRC_X else insn.k) else insn.jf
            else:
                _cannot_run(code)
        elif code == LD_ABS:
            a = data.word(insn.k)
        elif cls == _RET:
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
    if cls == _ALU:
        op = code & 0xF0
        src = x if code & _SRC_X else k
        if op in (_DIV, _MOD) and src == 0:
            raise ZeroDivisionError
        return _alu(op, a, src, code), x
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
    if code in (_ST, _STX):
        mem[k & 15] = a if code == _ST else x
        return a, x
    if code == 0x07:  # tax
        return a, a
    if code == 0x87:  # txa
        return x, x
    _cannot_run(code)


def _alu(op: int, a: int, v: int, code: int) -> int:
    if op == _ADD:
        return (a + v) & U32
    if op == _SUB:
        return (a - v) & U32
    if op == _MUL:
        return (a * v) & U32
    if op == _DIV:
        return a // v
    if op == _MOD:
        return a % v
    if op == _AND:
        return a & v
    if op == _OR:
        return a | v
    if op == _XOR:
        return a ^ v
    if op == _LSH:
        return (a << (v & 31)) & U32  # eBPF masks shift counts: x86 shl/shr do the same
    if op == _RSH:
        return a >> (v & 31)
    if op == _NEG:
        return -a & U32
    _cannot_run(code)


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

@dataclass(frozen=True)
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


# --- disassembly --------------------------------------------------------------------------------

_MNEMONICS: dict[int, str] = {
    0x20: "ld", 0x28: "ldh", 0x30: "ldb", 0x40: "ld", 0x48: "ldh", 0x50: "ldb", 0x00: "ld",
    0x60: "ld", 0x80: "ld", 0x01: "ldx", 0x61: "ldx", 0x81: "ldx", 0xB1: "ldx",
    _ST: "st", _STX: "stx", 0x06: "ret", 0x16: "ret", 0x07: "tax", 0x87: "txa",
    _JMP | _JA: "ja", _ALU | _NEG: "neg",
    **{_ALU | op | src: name for op, name in ((_ADD, "add"), (_SUB, "sub"), (_MUL, "mul"),
                                              (_DIV, "div"), (_MOD, "mod"), (_AND, "and"),
                                              (_OR, "or"), (_XOR, "xor"), (_LSH, "lsh"),
                                              (_RSH, "rsh"))
       for src in (0, _SRC_X)},
    **{_JMP | op | src: name for op, name in ((_JEQ, "jeq"), (_JGT, "jgt"), (_JGE, "jge"),
                                              (_JSET, "jset"))
       for src in (0, _SRC_X)},
}


def _mnemonic(code: int) -> str:
    name = _MNEMONICS.get(code)
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


def audit_arch_name(token: int) -> str | None:
    """``AUDIT_ARCH_X86_64`` for 0xc000003e ... (None for tokens libseccomp does not know)."""
    name = syscalls.arch_name(token)
    if name is None or name == "x32":  # libseccomp's x32 token is not an AUDIT_ARCH value
        return None
    return "AUDIT_ARCH_" + ("I386" if name == "x86" else name.upper())


def syscall_name(nr: int, arch: int) -> str | None:
    """The name of syscall ``nr`` under the ``AUDIT_ARCH`` token ``arch`` (x32 aware)."""
    name = syscalls.arch_name(arch)
    if name is None:
        return None
    if name == "x86_64" and nr & X32_SYSCALL_BIT:
        name = "x32"
    try:
        return syscalls.name_of(nr, name)
    except (ValueError, OverflowError):
        return None


_UNCHECKED = -1
_MIXED = -2


def disassemble(program: bytes | Sequence[Insn], arch: int | None = None) -> str:
    """One line per instruction, annotated; never raises on the program's content.

    Loads name the ``seccomp_data`` word (``ld  [16]  ; args[0].lo``), constants compared with
    ``arch`` name the ``AUDIT_ARCH``, constants compared with ``nr`` name the syscall when the
    architecture is known at that point (from a preceding ``jeq`` on ``arch``, else from
    ``arch``), returns name their action. A program the kernel would refuse gets a last line
    saying why. Jump targets are absolute instruction numbers.
    """
    tail = ""
    if isinstance(program, bytes | bytearray | memoryview):
        raw = bytes(program)
        extra = len(raw) % INSN.size
        if extra:
            tail = f"; {extra} trailing bytes (not a whole instruction)"
        insns: Sequence[Insn] = parse(raw[:len(raw) - extra])
    else:
        insns = program
    count = len(insns)
    # Forward data flow: what A holds (a seccomp_data field or None) and which arch is known.
    holds: list[str | bool | None] = [False] * count  # False: no path reached it yet
    arches: list[int | None] = [None] * count
    holds_in: str | None = None
    arch_in = _UNCHECKED
    lines: list[str] = []
    for pc, insn in enumerate(insns):
        state, arch_state = holds[pc], arches[pc]
        if pc and state is not False:
            holds_in = state if isinstance(state, str) else None
            arch_in = arch_state if arch_state is not None else _MIXED
        known = arch_in if arch_in >= 0 else (arch if arch is not None and arch_in == _UNCHECKED
                                              else None)
        line, after, targets = _line(pc, insn, holds_in, known)
        lines.append(line)
        for target, arch_there in targets:
            if 0 <= target < count:
                arch_out = arch_in if arch_there is None else arch_there
                if holds[target] is False:
                    holds[target], arches[target] = after, arch_out
                else:
                    if holds[target] != after:
                        holds[target] = None
                    if arches[target] != arch_out:
                        arches[target] = _MIXED
        holds_in = after
    if tail:
        lines.append(tail)
    try:
        check(insns)
    except BadProgram as err:
        lines.append(f"; the kernel refuses this program: {err}")
    return "\n".join(lines)


def _line(pc: int, insn: Insn, holds: str | None,
          arch: int | None) -> tuple[str, str | None, list[tuple[int, int | None]]]:
    """The text of one instruction, what A holds after it, and (target, arch known there)."""
    code, k = insn.code, insn.k
    name = _MNEMONICS.get(code)
    after = None if code in (0x00, 0x60, 0x80, 0x87) or code & 0x07 == _ALU else holds
    fall: list[tuple[int, int | None]] = [(pc + 1, None)]
    comment = ""
    if name is None:
        return (f"{pc:04d}: .insn 0x{code:04x}, {insn.jt}, {insn.jf}, 0x{k:x}  "
                f"; not a BPF instruction", None, fall)
    cls = code & 0x07
    operand = ""
    if code in (0x20, 0x28, 0x30):
        operand = f"[{k}]"
        after = field_name(k) if code == 0x20 else None
        comment = after or ""
    elif code in (0x40, 0x48, 0x50):
        operand = f"[x+{k}]"
        after = None
    elif code in (0x00, 0x01):
        operand = f"#0x{k:x}"
    elif code in (0x80, 0x81):
        operand = "#len"
        comment = f"{SECCOMP_DATA_SIZE} (sizeof struct seccomp_data)"
    elif code in (0x60, 0x61, _ST, _STX):
        operand = f"M[{k}]"
    elif code == 0xB1:
        operand = f"4*([{k}]&0xf)"
    elif cls == _ALU and code != _ALU | _NEG:
        operand = "x" if code & _SRC_X else f"#0x{k:x}"
    elif cls == _RET:
        if code == 0x06:
            operand = f"#0x{k:x}"
            comment = str(verdict(k))
        else:
            operand = "a"
        return _text(pc, name, operand, comment), None, []
    elif code == _JMP | _JA:
        return _text(pc, name, f"{pc + 1 + k:04d}", ""), holds, [(pc + 1 + k, None)]
    elif cls == _JMP:
        return _jump_line(pc, insn, name, holds, arch)
    return _text(pc, name, operand, comment), after, fall


def _jump_line(pc: int, insn: Insn, name: str, holds: str | None,
               arch: int | None) -> tuple[str, str | None, list[tuple[int, int | None]]]:
    code, k = insn.code, insn.k
    operand = "x" if code & _SRC_X else f"#0x{k:x}"
    note = None
    taken_arch: int | None = None  # a jeq on arch: the arch is known where it jumps to
    if not code & _SRC_X and holds == "arch":
        note = audit_arch_name(k)
        if code & 0xF0 == _JEQ:
            taken_arch = k
    elif not code & _SRC_X and holds == "nr" and arch is not None and code & 0xF0 != _JSET:
        x32_bit = k == X32_SYSCALL_BIT and arch == AUDIT_ARCH_X86_64
        note = "X32_SYSCALL_BIT" if x32_bit else syscall_name(k, arch)
    if note:
        operand += f" ({note})"
    t, f = pc + 1 + insn.jt, pc + 1 + insn.jf
    text = _text(pc, name, operand, "") + f"  jt {t:04d}  jf {f:04d}"
    return text, holds, [(t, taken_arch), (f, None)]


def _text(pc: int, name: str, operand: str, comment: str) -> str:
    text = f"{pc:04d}: {name:<3} {operand}".rstrip()
    return f"{text}  ; {comment}" if comment else text


# --- the effective table ------------------------------------------------------------------------

OPS = ("eq", "ne", "gt", "ge", "lt", "le", "set", "clear")
_SYMBOLS = {"eq": "==", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}


@dataclass(frozen=True)
class Condition:
    """One constraint on a path: ``(field & mask) op value``.

    ``half`` is ``lo``/``hi`` for one 32-bit word of the field, None for the whole 64-bit value.
    ``mask`` is all ones for the width (0xffffffff for a half, 0xffffffffffffffff for a whole
    value) when there is none. ``set`` holds when ``field & mask & value != 0``, ``clear`` when it
    is 0. :func:`table` produces eq, ne (both possibly masked), ge, le and set, plus gt/lt/ge/le
    on a masked word where a program compares one.
    """

    field: str
    """``args[0]`` .. ``args[5]`` or ``instruction_pointer``."""
    half: str | None
    """``lo``, ``hi`` or None (the whole 64-bit value)."""
    mask: int
    op: str
    """One of :data:`OPS`."""
    value: int

    @property
    def width_mask(self) -> int:
        """All ones for the width the condition reads."""
        return U64 if self.half is None else U32

    @property
    def masked(self) -> bool:
        """True when ``mask`` is narrower than the width."""
        return self.mask != self.width_mask

    def test(self, value: int) -> bool:
        """Whether the condition holds for the field's whole 64-bit ``value``."""
        if self.half == "lo":
            value &= U32
        elif self.half == "hi":
            value = value >> 32 & U32
        return _compare(self.op, value & self.mask, self.value)

    def holds(self, data: SeccompData) -> bool:
        """Whether the condition holds for ``data``."""
        if self.field == "instruction_pointer":
            return self.test(data.instruction_pointer & U64)
        index = int(self.field[5])
        args = (*data.args, 0, 0, 0, 0, 0, 0)
        return self.test(args[index] & U64)

    def __str__(self) -> str:
        name = self.field if self.half is None else f"{self.field}.{self.half}"
        if self.op in ("set", "clear"):
            return f"{name} & 0x{self.mask & self.value:x} {'!=' if self.op == 'set' else '=='} 0"
        left = f"{name} & 0x{self.mask:x}" if self.masked else name
        return f"{left} {_SYMBOLS[self.op]} 0x{self.value:x}"


def _compare(op: str, left: int, right: int) -> bool:
    if op == "eq":
        return left == right
    if op == "ne":
        return left != right
    if op == "gt":
        return left > right
    if op == "ge":
        return left >= right
    if op == "lt":
        return left < right
    if op == "le":
        return left <= right
    if op == "set":
        return left & right != 0
    if op == "clear":
        return left & right == 0
    raise ValueError(f"unknown condition op {op!r}")


@dataclass(frozen=True)
class Branch:
    """One way through the filter (stack): when every condition holds, it returns ``ret``."""

    conditions: tuple[Condition, ...]
    ret: int

    @property
    def verdict(self) -> Verdict:
        return verdict(self.ret)

    def holds(self, data: SeccompData) -> bool:
        """Whether every condition holds for ``data``."""
        return all(c.holds(data) for c in self.conditions)

    def __str__(self) -> str:
        return f"{' and '.join(map(str, self.conditions)) or 'always'} -> {self.verdict}"


@dataclass(frozen=True)
class Entry:
    """What a filter stack does with one syscall number."""

    nr: int
    ret: int | None
    """The return value when it does not depend on the arguments or instruction pointer."""
    branches: tuple[Branch, ...] = ()
    """When conditional: every feasible way through, disjoint (exactly one holds for any
    arguments); empty when unconditional or undecided."""
    undecided: str | None = None
    """Why the analysis could not decide (``ret`` is then None and ``branches`` empty)."""

    @property
    def verdict(self) -> Verdict | None:
        """The verdict when unconditional."""
        return None if self.ret is None else verdict(self.ret)

    def decide(self, data: SeccompData) -> int | None:
        """The return value for ``data`` (None when undecided)."""
        if self.ret is not None:
            return self.ret
        for branch in self.branches:
            if branch.holds(data):
                return branch.ret
        return None


def table(programs: Sequence[bytes | Sequence[Insn]], arch: int,
          nrs: Iterable[int]) -> dict[int, Entry]:
    """The effective table of a filter stack (newest first) for one ``AUDIT_ARCH`` token.

    For each syscall number in ``nrs`` (x32 numbers with :data:`X32_SYSCALL_BIT`, under
    ``AUDIT_ARCH_X86_64``): the value the kernel acts on (as :func:`emulate_stack` computes it),
    unconditional or per argument conditions. The programs are walked once each, symbolically:
    ``nr`` as the set of numbers still possible, ``arch`` concrete, arguments and instruction
    pointer as unknown words on which jumps fork the path (infeasible forks are pruned; a path is
    only dropped when provably infeasible). ``and`` with a constant on an argument word is kept as
    a mask; other arithmetic on one, a return of one, or more than :data:`MAX_PATHS` paths make
    the entry ``undecided``. High/low word pairs are merged into 64-bit conditions where exact.
    """
    numbers = sorted({_nr(n) for n in nrs})
    decoded = _programs(programs)
    per_program = [_Walker(insns, arch & U32, numbers).run() for insns in decoded]
    out: dict[int, Entry] = {}
    renders: dict[int, tuple[_Facts, list[dict[str, tuple[Condition, ...]]]]] = {}
    for i, nr in enumerate(numbers):
        paths: list[tuple[_Facts, int]] = [({}, RET_ALLOW)]
        reason: str | None = None
        for which, (found, undecided) in enumerate(per_program):
            why = undecided.get(i)
            if why is not None:
                reason = f"filter {which}: {why}" if len(decoded) > 1 else why
                break
            crossed = _cross(paths, found[i])
            if crossed is None:
                reason = f"more than {MAX_PATHS} combinations of paths through the stack"
                break
            paths = crossed
            if not paths:
                reason = "no feasible path found (the facts on a path were beyond the analysis)"
                break
        if reason is not None:
            out[nr] = Entry(nr, None, (), reason)
            continue
        rets = {ret for _, ret in paths}
        if len(rets) == 1:
            out[nr] = Entry(nr, rets.pop())
            continue
        rendered: list[_Rendered] = []
        for facts, ret in paths:
            cached = renders.get(id(facts))  # facts are shared by many numbers: render once
            if cached is None:
                cached = renders[id(facts)] = (facts, _render(facts))  # keeps the id alive
            rendered.extend((conds, ret) for conds in cached[1])
        out[nr] = Entry(nr, None, _branches(rendered))
    return out


def _nr(value: int) -> int:
    if not 0 <= value <= U32:
        raise ValueError(f"syscall number {value} is not a 32-bit unsigned value")
    return value


def _cross(paths: list[tuple[_Facts, int]], more: list[tuple[_Facts, int]]) -> list[
        tuple[_Facts, int]] | None:
    """Paths of the stack so far x paths of the next (older) filter, combined as the kernel
    does; None beyond :data:`MAX_PATHS` feasible combinations."""
    out: list[tuple[_Facts, int]] = []
    for facts, ret in paths:
        for other, value in more:
            merged = _intersect(facts, other)
            if merged is not None:
                out.append((merged, value if precedence(value) < precedence(ret) else ret))
                if len(out) > MAX_PATHS:
                    return None
    return out


def _intersect(one: _Facts, other: _Facts) -> _Facts | None:
    if not one:
        return other
    if not other:
        return one
    out = dict(one)
    for index, facts in other.items():
        mine = out.get(index)
        if mine is None:
            out[index] = facts
            continue
        joined = mine.join(facts)
        if joined is None:
            return None
        out[index] = joined
    return out


# --- what is known about one 32-bit word on a path ----------------------------------------------

@dataclass(frozen=True, slots=True)
class _Word:
    """Constraints on one 32-bit ``seccomp_data`` word along a path."""

    lo: int = 0
    hi: int = U32
    ones: int = 0
    """Bits known to be 1."""
    zeros: int = 0
    """Bits known to be 0."""
    nes: tuple[tuple[int, int], ...] = ()
    """``(w & mask) != value`` for each ``(mask, value)``."""
    sets: tuple[int, ...] = ()
    """``w & k != 0`` for each ``k`` (two or more bits not known to be 0)."""
    others: tuple[tuple[int, str, int], ...] = ()
    """``(w & mask) op value`` comparisons on a masked word."""

    def add(self, mask: int, op: str, value: int) -> _Word | None:
        """These facts and one more; None when no value satisfies them all."""
        lo, hi, ones, zeros = self.lo, self.hi, self.ones, self.zeros
        nes, sets, others = self.nes, self.sets, self.others
        if op == "eq":
            if value & ~mask:
                return None
            ones |= value
            zeros |= mask & ~value
            if mask == U32:
                lo, hi = max(lo, value), min(hi, value)
        elif op == "ne":
            if value & ~mask or (mask, value) in nes:
                return self
            nes = (*nes, (mask, value))
        elif op == "set":
            value &= mask
            if value & ones:
                return self
            free = value & ~zeros
            if not free:
                return None
            if free & (free - 1) == 0:
                ones |= free
            else:
                sets = (*sets, free)
        elif op == "clear":
            zeros |= value & mask
        elif mask == U32:
            if op == "gt":
                lo = max(lo, value + 1)
            elif op == "ge":
                lo = max(lo, value)
            elif op == "lt":
                hi = min(hi, value - 1)
            else:
                hi = min(hi, value)
        else:  # a comparison of a masked word: only its bounds are used to prune
            least, most = ones & mask, mask & ~zeros  # bounds of w & mask from the known bits
            best, worst = (most, least) if op in ("gt", "ge") else (least, most)
            if not _compare(op, best, value):
                return None  # not even the most favourable value passes
            if not _compare(op, worst, value):
                others = (*others, (mask, op, value))  # else it always holds: nothing to keep
        word = _Word(lo, hi, ones, zeros, nes, sets, others)
        return word if word.feasible() else None

    def join(self, other: _Word) -> _Word | None:
        """Both sets of facts at once; None when they contradict."""
        word: _Word | None = _Word(max(self.lo, other.lo), min(self.hi, other.hi),
                                   self.ones | other.ones, self.zeros | other.zeros,
                                   self.nes, self.sets, self.others)
        for mask, value in other.nes:
            word = word.add(mask, "ne", value) if word else None
        for k in other.sets:
            word = word.add(U32, "set", k) if word else None
        for mask, op, value in other.others:
            word = word.add(mask, op, value) if word else None
        if word is not None and not word.feasible():
            return None
        return word

    def satisfied_by(self, v: int) -> bool:
        if not self.lo <= v <= self.hi or v & self.ones != self.ones or v & self.zeros:
            return False
        return all(v & m != x for m, x in self.nes) and all(v & k for k in self.sets) and \
            all(_compare(op, v & m, x) for m, op, x in self.others)

    def feasible(self) -> bool:
        """False only when no 32-bit value satisfies the facts (proven); True otherwise."""
        if self.ones & self.zeros or self.lo > self.hi:
            return False
        known = self.ones | self.zeros
        first = _next_fit(self.lo, known, self.ones)
        if first is None or first > self.hi:
            return False
        if not (self.nes or self.sets or self.others):
            return True
        free = 0
        for k in self.sets:
            free |= k
        guesses = [first, _next_fit(self.lo, known | free, self.ones | free)]
        for guess in guesses:
            if guess is not None and guess <= self.hi and self.satisfied_by(guess):
                return True
        value: int | None = first
        for _ in range(64):  # walk the values the bits and range allow, in order
            if value is None or value > self.hi:
                return False  # every candidate tried: proven infeasible
            if self.satisfied_by(value):
                return True
            value = _next_fit(value + 1, known, self.ones)
        return True  # undecided: keep the path

    def values(self, limit: int = 64) -> list[int] | None:
        """Every value satisfying the facts, when the range is small; else None."""
        if self.hi - self.lo >= limit:
            return None
        return [v for v in range(self.lo, self.hi + 1) if self.satisfied_by(v)]


def _next_fit(start: int, known: int, bits: int) -> int | None:
    """The smallest ``v >= start`` (32-bit) with ``v & known == bits``."""
    if start > U32:
        return None
    if start & known == bits:
        return start
    for p in range(32):
        bit = 1 << p
        if start & bit or (known & bit and not bits & bit):
            continue
        above = ~((bit << 1) - 1) & U32
        high = start & above
        if high & known != bits & above:
            continue
        return high | bit | (bits & (bit - 1))
    return None


_Facts = dict[int, _Word]
"""Word index (offset / 4, 2..15) -> what the path knows about that word."""
_TOP = _Word()


# --- symbolic values ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Nr:
    """A value computed from ``nr`` alone: ``nr`` then each ``(alu op, constant)``."""

    ops: tuple[tuple[int, int], ...] = ()

    def at(self, nr: int) -> int:
        value = nr
        for op, k in self.ops:
            value = _alu(op, value, k, op)
        return value


@dataclass(frozen=True, slots=True)
class _Arg:
    """``word & mask`` for a word of seccomp_data other than nr and arch."""

    index: int
    mask: int = U32


@dataclass(frozen=True, slots=True)
class _Opaque:
    """Arithmetic on an argument word: the analysis cannot follow it."""

    reason: str


_Value = int | _Nr | _Arg | _Opaque
_NR = _Nr()


def _word_name(index: int) -> str:
    return field_name(index * 4) or f"word {index}"


@dataclass(slots=True)
class _Path:
    """One path being walked: registers, scratch memory, the numbers on it, what it knows."""

    pc: int
    a: _Value
    x: _Value
    mem: tuple[_Value, ...]
    domain: int
    """Bit i set: ``numbers[i]`` may be the syscall number on this path."""
    facts: _Facts

    def fork(self, pc: int, domain: int, facts: _Facts) -> _Path:
        return _Path(pc, self.a, self.x, self.mem, domain, facts)


class _Walker:
    """Walks one program once for all candidate syscall numbers (see :func:`table`)."""

    def __init__(self, insns: Sequence[Insn], arch: int, numbers: list[int]) -> None:
        self.insns = insns
        self.arch = arch
        self.numbers = numbers
        self.full = (1 << len(numbers)) - 1
        self.index = {nr: i for i, nr in enumerate(numbers)}
        self.paths: list[list[tuple[_Facts, int]]] = [[] for _ in numbers]
        self.undecided: dict[int, str] = {}
        self.dead = 0
        """Numbers given up on (undecided): no path follows them any more."""
        self.stack: list[_Path] = []
        self._jset: dict[int, int] = {}

    def run(self) -> tuple[list[list[tuple[_Facts, int]]], dict[int, str]]:
        """Per number (by index): the (facts, return value) of every path; the undecided ones."""
        if self.numbers:
            self.stack.append(_Path(0, 0, 0, (0,) * MEMWORDS, self.full, {}))
        while self.stack:
            path = self.stack.pop()
            path.domain &= ~self.dead
            while path.domain and self._step(path):
                pass
        return self.paths, self.undecided

    def _bits(self, domain: int) -> Iterable[int]:
        while domain:
            low = domain & -domain
            yield low.bit_length() - 1
            domain ^= low

    def _record(self, domain: int, facts: _Facts, ret: int) -> None:
        for i in self._bits(domain & ~self.dead):
            found = self.paths[i]
            found.append((facts, ret))
            if len(found) > MAX_PATHS:
                self._give_up(1 << i, f"more than {MAX_PATHS} paths")

    def _give_up(self, domain: int, reason: str) -> None:
        for i in self._bits(domain & ~self.dead):
            self.undecided[i] = reason
            self.paths[i] = []
        self.dead |= domain

    def _per_number(self, path: _Path, pc: int) -> None:
        """Continue ``path`` at ``pc`` as one path per number, with nr-derived values concrete."""
        for i in self._bits(path.domain):
            nr = self.numbers[i]
            self.stack.append(_Path(pc, _at(path.a, nr), _at(path.x, nr),
                                    tuple(_at(m, nr) for m in path.mem), 1 << i, path.facts))

    def _step(self, path: _Path) -> bool:
        """Run the instruction at ``path.pc``; False when the path ended (or was split)."""
        insn = self.insns[path.pc]
        code, k = insn.code, insn.k
        cls = code & 0x07
        if cls == _JMP:
            return self._jump(path, insn)
        path.pc += 1
        if code == LD_ABS:
            domain = path.domain
            if k == 0:  # nr: concrete once a single number is left
                path.a = self.numbers[domain.bit_length() - 1] \
                    if domain & (domain - 1) == 0 else _NR
            else:
                path.a = self.arch if k == 4 else _Arg(k // 4)
        elif cls == _RET:
            self._return(path, k if code == 0x06 else path.a, path.pc - 1)
            return False
        elif cls == _ALU:
            return self._arithmetic(path, insn)
        elif cls == _LD:
            path.a = path.mem[k] if code == 0x60 else k if code == LD_IMM else SECCOMP_DATA_SIZE
        elif cls == _LDX:
            path.x = path.mem[k] if code == 0x61 else k if code == LDX_IMM else \
                SECCOMP_DATA_SIZE
        elif cls in (_ST, _STX):
            path.mem = (*path.mem[:k], path.a if cls == _ST else path.x, *path.mem[k + 1:])
        elif code == 0x07:
            path.x = path.a
        else:
            path.a = path.x
        return True

    def _return(self, path: _Path, value: _Value, pc: int) -> None:
        if isinstance(value, int):
            self._record(path.domain, path.facts, value)
        elif isinstance(value, _Nr):
            for i in self._bits(path.domain):
                self._record(1 << i, path.facts, value.at(self.numbers[i]))
        else:
            what = value.reason if isinstance(value, _Opaque) else \
                f"the value of {_word_name(value.index)}"
            self._give_up(path.domain, f"ret a at {pc:04d} returns {what}")

    def _arithmetic(self, path: _Path, insn: Insn) -> bool:
        here = path.pc - 1
        op = insn.code & 0xF0
        src: _Value = path.x if insn.code & _SRC_X else insn.k
        if op in (_DIV, _MOD) and not (isinstance(src, int) and src) and \
                not self._split_zero(path, src, here):
            return False
        result = _symbolic_alu(op, path.a, src, here)
        if result is None:  # needs nr concrete
            self._per_number(path, here)
            return False
        path.a = result
        return True

    def _split_zero(self, path: _Path, src: _Value, pc: int) -> bool:
        """Record ret 0 (the kernel's) where the divisor is 0; False if nothing else is left."""
        if isinstance(src, int):
            self._record(path.domain, path.facts, 0)
            return False
        if isinstance(src, _Nr):
            zero = sum(1 << i for i in self._bits(path.domain) if src.at(self.numbers[i]) == 0)
            self._record(zero, path.facts, 0)
            path.domain &= ~zero
            return bool(path.domain)
        if isinstance(src, _Opaque):
            self._give_up(path.domain, f"the division at {pc:04d} is by {src.reason}")
            return False
        word = path.facts.get(src.index, _TOP)
        yes, no = word.add(src.mask, "eq", 0), word.add(src.mask, "ne", 0)
        if yes is not None:
            self._record(path.domain, {**path.facts, src.index: yes}, 0)
        if no is None:
            return False
        path.facts = {**path.facts, src.index: no}
        return True

    def _nr_mask(self, op: int, k: int) -> int:
        """Candidates whose plain ``nr`` satisfies ``nr op k``."""
        if op == _JEQ:
            i = self.index.get(k)
            return 0 if i is None else 1 << i
        if op == _JGT:
            return self.full ^ ((1 << bisect.bisect_right(self.numbers, k)) - 1)
        if op == _JGE:
            return self.full ^ ((1 << bisect.bisect_left(self.numbers, k)) - 1)
        mask = self._jset.get(k)
        if mask is None:
            mask = sum(1 << i for i, nr in enumerate(self.numbers) if nr & k)
            self._jset[k] = mask
        return mask

    def _jump(self, path: _Path, insn: Insn) -> bool:
        code, here = insn.code, path.pc
        if code == _JMP | _JA:
            path.pc += 1 + insn.k
            return True
        op = code & 0xF0
        a, other = path.a, path.x if code & _SRC_X else insn.k
        t_pc, f_pc = here + 1 + insn.jt, here + 1 + insn.jf
        if isinstance(a, int) and isinstance(other, int):
            path.pc = t_pc if _jump(op, a, other) else f_pc
            return True
        if isinstance(a, _Nr | int) and isinstance(other, _Nr | int):
            if isinstance(a, _Nr) and not a.ops and isinstance(other, int):
                taken = path.domain & self._nr_mask(op, other)
            else:
                taken = sum(1 << i for i in self._bits(path.domain)
                            if _jump(op, _at_int(a, self.numbers[i]),
                                     _at_int(other, self.numbers[i])))
            rest = path.domain & ~taken
            if taken and rest:
                self.stack.append(path.fork(f_pc, rest, path.facts))
            path.pc, path.domain = (t_pc, taken) if taken else (f_pc, rest)
            return True
        if isinstance(a, _Opaque) or isinstance(other, _Opaque):
            why = a.reason if isinstance(a, _Opaque) else getattr(other, "reason", "")
            self._give_up(path.domain, f"the jump at {here:04d} tests {why}")
            return False
        if isinstance(a, _Nr) or isinstance(other, _Nr):  # nr against an argument word
            self._per_number(path, here)
            return False
        if isinstance(a, _Arg) and a == other:  # a word against itself
            if op != _JSET:
                path.pc = f_pc if op == _JGT else t_pc
                return True
            other = a.mask
        forks = _conditions(op, a, other)
        if forks is None:
            self._give_up(path.domain, f"the jump at {here:04d} compares two argument words")
            return False
        index, on_true, on_false = forks
        word = path.facts.get(index, _TOP)
        yes, no = word.add(*on_true), word.add(*on_false)
        if yes is not None and no is not None:
            self.stack.append(path.fork(f_pc, path.domain,
                                        path.facts if no is word else {**path.facts, index: no}))
        if yes is None and no is None:
            return False
        path.pc, chosen = (t_pc, yes) if yes is not None else (f_pc, no)
        if chosen is not word and chosen is not None:
            path.facts = {**path.facts, index: chosen}
        return True


def _at(value: _Value, nr: int) -> _Value:
    return value.at(nr) if isinstance(value, _Nr) else value


def _at_int(value: int | _Nr, nr: int) -> int:
    return value if isinstance(value, int) else value.at(nr)


def _symbolic_alu(op: int, a: _Value, src: _Value, pc: int) -> _Value | None:
    """A after ``a op src`` on a path; None when that needs nr concrete."""
    if isinstance(a, int) and isinstance(src, int):
        return _alu(op, a, src, op)
    if isinstance(a, _Opaque):
        return a
    if isinstance(src, _Opaque) and op != _NEG:
        return src
    if isinstance(a, _Nr) and (isinstance(src, int) or op == _NEG):
        return _Nr((*a.ops, (op, src if isinstance(src, int) else 0)))
    if isinstance(a, _Nr) or isinstance(src, _Nr):
        return None
    if op == _NEG:
        assert isinstance(a, _Arg)
        return _Opaque(f"arithmetic on {_word_name(a.index)} at {pc:04d}")
    # An argument word and a constant (or the same word): what keeps it a masked word.
    word, other = (a, src) if isinstance(a, _Arg) else (src, a)
    assert isinstance(word, _Arg)
    if op == _AND:
        if isinstance(other, int):
            return _Arg(word.index, word.mask & other) if word.mask & other else 0
        if isinstance(other, _Arg) and other.index == word.index:
            both = word.mask & other.mask
            return _Arg(word.index, both) if both else 0
    elif isinstance(src, int):  # word op constant
        if (src == 0 and op in (_ADD, _SUB, _OR, _XOR, _LSH, _RSH)) or \
                (src == 1 and op in (_MUL, _DIV)):
            return a
        if src == 0 and op == _MUL:
            return 0
    elif isinstance(a, int):  # constant op word (division by 0 was split off before)
        if (a == 0 and op in (_ADD, _OR, _XOR)) or (a == 1 and op == _MUL):
            return src
        if a == 0 and op in (_MUL, _LSH, _RSH, _DIV):
            return 0
    return _Opaque(f"arithmetic on {_word_name(word.index)} at {pc:04d}")


def _jump(op: int, a: int, b: int) -> bool:
    if op == _JEQ:
        return a == b
    if op == _JGT:
        return a > b
    if op == _JGE:
        return a >= b
    return a & b != 0


_Cond = tuple[int, str, int]


def _conditions(op: int, a: _Value, b: _Value) -> tuple[int, _Cond, _Cond] | None:
    """(word index, fact when taken, fact when not) for a jump on one argument word and a
    constant; None for anything else."""
    if isinstance(a, _Arg) and isinstance(b, int):
        word, k, flip = a, b, False
    elif isinstance(b, _Arg) and isinstance(a, int):
        word, k, flip = b, a, True
    else:
        return None
    m = word.mask
    if op == _JEQ:
        return word.index, (m, "eq", k), (m, "ne", k)
    if op == _JSET:
        return word.index, (U32, "set", m & k), (U32, "clear", m & k)
    if op == _JGT:
        return word.index, ((m, "lt", k) if flip else (m, "gt", k)), \
            ((m, "ge", k) if flip else (m, "le", k))
    return word.index, ((m, "le", k) if flip else (m, "ge", k)), \
        ((m, "gt", k) if flip else (m, "lt", k))


# --- from facts to conditions -------------------------------------------------------------------

_FIELDS = (*((f"args[{i}]", 4 + 2 * i) for i in range(6)), ("instruction_pointer", 2))
_OP_ORDER = {op: i for i, op in enumerate(("eq", "ge", "gt", "le", "lt", "ne", "set", "clear"))}


@dataclass(frozen=True)
class _Canon:
    """A word's facts in canonical form."""

    pinned: int | None
    lo: int
    hi: int
    known: int
    bits: int
    nes: tuple[tuple[int, int], ...]
    sets: tuple[int, ...]
    others: tuple[tuple[int, str, int], ...]

    @property
    def ranged(self) -> bool:
        return self.pinned is None and (self.lo > 0 or self.hi < U32)


SPLIT_VALUES = 8
"""A word limited to this many scattered values is shown as one branch per value."""
SPLIT_BRANCHES = 16
"""... as long as one path does not become more branches than this."""


def _pinned(value: int) -> _Canon:
    return _Canon(value, value, value, U32, value, (), (), ())


def _canon(word: _Word) -> list[_Canon]:
    """The word's facts in canonical form; several (one per value) for a few scattered values."""
    values = word.values()
    if values:
        if len(values) == 1 or values[-1] - values[0] + 1 != len(values):
            if len(values) <= SPLIT_VALUES:
                return [_pinned(v) for v in values]
        else:  # contiguous: the range says it all
            return [_Canon(None, values[0], values[-1], 0, 0, (), (), ())]
    known = word.ones | word.zeros
    if known == U32:
        return [_pinned(word.ones)]
    excluded = {v for m, v in word.nes if m == U32}
    while (word.lo > 0 or word.hi < U32) and (word.lo in excluded or word.hi in excluded):
        # a != at an end of a range narrows it
        word = replace(word, lo=word.lo + (word.lo in excluded),
                       hi=word.hi - (word.hi in excluded))
    basic = _Word(word.lo, word.hi, word.ones, word.zeros)
    nes = tuple(sorted((m, v) for m, v in word.nes if basic.add(m, "eq", v) is not None))
    return [_Canon(None, word.lo, word.hi, known, word.ones, nes, word.sets, word.others)]


def _render(facts: _Facts) -> list[dict[str, tuple[Condition, ...]]]:
    """Conditions per field, the two halves of a field merged into 64-bit ones where exact.

    Usually one set of conditions; several (disjoint, together the same) when a word is limited
    to a few scattered values.
    """
    choices: list[list[tuple[str, tuple[Condition, ...]]]] = []
    total = 1
    for name, low_index in _FIELDS:
        low, high = facts.get(low_index), facts.get(low_index + 1)
        if low is None and high is None:
            continue
        options = [(name, tuple(_field(name, lo, hi)))
                   for lo in (_canon(low) if low is not None else [None])
                   for hi in (_canon(high) if high is not None else [None])]
        choices.append(options)
        total *= len(options)
    if total > SPLIT_BRANCHES:  # too many: keep each word as one (wider) set of conditions
        return [{name: tuple(_field(name, _one(facts.get(i)), _one(facts.get(i + 1))))
                 for name, i in _FIELDS if i in facts or i + 1 in facts}]
    out: list[dict[str, tuple[Condition, ...]]] = [{}]
    for options in choices:
        out = [{**done, name: conds} for done in out for name, conds in options]
    return [{name: conds for name, conds in one.items() if conds} for one in out]


def _one(word: _Word | None) -> _Canon | None:
    if word is None:
        return None
    found = _canon(word)
    if len(found) == 1:
        return found[0]
    return _Canon(None, word.lo, word.hi, word.ones | word.zeros, word.ones, word.nes,
                  word.sets, word.others)


def _field(name: str, lo: _Canon | None, hi: _Canon | None) -> list[Condition]:
    conds = _whole(name, lo, hi)
    if conds is None:
        conds = [*_halves(name, "lo", lo), *_halves(name, "hi", hi)]
    return conds


def _halves(name: str, half: str, word: _Canon | None) -> list[Condition]:
    if word is None:
        return []
    if word.pinned is not None:
        return [Condition(name, half, U32, "eq", word.pinned)]
    out = []
    if word.lo > 0:
        out.append(Condition(name, half, U32, "ge", word.lo))
    if word.hi < U32:
        out.append(Condition(name, half, U32, "le", word.hi))
    if word.known:
        out.append(Condition(name, half, word.known, "eq", word.bits))
    out.extend(Condition(name, half, m, "ne", v) for m, v in word.nes)
    out.extend(Condition(name, half, U32, "set", k) for k in word.sets)
    out.extend(Condition(name, half, m, op, v) for m, op, v in word.others)
    return out


def _whole(name: str, lo: _Canon | None, hi: _Canon | None) -> list[Condition] | None:
    """The two halves as conditions on the 64-bit value; None when that is not exact."""
    if lo is not None and lo.ranged and (hi is None or hi.pinned is None):
        return None  # a range of the low word alone is no range of the whole value
    if hi is None and lo is not None and (
            lo.pinned is not None or any(m == U32 for m, _ in lo.nes)):
        return None  # "args[0].lo == 1" reads better than "args[0] & 0xffffffff == 1"
    if hi is not None and hi.others:
        return None
    low64, high64, mask, bits = 0, U64, 0, 0
    base: int | None = None  # the high word, when pinned
    extra: list[Condition] = []
    if hi is not None:
        if hi.pinned is not None:
            base = hi.pinned << 32
            low64, high64 = base, base | U32
        else:
            low64, high64 = hi.lo << 32, hi.hi << 32 | U32
            mask, bits = hi.known << 32, hi.bits << 32
            extra.extend(Condition(name, None, m << 32, "ne", v << 32) for m, v in hi.nes)
            extra.extend(Condition(name, None, U64, "set", k << 32) for k in hi.sets)
    if lo is not None:
        if lo.pinned is not None:
            mask, bits = mask | U32, bits | lo.pinned
        else:
            if lo.ranged:
                assert base is not None
                low64, high64 = max(low64, base | lo.lo), min(high64, base | lo.hi)
            mask, bits = mask | lo.known, bits | lo.bits
            high = U32 << 32 if base is not None else 0  # a pinned high word joins each !=
            extra.extend(Condition(name, None, high | m, "ne", (base or 0) | v)
                         for m, v in lo.nes)
            extra.extend(Condition(name, None, U64, "set", k) for k in lo.sets)
            extra.extend(Condition(name, None, m, op, v) for m, op, v in lo.others)
    if low64 == high64:
        return [Condition(name, None, U64, "eq", low64)]
    if base is not None and mask & U32 == U32:
        return [Condition(name, None, U64, "eq", base | bits & U32)]
    if mask == U64:
        return [Condition(name, None, U64, "eq", bits)]
    out: list[Condition] = []
    if low64 > 0:
        out.append(Condition(name, None, U64, "ge", low64))
    if high64 < U64:
        out.append(Condition(name, None, U64, "le", high64))
    if mask:
        out.append(Condition(name, None, mask, "eq", bits))
    return out + extra


_Rendered = tuple[dict[str, tuple[Condition, ...]], int]


def _branches(paths: list[_Rendered]) -> tuple[Branch, ...]:
    """Branches from rendered paths, same-valued neighbours merged where the union is exact."""
    work = list(paths)
    if len(work) <= 128:
        merged = True
        while merged:
            merged = False
            for i in range(len(work)):
                for j in range(i + 1, len(work)):
                    union = _union(work[i], work[j])
                    if union is not None:
                        work[i] = union
                        del work[j]
                        merged = True
                        break
                if merged:
                    break
    return tuple(Branch(tuple(c for _, conds in sorted(fields.items(), key=_field_order)
                              for c in conds), ret) for fields, ret in work)


def _field_order(item: tuple[str, tuple[Condition, ...]]) -> int:
    return [name for name, _ in _FIELDS].index(item[0])


def _union(one: _Rendered, other: _Rendered) -> _Rendered | None:
    """One branch covering both, when they return the same and differ in one field only."""
    if one[1] != other[1]:
        return None
    fields = set(one[0]) | set(other[0])
    differ = [f for f in fields if one[0].get(f) != other[0].get(f)]
    if not differ:
        return one
    if len(differ) != 1:
        return None
    name = differ[0]
    mine, theirs = one[0].get(name, ()), other[0].get(name, ())
    joined = _join_ranges(name, mine, theirs)
    if joined is None:
        joined = _join_ne(mine, theirs)
    if joined is None:
        joined = _join_ne(theirs, mine)
    if joined is None:
        return None
    rest = {f: c for f, c in one[0].items() if f != name}
    if joined:
        rest[name] = joined
    return rest, one[1]


def _interval(conds: tuple[Condition, ...]) -> tuple[int, int] | None:
    low, high = 0, U64
    for c in conds:
        if c.half is not None or c.masked or c.op not in ("eq", "ge", "le"):
            return None
        if c.op in ("eq", "ge"):
            low = max(low, c.value)
        if c.op in ("eq", "le"):
            high = min(high, c.value)
    return low, high


def _join_ranges(name: str, one: tuple[Condition, ...],
                 other: tuple[Condition, ...]) -> tuple[Condition, ...] | None:
    a, b = _interval(one), _interval(other)
    if a is None or b is None or a[0] > b[1] + 1 or b[0] > a[1] + 1:
        return None
    if a[0] == a[1] and b[0] == b[1]:
        return None  # two values read better as two branches than as a range
    return _range_conditions(name, min(a[0], b[0]), max(a[1], b[1]))


def _range_conditions(name: str, low: int, high: int) -> tuple[Condition, ...]:
    if low == high:
        return (Condition(name, None, U64, "eq", low),)
    out = []
    if low > 0:
        out.append(Condition(name, None, U64, "ge", low))
    if high < U64:
        out.append(Condition(name, None, U64, "le", high))
    return tuple(out)


def _join_ne(one: tuple[Condition, ...], other: tuple[Condition, ...]) -> tuple[
        Condition, ...] | None:
    """``not P`` or (``P`` and ``Q``) is ``Q`` when ``Q`` rules out every value outside ``P``.

    libseccomp tests a 64-bit ``!=`` (or the mismatch of a masked ``==``) word by word; the two
    paths that return the same join again: ``x & M1 != V1`` or (``x & M1 == V1`` and
    ``x & M2 != V2``) is ``x & (M1|M2) != V1|V2``; ``hi != H`` or (``hi == H`` and ``x != V``
    ...) is ``x != V ...`` when every ``V`` has the high word ``H``.
    """
    if len(one) != 1 or one[0].half is not None or one[0].op != "ne":
        return None
    first = one[0]
    if any(c.half is not None for c in other):
        return None
    same = Condition(first.field, None, first.mask, "eq", first.value)
    if same in other and len(other) == 2:
        (second,) = [c for c in other if c != same]
        if second.op == "ne" and not second.mask & first.mask:
            return (Condition(first.field, None, first.mask | second.mask, "ne",
                              first.value | second.value),)
    if first.mask != U32 << 32:
        return None
    high = first.value >> 32
    span = (high << 32, high << 32 | U32)  # the values whose high word is H
    ranges = tuple(c for c in other if c.op in ("ge", "le", "eq") and not c.masked)
    nes = tuple(c for c in other if c.op == "ne" and not c.masked)
    if len(ranges) + len(nes) != len(other):
        return None
    inside = _interval(ranges)
    if inside is None or not span[0] <= inside[0] <= inside[1] <= span[1]:
        return None
    if nes:
        if inside != span or any(c.value >> 32 != high for c in nes):
            return None
        return nes
    # outside the span, or a range inside it: one range when they touch
    if (span[0] > 0 and inside[0] != span[0]) or (span[1] < U64 and inside[1] != span[1]):
        return None
    return _range_conditions(first.field, inside[0] if span[0] == 0 else 0,
                             inside[1] if span[1] == U64 else U64)
