"""Compare a loaded filter stack with a declared profile, syscall by syscall; check must-deny lists.

Both sides are reduced to what the kernel would do: the declared profile is compiled exactly as
``hostguard exec`` would load it, and both are tabulated by :mod:`agent.seccomp.effective` over
every syscall space the CPU can enter. Where either side's decision reads the arguments, both
are run concretely on the argument values either side names, their neighbours (``v - 1``,
``v + 1``) and 0 — the points where a comparison can change its answer. What is still open (a
decision the analysis could not follow, or more combinations than :data:`MAX_POINTS`) is reported
as ``undecided``, never as equal.

Kinds of difference, worst first:

* ``arch_open`` (critical): the profile kills a whole ABI the loaded stack lets through;
* ``allowed_extra`` (critical): the process may make a syscall the profile denies;
* ``denied_extra`` (warning): the profile allows it, the loaded stack denies it;
* ``action_differs`` (warning): both deny (or both permit) but differently (errno, kill mode);
* ``undecided`` (warning): could not be decided.

::

    result = compare(dump.filters, build_filter(profile))
    result.equivalent            # True when nothing differs and nothing is undecided
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from agent.seccomp import bpf, bpf_table, effective, syscalls
from agent.seccomp.compile import CompiledFilter

MAX_POINTS = 4096
"""Argument combinations tried per syscall before the rest is reported undecided."""
U64 = (1 << 64) - 1
_ORDER = ("arch_open", "allowed_extra", "denied_extra", "action_differs", "undecided")
SEVERITY = {"arch_open": "critical", "allowed_extra": "critical", "denied_extra": "warning",
            "action_differs": "warning", "undecided": "warning"}


@dataclass(frozen=True)
class Difference:
    """One way the loaded stack does not do what the profile says."""

    kind: str
    """``arch_open``, ``allowed_extra``, ``denied_extra``, ``action_differs`` or ``undecided``."""
    arch: str
    """libseccomp architecture name of the syscall space."""
    syscall: str
    """Name (``#nr`` when unnamed); for ``arch_open`` the syscalls let through, abbreviated."""
    nr: int | None
    """Syscall number (None for ``arch_open``)."""
    loaded: str
    """What the loaded stack does."""
    declared: str
    """What the profile says."""
    args: tuple[int, ...] | None = None
    """Argument values where the two differ; None when they differ whatever the arguments."""
    count: int = 1
    """For ``arch_open``: how many syscalls are let through."""

    @property
    def severity(self) -> str:
        return SEVERITY[self.kind]

    def __str__(self) -> str:
        where = f"{self.arch} {self.syscall}"
        if self.args is not None:
            shown = ", ".join(hex(a) for a in self.args)
            where += f"({shown})"
        if self.kind == "arch_open":
            return (f"{self.severity}: the {self.arch} ABI is open: {self.count} syscall(s) "
                    f"permitted ({self.syscall}); the profile kills every {self.arch} syscall")
        if self.kind == "undecided":
            return f"{self.severity}: {where}: cannot decide: {self.loaded}"
        return (f"{self.severity}: {where}: loaded {self.loaded}, profile {self.declared} "
                f"({self.kind.replace('_', ' ')})")


@dataclass(frozen=True)
class Comparison:
    """Everything :func:`compare` found."""

    differences: tuple[Difference, ...]
    """Worst kinds first, then by architecture and number."""
    arches: tuple[str, ...]
    """Syscall spaces compared."""
    syscalls: int
    """Syscall numbers compared, over every space."""
    points: int
    """Concrete argument combinations evaluated for argument-dependent decisions."""

    @property
    def equivalent(self) -> bool:
        return not self.differences


def _side(ret: int) -> bool:
    return effective.permits(ret)


def _kind(loaded: int, declared: int) -> str | None:
    if loaded == declared:
        return None
    if _side(loaded) != _side(declared):
        return "allowed_extra" if _side(loaded) else "denied_extra"
    return None if bpf.verdict(loaded) == bpf.verdict(declared) else "action_differs"


def compare(stack: Sequence[bytes], declared: CompiledFilter) -> Comparison:
    """Compare the loaded ``stack`` (newest first) with the compiled profile."""
    programs = [bpf.decode(p) for p in stack]
    profile_program = [bpf.decode(declared.bpf())]
    found: list[Difference] = []
    compared = points = 0
    spaces = effective.spaces(declared.arches)
    for where in spaces:
        loaded_table = bpf_table.table(programs, where.token, where.numbers)
        declared_table = bpf_table.table(profile_program, where.token, where.numbers)
        compared += len(where.numbers)
        diffs: list[Difference] = []
        for nr in where.numbers:
            mine, theirs = loaded_table[nr], declared_table[nr]
            if mine.ret is not None and theirs.ret is not None:
                kind = _kind(mine.ret, theirs.ret)
                if kind is not None:
                    diffs.append(Difference(kind, where.arch, where.name(nr), nr,
                                            str(bpf.verdict(mine.ret)),
                                            str(bpf.verdict(theirs.ret))))
                continue
            tried, diff = _compare_args(where, nr, programs, profile_program,
                                        mine=mine, theirs=theirs)
            points += tried
            if diff is not None:
                diffs.append(diff)
        found.extend(_fold_open_arch(where, declared, diffs))
    found.sort(key=lambda d: (_ORDER.index(d.kind), d.arch, -1 if d.nr is None else d.nr))
    return Comparison(tuple(found), tuple(s.arch for s in spaces), compared, points)


def _fold_open_arch(where: effective.Space, declared: CompiledFilter,
                    diffs: list[Difference]) -> list[Difference]:
    """A profile that does not handle an ABI kills all of it: one finding, not hundreds."""
    if where.arch in declared.arches:
        return diffs
    extra = [d for d in diffs if d.kind == "allowed_extra"]
    if not extra:
        return diffs
    names = [d.syscall for d in extra]
    shown = ", ".join(names[:8]) + (f", ... (+{len(names) - 8})" if len(names) > 8 else "")
    rest = [d for d in diffs if d.kind != "allowed_extra"]
    return [Difference("arch_open", where.arch, shown, None, "permits", extra[0].declared,
                       count=len(extra)), *rest]


def _compare_args(where: effective.Space, nr: int, loaded: Sequence[Sequence[bpf.Insn]],
                  declared: Sequence[Sequence[bpf.Insn]], *, mine: bpf_table.Entry,
                  theirs: bpf_table.Entry) -> tuple[int, Difference | None]:
    """Run both sides on the argument values that matter; the first difference, if any."""
    values = candidates([mine, theirs])
    combos = _points(values)
    tried = 0
    for args, ip in combos:
        tried += 1
        data = bpf.SeccompData(nr, where.token, args, ip)
        got = bpf.emulate_stack(loaded, data)
        want = bpf.emulate_stack(declared, data)
        kind = _kind(got, want)
        if kind is not None:
            return tried, Difference(kind, where.arch, where.name(nr), nr,
                                     str(bpf.verdict(got)), str(bpf.verdict(want)), args)
    why = mine.undecided or theirs.undecided
    if why is None and _count(values) > MAX_POINTS:
        why = f"{_count(values)} argument combinations, {MAX_POINTS} tried"
    if why is not None:
        return tried, Difference("undecided", where.arch, where.name(nr), nr, why,
                                 effective.describe(theirs))
    return tried, None


Values = Mapping[str, tuple[int, ...]]
"""Field (``args[0]`` .. ``args[5]``, ``instruction_pointer``) -> values to try."""


def candidates(entries: Iterable[bpf_table.Entry]) -> dict[str, tuple[int, ...]]:
    """Values worth trying per field: every constant either side compares, its neighbours, 0."""
    words: dict[str, dict[str | None, set[int]]] = {}
    for entry in entries:
        for branch in entry.branches:
            for cond in branch.conditions:
                halves = words.setdefault(cond.field, {})
                bucket = halves.setdefault(cond.half, set())
                width = U64 if cond.half is None else 0xFFFFFFFF
                for v in (cond.value, cond.mask & cond.value, cond.mask):
                    bucket.update({v & width, (v - 1) & width, (v + 1) & width})
                bucket.update({0, width})
    out: dict[str, tuple[int, ...]] = {}
    for name, halves in words.items():
        full = set(halves.get(None, set())) | {0}
        lows = halves.get("lo", set()) | {0}
        highs = halves.get("hi", set()) | {0}
        full |= {(h << 32) | lo for h in highs for lo in lows}
        out[name] = tuple(sorted(full))
    return out


def _count(values: Values) -> int:
    total = 1
    for v in values.values():
        total *= len(v)
    return total


def _points(values: Values) -> Iterable[tuple[tuple[int, ...], int]]:
    """Argument tuples (and instruction pointers) to run, at most :data:`MAX_POINTS`."""
    fields = [f"args[{i}]" for i in range(6)] + ["instruction_pointer"]
    choices = [values.get(f, (0,)) for f in fields]
    for combo in itertools.islice(itertools.product(*choices), MAX_POINTS):
        yield tuple(combo[:6]), combo[6]


# --- must_deny --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Permitted:
    """A syscall a must-deny list names that the loaded stack lets through."""

    arch: str
    syscall: str
    how: str
    """``allow``, ``log`` ..., or the argument conditions under which it is permitted."""


def must_deny(stack: Sequence[bytes], names: Iterable[str],
              arches: Iterable[str] = ()) -> tuple[list[Permitted], list[str]]:
    """Which of ``names`` (``@groups`` allowed) the stack permits for some arguments.

    Returns the violations and the names checked nowhere (not a syscall on any space here).
    An empty stack permits everything.
    """
    wanted = syscalls.expand(names)
    programs = [bpf.decode(p) for p in stack]
    found: list[Permitted] = []
    seen: set[str] = set()
    for where in effective.spaces(arches):
        numbers = {}
        for name in wanted:
            try:
                nr = syscalls.resolve(name, where.arch)
            except syscalls.UnknownSyscall:
                continue
            if nr is not None:
                numbers[nr] = name
                seen.add(name)
        if not numbers:
            continue
        table = bpf_table.table(programs, where.token, sorted(numbers))
        for nr, name in sorted(numbers.items(), key=lambda item: item[1]):
            how = _permitted(table[nr])
            if how is not None:
                found.append(Permitted(where.arch, name, how))
    return found, [n for n in wanted if n not in seen]


def _permitted(entry: bpf_table.Entry) -> str | None:
    if entry.undecided is not None:
        return f"cannot decide ({entry.undecided})"
    if entry.ret is not None:
        return str(bpf.verdict(entry.ret)) if effective.permits(entry.ret) else None
    open_ = [b for b in entry.branches if effective.permits(b.ret)]
    if not open_:
        return None
    return "; ".join(f"{' and '.join(str(c) for c in b.conditions) or 'otherwise'} -> "
                     f"{bpf.verdict(b.ret)}" for b in open_)
