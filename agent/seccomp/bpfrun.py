"""A minimal classic-BPF interpreter over ``struct seccomp_data``, to double-check libseccomp.

libseccomp 2.5 merges the rules of one syscall into a decision tree and, for some combinations of
conditions on different arguments, loses a rule without an error (measured: ``errno if a0 == 0 and
a1 == 0`` added before ``errno if a1 != 0`` disappears). :mod:`agent.seccomp.compile` therefore
runs every program it generates here, over the argument values that matter, before anyone loads
it. This is not the full decoder/disassembler (that is ``agent/seccomp/bpf.py``): it only executes.

::

    run(program, SeccompData(nr=39, arch=0xC000003E))   # -> 0x7FFF0000 (SECCOMP_RET_ALLOW)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

U32 = 0xFFFFFFFF
INSN = struct.Struct("=HBBI")
"""``struct sock_filter``: code, jt, jf, k (host byte order)."""


class BadProgram(ValueError):
    """An instruction seccomp would not accept, or a jump out of the program."""


@dataclass(frozen=True)
class SeccompData:
    """What the kernel hands a seccomp filter."""

    nr: int
    arch: int
    args: tuple[int, ...] = (0, 0, 0, 0, 0, 0)
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


def decode(program: bytes) -> list[tuple[int, int, int, int]]:
    """The instructions of a raw program."""
    if len(program) % INSN.size:
        raise BadProgram(f"program length {len(program)} is not a multiple of 8")
    return [INSN.unpack_from(program, i) for i in range(0, len(program), INSN.size)]


def run(code: list[tuple[int, int, int, int]] | bytes, data: SeccompData) -> int:
    """The filter's return value for ``data``."""
    insns = decode(code) if isinstance(code, bytes) else code
    a = x = 0
    mem = [0] * 16
    pc = 0
    while 0 <= pc < len(insns):
        op, jt, jf, k = insns[pc]
        pc += 1
        cls = op & 0x07
        if cls == 0x06:  # RET
            return k if op & 0x18 == 0 else a
        if cls == 0x00:  # LD
            mode = op & 0xE0
            a = data.word(k) if mode == 0x20 else k if mode == 0x00 else \
                mem[k & 15] if mode == 0x60 else 64 if mode == 0x80 else _bad(op)
        elif cls == 0x01:  # LDX
            mode = op & 0xE0
            x = k if mode == 0x00 else mem[k & 15] if mode == 0x60 else \
                64 if mode == 0x80 else _bad(op)
        elif cls == 0x02:
            mem[k & 15] = a
        elif cls == 0x03:
            mem[k & 15] = x
        elif cls == 0x04:  # ALU
            a = _alu(op & 0xF0, a, x if op & 0x08 else k)
        elif cls == 0x05:  # JMP
            jop = op & 0xF0
            if jop == 0x00:
                pc += k
                continue
            src = x if op & 0x08 else k
            taken = {0x10: a == src, 0x20: a > src, 0x30: a >= src,
                     0x40: bool(a & src)}.get(jop)
            if taken is None:
                _bad(op)
            pc += jt if taken else jf
        elif op == 0x07:  # MISC TAX
            x = a
        elif op == 0x87:  # MISC TXA
            a = x
        else:
            _bad(op)
    raise BadProgram("ran off the end of the program")


def _alu(op: int, a: int, v: int) -> int:
    if op in (0x30, 0x90) and v == 0:
        raise BadProgram("division by zero")
    result = {0x00: a + v, 0x10: a - v, 0x20: a * v, 0x30: a // v if v else 0, 0x40: a | v,
              0x50: a & v, 0x60: a << v if v < 32 else 0, 0x70: a >> v if v < 32 else 0,
              0x80: -a, 0x90: a % v if v else 0, 0xA0: a ^ v}.get(op)
    if result is None:
        _bad(op)
        return 0
    return result & U32


def _bad(op: int) -> int:
    raise BadProgram(f"instruction 0x{op:02x} is not valid in a seccomp filter")
