"""Self-check: the BPF libseccomp generated, run as the kernel would, against the plan.

Trust but verify: libseccomp 2.5.4 loses rules outright for some combinations of conditions on
different arguments of one syscall (the BPF disagrees with its own PFC listing). So
:func:`check` runs the program through :mod:`agent.seccomp.bpf` for every syscall number of every
architecture and, for syscalls with conditions, for every combination of the argument values
that matter, with the ``seccomp_data`` the kernel builds (x32 as ``AUDIT_ARCH_X86_64`` with
``nr | 0x40000000``, 32-bit ABIs with any high half in the argument registers), and compares
each answer with the profile's own decision (:func:`decide` over
:func:`agent.seccomp.plan.order_rules`). :mod:`agent.seccomp.compile` builds another way, or
refuses the profile, on a difference.

Arguments are 64-bit values, except on the 32-bit ABIs (:data:`NARROW_ARGS`: ``x86``, ``arm``
...), whose syscalls get the low 32 bits of each argument only: there a condition is about those
32 bits, and a negative value means its 32-bit two's complement (``eq -100`` is
``0xffffff9c``, as libseccomp compiles it). x32 arguments are 64-bit.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Sequence

from agent.seccomp import bpf, syscalls
from agent.seccomp.effective import kernel_token
from agent.seccomp.model import Action, Profile
from agent.seccomp.plan import Cond, action_value, effective, order_rules

U32 = 0xFFFF_FFFF
Reference = dict[str, list[tuple[Action, list[Cond]]]]
"""Per syscall name, the profile's entries in decision order: (action, conditions)."""


def reference(profile: Profile, mode: str) -> Reference:
    """What :func:`check` compares with: the profile's own entries, in ``mode``."""
    return {name: [(effective(rule.action, mode), conds) for rule, conds in ordered]
            for name, ordered in order_rules(profile).items()}

MAX_POINTS = 4096
"""Argument combinations checked per syscall (all of them when there are fewer)."""
OTHER_NUMBERS = range(1024)
"""Syscall numbers checked to get the default action (those without rules)."""
NARROW_ARGS = frozenset({"x86", "arm", "mips", "mipsel", "ppc", "s390", "parisc"})
"""32-bit ABIs: their syscalls get the low 32 bits of each argument register and nothing more
(x86_64 calls the ia32 table with ``(unsigned int)regs->bx`` ...). The filter gets the whole
register: ``populate_seccomp_data`` takes ``syscall_get_arguments``, which for a compat task is
``regs->bx`` ... unmasked, and ``int 0x80`` from 64-bit code keeps the high half the caller left
there (``tests/seccomp/test_compile.py`` measures it). So on these ABIs the profile decides on the
low 32 bits, and :func:`check` runs every argument tuple with several high halves
(:data:`HIGH_HALVES`). x32 is not one of them: x32 syscalls get all 64 bits."""
HIGH_HALVES = (0, 1 << 32, 0xFFFF_FFFF << 32)
"""High halves each argument tuple of a 32-bit ABI also runs with: the decision must not move."""
SIGNED_32 = (1 << 64) - (1 << 31)
"""Values from here up are negative 32-bit numbers sign-extended (-2**31 .. -1): on a 32-bit ABI
they mean the 32-bit two's complement (``-100`` is ``0xffffff9c``), as libseccomp compiles them."""


def kernel_space(arch: str) -> tuple[int, int]:
    """``(seccomp_data.arch, first nr)`` of ``arch`` as the kernel hands them to a filter.

    libseccomp's x32 token (0x4000003e) never reaches a filter: x32 syscalls arrive as
    ``AUDIT_ARCH_X86_64`` with ``nr | 0x40000000``.
    """
    return kernel_token(arch), bpf.X32_SYSCALL_BIT if arch == "x32" else 0


def narrow(cond: Cond) -> Cond:
    """``cond`` as a 32-bit ABI reads it: sign-extended negative values taken in 32 bits."""
    return Cond(cond.index, cond.op, _narrow(cond.a), _narrow(cond.b))


def _narrow(value: int) -> int:
    return value & U32 if value >= SIGNED_32 else value


def holds(cond: Cond, value: int) -> bool:
    """Whether ``cond`` holds for the 64-bit argument ``value``."""
    if cond.op == "masked_eq":
        return value & cond.a == cond.b
    return {"eq": value == cond.a, "ne": value != cond.a, "lt": value < cond.a,
            "le": value <= cond.a, "gt": value > cond.a, "ge": value >= cond.a}[cond.op]


def decide(entries: Sequence[tuple[Action, Sequence[Cond]]], args: Sequence[int],
           default: Action) -> Action:
    """The profile's decision: the first entry whose conditions all hold, else ``default``."""
    for action, conds in entries:
        if all(holds(c, args[c.index]) for c in conds):
            return action
    return default


def _candidates(conds: Iterable[Cond], width: int = 64) -> list[int]:
    top = (1 << width) - 1
    out = {0, top, (1 << 32) & top}
    for cond in conds:
        if cond.op == "masked_eq":
            out.update({cond.b & top, (cond.b | ~cond.a) & top})
            out.update((cond.b ^ (1 << bit)) & top for bit in range(width) if cond.a >> bit & 1)
        else:
            out.update(v & top for v in (cond.a - 1, cond.a, cond.a + 1, cond.a + (1 << 32),
                                         cond.a ^ (1 << (width - 1))))
    return sorted(out)


def _points(conds: Sequence[Cond], width: int = 64) -> list[tuple[int, ...]]:
    indexes = sorted({c.index for c in conds})
    per_index = [_candidates((c for c in conds if c.index == i), width) for i in indexes]
    total = 1
    for values in per_index:
        total *= len(values)
    combos: Iterable[tuple[int, ...]] = itertools.product(*per_index)
    if total > MAX_POINTS:
        rng = random.Random(0)  # noqa: S311 - a reproducible sample, not a secret
        combos = [tuple(rng.choice(values) for values in per_index) for _ in range(MAX_POINTS)]
    out = []
    for combo in combos:
        args = [0] * 6
        for index, value in zip(indexes, combo, strict=True):
            args[index] = value
        out.append(tuple(args))
    return out or [(0,) * 6]


def check(program: bytes, arches: Sequence[str], reference: Reference, default: Action,
          badarch: Action) -> str | None:
    """Run ``program`` (a filter for ``arches``) as the kernel would; None, or the first
    difference from the profile.

    Every syscall number of every listed architecture, with the ``seccomp_data`` the kernel
    builds (:func:`kernel_space`; arguments as in :data:`NARROW_ARGS`); for syscalls with
    conditions every combination of the argument values that matter. Every ABI of this CPU the
    profile does not list, and every other architecture, must get ``badarch``.
    """
    found = difference(program, arches, reference, default, badarch)
    return None if found is None else found[0]


_LOSES_RULES = ("libseccomp 2.5 mishandles some combinations of conditions on different "
                "arguments: give every rule of this syscall conditions on the same arguments")


def difference(program: bytes, arches: Sequence[str], reference: Reference, default: Action,
               badarch: Action) -> tuple[str, str] | None:
    """:func:`check`: the first difference and what may explain it, or None."""
    code = bpf.decode(program)
    killed = action_value(badarch)
    for arch in arches:
        token, base = kernel_space(arch)
        width, highs = (32, HIGH_HALVES) if arch in NARROW_ARGS else (64, (0,))
        ruled: set[int] = set()
        for name, written in reference.items():
            found = syscalls.lookup(name, arch)
            if found.number is None:
                continue
            ruled.add(found.number)
            entries = [(action, [narrow(c) for c in conds]) for action, conds in written] \
                if width == 32 else written
            conds = [c for _, cs in entries for c in cs]
            for args in _points(conds, width):
                want = action_value(decide(entries, args, default))
                for high in highs:
                    sent = tuple(high | value for value in args)
                    got = bpf.emulate(code, bpf.SeccompData(found.number, token, sent))
                    if got != want:
                        return (f"{name}: on {arch} with arguments {list(sent)} the generated "
                                f"filter returns 0x{got:08x}, the profile says 0x{want:08x}",
                                _explain(name, arch, conds, sent))
        for nr in OTHER_NUMBERS:
            if base + nr in ruled:
                continue
            got = bpf.emulate(code, bpf.SeccompData(base + nr, token))
            if got != action_value(default):
                return (f"syscall {base + nr}: on {arch} the generated filter returns "
                        f"0x{got:08x}", "")
    native = syscalls.native_arch()
    cpu = (native, *syscalls.other_abis(native))
    for arch in cpu:  # x32 unlisted next to x86_64: the same token, so every number
        if arch in arches:
            continue
        token, base = kernel_space(arch)
        for nr in OTHER_NUMBERS:
            got = bpf.emulate(code, bpf.SeccompData(base + nr, token))
            if got != killed:
                return (f"ABI {arch} is not blocked: the generated filter returns 0x{got:08x} "
                        f"for syscall {base + nr}", "")
    listed = {kernel_space(arch)[0] for arch in (*arches, *cpu)}
    for token in sorted({kernel_space(arch)[0] for arch in syscalls.ARCHES} - listed):
        got = bpf.emulate(code, bpf.SeccompData(0, token))
        if got != killed:
            return (f"a foreign architecture (0x{token:08x}) is not blocked: the generated "
                    f"filter returns 0x{got:08x}", "")
    return None


def _explain(name: str, arch: str, conds: Sequence[Cond], sent: Sequence[int]) -> str:
    """Why the BPF may differ for one syscall's arguments (the conditions already narrowed)."""
    if arch in NARROW_ARGS:  # libseccomp compares the low halves (a mask's high bits are moot)
        for cond in conds:
            value = cond.b if cond.op == "masked_eq" else cond.a
            if value > U32:
                return (f"{name} gets 32-bit arguments on {arch}: {value:#x} in {cond} "
                        "does not fit in 32 bits (use -2147483648 to 4294967295)")
    if arch == "x32" and any(value > U32 for value in sent):
        return ("libseccomp 2.5 compares only the low 32 bits of x32 arguments, while x32 "
                "syscalls get all 64: a profile listing x32 cannot have argument conditions "
                "that depend on the high half")
    return _LOSES_RULES
