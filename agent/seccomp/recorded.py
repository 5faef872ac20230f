"""A profile from the syscalls a recorded run made (``hostguard seccomp record``).

The recorder (:mod:`agent.enforce.trace`) hands over (audit architecture, number) pairs; here
they become names per ABI and a minimal allow-list: ``default_action: {errno: 1}``, one ``allow``
rule with the native ABI's names sorted, a systemd ``@group`` written instead of its members only
where every member that is a syscall here was made (the group then allows exactly what the names
would). Calls made through another ABI of the CPU (i386, x32) cannot be allowed by a profile that
lints clean (``seccomp-abi-open``): they are named in :attr:`Recorded.notes`, and the profile
kills them like any profile does.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable, Mapping, Sequence

from agent.core.record import record
from agent.seccomp import syscalls
from agent.seccomp.model import ALLOW, ArgCondition, Profile, Rule, profile_name
from agent.seccomp.profile import DENY_DEFAULT

X32_BIT = 0x4000_0000
"""x32 calls enter as x86_64 with this bit set in the number."""
LOW_32 = 0xFFFF_FFFF
CLONE_NAMESPACES = 0x7E02_0000
"""CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET (NEWTIME, 0x80, is clone3's
only: in clone's flags that bit belongs to the exit signal)."""


@record
class Refinement:
    """An argument of a syscall whose values seen become the only ones allowed (``--args``)."""

    syscall: str
    """The syscall, on the native ABI."""
    index: int
    """Its argument position."""
    mask: int
    """The bits compared (``masked_eq``): an ``int`` argument's low half only, whatever the
    caller left in the upper half of the register, which the kernel ignores too."""


REFINEMENTS: tuple[Refinement, ...] = (
    Refinement("socket", 0, LOW_32),    # address family
    Refinement("prctl", 0, LOW_32),     # option
    Refinement("ioctl", 1, LOW_32),     # request (the kernel takes an unsigned int)
    Refinement("clone", 0, CLONE_NAMESPACES),  # the namespace flags: threads and forks pass
)
"""What ``--args`` refines: the values whose set is small and says what the program does (which
sockets, which process controls, which device requests, whether it makes namespaces); ``clone3``
passes its flags in memory, out of a filter's reach."""


def watch() -> dict[tuple[int, int], tuple[int, ...]]:
    """The arguments the tracer collects for :data:`REFINEMENTS`: (audit arch, nr) -> indexes."""
    token = syscalls.arch_token("native")
    out: dict[tuple[int, int], tuple[int, ...]] = {}
    for refinement in REFINEMENTS:
        number = syscalls.resolve(refinement.syscall)
        if number is not None:
            out[(token, number)] = (*out.get((token, number), ()), refinement.index)
    return out


@record
class Recorded:
    """The profile and what it leaves out."""

    profile: Profile
    """The native ABI's calls, allowed; everything else denied with EPERM."""
    by_abi: Mapping[str, tuple[str, ...]]
    """Names seen per ABI (libseccomp names: ``x86_64``, ``x86``, ``x32``), sorted; a number
    libseccomp has no name for is written ``#N``."""
    notes: tuple[str, ...]
    """What the profile does not allow that the run did, one sentence each."""


def by_abi(calls: Iterable[tuple[int, int]]) -> dict[str, tuple[str, ...]]:
    """(audit arch, nr) pairs as sorted names per libseccomp architecture name."""
    out: dict[str, set[str]] = {}
    for token, number in calls:
        arch = syscalls.arch_name(token) or f"arch 0x{token:x}"
        if arch == "x86_64" and number & X32_BIT and number < 2**32:
            arch = "x32"
        name = syscalls.name_of(number, arch) if not arch.startswith("arch ") else None
        out.setdefault(arch, set()).add(name or f"#{number}")
    return {arch: tuple(sorted(names)) for arch, names in sorted(out.items())}


def groups_for(names: Iterable[str], arch: str = "native") -> tuple[str, ...]:
    """``names`` with every systemd group whose members here were all made written as the group:
    groups first (largest first, then by name; one that adds nothing to those before it is left
    out), then the names no group covers, each list sorted."""
    made = set(names)
    chosen: list[str] = []
    covered: set[str] = set()
    candidates = []
    for group in syscalls.GROUPS:
        members = {m for m in syscalls.expand([group])
                   if syscalls.lookup(m, arch).status is syscalls.Status.KNOWN}
        if members and members <= made:
            candidates.append((group, members))
    for group, members in sorted(candidates, key=lambda c: (-len(c[1]), c[0])):
        if not members <= covered:
            chosen.append(group)
            covered |= members
    return (*sorted(chosen), *sorted(made - covered))


def record_profile(command: Sequence[str], calls: Iterable[tuple[int, int]],
                   values: Iterable[tuple[int, int, int, int]] | None = None) -> Recorded:
    """The profile for a run of ``command`` that made ``calls``; with ``values`` (the tracer's,
    collected for :func:`watch`), the syscalls of :data:`REFINEMENTS` are allowed only with the
    argument values seen."""
    seen = by_abi(calls)
    native = syscalls.native_arch()
    names = [n for n in seen.get(native, ()) if not n.startswith("#")]
    refined = _refined(names, values) if values is not None else ()
    plain = [n for n in names if n not in {r.syscalls[0] for r in refined}]
    written = groups_for(plain)
    rules = (Rule(syscalls.expand(written), ALLOW, written=written),) if plain else ()
    profile = Profile(profile_name(command[0].rsplit("/", 1)[-1]), DENY_DEFAULT,
                      rules=(*rules, *refined))
    notes = []
    for arch, made in seen.items():
        if arch != native:
            notes.append(f"{len(made)} syscall(s) through the {arch} ABI, which the profile "
                         f"kills (it lists only {native}): {', '.join(made)}")
        elif unnamed := [n for n in made if n.startswith("#")]:
            notes.append(f"syscall number(s) libseccomp has no name for on {arch}, left out "
                         f"(denied): {', '.join(unnamed)}")
    return Recorded(profile, seen, tuple(notes))


def _refined(names: Sequence[str],
             values: Iterable[tuple[int, int, int, int]]) -> tuple[Rule, ...]:
    """One rule per refined syscall made and value seen, by name then value."""
    token = syscalls.arch_token("native")
    seen: dict[tuple[int, int], set[int]] = {}
    for arch, nr, index, value in values:
        if arch == token:
            seen.setdefault((nr, index), set()).add(value)
    out = []
    for refinement in sorted(REFINEMENTS, key=lambda r: r.syscall):
        number = syscalls.resolve(refinement.syscall)
        if refinement.syscall not in names or number is None:
            continue
        made = seen.get((number, refinement.index), set())
        for value in sorted({v & refinement.mask for v in made}):
            condition = ArgCondition(refinement.index, "masked_eq", value, refinement.mask)
            out.append(Rule((refinement.syscall,), ALLOW, (condition,),
                            written=(refinement.syscall,)))
    return tuple(out)


def header(source: str, when: str, kernel: str, status: int | None,
           notes: Sequence[str], *, refined: bool = False) -> tuple[str, ...]:
    """The comment lines on top of a recorded profile: what ran (``source``: "from: CMD" or the
    attach), when, where, how it ended (``status`` None: an attached process left running)."""
    ended = ("it was released, still running" if status is None else
             f"the command exited with status {status}" if status >= 0 else
             f"the command was killed by signal {-status}{_signal_name(-status)}")
    return (f"Recorded by hostguard seccomp record {source}",
            f"at {when} on Linux {kernel}; {ended}.",
            "Only what this run did is allowed: paths the run did not take are denied.",
            *(["With --args: " + ", ".join(_said(r) for r in REFINEMENTS) + " are allowed only "
               "with the values seen."] if refined else []),
            *(f"Note: {note}" for note in notes))


def _signal_name(number: int) -> str:
    try:
        return f" ({signal.Signals(number).name})"
    except ValueError:  # a real-time signal other than SIGRTMIN/SIGRTMAX
        return ""


def _said(refinement: Refinement) -> str:
    what = "flags" if refinement.mask != LOW_32 else f"arg{refinement.index}"
    return f"{refinement.syscall} {what} & {refinement.mask:#x}"
