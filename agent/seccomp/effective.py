"""What a filter stack does, per architecture and syscall: the effective table and its views.

The kernel hands a filter ``(nr, arch)``; what the CPU can send depends on the host: on x86_64
the native ABI, i386 (``int 0x80``, its own ``AUDIT_ARCH``) and x32 (``nr | 0x40000000`` under
``AUDIT_ARCH_X86_64``). :func:`spaces` lists those "syscall spaces" with every number libseccomp
knows there plus the gaps up to the highest, so a filter that handles numbers nobody named is
seen too. :func:`tables` runs :func:`agent.seccomp.bpf_table.table` over each space.

::

    views = tables(stack)                     # stack: raw programs, newest first
    print(render_text(stack, views))          # disassembly + effective table
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from agent.core.record import record
from agent.seccomp import bpf, bpf_disasm, bpf_table, syscalls

X32_BIT = 0x40000000
"""x32 syscalls reach the kernel as ``AUDIT_ARCH_X86_64`` with this bit set in ``nr``."""
NUMBERS = 1024
"""Syscall numbers tabulated per ABI from its base: above every number Linux has assigned."""
PERMISSIVE = frozenset({"allow", "log", "trace", "user_notif"})
"""Actions under which the syscall may run (trace / user_notif: a tracer or supervisor decides)."""


@record
class Space:
    """One ABI's syscall numbers as a filter sees them."""

    arch: str
    """libseccomp architecture name (``x86_64``, ``x86``, ``x32`` ...)."""
    token: int
    """``seccomp_data.arch`` the kernel passes for this ABI."""
    numbers: tuple[int, ...]
    """``seccomp_data.nr`` values: every known number and the gaps below the highest."""

    def name(self, nr: int) -> str:
        """Syscall name of ``nr`` here, or ``#nr`` when libseccomp knows none."""
        return _name(nr, self.arch) or f"#{nr}"


@cache
def _name(nr: int, arch: str) -> str | None:
    return syscalls.name_of(nr, arch)


def kernel_token(arch: str) -> int:
    """``seccomp_data.arch`` for ``arch`` (x32 shares x86_64's token; libseccomp's differs)."""
    return syscalls.arch_token("x86_64" if arch == "x32" else arch)


@cache
def space(arch: str) -> Space:
    """The syscall space of one architecture (libseccomp name, ``native`` allowed)."""
    real = syscalls.canonical_arch(arch)
    known = set(syscalls.numbers(real))
    base = X32_BIT if real == "x32" else 0
    top = max(known, default=base)
    # Every number up to NUMBERS, gaps included: the running kernel may have syscalls newer
    # than libseccomp's tables (6.x kernels add several a year), and a filter that lets one of
    # those through must show.
    numbers = sorted(known | set(range(base, max(top + 2, base + NUMBERS))))
    return Space(real, kernel_token(real), tuple(numbers))


@cache
def names(arch: str) -> dict[str, tuple[int, ...]]:
    """Syscall name -> its numbers in the space of ``arch`` (the kernel's direct socket calls
    on i386, 359 and up, included: libseccomp resolves those names to ``socketcall``)."""
    out: dict[str, list[int]] = {}
    where = space(arch)
    for nr in where.numbers:
        name = _name(nr, where.arch)
        if name is not None:
            out.setdefault(name, []).append(nr)
    return {name: tuple(nrs) for name, nrs in out.items()}


def spaces(extra: Iterable[str] = ()) -> tuple[Space, ...]:
    """The spaces this CPU can enter (native first, then its compat ABIs), plus ``extra``."""
    names = [syscalls.native_arch(), *syscalls.other_abis()]
    for arch in extra:
        real = syscalls.canonical_arch(arch)
        if real not in names:
            names.append(real)
    return tuple(space(name) for name in names)


Table = Mapping[int, bpf_table.Entry]


def tables(stack: Sequence[bytes], arches: Iterable[str] = ()) -> dict[str, Table]:
    """Effective table of ``stack`` (newest first) for every space, by architecture name."""
    programs = [bpf.decode(p) for p in stack]
    return {s.arch: bpf_table.table(programs, s.token, s.numbers) for s in spaces(arches)}


def permits(ret: int) -> bool:
    """Whether the syscall may run under this return value."""
    return bpf.verdict(ret).action in PERMISSIVE


def describe(entry: bpf_table.Entry) -> str:
    """``allow``, ``errno(1)``, or the branches of a conditional entry in one line."""
    if entry.undecided is not None:
        return f"undecided ({entry.undecided})"
    if entry.ret is not None:
        return str(bpf.verdict(entry.ret))
    return "; ".join(f"{_conditions(b)} -> {bpf.verdict(b.ret)}" for b in entry.branches)


def _conditions(branch: bpf_table.Branch) -> str:
    return " and ".join(str(c) for c in branch.conditions) or "otherwise"


# --- views ------------------------------------------------------------------------------------


def render_text(stack: Sequence[bytes], views: Mapping[str, Table],
                header: Sequence[str] = ()) -> str:
    """Disassembly of each filter, then the effective table grouped by action."""
    lines = list(header)
    if not stack:
        lines.append("no seccomp filter loaded")
        return "\n".join(lines) + "\n"
    for index, program in enumerate(stack):
        count = len(program) // 8
        when = " (newest)" if index == 0 else " (oldest)" if index == len(stack) - 1 else ""
        lines.append(f"filter {index}{when}: {count} instructions")
        lines.extend(f"  {line}" for line in bpf_disasm.disassemble(program).splitlines())
    lines.append("")
    lines.append(f"effective table ({len(stack)} filter{'s' if len(stack) != 1 else ''}, "
                 "most restrictive action wins)")
    for arch, table in views.items():
        lines.extend(_arch_lines(space(arch), table))
    return "\n".join(lines) + "\n"


def _arch_lines(where: Space, table: Table) -> list[str]:
    by_action: dict[str, list[str]] = {}
    unnamed: dict[str, int] = {}
    special: list[str] = []
    for nr in where.numbers:
        entry = table[nr]
        name = _name(nr, where.arch)
        if entry.ret is None:
            special.append(f"    {name or f'#{nr}'}: {describe(entry)}")
            continue
        action = str(bpf.verdict(entry.ret))
        if name is None:
            unnamed[action] = unnamed.get(action, 0) + 1
        else:
            by_action.setdefault(action, []).append(name)
    out = [f"{where.arch} (arch 0x{where.token:08x}):"]
    for action in sorted(set(by_action) | set(unnamed), key=_severity):
        names = by_action.get(action, [])
        extra = f" (+{unnamed[action]} unnamed numbers)" if unnamed.get(action) else ""
        out.append(f"  {action} ({len(names)}){extra}: {' '.join(sorted(names))}".rstrip())
    if special:
        out.append(f"  conditional ({len(special)}):")
        out.extend(special)
    return out


def _severity(action: str) -> tuple[int, str]:
    return bpf.verdict_rank(action.partition("(")[0]), action


def to_json(stack: Sequence[bytes], views: Mapping[str, Table]) -> dict[str, Any]:
    """The same as :func:`render_text`, as data (raw programs in hex)."""
    return {
        "filters": [{"index": i, "instructions": len(p) // 8, "bpf_hex": p.hex(),
                     "disassembly": bpf_disasm.disassemble(p).splitlines()}
                    for i, p in enumerate(stack)],
        "table": {arch: [_entry_json(space(arch), nr, table[nr]) for nr in space(arch).numbers]
                  for arch, table in views.items()},
    }


def _entry_json(where: Space, nr: int, entry: bpf_table.Entry) -> dict[str, Any]:
    row: dict[str, Any] = {"nr": nr, "name": _name(nr, where.arch)}
    if entry.undecided is not None:
        row["action"] = "undecided"
        row["reason"] = entry.undecided
    elif entry.ret is not None:
        row["action"] = str(bpf.verdict(entry.ret))
    else:
        row["action"] = "conditional"
        row["branches"] = [{"conditions": [str(c) for c in b.conditions],
                            "action": str(bpf.verdict(b.ret))} for b in entry.branches]
    return row
