"""Where two filter stacks disagree, and whether a stack permits a call: with a concrete witness.

Sampling argument values cannot prove two filters equal (two masks that differ in one bit agree
on every "interesting" constant). This module works on the paths themselves
(:func:`agent.seccomp.bpf_table.stack_paths`): for every path of one stack and every path of the
other whose return values differ, the facts of both paths are intersected; when the intersection
is satisfiable, a concrete ``seccomp_data`` is built from it and both stacks are run on it
(:func:`agent.seccomp.bpf.emulate_stack`), so every difference reported is one the kernel would
show. A satisfiable-looking intersection for which no concrete witness is found, or a number the
path analysis gave up on, is reported as undecided, never as agreement.

::

    found = disagreements([loaded], [declared], AUDIT_ARCH_X86_64, range(1024), same)
    found[41].witnesses  # (Witness(data=SeccompData(41, ..., args=(16, ...)), one=..., ...), ...)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from agent.core.record import record
from agent.seccomp.bpf import Insn, SeccompData, decode, emulate_stack
from agent.seccomp.bpf_table import (
    MAX_PATHS,
    Condition,
    Facts,
    example,
    intersect,
    require,
    stack_paths,
)

Programs = Sequence[Sequence[Insn]]


@record
class Witness:
    """A concrete call on which the stacks (or the permission asked about) show."""

    data: SeccompData
    """The syscall number, arch, arguments and instruction pointer."""
    one: int
    """What the first stack returns for :attr:`data`."""
    other: int
    """What the second stack returns (for :func:`permitted`: the same as :attr:`one`)."""
    conditional: bool
    """Whether the paths involved read the arguments or instruction pointer."""


UNDECIDED_PAIR = ("the paths may disagree for some arguments, but no concrete arguments were "
                  "found (conditions beyond the analysis)")


def decoded(stack: Sequence[bytes]) -> list[tuple[Insn, ...]]:
    """Raw programs decoded (and validated) once, for repeated use."""
    return [decode(p) for p in stack]


@record
class Disagreement:
    """Every way two stacks differ on one syscall number."""

    witnesses: tuple[Witness, ...]
    """One call per region of the arguments where they differ: each disagreeing pair of paths
    (one of each stack; the paths of one stack are disjoint, so the regions are too), in path
    order."""
    undecided: str | None = None
    """Why some of the difference could not be shown (or decided at all), when that happened."""


def disagreements(one: Programs, other: Programs, arch: int, nrs: Iterable[int],
                  same: Callable[[int, int], bool]) -> dict[int, Disagreement]:
    """Per syscall number where the stacks return values that differ for some call: a witness
    of every difference, and why some could not be decided. ``same(ret_one, ret_other)`` says
    when two return values count as the same. Numbers where the stacks provably agree are
    absent."""
    numbers = sorted(set(nrs))
    first, first_undecided = stack_paths(one, arch, numbers)
    second, second_undecided = stack_paths(other, arch, numbers)
    out: dict[int, Disagreement] = {}
    for nr in numbers:
        why = first_undecided.get(nr) or second_undecided.get(nr)
        if why is not None:
            out[nr] = Disagreement((), why)
            continue
        found = _differences(one, other, (arch, nr), paths=(first[nr], second[nr]), same=same)
        if found.witnesses or found.undecided:
            out[nr] = found
    return out


def _differences(one: Programs, other: Programs, data_of: tuple[int, int], *,
                 paths: tuple[list[tuple[Facts, int]], list[tuple[Facts, int]]],
                 same: Callable[[int, int], bool]) -> Disagreement:
    # Every disagreeing pair is a region of its own: an AF_NETLINK rule moved from 16 to 17
    # is two differences (16 allowed, 17 denied), and the first must not hide the second.
    arch, nr = data_of
    first, second = paths
    found: dict[SeccompData, Witness] = {}
    unsure: str | None = None
    pairs = 0
    for facts, ret in first:
        for other_facts, other_ret in second:
            if same(ret, other_ret):
                continue
            merged = intersect(facts, other_facts)
            if merged is None:
                continue
            pairs += 1
            if pairs > MAX_PATHS:
                return Disagreement(tuple(found.values()),
                                    f"more than {MAX_PATHS} disagreeing pairs of paths")
            data = example(merged, nr, arch)
            if data is not None:
                got, want = emulate_stack(one, data), emulate_stack(other, data)
                if not same(got, want):
                    found.setdefault(data, Witness(data, got, want, bool(facts or other_facts)))
                    continue
            unsure = UNDECIDED_PAIR
    return Disagreement(tuple(found.values()), unsure)


def permitted(programs: Programs, arch: int, nr: int, allows: Callable[[int], bool],
              requirements: Sequence[Condition] = ()) -> Witness | str | None:
    """A call of ``nr`` (with ``requirements`` on its words, e.g. ``args[0].lo == 1`` for
    ``socketcall(SYS_SOCKET, ...)``) on which the stack returns a value ``allows`` accepts;
    or why that could not be decided; None when no such call exists."""
    found, undecided = stack_paths(programs, arch, [nr])
    if nr in undecided:
        return undecided[nr]
    unsure: str | None = None
    for facts, ret in found[nr]:
        if not allows(ret):
            continue
        narrowed: Facts | None = dict(facts)
        for condition in requirements:
            narrowed = require(narrowed, condition) if narrowed is not None else None
        if narrowed is None:
            continue
        data = example(narrowed, nr, arch)
        if data is not None and all(c.holds(data) for c in requirements):
            got = emulate_stack(programs, data)
            if allows(got):
                return Witness(data, got, got, bool(facts or requirements))
        unsure = UNDECIDED_PAIR
    return unsure
