"""The effective table of a seccomp filter stack: what it decides per syscall number.

:func:`table` walks each program of a stack (newest first) once, symbolically, for one
``AUDIT_ARCH`` token and a set of syscall numbers, and gives per number an :class:`Entry`: the
return value the kernel acts on when it does not depend on the arguments; else disjoint branches
(:class:`Branch`, each a conjunction of :class:`Condition` on the arguments and instruction
pointer) saying under which arguments each value is reached; or why the analysis could not
decide. The kernel's semantics (validation, ALU, precedence of stacked filters) come from
:mod:`agent.seccomp.bpf`::

    entries = table([program], AUDIT_ARCH_X86_64, syscalls.numbers("x86_64"))
    entries[39].ret                             # 0x7fff0000: getpid, whatever the arguments
    entries[41].ret                             # None: depends on the arguments
    [str(b) for b in entries[41].branches]      # ["args[0] == 0x2 -> allow", ...]
    entries[41].decide(SeccompData(41, AUDIT_ARCH_X86_64, (2,)))  # as emulate_stack() would
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from agent.core.record import record
from agent.seccomp.bpf import (
    BPF_ADD,
    BPF_ALU,
    BPF_AND,
    BPF_DIV,
    BPF_JA,
    BPF_JEQ,
    BPF_JGE,
    BPF_JGT,
    BPF_JMP,
    BPF_JSET,
    BPF_LD,
    BPF_LDX,
    BPF_LSH,
    BPF_MOD,
    BPF_MUL,
    BPF_NEG,
    BPF_OR,
    BPF_RET,
    BPF_RSH,
    BPF_ST,
    BPF_STX,
    BPF_SUB,
    BPF_X,
    BPF_XOR,
    LD_ABS,
    LD_IMM,
    LDX_IMM,
    MEMWORDS,
    RET_ALLOW,
    SECCOMP_DATA_SIZE,
    U32,
    U64,
    Insn,
    SeccompData,
    Verdict,
    alu,
    check,
    decode,
    field_name,
    jumps,
    precedence,
    verdict,
)

# --- the effective table ------------------------------------------------------------------------

MAX_PATHS = 4096
"""Paths per syscall number :func:`table` follows before it gives up (``Entry.undecided``)."""
MAX_STEPS = 2_000_000
"""Instructions one walk of one program may execute, over all its paths: a hostile filter
(thousands of no-op instructions before each of thousands of forks) makes the numbers still
open undecided instead of stalling an audit (a shipped profile takes a few thousand)."""
OPS = ("eq", "ne", "gt", "ge", "lt", "le", "set", "clear")
_SYMBOLS = {"eq": "==", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}


@record
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


@record
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


@record
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
    found, undecided = stack_paths(programs, arch, numbers)
    out: dict[int, Entry] = {}
    renders: dict[int, tuple[Facts, list[dict[str, tuple[Condition, ...]]]]] = {}
    for nr in numbers:
        reason = undecided.get(nr)
        if reason is not None:
            out[nr] = Entry(nr, None, (), reason)
            continue
        paths = found[nr]
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


def stack_paths(programs: Sequence[bytes | Sequence[Insn]], arch: int, nrs: Iterable[int]
                ) -> tuple[dict[int, list[tuple[Facts, int]]], dict[int, str]]:
    """Per syscall number: every feasible way through the stack as (facts on the argument and
    instruction-pointer words, the return value the kernel acts on); and, per number the
    analysis gave up on, why. The raw material of :func:`table` and of comparisons
    (:mod:`agent.seccomp.bpf_diff`)."""
    numbers = sorted({_nr(n) for n in nrs})
    decoded = _programs(programs)
    per_program = [_Walker(insns, arch & U32, numbers).run() for insns in decoded]
    found: dict[int, list[tuple[Facts, int]]] = {}
    undecided: dict[int, str] = {}
    for i, nr in enumerate(numbers):
        paths: list[tuple[Facts, int]] = [({}, RET_ALLOW)]
        reason: str | None = None
        for which, (walked, gave_up) in enumerate(per_program):
            why = gave_up.get(i)
            if why is not None:
                reason = f"filter {which}: {why}" if len(decoded) > 1 else why
                break
            crossed = _cross(paths, walked[i])
            if crossed is None:
                reason = f"more than {MAX_PATHS} combinations of paths through the stack"
                break
            paths = crossed
            if not paths:
                reason = "no feasible path found (the facts on a path were beyond the analysis)"
                break
        if reason is not None:
            undecided[nr] = reason
        else:
            found[nr] = paths
    return found, undecided


def intersect(one: Facts, other: Facts) -> Facts | None:
    """Facts of two paths at once; None when provably contradictory."""
    return _intersect(one, other)


def require(facts: Facts, condition: Condition) -> Facts | None:
    """``facts`` and one more condition on a 32-bit word (``half`` ``lo`` or ``hi``); None
    when provably contradictory."""
    index = _WORDS.get((condition.field, condition.half))
    if index is None:
        raise ValueError(f"require() takes a condition on one 32-bit word, not {condition}")
    word = facts.get(index, _TOP).add(condition.mask & U32, condition.op, condition.value & U32)
    return None if word is None else {**facts, index: word}


def example(facts: Facts, nr: int, arch: int, tries: int = 4096) -> SeccompData | None:
    """Concrete ``seccomp_data`` satisfying ``facts``, or None when none was found in ``tries``
    steps per word (the facts may still be satisfiable: callers treat None as undecided)."""
    words: dict[int, int] = {}
    for index, word in facts.items():
        value = _pick(word, tries)
        if value is None:
            return None
        words[index] = value
    ip = words.get(2, 0) | words.get(3, 0) << 32
    args = tuple(words.get(4 + 2 * i, 0) | words.get(5 + 2 * i, 0) << 32 for i in range(6))
    return SeccompData(nr, arch, args, ip)


def _pick(word: _Word, tries: int) -> int | None:
    known = word.ones | word.zeros
    free = U32 & ~known
    wanted = 0  # bits that satisfy "w & k != 0" and "(w & m) != v": one free bit of each
    seeds: list[int | None] = [_next_fit(word.lo, known, word.ones)]
    for mask in (*word.sets, *(m for m, _ in word.nes)):
        bits = mask & free
        if bits:
            low = bits & -bits
            wanted |= low
            top = 1 << (bits.bit_length() - 1)
            seeds += [_next_fit(word.lo, known | low, word.ones | low),
                      _next_fit(word.lo, known | top, word.ones | top)]
    seeds += [_next_fit(word.lo, known | wanted, word.ones | wanted), word.ones | free,
              word.hi, word.lo]
    for guess in seeds:
        if guess is not None and word.lo <= guess <= word.hi and word.satisfied_by(guess):
            return guess
    value = _next_fit(word.lo, known, word.ones)
    for _ in range(tries):
        if value is None or value > word.hi:
            return None
        if word.satisfied_by(value):
            return value
        value = _next_fit(value + 1, known, word.ones)
    return None


def _nr(value: int) -> int:
    if not 0 <= value <= U32:
        raise ValueError(f"syscall number {value} is not a 32-bit unsigned value")
    return value


def _programs(programs: Sequence[bytes | Sequence[Insn]]) -> list[Sequence[Insn]]:
    out: list[Sequence[Insn]] = []
    for program in programs:
        if isinstance(program, bytes | bytearray | memoryview):
            out.append(decode(bytes(program)))
        else:
            check(program)
            out.append(program)
    return out


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
            if not mask & ~(ones | zeros):  # every masked bit is known: decided now
                return None if ones & mask == value else self
            if mask & (mask - 1) == 0:  # one bit: "!=" its one value is the other value
                ones, zeros = (ones, zeros | mask) if value else (ones | mask, zeros)
            else:
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
        if any(not m & ~known and self.ones & m == x for m, x in self.nes):
            return False  # a "!=" on bits that are all known (joined after it was added)
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
Facts = _Facts
_TOP = _Word()
_WORDS: dict[tuple[str, str | None], int] = {
    ("instruction_pointer", "lo"): 2, ("instruction_pointer", "hi"): 3,
    **{(f"args[{i}]", half): 4 + 2 * i + (half == "hi") for i in range(6)
       for half in ("lo", "hi")},
}
"""(Condition.field, Condition.half) -> word index."""


# --- symbolic values ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Nr:
    """A value computed from ``nr`` alone: ``nr`` then each ``(alu op, constant)``."""

    ops: tuple[tuple[int, int], ...] = ()

    def at(self, nr: int) -> int:
        value = nr
        for op, k in self.ops:
            value = alu(op, value, k, op)
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
        steps = 0
        while self.stack:
            path = self.stack.pop()
            path.domain &= ~self.dead
            while path.domain and self._step(path):
                steps += 1
                if steps > MAX_STEPS:
                    live = path.domain
                    for other in self.stack:
                        live |= other.domain
                    self._give_up(live, f"more than {MAX_STEPS} instructions to follow")
                    self.stack.clear()
                    break
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
        if cls == BPF_JMP:
            return self._jump(path, insn)
        path.pc += 1
        if code == LD_ABS:
            domain = path.domain
            if k == 0:  # nr: concrete once a single number is left
                path.a = self.numbers[domain.bit_length() - 1] \
                    if domain & (domain - 1) == 0 else _NR
            else:
                path.a = self.arch if k == 4 else _Arg(k // 4)
        elif cls == BPF_RET:
            self._return(path, k if code == 0x06 else path.a, path.pc - 1)
            return False
        elif cls == BPF_ALU:
            return self._arithmetic(path, insn)
        elif cls == BPF_LD:
            path.a = path.mem[k] if code == 0x60 else k if code == LD_IMM else SECCOMP_DATA_SIZE
        elif cls == BPF_LDX:
            path.x = path.mem[k] if code == 0x61 else k if code == LDX_IMM else \
                SECCOMP_DATA_SIZE
        elif cls in (BPF_ST, BPF_STX):
            path.mem = (*path.mem[:k], path.a if cls == BPF_ST else path.x, *path.mem[k + 1:])
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
        src: _Value = path.x if insn.code & BPF_X else insn.k
        if op in (BPF_DIV, BPF_MOD) and not (isinstance(src, int) and src) and \
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
        if op == BPF_JEQ:
            i = self.index.get(k)
            return 0 if i is None else 1 << i
        if op == BPF_JGT:
            return self.full ^ ((1 << bisect.bisect_right(self.numbers, k)) - 1)
        if op == BPF_JGE:
            return self.full ^ ((1 << bisect.bisect_left(self.numbers, k)) - 1)
        mask = self._jset.get(k)
        if mask is None:
            mask = sum(1 << i for i, nr in enumerate(self.numbers) if nr & k)
            self._jset[k] = mask
        return mask

    def _jump(self, path: _Path, insn: Insn) -> bool:
        code, here = insn.code, path.pc
        if code == BPF_JMP | BPF_JA:
            path.pc += 1 + insn.k
            return True
        op = code & 0xF0
        a, other = path.a, path.x if code & BPF_X else insn.k
        t_pc, f_pc = here + 1 + insn.jt, here + 1 + insn.jf
        if isinstance(a, int) and isinstance(other, int):
            path.pc = t_pc if jumps(op, a, other) else f_pc
            return True
        if isinstance(a, _Nr | int) and isinstance(other, _Nr | int):
            if isinstance(a, _Nr) and not a.ops and isinstance(other, int):
                taken = path.domain & self._nr_mask(op, other)
            else:
                taken = sum(1 << i for i in self._bits(path.domain)
                            if jumps(op, _at_int(a, self.numbers[i]),
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
            if op != BPF_JSET:
                path.pc = f_pc if op == BPF_JGT else t_pc
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
        return alu(op, a, src, op)
    if isinstance(a, _Opaque):
        return a
    if isinstance(src, _Opaque) and op != BPF_NEG:
        return src
    if isinstance(a, _Nr) and (isinstance(src, int) or op == BPF_NEG):
        return _Nr((*a.ops, (op, src if isinstance(src, int) else 0)))
    if isinstance(a, _Nr) or isinstance(src, _Nr):
        return None
    if op == BPF_NEG:
        assert isinstance(a, _Arg)
        return _Opaque(f"arithmetic on {_word_name(a.index)} at {pc:04d}")
    # An argument word and a constant (or the same word): what keeps it a masked word.
    word, other = (a, src) if isinstance(a, _Arg) else (src, a)
    assert isinstance(word, _Arg)
    if op == BPF_AND:
        if isinstance(other, int):
            return _Arg(word.index, word.mask & other) if word.mask & other else 0
        if isinstance(other, _Arg) and other.index == word.index:
            both = word.mask & other.mask
            return _Arg(word.index, both) if both else 0
    elif isinstance(src, int):  # word op constant
        if (src == 0 and op in (BPF_ADD, BPF_SUB, BPF_OR, BPF_XOR, BPF_LSH, BPF_RSH)) or \
                (src == 1 and op in (BPF_MUL, BPF_DIV)):
            return a
        if src == 0 and op == BPF_MUL:
            return 0
    elif isinstance(a, int):  # constant op word (division by 0 was split off before)
        if (a == 0 and op in (BPF_ADD, BPF_OR, BPF_XOR)) or (a == 1 and op == BPF_MUL):
            return src
        if a == 0 and op in (BPF_MUL, BPF_LSH, BPF_RSH, BPF_DIV):
            return 0
    return _Opaque(f"arithmetic on {_word_name(word.index)} at {pc:04d}")



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
    if op == BPF_JEQ:
        return word.index, (m, "eq", k), (m, "ne", k)
    if op == BPF_JSET:
        return word.index, (U32, "set", m & k), (U32, "clear", m & k)
    if op == BPF_JGT:
        return word.index, ((m, "lt", k) if flip else (m, "gt", k)), \
            ((m, "ge", k) if flip else (m, "le", k))
    return word.index, ((m, "le", k) if flip else (m, "ge", k)), \
        ((m, "gt", k) if flip else (m, "lt", k))


# --- from facts to conditions -------------------------------------------------------------------

_FIELDS = (*((f"args[{i}]", 4 + 2 * i) for i in range(6)), ("instruction_pointer", 2))


@record
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
