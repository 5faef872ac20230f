"""Disassembly of classic seccomp BPF: one annotated line per instruction.

:func:`disassemble` lists a program (bytes as ``seccomp(2)`` takes them, or decoded
:class:`~agent.seccomp.bpf.Insn`) without ever raising on its content: loads name the
``seccomp_data`` word, comparisons name the ``AUDIT_ARCH`` or the syscall, returns name their
action, and a program the kernel would refuse ends with a line saying why. :func:`syscall_name`
and :func:`audit_arch_name` are the naming helpers it uses::

    print(disassemble(program))                 # "0000: ld  [4]  ; arch"
                                                # "0001: jeq #0xc000003e (AUDIT_ARCH_X86_64) ..."
    disassemble(program, AUDIT_ARCH_X86_64)     # names syscalls even without an arch check
    syscall_name(59, AUDIT_ARCH_X86_64)         # "execve"
    audit_arch_name(0x40000003)                 # "AUDIT_ARCH_I386"
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.seccomp import syscalls
from agent.seccomp.bpf import (
    AUDIT_ARCH_X86_64,
    BPF_ALU,
    BPF_JA,
    BPF_JEQ,
    BPF_JMP,
    BPF_JSET,
    BPF_NEG,
    BPF_RET,
    BPF_ST,
    BPF_STX,
    BPF_X,
    INSN,
    MNEMONICS,
    SECCOMP_DATA_SIZE,
    X32_SYSCALL_BIT,
    BadProgram,
    Insn,
    check,
    field_name,
    parse,
    verdict,
)


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
    name = MNEMONICS.get(code)
    after = None if code in (0x00, 0x60, 0x80, 0x87) or code & 0x07 == BPF_ALU else holds
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
    elif code in (0x60, 0x61, BPF_ST, BPF_STX):
        operand = f"M[{k}]"
    elif code == 0xB1:
        operand = f"4*([{k}]&0xf)"
    elif cls == BPF_ALU and code != BPF_ALU | BPF_NEG:
        operand = "x" if code & BPF_X else f"#0x{k:x}"
    elif cls == BPF_RET:
        if code == 0x06:
            operand = f"#0x{k:x}"
            comment = str(verdict(k))
        else:
            operand = "a"
        return _text(pc, name, operand, comment), None, []
    elif code == BPF_JMP | BPF_JA:
        return _text(pc, name, f"{pc + 1 + k:04d}", ""), holds, [(pc + 1 + k, None)]
    elif cls == BPF_JMP:
        return _jump_line(pc, insn, name, holds, arch)
    return _text(pc, name, operand, comment), after, fall


def _jump_line(pc: int, insn: Insn, name: str, holds: str | None,
               arch: int | None) -> tuple[str, str | None, list[tuple[int, int | None]]]:
    code, k = insn.code, insn.k
    operand = "x" if code & BPF_X else f"#0x{k:x}"
    note = None
    taken_arch: int | None = None  # a jeq on arch: the arch is known where it jumps to
    if not code & BPF_X and holds == "arch":
        note = audit_arch_name(k)
        if code & 0xF0 == BPF_JEQ:
            taken_arch = k
    elif not code & BPF_X and holds == "nr" and arch is not None and code & 0xF0 != BPF_JSET:
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
