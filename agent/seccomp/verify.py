"""Compare a loaded filter stack with a declared profile, syscall by syscall; check must-deny lists.

Both sides are reduced to what the kernel would do: the declared profile is compiled exactly as
``hostguard exec`` would load it, and both are compared over every syscall number (0-1023 from
each base) of every syscall space the CPU can enter (:mod:`agent.seccomp.effective`). The
comparison works on the paths through both filters (:mod:`agent.seccomp.bpf_diff`): wherever a
path of one and a path of the other return different actions and their argument conditions can
hold together, concrete arguments are built and both filters run on them, so each difference
comes with a call that shows it. What the analysis cannot follow (arithmetic on arguments, too
many paths, conditions it finds no values for) is reported as ``undecided``, never as equal.

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

from collections.abc import Iterable, Mapping, Sequence

from agent.core.record import record
from agent.seccomp import bpf, bpf_diff, bpf_table, effective, syscalls
from agent.seccomp.compile import CompiledFilter
from agent.seccomp.model import MAX_ERRNO

_ORDER = ("arch_open", "allowed_extra", "denied_extra", "action_differs", "undecided")
SEVERITY = {"arch_open": "critical", "allowed_extra": "critical", "denied_extra": "warning",
            "action_differs": "warning", "undecided": "warning"}
_DATA_MATTERS = frozenset({"errno", "trap", "trace"})
"""Actions whose 16 data bits reach someone (the errno, si_errno, the tracer's message)."""


@record
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
    instruction_pointer: int | None = None
    """With :attr:`args`: the instruction pointer of the call that shows the difference."""
    count: int = 1
    """How many syscall numbers: those let through (``arch_open``), or a run of unnamed
    numbers (``#458-#1023``) that differ the same way."""

    @property
    def severity(self) -> str:
        return SEVERITY[self.kind]

    @property
    def call(self) -> str:
        """``arch name(args) at ip N``: the witness call, or the syscall when any call shows."""
        where = f"{self.arch} {self.syscall}"
        if self.args is not None:
            where += f"({', '.join(hex(a) for a in self.args)})"
            if self.instruction_pointer:
                where += f" at ip {self.instruction_pointer:#x}"
        return where

    def __str__(self) -> str:
        if self.kind == "arch_open":
            return (f"{self.severity}: the {self.arch} ABI is open: {self.count} syscall(s) "
                    f"permitted ({self.syscall}); the profile kills every {self.arch} syscall")
        if self.kind == "undecided":
            return f"{self.severity}: {self.call}: cannot decide: {self.loaded}"
        return (f"{self.severity}: {self.call}: loaded {self.loaded}, profile {self.declared} "
                f"({self.kind.replace('_', ' ')})")


@record
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


def same_action(one: int, other: int) -> bool:
    """Whether the kernel does the same thing for both return values: the data bits count
    only for errno (capped at 4095, as the kernel caps it), trap and trace."""
    return _action_key(one) == _action_key(other)


def _action_key(ret: int) -> tuple[str, int]:
    found = bpf.verdict(ret)
    if found.action not in _DATA_MATTERS:
        return found.action, 0
    return found.action, min(found.data, MAX_ERRNO) if found.action == "errno" else found.data


def _kind(loaded: int, declared: int) -> str | None:
    if same_action(loaded, declared):
        return None
    mine, theirs = effective.permits(loaded), effective.permits(declared)
    if mine != theirs:
        return "allowed_extra" if mine else "denied_extra"
    return "action_differs"


def compare(stack: Sequence[bytes], declared: CompiledFilter,
            arches: Iterable[str] = ()) -> Comparison:
    """Compare the loaded ``stack`` (newest first) with the compiled profile, on the spaces
    of this CPU, the profile's architectures and ``arches``: every difference, each with a
    call that shows it."""
    programs = bpf_diff.decoded(stack)
    profile_program = bpf_diff.decoded([declared.bpf()])
    found: list[Difference] = []
    compared = points = 0
    spaces = effective.spaces((*declared.arches, *arches))
    for where in spaces:
        compared += len(where.numbers)
        diffs: list[Difference] = []
        seen = bpf_diff.disagreements(programs, profile_program, where.token, where.numbers,
                                      same_action)
        for nr, disagreement in sorted(seen.items()):
            for witness in disagreement.witnesses:
                points += 1
                kind = _kind(witness.one, witness.other)
                assert kind is not None
                diffs.append(Difference(kind, where.arch, where.name(nr), nr,
                                        str(bpf.verdict(witness.one)),
                                        str(bpf.verdict(witness.other)),
                                        witness.data.args if witness.conditional else None,
                                        witness.data.instruction_pointer if witness.conditional
                                        else None))
            if disagreement.undecided is not None:
                diffs.append(Difference("undecided", where.arch, where.name(nr), nr,
                                        disagreement.undecided, "?"))
        found.extend(_fold_open_arch(where, declared, _fold_unnamed(diffs)))
    found.sort(key=lambda d: (_ORDER.index(d.kind), d.arch, -1 if d.nr is None else d.nr,
                              d.args or (), d.instruction_pointer or 0))
    return Comparison(tuple(found), tuple(s.arch for s in spaces), compared, points)


def _fold_unnamed(diffs: list[Difference]) -> list[Difference]:
    """Runs of numbers no syscall table names (newer than libseccomp, or unassigned), differing
    the same way, as one finding: ``#458-#1023``."""
    out: list[Difference] = []
    for diff in diffs:
        last = out[-1] if out else None
        if (last is not None and diff.syscall.startswith("#") and last.syscall.startswith("#")
                and diff.args is None and last.args is None and last.nr is not None
                and diff.nr == last.nr + last.count
                and (diff.kind, diff.loaded, diff.declared) ==
                (last.kind, last.loaded, last.declared)):
            first = last.syscall.split("-")[0]
            out[-1] = Difference(last.kind, last.arch, f"{first}-#{diff.nr}", last.nr,
                                 last.loaded, last.declared, count=last.count + 1)
            continue
        out.append(diff)
    return out


def _fold_open_arch(where: effective.Space, declared: CompiledFilter,
                    diffs: list[Difference]) -> list[Difference]:
    """A profile that does not handle an ABI kills all of it: one finding, not hundreds."""
    if where.arch in declared.arches:
        return diffs
    extra = [d for d in diffs if d.kind == "allowed_extra"]
    if not extra:
        return diffs
    first: dict[str, int] = {}  # a syscall may differ in several ways: counted once
    for diff in extra:
        first.setdefault(diff.syscall, diff.count)
    names = list(first)
    shown = ", ".join(names[:8]) + (f", ... (+{len(names) - 8})" if len(names) > 8 else "")
    # The syscalls let through are the finding; how else their other arguments are treated
    # (errno instead of kill) would be hundreds of lines saying less.
    rest = [d for d in diffs if d.kind != "allowed_extra" and d.syscall not in first]
    return [Difference("arch_open", where.arch, shown, None, "permits", extra[0].declared,
                       count=sum(first.values())), *rest]


# --- must_deny --------------------------------------------------------------------------------


@record
class Permitted:
    """A syscall a must-deny list names that the loaded stack lets through (or may)."""

    arch: str
    syscall: str
    how: str
    """``allow``, ``log`` ..., with the arguments of a call that shows it when they matter."""
    undecided: bool = False
    """True when the analysis could not tell whether some call is permitted."""


SOCKETCALL = {"socket": 1, "bind": 2, "connect": 3, "listen": 4, "accept": 5, "getsockname": 6,
              "getpeername": 7, "socketpair": 8, "send": 9, "recv": 10, "sendto": 11,
              "recvfrom": 12, "shutdown": 13, "setsockopt": 14, "getsockopt": 15,
              "sendmsg": 16, "recvmsg": 17, "accept4": 18, "recvmmsg": 19, "sendmmsg": 20}
"""``socketcall(call, args)`` call numbers (include/uapi/linux/net.h)."""
IPC = {"semop": 1, "semget": 2, "semctl": 3, "semtimedop": 4, "msgsnd": 11, "msgrcv": 12,
       "msgget": 13, "msgctl": 14, "shmat": 21, "shmdt": 22, "shmget": 23, "shmctl": 24}
"""``ipc(call, ...)`` call numbers (ipc/syscall.c); the call is the low 16 bits of ``first``:
the kernel takes ``call & 0xffff`` (the high half carries the version)."""


def must_deny(stack: Sequence[bytes], names: Iterable[str],
              arches: Iterable[str] = ()) -> tuple[list[Permitted], list[str]]:
    """Which of ``names`` (``@groups`` allowed) the stack permits for some arguments.

    On an ABI with the ``socketcall`` / ``ipc`` multiplexers (i386), a socket or SysV IPC call
    is also reached through them: the multiplexer must be denied for that call number too.
    Returns the violations (undecided ones flagged) and the names that are a syscall on no
    space here. An empty stack permits everything.
    """
    wanted = syscalls.expand(names)
    programs = bpf_diff.decoded(stack)
    found: list[Permitted] = []
    seen: set[str] = set()
    for where in effective.spaces(arches):
        known = effective.names(where.arch)
        for name in wanted:
            routes: list[tuple[int, tuple[bpf_table.Condition, ...]]] = [
                (nr, ()) for nr in known.get(name, ())]
            routes += _multiplexed(name, known)
            if routes:
                seen.add(name)
            for nr, requirements in routes:
                got = bpf_diff.permitted(programs, where.token, nr, effective.permits,
                                         requirements)
                if got is None:
                    continue
                via = "" if not requirements else f" through {where.name(nr)}"
                if isinstance(got, str):
                    found.append(Permitted(where.arch, name, f"cannot decide{via}: {got}", True))
                    continue
                shown = str(bpf.verdict(got.one))
                if got.conditional:
                    shown += f" for {where.name(nr)}({', '.join(hex(a) for a in got.data.args)})"
                found.append(Permitted(where.arch, name, shown + ("" if got.conditional
                                                                  else via)))
    return found, [n for n in wanted if n not in seen]


def _multiplexed(name: str, known: Mapping[str, tuple[int, ...]]
                 ) -> list[tuple[int, tuple[bpf_table.Condition, ...]]]:
    out: list[tuple[int, tuple[bpf_table.Condition, ...]]] = []
    for table, via, mask in ((SOCKETCALL, "socketcall", 0xFFFFFFFF), (IPC, "ipc", 0xFFFF)):
        if name in table:
            call = bpf_table.Condition("args[0]", "lo", mask, "eq", table[name])
            out += [(nr, (call,)) for nr in known.get(via, ())]
    return out
