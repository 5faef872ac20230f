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

    found = disagreements([loaded], [declared], AUDIT_ARCH_X86_64, range(1024), differ)
    found[41]          # Witness(data=SeccompData(41, ..., args=(256, 0, ...)), one=..., other=...)
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


def disagreements(one: Programs, other: Programs, arch: int, nrs: Iterable[int],
                  rank: Callable[[int, int], int | None]) -> dict[int, Witness | str]:
    """Per syscall number where the stacks return values that differ for some call: the witness
    of the worst difference, or why it could not be decided. ``rank(ret_one, ret_other)`` is
    None when two values count as the same, else how bad the difference is (0 worst: the
    search stops there). Numbers where the stacks provably agree are absent."""
    numbers = sorted(set(nrs))
    first, first_undecided = stack_paths(one, arch, numbers)
    second, second_undecided = stack_paths(other, arch, numbers)
    out: dict[int, Witness | str] = {}
    for nr in numbers:
        why = first_undecided.get(nr) or second_undecided.get(nr)
        if why is not None:
            out[nr] = why
            continue
        found = _worst_difference(one, other, (arch, nr), paths=(first[nr], second[nr]),
                                  rank=rank)
        if found is not None:
            out[nr] = found
    return out


def _worst_difference(one: Programs, other: Programs, data_of: tuple[int, int], *,
                      paths: tuple[list[tuple[Facts, int]], list[tuple[Facts, int]]],
                      rank: Callable[[int, int], int | None]) -> Witness | str | None:
    # Every disagreeing pair is examined (not only the first): a critical "allows more" must not
    # hide behind a milder difference that happens to come first in path order.
    arch, nr = data_of
    first, second = paths
    best: tuple[int, Witness] | None = None
    unsure: str | None = None
    pairs = 0
    for facts, ret in first:
        for other_facts, other_ret in second:
            level = rank(ret, other_ret)
            if level is None or (best is not None and level >= best[0]):
                continue
            merged = intersect(facts, other_facts)
            if merged is None:
                continue
            pairs += 1
            if pairs > MAX_PATHS:
                return best[1] if best else f"more than {MAX_PATHS} disagreeing pairs of paths"
            data = example(merged, nr, arch)
            if data is not None:
                got, want = emulate_stack(one, data), emulate_stack(other, data)
                shown = rank(got, want)
                if shown is not None and (best is None or shown < best[0]):
                    best = (shown, Witness(data, got, want, bool(facts or other_facts)))
                    if shown == 0:
                        return best[1]
                    continue
            if best is None or level < best[0]:
                unsure = UNDECIDED_PAIR
    if best is not None:
        return best[1]
    return unsure


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
